/**
 * Training progress: a live cli-progress bar when stdout is a terminal, plain periodic lines
 * otherwise (logs, pipes, CI). Anything else the trainer prints (samples, evaluations, notices)
 * goes through log(), which puts it above the bar instead of through it.
 */
import cliProgress from 'cli-progress';
import type { TokenizerLevel } from '../data/tokenizer.ts';
import type { CliIO } from './io.ts';
import { compact, duration, int, loss, lossShort } from './format.ts';

export interface ProgressOptions {
  total: number;
  start: number;
  tokensPerIteration: number;
  level: TokenizerLevel;
  quiet: boolean;
  /** Plain mode: a line every N iterations; 0 = about every 10 seconds. */
  printEvery: number;
}

interface Snapshot {
  iteration: number;
  trainLoss: number;
  valLoss: number;
}

/** Iterations per second over a sliding window, so the rate and ETA follow the current speed. */
class Rate {
  private points: { t: number; it: number }[] = [];
  add(t: number, it: number): void {
    this.points.push({ t, it });
    while (this.points.length > 2 && t - this.points[0].t > 20_000) this.points.shift();
  }
  perSecond(): number {
    if (this.points.length < 2) return NaN;
    const a = this.points[0];
    const b = this.points[this.points.length - 1];
    return b.t > a.t ? ((b.it - a.it) * 1000) / (b.t - a.t) : NaN;
  }
  /** Time spent evaluating or sampling is not training speed. */
  reset(): void {
    this.points = [];
  }
}

export class Progress {
  private bar?: cliProgress.MultiBar;
  private barItem?: cliProgress.SingleBar;
  private rate = new Rate();
  private snap: Snapshot;
  private lastPrintTime: number;
  private lastPrintIteration: number;

  constructor(private readonly io: CliIO, private readonly o: ProgressOptions) {
    this.snap = { iteration: o.start, trainLoss: NaN, valLoss: NaN };
    this.lastPrintTime = io.now();
    this.lastPrintIteration = o.start;
  }

  get tty(): boolean {
    return Boolean(this.io.stdout.isTTY);
  }

  start(): void {
    this.rate.add(this.io.now(), this.o.start);
    if (this.o.quiet || !this.tty) return;
    this.bar = new cliProgress.MultiBar({
      stream: this.io.stdout as NodeJS.WriteStream,
      format: () => this.line(true),
      hideCursor: true,
      fps: 5,
      barsize: 24,
      // Our own Ctrl-C handler stops the bar; cli-progress must not register a second one.
      gracefulExit: false,
    });
    this.barItem = this.bar.create(this.o.total, this.o.start);
  }

  private eta(): number {
    const r = this.rate.perSecond();
    return (this.o.total - this.snap.iteration) / r;
  }

  private line(bar: boolean): string {
    const { iteration, trainLoss, valLoss } = this.snap;
    const { total, level } = this.o;
    const pct = ((100 * iteration) / total).toFixed(1);
    const tokS = this.rate.perSecond() * this.o.tokensPerIteration;
    const width = 24;
    const filled = Math.round((width * Math.min(iteration, total)) / total);
    const parts = [
      `iter ${int(iteration)}/${int(total)}`,
      bar ? `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${pct}%` : `${pct}%`,
      `${compact(tokS)} tok/s`,
      bar ? `train ${lossShort(trainLoss, level)}` : `train ${loss(trainLoss, level)}`,
      bar ? `val ${lossShort(valLoss, level)}` : `val ${loss(valLoss, level)}`,
      `ETA ${duration(this.eta())}`,
    ];
    return parts.join(' | ');
  }

  /** After each iteration whose loss is known. */
  update(iteration: number, trainLoss: number): void {
    this.snap.iteration = iteration;
    this.snap.trainLoss = trainLoss;
    const now = this.io.now();
    this.rate.add(now, iteration);
    if (this.o.quiet) return;
    if (this.barItem) {
      this.barItem.update(iteration);
      return;
    }
    const due = this.o.printEvery > 0
      ? iteration - this.lastPrintIteration >= this.o.printEvery
      : now - this.lastPrintTime >= 10_000;
    if (due || iteration === this.o.total) this.printLine();
  }

  private printLine(): void {
    this.lastPrintTime = this.io.now();
    this.lastPrintIteration = this.snap.iteration;
    this.io.stdout.write(`${this.line(false)}\n`);
  }

  setValLoss(v: number): void {
    this.snap.valLoss = v;
  }

  /** Evaluation and sampling pause training: keep them out of the speed. */
  paused(): void {
    this.rate.reset();
    this.rate.add(this.io.now(), this.snap.iteration);
  }

  /** Prints text (ending in a newline) above the bar, or plainly. Quiet mode drops it. */
  log(text: string): void {
    if (this.o.quiet) return;
    this.write(text);
  }

  /** Like log, but printed even in quiet mode (warnings, where a checkpoint went). */
  notice(text: string): void {
    this.write(text);
  }

  private write(text: string): void {
    const t = text.endsWith('\n') ? text : `${text}\n`;
    if (this.bar) {
      this.bar.log(t);
      this.bar.update();
    } else {
      this.io.stdout.write(t);
    }
  }

  stop(): void {
    if (this.bar) {
      this.bar.update();
      this.bar.stop();
      this.bar = undefined;
      this.barItem = undefined;
    }
  }
}
