/** The live loss chart: training loss per iteration (raw and smoothed) and validation loss, with uPlot. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Smoothing of the training curve (TensorBoard's rule: an EMA with its start-up bias removed). */
const SMOOTHING = 0.9;
/** Past this many points the oldest half is thinned, so hours of training stay light to draw. */
const MAX_POINTS = 60_000;

/** Iterations are whole numbers: ticks at 1, 2, 5, 10, 20, 50, ... */
const INTEGER_STEPS = Array.from({ length: 8 }, (_, k) => [1, 2, 5].map((m) => m * 10 ** k)).flat();

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

export class LossChart {
  private xs: number[] = [];
  private raw: (number | null)[] = [];
  private smooth: (number | null)[] = [];
  private val: (number | null)[] = [];
  private ema = 0;
  private emaWeight = 0;
  private count = 0;
  private plot: uPlot;
  private pending = false;
  private observer: ResizeObserver;

  constructor(private readonly el: HTMLElement) {
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height: 300,
      scales: { x: { time: false } },
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      axes: [
        { label: 'iteration', stroke: '#5d6b7e', incrs: INTEGER_STEPS, grid: { stroke: '#edf0f4', width: 1 }, ticks: { stroke: '#dfe3ea', width: 1 }, size: 44, labelSize: 18 },
        { label: 'loss', stroke: '#5d6b7e', grid: { stroke: '#edf0f4', width: 1 }, ticks: { stroke: '#dfe3ea', width: 1 }, size: 52, labelSize: 18, values: (_u, splits) => splits.map((v) => v.toFixed(2)) },
      ],
      series: [
        { label: 'iteration', value: (_u, v) => (v === null ? '–' : String(v)) },
        { label: 'train', stroke: 'rgba(37, 99, 235, 0.28)', width: 1, spanGaps: true, points: { show: false }, value: (_u, v) => fmt(v) },
        { label: 'train (smoothed)', stroke: '#2563eb', width: 2, spanGaps: true, points: { show: false }, value: (_u, v) => fmt(v) },
        { label: 'validation', stroke: '#e8590c', width: 2, spanGaps: true, points: { show: true, size: 6, fill: '#e8590c' }, value: (_u, v) => fmt(v) },
      ],
    };
    this.plot = new uPlot(opts, [[], [], [], []], el);
    this.observer = new ResizeObserver(() => this.plot.setSize({ width: Math.max(300, el.clientWidth), height: 300 }));
    this.observer.observe(el);
  }

  clear(): void {
    this.xs = [];
    this.raw = [];
    this.smooth = [];
    this.val = [];
    this.ema = 0;
    this.emaWeight = 0;
    this.count = 0;
    this.schedule();
  }

  /** Index of iteration x, inserting a row if needed (rows stay sorted by iteration). */
  private row(x: number): number {
    const n = this.xs.length;
    if (n === 0 || x > this.xs[n - 1]!) {
      this.xs.push(x);
      this.raw.push(null);
      this.smooth.push(null);
      this.val.push(null);
      return n;
    }
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.xs[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    if (this.xs[lo] !== x) {
      this.xs.splice(lo, 0, x);
      this.raw.splice(lo, 0, null);
      this.smooth.splice(lo, 0, null);
      this.val.splice(lo, 0, null);
    }
    return lo;
  }

  addTrain(iterations: number[], losses: number[]): number {
    for (let i = 0; i < iterations.length; i++) {
      const loss = losses[i]!;
      const k = this.row(iterations[i]!);
      this.raw[k] = loss;
      // Lighter smoothing over the first points, so a slow run's curve does not lag its data.
      const w = Math.min(SMOOTHING, this.count / (this.count + 8));
      this.count++;
      this.ema = w * this.ema + (1 - w) * loss;
      this.emaWeight = w * this.emaWeight + (1 - w);
      this.smooth[k] = this.ema / this.emaWeight;
    }
    this.thin();
    this.schedule();
    return this.emaWeight > 0 ? this.ema / this.emaWeight : NaN;
  }

  addVal(iteration: number, loss: number): void {
    this.val[this.row(iteration)] = loss;
    this.schedule();
  }

  /** What is drawn, as plain arrays (for tests and the curious). */
  history(): { iterations: number[]; train: (number | null)[]; val: (number | null)[] } {
    return { iterations: [...this.xs], train: [...this.raw], val: [...this.val] };
  }

  /** Drops every other training-only row of the older half; validation rows stay. */
  private thin(): void {
    if (this.xs.length <= MAX_POINTS) return;
    const half = this.xs.length >> 1;
    const keep = (i: number) => i >= half || i % 2 === 0 || this.val[i] !== null;
    const pick = <T>(a: T[]) => a.filter((_, i) => keep(i));
    this.xs = pick(this.xs);
    this.raw = pick(this.raw);
    this.smooth = pick(this.smooth);
    this.val = pick(this.val);
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot.setData([this.xs, this.raw, this.smooth, this.val] as uPlot.AlignedData);
    });
  }
}
