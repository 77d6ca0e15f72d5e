/**
 * Soak test (issue 15): a tiny model trained for thousands of iterations the way the CLI trains
 * (Trainer + TrainingLoop, with periodic evaluation, sampling and checkpoint exports), checking
 * that GPU memory (live GPUBuffers and their bytes) and resident memory stay flat after warm-up.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/cpu/backend.ts';
import { TrainingLoop } from '../src/engine/training-loop.ts';
import { Trainer } from '../src/engine/trainer.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import type { Backend } from '../src/model/backend.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import { gpu, noGpu } from './gpu.ts';

const V = 20;
const MODEL: ModelConfig = { cell: 'rnn', vocabSize: V, hiddenSize: 16 };
const TRAIN: TrainConfig = { seqLength: 8, batchSize: 4, optimizer: 'adam', learningRate: 0.01, clip: 5, stateReset: 3 };
/**
 * Resident growth allowed over the second half of a run, after warm-up and a forced GC. A leak of
 * even one small staging buffer or typed array per checkpoint/sample/eval, or of a few hundred
 * bytes per iteration, exceeds it over thousands of iterations; allocator and JIT noise (heap
 * pages kept, code compiled late, dawn's internal pools) stays well below it in practice.
 */
const RSS_BOUND_MB = 30;

function randomTokens(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % V;
  }
  return out;
}
const TRAIN_IDS = randomTokens(20_000, 1);
const VAL_IDS = randomTokens(2_000, 2);

// A real GC before each resident-memory sample, so the numbers are live memory and not garbage
// that has not been collected yet. vitest does not pass --expose-gc; this gets the same function.
setFlagsFromString('--expose-gc');
const gc = (globalThis as { gc?: () => void }).gc ?? (runInNewContext('gc') as () => void);
const MB = 1024 * 1024;

interface Sample { iteration: number; rss: number; heap: number; buffers?: number; bytes?: number }

/**
 * Trains `iterations` iterations with evaluation, sampling and checkpoint exports every few
 * hundred, and samples memory every `every` iterations from `warmup` on (and at the end).
 */
async function soak(backend: Backend, o: { iterations: number; warmup: number; every: number; live?: () => { buffers: number; bytes: number } }) {
  const trainer = new Trainer(backend, TRAIN_IDS, VAL_IDS);
  const samples: Sample[] = [];
  const measure = (iteration: number) => {
    gc();
    const m = process.memoryUsage();
    samples.push({ iteration, rss: m.rss, heap: m.heapUsed, ...o.live?.() });
  };
  let checkpoints = 0;
  let evals = 0;
  let sampled = 0;
  const loop = new TrainingLoop({
    trainer,
    until: o.iterations,
    evaluate: { every: { iterations: 250 }, batches: 4, atEnd: 'finished' },
    sample: { every: { iterations: 200 }, options: (it) => ({ prime: new Uint32Array([0, 1]), length: 40, temperature: 0.8, seed: it }), atEnd: true },
    checkpoint: { every: { iterations: 300 } },
    events: {
      onEval: () => { evals++; },
      onSample: () => { sampled++; },
      // The loop has already read the state back with exportState; keep nothing of it.
      onCheckpoint: () => { checkpoints++; },
      onStep: (i) => { if (i >= o.warmup && i % o.every === 0) measure(i); },
    },
  });
  expect(await loop.run()).toEqual({ reason: 'finished', iteration: o.iterations });
  if (samples.at(-1)?.iteration !== o.iterations) measure(o.iterations);
  expect(checkpoints).toBeGreaterThanOrEqual(Math.floor(o.iterations / 300));
  expect(evals).toBeGreaterThanOrEqual(Math.floor(o.iterations / 250));
  expect(sampled).toBeGreaterThanOrEqual(Math.floor(o.iterations / 200));
  return samples;
}

function report(what: string, samples: Sample[]) {
  const rows = samples.map((s) =>
    `  it ${String(s.iteration).padStart(5)}: rss ${(s.rss / MB).toFixed(1)} MB, heap ${(s.heap / MB).toFixed(1)} MB` +
    (s.buffers === undefined ? '' : `, ${s.buffers} live GPU buffers, ${s.bytes} bytes`));
  console.log(`${what}\n${rows.join('\n')}`);
}

/** Resident and heap growth from the middle sample to the maximum after it, in MB. */
function secondHalfGrowth(samples: Sample[]) {
  const mid = samples[Math.floor(samples.length / 2)];
  const after = samples.slice(Math.floor(samples.length / 2));
  return {
    rss: (Math.max(...after.map((s) => s.rss)) - mid.rss) / MB,
    heap: (Math.max(...after.map((s) => s.heap)) - mid.heap) / MB,
  };
}

describe('soak', () => {
  it.skipIf(noGpu)('GPU: 3000 iterations with evaluation, sampling and checkpoints keep GPU buffers and resident memory flat', async () => {
    const device = gpu!.device;
    const live = new Map<GPUBuffer, number>();
    const create = device.createBuffer;
    // Counts every buffer made on the device from here on, and forgets it when destroyed.
    device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
      const b = create.call(this, d);
      live.set(b, d.size);
      const destroy = b.destroy;
      b.destroy = function (this: GPUBuffer) {
        live.delete(b);
        return destroy.call(this);
      };
      return b;
    };
    let backend: GpuBackend | undefined;
    try {
      backend = await GpuBackend.create(gpu!, MODEL, TRAIN, 7);
      const liveNow = () => ({ buffers: live.size, bytes: [...live.values()].reduce((a, b) => a + b, 0) });
      const started = liveNow();
      // Warm-up covers the first evaluation, sample and checkpoint (pipelines compiled, readback ring full).
      const samples = await soak(backend, { iterations: 3000, warmup: 600, every: 200, live: liveNow });
      report(`GPU soak (backend made ${started.buffers} buffers, ${started.bytes} bytes):`, samples);
      const first = samples[0];
      // Between iterations, evaluation, sampling and exportState must have destroyed every temporary.
      for (const s of samples) {
        expect(s.buffers, `live GPU buffers at iteration ${s.iteration}`).toBe(first.buffers);
        expect(s.bytes, `live GPU bytes at iteration ${s.iteration}`).toBe(first.bytes);
      }
      const growth = secondHalfGrowth(samples);
      console.log(`GPU soak: second-half growth rss ${growth.rss.toFixed(1)} MB, heap ${growth.heap.toFixed(1)} MB`);
      expect(growth.rss).toBeLessThan(RSS_BOUND_MB);
      backend.destroy();
      expect(live.size, 'buffers left after destroy()').toBe(0);
    } finally {
      backend?.destroy();
      device.createBuffer = create;
    }
  }, 120_000);

  it('CPU: 500 iterations with evaluation, sampling and checkpoints keep resident memory flat', async () => {
    const samples = await soak(new CpuBackend(MODEL, TRAIN, 7), { iterations: 500, warmup: 100, every: 50 });
    report('CPU soak:', samples);
    const growth = secondHalfGrowth(samples);
    console.log(`CPU soak: second-half growth rss ${growth.rss.toFixed(1)} MB, heap ${growth.heap.toFixed(1)} MB`);
    expect(growth.rss).toBeLessThan(RSS_BOUND_MB);
  }, 60_000);
});
