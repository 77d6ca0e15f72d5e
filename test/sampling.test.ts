/**
 * Where sampling starts (Backend.sample): from stream 0 of the carried training state, on the CPU
 * backend as on the GPU (test/kernels.test.ts holds sample.wgsl to the same rule). The comparison
 * is exact: both sides run sampleTokens on the same float32 parameters and state.
 */
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/cpu/backend.ts';
import { sampleTokens } from '../src/cpu/sample.ts';
import { streamState } from '../src/model/backend.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { Rng } from '../src/util/random.ts';

describe('CpuBackend.sample', () => {
  for (const model of [
    { cell: 'rnn', vocabSize: 9, hiddenSize: 13, layers: 2 },
    { cell: 'lstm', vocabSize: 7, hiddenSize: 11, layers: 2 },
  ] as ModelConfig[]) {
    it(`${model.cell}: starts from stream 0 of the carried state, not from zeros`, async () => {
      const B = 3;
      const train = { seqLength: 4, batchSize: B, optimizer: 'adam' as const, learningRate: 1e-2, clip: 5 };
      const backend = new CpuBackend(model, train, 3);
      const rng = new Rng(5);
      const tokens = () => Uint32Array.from({ length: train.seqLength * B }, () => Math.floor(rng.next() * model.vocabSize));
      for (let i = 0; i < 5; i++) await (await backend.trainStep({ inputs: tokens(), targets: tokens() })).loss;
      const s = await backend.exportState();
      const opts = { prime: new Uint32Array([1, 2]), length: 40, temperature: 1, seed: 9 };
      const fromCarried = sampleTokens(model, s.params, { ...opts, start: streamState(model, B, s) });
      const fromZeros = sampleTokens(model, s.params, opts);
      expect(Array.from(await backend.sample(opts))).toEqual(Array.from(fromCarried));
      // The start matters: the first distribution differs (tokens may still agree on a tiny model).
      const first = (start?: ReturnType<typeof streamState>) => {
        let p: Float64Array | undefined;
        sampleTokens(model, s.params, { ...opts, length: 1, start, onProbs: (_, q) => (p ??= q.slice()) });
        return p!;
      };
      const a = first(streamState(model, B, s)), b = first();
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-4);
      backend.resetState();
      expect(Array.from(await backend.sample(opts))).toEqual(Array.from(fromZeros));
    });
  }
});
