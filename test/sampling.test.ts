/**
 * The CPU sampler (src/cpu/sample.ts), which runs its own one-stream forward pass:
 * - its distributions against the reference forward of src/cpu/stacked.ts (the one the finite
 *   differences check), in float64, for every cell and stacked models;
 * - where Backend.sample starts: from stream 0 of the carried training state, on the CPU backend
 *   as on the GPU (test/kernels.test.ts holds sample.wgsl to the same rule). That comparison is
 *   exact: both sides run sampleTokens on the same float32 parameters and state.
 */
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/cpu/backend.ts';
import { sampleTokens } from '../src/cpu/sample.ts';
import { stackedLoss, type StackedState } from '../src/cpu/stacked.ts';
import { streamState } from '../src/model/backend.ts';
import { GATES, hasCellState } from '../src/model/cells.ts';
import { fullModelConfig, type ModelConfig } from '../src/model/config.ts';
import { paramLayout } from '../src/model/layout.ts';
import { Rng } from '../src/util/random.ts';

/**
 * Largest |log p_sampler - log p_reference| over every position of `seq` and every token: the
 * sampler primed with seq[0..k] (temperature 1, its distribution for position k + 1 via onProbs)
 * against the reference's probability of each token v after seq[0..k], from the same start state.
 * The reference runs stackedLoss on B = 1: the prefix seq[0..k-1] as one chunk of T = k steps,
 * then one step with input seq[k] and target v, whose loss is -log p(v).
 * Also the whole sequence: the reference's mean loss over T = seq.length - 1 steps against the
 * sampler's mean -log p of each next token.
 */
function samplerVsReference(
  model: ModelConfig, seq: Uint32Array, ref: { params: Float64Array; start: StackedState },
  sampler: { params: Float64Array; start: StackedState } = ref,
): { maxLogProbError: number; lossError: number } {
  const config = fullModelConfig(model);
  const V = config.vocabSize;
  const chunk = (inputs: ArrayLike<number>, targets: ArrayLike<number>) =>
    ({ inputs: Uint32Array.from(inputs), targets: Uint32Array.from(targets), seqLength: inputs.length, batchSize: 1 });
  let maxLogProbError = 0;
  let samplerLoss = 0;
  for (let k = 0; k + 1 < seq.length; k++) {
    let probs: Float64Array | undefined;
    const start = { hidden: sampler.start.h, ...(sampler.start.c ? { cellState: sampler.start.c } : {}) };
    sampleTokens(model, sampler.params, {
      prime: seq.subarray(0, k + 1), length: 1, temperature: 1, seed: 1, start,
      onProbs: (_, p) => (probs = p.slice()),
    });
    expect(probs, `position ${k}: onProbs called`).toBeDefined();
    const state = k === 0 ? ref.start : (() => {
      const r = stackedLoss(config, ref.params, ref.start, chunk(seq.subarray(0, k), seq.subarray(1, k + 1)), null, Float64Array);
      return { h: r.hLast, c: r.cLast };
    })();
    for (let v = 0; v < V; v++) {
      const refLogP = -stackedLoss(config, ref.params, state, chunk([seq[k]], [v]), null, Float64Array).loss;
      maxLogProbError = Math.max(maxLogProbError, Math.abs(Math.log(probs![v]) - refLogP));
    }
    samplerLoss -= Math.log(probs![seq[k + 1]]);
  }
  samplerLoss /= seq.length - 1;
  const refLoss = stackedLoss(config, ref.params, ref.start, chunk(seq.subarray(0, -1), seq.subarray(1)), null, Float64Array).loss;
  return { maxLogProbError, lossError: Math.abs(samplerLoss - refLoss) / refLoss };
}

/** Weights large enough that every nonlinearity is far from linear; a non-zero start state. */
function randomModel(model: ModelConfig, seed: number): { params: Float64Array; start: StackedState } {
  const config = fullModelConfig(model);
  const layout = paramLayout(config);
  const rng = new Rng(seed);
  const params = new Float64Array(layout.length);
  for (const s of layout.slots) for (let i = 0; i < s.size; i++) params[s.offset + i] = rng.normal() * 0.7;
  const n = config.layers * config.hiddenSize;
  const start = {
    h: Float64Array.from({ length: n }, () => rng.next() - 0.5),
    c: hasCellState(config.cell) ? Float64Array.from({ length: n }, () => 2 * rng.next() - 1) : null,
  };
  return { params, start };
}

// Tolerance: 1e-10 on log-probabilities (a relative error of 1e-10 on each probability), 1e-10
// relative on the loss. Both sides are float64 sums of a few dozen terms in the same order up to
// the softmax (they share src/cpu/cells.ts); the differences measured are ~1e-15.
const TOL = 1e-10;
const models: ModelConfig[] = [
  { cell: 'rnn', vocabSize: 11, hiddenSize: 7 },
  { cell: 'lstm', vocabSize: 9, hiddenSize: 5 },
  { cell: 'gru', vocabSize: 13, hiddenSize: 3 },
  { cell: 'lstm', vocabSize: 7, hiddenSize: 5, layers: 3 },
  { cell: 'gru', vocabSize: 5, hiddenSize: 9, layers: 2 },
  { cell: 'rnn', vocabSize: 3, hiddenSize: 1, layers: 2 },
];
const label = (m: ModelConfig) => `${m.cell} L=${m.layers ?? 1} V=${m.vocabSize} H=${m.hiddenSize}`;

describe('sampleTokens vs the reference forward (src/cpu/stacked.ts), float64', () => {
  for (const [i, model] of models.entries()) {
    it(`${label(model)}: every token's log-probability at every position, and the loss of the sequence`, () => {
      const ref = randomModel(model, 40 + i);
      // Repeats, the first and the last token: 10 tokens, 9 predicted positions.
      const V = model.vocabSize;
      const seq = Uint32Array.from([0, V - 1, 1 % V, 1 % V, 2 % V, V - 1, 0, 3 % V, 2 % V, V - 1]);
      const { maxLogProbError, lossError } = samplerVsReference(model, seq, ref);
      expect(maxLogProbError).toBeLessThan(TOL);
      expect(lossError).toBeLessThan(TOL);
    });
  }

  it('can fail: a sampler that read the gates in another order or misplaced its start state would be caught', () => {
    const seq = Uint32Array.from([0, 4, 1, 1, 2, 6, 0, 3]);
    // The same weights with gate blocks a and b of one layer exchanged: what a sampler reading the
    // gates in the wrong order (lstm f, i, g, o; gru z, r, n) would compute with the right weights.
    const swapGates = (model: ModelConfig, params: Float64Array, layer: number, a: number, b: number) => {
      const out = params.slice();
      const l = paramLayout(model).layers[layer];
      for (const t of [l.weightIh, l.weightHh, l.biasIh, l.biasHh]) {
        const block = t.size / GATES[model.cell]; // H rows of one gate
        out.set(params.subarray(t.offset + b * block, t.offset + (b + 1) * block), t.offset + a * block);
        out.set(params.subarray(t.offset + a * block, t.offset + (a + 1) * block), t.offset + b * block);
      }
      return out;
    };
    for (const [model, a, b] of [
      [{ cell: 'lstm', vocabSize: 7, hiddenSize: 5, layers: 2 }, 0, 1],
      [{ cell: 'lstm', vocabSize: 7, hiddenSize: 5, layers: 2 }, 2, 3],
      [{ cell: 'gru', vocabSize: 7, hiddenSize: 5, layers: 2 }, 0, 1],
      [{ cell: 'gru', vocabSize: 7, hiddenSize: 5, layers: 2 }, 1, 2],
    ] as [ModelConfig, number, number][]) {
      const ref = randomModel(model, 3);
      expect(samplerVsReference(model, seq, ref).maxLogProbError).toBeLessThan(TOL);
      for (const layer of [0, 1]) {
        const wrong = { params: swapGates(model, ref.params, layer, a, b), start: ref.start };
        expect(samplerVsReference(model, seq, ref, wrong).maxLogProbError, `${model.cell} layer ${layer} gates ${a}<->${b}`).toBeGreaterThan(1e-3);
      }
      // Started from zeros, or with the two layers' start states exchanged.
      const H = model.hiddenSize;
      const swapLayers = (x: Float64Array) => Float64Array.from([...x.subarray(H), ...x.subarray(0, H)]);
      const zeros = { params: ref.params, start: { h: new Float64Array(2 * H), c: ref.start.c && new Float64Array(2 * H) } };
      const swapped = { params: ref.params, start: { h: swapLayers(ref.start.h as Float64Array), c: ref.start.c && swapLayers(ref.start.c as Float64Array) } };
      expect(samplerVsReference(model, seq, ref, zeros).maxLogProbError, `${model.cell} from zeros`).toBeGreaterThan(1e-3);
      expect(samplerVsReference(model, seq, ref, swapped).maxLogProbError, `${model.cell} start layers swapped`).toBeGreaterThan(1e-3);
    }
  });
});

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
