/** Training and sampling throughput of our backends and of TensorFlow.js on the same job. */
import { CpuBackend } from '../src/cpu/backend.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import type { Backend } from '../src/model/backend.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import type { CellType } from '../src/model/cells.ts';
import { Rng } from '../src/util/random.ts';
import { tuneKernels, type TuneOptions } from '../src/engine/tuning.ts';
import { median, runTfjsTraining } from './tfjs-rnn.ts';

export type BenchBackend = 'ours-gpu' | 'ours-cpu' | 'tfjs-webgpu' | 'tfjs-cpu';

export interface Job {
  V: number; H: number; T: number; B: number;
  /** rnn when absent; TensorFlow.js rows exist only for the rnn (bench/tfjs-rnn.ts is a vanilla RNN). */
  cell?: CellType;
}

export const jobLabel = (j: Job) => `${j.cell && j.cell !== 'rnn' ? `${j.cell} ` : ''}H=${j.H} T=${j.T} B=${j.B}`;

export interface TrainRow extends Job {
  backend: BenchBackend;
  /** Median, fastest and slowest ms per iteration over the timed repetitions. */
  msMedian: number;
  msMin: number;
  msMax: number;
  tokensPerSecond: number;
  reps: number;
  dispatches?: number;
  readbacks?: number;
  /** ours-gpu: the kernel tuner's choice, as training prints it. */
  kernels?: string;
}

export function randomChunk(j: Job, seed: number) {
  const rng = new Rng(seed);
  const n = j.T * j.B;
  const draw = () => Uint32Array.from({ length: n }, () => Math.floor(rng.next() * j.V));
  return { inputs: draw(), targets: draw() };
}

function configs(j: Job): { model: ModelConfig; train: TrainConfig } {
  return {
    model: { cell: j.cell ?? 'rnn', vocabSize: j.V, hiddenSize: j.H },
    train: { seqLength: j.T, batchSize: j.B, optimizer: 'adam', learningRate: 2e-3, clip: 5 },
  };
}

/**
 * Repetitions until `budgetMs` is spent (at least `minReps`, at most `maxReps`), after one warm-up.
 * GPU iterations are enqueued `inFlight` at a time and timed as a group, the way training runs them.
 */
async function timeBackend(b: Backend, j: Job, budgetMs: number, minReps: number, maxReps: number): Promise<number[]> {
  const chunk = randomChunk(j, 1);
  await (await b.trainStep(chunk)).loss;
  const group = b.kind === 'gpu' ? 3 : 1;
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length < minReps || performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    const losses = [];
    for (let i = 0; i < group; i++) losses.push((await b.trainStep(chunk)).loss);
    await Promise.all(losses);
    times.push((performance.now() - t0) / group);
  }
  return times;
}

function row(j: Job, backend: BenchBackend, times: number[], extra: Partial<TrainRow> = {}): TrainRow {
  const m = median(times);
  return {
    ...j, backend, msMedian: m, msMin: Math.min(...times), msMax: Math.max(...times),
    tokensPerSecond: (j.T * j.B * 1000) / m, reps: times.length, ...extra,
  };
}

export interface TrainBenchOptions {
  backends: BenchBackend[];
  budgetMs: number;
  minReps: number;
  maxReps: number;
  /** Kernel tuning for ours-gpu, as at a training start (absent: the default kernels). */
  tune?: TuneOptions;
}

export async function benchTraining(ctx: GpuContext | undefined, j: Job, o: TrainBenchOptions): Promise<TrainRow[]> {
  const rows: TrainRow[] = [];
  const { model, train } = configs(j);
  for (const backend of o.backends) {
    if (backend === 'ours-gpu') {
      if (!ctx) continue;
      const tuned = await tuneKernels(ctx, model, train, o.tune ?? { mode: 'off', note: () => {} });
      const g = await GpuBackend.create(ctx, model, train, 1, undefined, tuned.choice);
      try {
        const times = await timeBackend(g, j, o.budgetMs, o.minReps, o.maxReps);
        rows.push(row(j, backend, times, { dispatches: g.perStep.dispatches, readbacks: g.perStep.readbacks, kernels: tuned.line }));
      } finally {
        g.destroy();
      }
    } else if (backend === 'ours-cpu') {
      rows.push(row(j, backend, await timeBackend(new CpuBackend(model, train, 1), j, o.budgetMs, o.minReps, o.maxReps)));
    } else {
      if (backend === 'tfjs-webgpu' && !ctx) continue;
      const r = await runTfjsTraining({
        backend: backend === 'tfjs-webgpu' ? 'webgpu' : 'cpu', device: ctx?.device,
        vocabSize: j.V, hiddenSize: j.H, seqLength: j.T, batchSize: j.B, warmup: 1, iterations: o.minReps,
      });
      rows.push(row(j, backend, r.msPerIteration));
    }
  }
  return rows;
}

export interface SampleRow { backend: 'ours-gpu' | 'ours-cpu'; H: number; V: number; tokens: number; ms: number; tokensPerSecond: number }

export async function benchSampling(ctx: GpuContext | undefined, H: number, V: number, tokens: number): Promise<SampleRow[]> {
  const j = { V, H, T: 1, B: 1 };
  const { model, train } = configs(j);
  const rows: SampleRow[] = [];
  const backends: Backend[] = [new CpuBackend(model, train, 1)];
  if (ctx) backends.unshift(await GpuBackend.create(ctx, model, train, 1));
  for (const b of backends) {
    const opts = { prime: new Uint32Array([0]), length: tokens, temperature: 1, seed: 1 };
    await b.sample({ ...opts, length: 8 });
    const t0 = performance.now();
    await b.sample(opts);
    const ms = performance.now() - t0;
    rows.push({ backend: b.kind === 'gpu' ? 'ours-gpu' : 'ours-cpu', H, V, tokens, ms, tokensPerSecond: (tokens * 1000) / ms });
    b.destroy();
  }
  return rows;
}
