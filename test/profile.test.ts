/**
 * bench/profile.ts and GpuBackend.profileIteration: every dispatch of an iteration timed once, the
 * products' work counted, and the steps grouped into the lines the bench prints.
 */
import { describe, expect, it } from 'vitest';
import { groupTimings } from '../bench/profile.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import { gpu, noGpu } from './gpu.ts';

describe('groupTimings', () => {
  it('folds the timesteps and ranges of one dispatch into one line, with the products\' GFLOP/s', () => {
    const job = { V: 65, H: 8, T: 2, B: 4, cell: 'lstm' as const };
    const groups = groupTimings(job, [
      { label: 'forward layer 0 cell_forward t=0', kernel: 'cell_forward', entryPoint: 'main_v4', ms: 1 },
      { label: 'forward layer 0 cell_forward t=1', kernel: 'cell_forward', entryPoint: 'main_v4', ms: 3 },
      { label: 'backward layer 0 cell_backward dh0', kernel: 'cell_backward', entryPoint: 'main_v4', ms: 0.5 },
      { label: 'backward layer 0 matmul dW_hh rows 0..', kernel: 'matmul', entryPoint: 'main_vab', ms: 2, flops: 4e6 },
      { label: 'backward layer 0 matmul dW_hh rows 16..', kernel: 'matmul', entryPoint: 'main_vab', ms: 2, flops: 4e6 },
      { label: 'update optimizer', kernel: 'optimizer', entryPoint: 'main', ms: 0.25 },
    ]);
    expect(groups).toEqual([
      // 2 steps x 2 B H (4 H) flops each, over 4 ms.
      { what: 'forward layer 0 cell_forward', entryPoint: 'main_v4', count: 2, ms: 4, gflops: (2 * 2 * 4 * 8 * 32) / 4 / 1e6 },
      { what: 'backward layer 0 cell_backward (dh0 tail)', entryPoint: 'main_v4', count: 1, ms: 0.5 },
      { what: 'backward layer 0 matmul dW_hh', entryPoint: 'main_vab', count: 2, ms: 4, gflops: 2 },
      { what: 'update optimizer', entryPoint: 'main', count: 1, ms: 0.25 },
    ]);
  });
});

describe.skipIf(noGpu)('GpuBackend.profileIteration', () => {
  it('times each planned dispatch of an iteration, in order, with the products\' flops from their uniforms', async () => {
    const model = { cell: 'gru' as const, vocabSize: 11, hiddenSize: 12 }, train = { seqLength: 3, batchSize: 2, optimizer: 'adam' as const, learningRate: 1e-3, clip: 5 };
    const g = await GpuBackend.create(gpu!, model, train, 1);
    try {
      await (await g.trainStep({ inputs: Uint32Array.of(1, 2, 3, 4, 5, 6), targets: Uint32Array.of(2, 3, 4, 5, 6, 7) })).loss;
      const t = await g.profileIteration(1, 1);
      expect(t).toHaveLength(g.perStep.dispatches);
      expect(t.every((d) => d.ms >= 0 && Number.isFinite(d.ms))).toBe(true);
      expect(t.filter((d) => /cell_forward t=/.test(d.label))).toHaveLength(3);
      // logits = h W_dec^T: [T B = 6, V = 11] over K = H = 12.
      expect(t.find((d) => d.label === 'forward decoder matmul logits')?.flops).toBe(2 * 6 * 11 * 12);
      expect(t.filter((d) => d.kernel !== 'matmul').every((d) => d.flops === undefined)).toBe(true);
    } finally {
      g.destroy();
    }
  });
});
