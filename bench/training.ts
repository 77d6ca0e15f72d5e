/**
 * Training and sampling throughput of our backends and of the peers (TensorFlow.js, PyTorch on the
 * CPU, brain.js) on the same job. Every runner of a row is set up and warmed first; then rounds go
 * round-robin over the runners (a round of each, then the next round), so that load from the rest
 * of a shared machine falls on all of them alike. GPU runners are timed two ways each round:
 * pipelined (PIPELINE_DEPTH iterations enqueued, then the last loss read, as training runs) and
 * with a readback every iteration.
 */
import { CpuBackend } from '../src/cpu/backend.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import type { Backend } from '../src/model/backend.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import type { CellType } from '../src/model/cells.ts';
import { Rng } from '../src/util/random.ts';
import { tuneKernels, type TuneOptions } from '../src/engine/tuning.ts';
import { median, PIPELINE_DEPTH, type Timing } from './timing.ts';
import type { PeerSession } from './peers.ts';

export type { Timing };

export type BenchBackend = 'ours-gpu' | 'ours-cpu' | 'tfjs-webgpu' | 'tfjs-cpu' | 'pytorch-cpu' | 'brainjs';
export const GPU_BACKENDS: readonly BenchBackend[] = ['ours-gpu', 'tfjs-webgpu'];

export interface Job {
  V: number; H: number; T: number; B: number;
  /** rnn when absent; TensorFlow.js rows exist only for the rnn (bench/tfjs-rnn.ts is a vanilla RNN). */
  cell?: CellType;
}

/** Character rows are labelled by shape; word-level rows (V > 256) name V too. */
export const jobLabel = (j: Job) => `${j.V > 256 ? `word V=${j.V.toLocaleString('en')} ` : ''}${j.cell && j.cell !== 'rnn' ? `${j.cell} ` : ''}H=${j.H} T=${j.T} B=${j.B}`;

export interface TrainRow extends Job {
  backend: BenchBackend;
  /** GPU runners: how each round waited for the GPU (CPU runners: 'sync', there is nothing to overlap). */
  timing: Timing;
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
  /** Peers: what ran (library version, threads, BLAS). */
  about?: string;
}

export function randomChunk(j: Job, seed: number) {
  const rng = new Rng(seed);
  const n = j.T * j.B;
  const draw = () => Uint32Array.from({ length: n }, () => Math.floor(rng.next() * j.V));
  return { inputs: draw(), targets: draw() };
}

export function configs(j: Job): { model: ModelConfig; train: TrainConfig } {
  return {
    model: { cell: j.cell ?? 'rnn', vocabSize: j.V, hiddenSize: j.H },
    train: { seqLength: j.T, batchSize: j.B, optimizer: 'adam', learningRate: 2e-3, clip: 5 },
  };
}

/** One backend or peer on one job, set up and warmed: `round(timing)` gives ms per iteration. */
interface Runner {
  backend: BenchBackend;
  timings: Timing[];
  round(timing: Timing): Promise<number>;
  dispose(): void | Promise<void>;
  extra: Partial<TrainRow>;
}

/** Our backends: the same chunk each iteration; pipelined = PIPELINE_DEPTH steps in flight. */
async function ourRunner(b: Backend, j: Job, extra: Partial<TrainRow>): Promise<Runner> {
  const chunk = randomChunk(j, 1);
  await (await b.trainStep(chunk)).loss;
  const gpu = b.kind === 'gpu';
  return {
    backend: gpu ? 'ours-gpu' : 'ours-cpu',
    timings: gpu ? ['pipelined', 'sync'] : ['sync'],
    async round(timing) {
      const n = timing === 'pipelined' ? PIPELINE_DEPTH : 1;
      const t0 = performance.now();
      const losses = [];
      for (let i = 0; i < n; i++) losses.push((await b.trainStep(chunk)).loss);
      const last = await Promise.all(losses);
      if (!last.every(Number.isFinite)) throw new Error(`${b.kind}: loss ${last}`);
      return (performance.now() - t0) / n;
    },
    dispose: () => b.destroy(),
    extra,
  };
}

function peerRunner(backend: BenchBackend, p: PeerSession): Runner {
  return { backend, timings: ['sync'], round: () => p.round(), dispose: () => p.dispose(), extra: { about: p.about } };
}

function row(j: Job, backend: BenchBackend, timing: Timing, times: number[], extra: Partial<TrainRow> = {}): TrainRow {
  const m = median(times);
  return {
    ...j, backend, timing, msMedian: m, msMin: Math.min(...times), msMax: Math.max(...times),
    tokensPerSecond: (j.T * j.B * 1000) / m, reps: times.length, ...extra,
  };
}

export interface TrainBenchOptions {
  backends: BenchBackend[];
  /** Rounds go on until the row has spent budgetMs (at least minReps, at most maxReps rounds). */
  budgetMs: number;
  minReps: number;
  maxReps: number;
  /**
   * A CPU runner (ours or a peer) that has spent this long in its rounds of a row sits out the rest
   * (it keeps its rounds so far). The GPU runners, ours and tfjs-webgpu, the comparison the bench
   * is for, always get minReps rounds.
   */
  peerBudgetMs: number;
  /** Kernel tuning for ours-gpu, as at a training start (absent: the default kernels). */
  tune?: TuneOptions;
  /** One line for a peer left out (PyTorch not installed, say). */
  note?: (line: string) => void;
}

async function startRunner(ctx: GpuContext | undefined, j: Job, backend: BenchBackend, o: TrainBenchOptions): Promise<Runner | string> {
  const { model, train } = configs(j);
  const cell = j.cell ?? 'rnn';
  switch (backend) {
    case 'ours-gpu': {
      if (!ctx) return 'no GPU adapter';
      const tuned = await tuneKernels(ctx, model, train, o.tune ?? { mode: 'off', note: () => {} });
      const g = await GpuBackend.create(ctx, model, train, 1, undefined, tuned.choice);
      return ourRunner(g, j, { dispatches: g.perStep.dispatches, readbacks: g.perStep.readbacks, kernels: tuned.line });
    }
    case 'ours-cpu':
      return ourRunner(new CpuBackend(model, train, 1), j, {});
    case 'tfjs-webgpu':
    case 'tfjs-cpu': {
      if (cell !== 'rnn') return 'bench/tfjs-rnn.ts is a vanilla RNN';
      if (backend === 'tfjs-webgpu' && !ctx) return 'no GPU adapter';
      // Peers load on demand, so that bench/real-gpu's bundle runs our rows without them.
      const { startTfjs } = await import('./tfjs-rnn.ts');
      const s = await startTfjs({
        backend: backend === 'tfjs-webgpu' ? 'webgpu' : 'cpu', device: ctx?.device,
        vocabSize: j.V, hiddenSize: j.H, seqLength: j.T, batchSize: j.B,
      });
      return {
        backend, timings: backend === 'tfjs-webgpu' ? ['pipelined', 'sync'] : ['sync'],
        round: (t) => s.round(t), dispose: () => s.dispose(), extra: {},
      };
    }
    case 'pytorch-cpu': {
      const { startTorch, torchUnavailable } = await import('./peers.ts');
      const why = torchUnavailable();
      return why || peerRunner(backend, await startTorch(j));
    }
    case 'brainjs':
      return peerRunner(backend, (await import('./peers.ts')).startBrain(j));
  }
}

/** Our own runners fail the bench when they break; a peer that breaks is left out with a note. */
const isOurs = (b: BenchBackend) => b === 'ours-gpu' || b === 'ours-cpu';

export async function benchTraining(ctx: GpuContext | undefined, j: Job, o: TrainBenchOptions): Promise<TrainRow[]> {
  const runners: Runner[] = [];
  const leaveOut = (backend: BenchBackend, why: unknown) => {
    if (isOurs(backend)) throw why;
    o.note?.(`${jobLabel(j)}: ${backend} left out: ${why instanceof Error ? why.message.split('\n')[0] : why}`);
  };
  try {
    for (const backend of o.backends) {
      let r: Runner | string;
      try {
        r = await startRunner(ctx, j, backend, o);
      } catch (e) {
        r = e instanceof Error ? e.message.split('\n')[0] : String(e);
        if (isOurs(backend)) throw e;
      }
      if (typeof r === 'string') leaveOut(backend, r);
      else runners.push(r);
    }
    const times = runners.map((r) => r.timings.map(() => [] as number[]));
    const spent = runners.map(() => 0);
    const broken = new Set<Runner>();
    const start = performance.now();
    for (let round = 0; round < o.maxReps; round++) {
      if (round >= o.minReps && performance.now() - start >= o.budgetMs) break;
      const active = runners.filter((r, i) => !broken.has(r) &&
        (round === 0 || spent[i] < o.peerBudgetMs || (GPU_BACKENDS.includes(r.backend) && round < o.minReps)));
      if (active.length === 0) break;
      for (const r of active) {
        const i = runners.indexOf(r);
        const t0 = performance.now();
        try {
          // A round of each timing, all or none, so that both columns have the same rounds.
          const ms = [];
          for (const timing of r.timings) ms.push(await r.round(timing));
          ms.forEach((m, k) => times[i][k].push(m));
        } catch (e) {
          leaveOut(r.backend, e);
          broken.add(r);
        }
        spent[i] += performance.now() - t0;
      }
    }
    return runners.flatMap((r, i) => (times[i][0].length === 0 ? [] : r.timings.map((timing, k) => row(j, r.backend, timing, times[i][k], r.extra))));
  } finally {
    for (const r of runners) await r.dispose();
  }
}

export interface SampleRow {
  backend: 'ours-gpu' | 'ours-cpu'; H: number; V: number;
  /** Samples side by side (sampleMany); tokens counts all of them. */
  streams: number;
  tokens: number; ms: number; tokensPerSecond: number;
}

/** Rounds of sampling, GPU and CPU alternating, the fastest of each kept (the machine is shared and noisy). */
export const SAMPLE_ROUNDS = 3;

/**
 * Sampling throughput of our two backends: one stream and `streams` side by side, `tokens` per
 * stream, in SAMPLE_ROUNDS rounds that alternate the backends.
 */
export async function benchSampling(ctx: GpuContext | undefined, H: number, V: number, tokens: number, streams = 8): Promise<SampleRow[]> {
  const j = { V, H, T: 1, B: 1 };
  const { model, train } = configs(j);
  const backends: Backend[] = [new CpuBackend(model, train, 1)];
  if (ctx) backends.unshift(await GpuBackend.create(ctx, model, train, 1));
  const best = new Map<string, SampleRow>();
  try {
    const opts = { prime: new Uint32Array([0]), length: tokens, temperature: 1, seed: 1 };
    for (const b of backends) await b.sampleMany({ ...opts, length: 8 }, streams);
    for (let round = 0; round < SAMPLE_ROUNDS; round++) {
      for (const n of streams > 1 ? [1, streams] : [1]) {
        for (const b of backends) {
          const t0 = performance.now();
          await b.sampleMany(opts, n);
          const ms = performance.now() - t0;
          const row: SampleRow = { backend: b.kind === 'gpu' ? 'ours-gpu' : 'ours-cpu', H, V, streams: n, tokens: n * tokens, ms, tokensPerSecond: (n * tokens * 1000) / ms };
          const key = `${row.backend} ${n}`;
          if (!best.has(key) || best.get(key)!.ms > ms) best.set(key, row);
        }
      }
    }
  } finally {
    for (const b of backends) b.destroy();
  }
  return [...best.values()];
}
