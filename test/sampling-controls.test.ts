/**
 * The sampling controls on the CPU reference (src/cpu/sample.ts), which sample.wgsl is held to in
 * test/kernels.test.ts: top-k, top-p and the repetition penalty on hand-made logits (the kept set
 * is exactly what SamplingControls' definitions say, ties included), then whole samples: the
 * settings that must change nothing change nothing, and the ones that must reduce to argmax do.
 */
import { describe, expect, it } from 'vitest';
import { filteredWeights, penalizeRepeats, sampleTokens } from '../src/cpu/sample.ts';
import { samplingControlsError, type SamplingControls } from '../src/model/backend.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { paramLayout } from '../src/model/layout.ts';
import { Rng } from '../src/util/random.ts';

/** The tokens a filter keeps (non-zero weight), sorted. */
function kept(logits: number[], controls: SamplingControls, temperature = 1): number[] {
  const w = new Float64Array(logits.length);
  filteredWeights(logits, temperature, controls, w);
  return [...w.keys()].filter((v) => w[v] > 0);
}

/** Softmax of logits / temperature, in float64. */
function softmax(logits: number[], temperature = 1): number[] {
  const m = Math.max(...logits);
  const e = logits.map((z) => Math.exp((z - m) / temperature));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

describe('filteredWeights on hand-made logits', () => {
  // Token:        0    1    2    3    4    5
  const z = [1.0, 3.0, -2.0, 2.0, 3.0, 0.5];
  // By logit: {1, 4} tied at 3, then 3 (2), 0 (1), 5 (0.5), 2 (-2).

  it('top-k keeps the tokens whose logit is at least the k-th largest, ties with it included', () => {
    expect(kept(z, { topK: 1 })).toEqual([1, 4]); // the two tied at the top
    expect(kept(z, { topK: 2 })).toEqual([1, 4]);
    expect(kept(z, { topK: 3 })).toEqual([1, 3, 4]);
    expect(kept(z, { topK: 5 })).toEqual([0, 1, 3, 4, 5]);
    expect(kept(z, { topK: 6 })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(kept(z, { topK: 60 })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(kept(z, { topK: 0 })).toEqual([0, 1, 2, 3, 4, 5]); // 0: off
  });

  it('top-p keeps v when the more likely tokens hold less than p of the mass', () => {
    const p = softmax(z);
    const top = p[1] + p[4]; // the tied pair
    // Exactly at the edges: p up to the pair's mass keeps the pair; just above it adds token 3.
    expect(kept(z, { topP: 1e-9 })).toEqual([1, 4]);
    expect(kept(z, { topP: top * (1 - 1e-12) })).toEqual([1, 4]);
    expect(kept(z, { topP: top * (1 + 1e-12) })).toEqual([1, 3, 4]);
    expect(kept(z, { topP: (top + p[3]) * (1 - 1e-12) })).toEqual([1, 3, 4]);
    expect(kept(z, { topP: (top + p[3]) * (1 + 1e-12) })).toEqual([0, 1, 3, 4]);
    expect(kept(z, { topP: 1 })).toEqual([0, 1, 2, 3, 4, 5]);
    // The weights of the kept tokens are untouched: renormalised they are the softmax restricted to them.
    const w = new Float64Array(6);
    filteredWeights(z, 1, { topP: 0.9 }, w);
    const keptSet = [...w.keys()].filter((v) => w[v] > 0);
    const mass = keptSet.reduce((a, v) => a + p[v], 0);
    const total = w.reduce((a, b) => a + b, 0);
    for (const v of keptSet) expect(w[v] / total).toBeCloseTo(p[v] / mass, 14);
    expect(mass).toBeGreaterThanOrEqual(0.9);
    // ...and it is the smallest such set: without its least likely token it falls short.
    expect(mass - Math.min(...keptSet.map((v) => p[v]))).toBeLessThan(0.9);
  });

  it('top-p applies after the temperature (a colder softmax concentrates the mass)', () => {
    // At temperature 1 the pair holds 0.77 of the mass (with token 3, 0.91); at 0.25 over 0.99.
    expect(kept(z, { topP: 0.9 }, 1)).toEqual([1, 3, 4]);
    expect(kept(z, { topP: 0.9 }, 0.25)).toEqual([1, 4]);
  });

  it('top-p measures mass within what top-k kept (top-k first, then top-p renormalised)', () => {
    // Top-3 keeps {1, 3, 4}; the pair's share of that is p(1)+p(4) over p(1)+p(3)+p(4).
    const p = softmax(z);
    const share = (p[1] + p[4]) / (p[1] + p[3] + p[4]);
    expect(kept(z, { topK: 3, topP: share * (1 - 1e-12) })).toEqual([1, 4]);
    expect(kept(z, { topK: 3, topP: share * (1 + 1e-12) })).toEqual([1, 3, 4]);
    // Without top-k the same p keeps only the pair: share > the pair's unrestricted mass.
    expect(share).toBeGreaterThan(p[1] + p[4]);
  });

  it('returns the largest logit, and the weights are exp((z - max) / temperature)', () => {
    const w = new Float64Array(6);
    expect(filteredWeights(z, 0.5, undefined, w)).toBe(3);
    expect(Array.from(w)).toEqual(z.map((x) => Math.exp((x - 3) / 0.5)));
  });
});

describe('penalizeRepeats (CTRL, as Hugging Face applies it)', () => {
  it('divides positive logits and multiplies negative ones, once per distinct token', () => {
    const z = Float64Array.from([2, -1, 0.5, -3, 4]);
    penalizeRepeats(z, [1, 0, 1, 1, 3, 0], 2);
    expect(Array.from(z)).toEqual([1, -2, 0.5, -6, 4]);
  });

  it('a penalty below 1 favours repeats instead; 1 changes nothing', () => {
    const z = Float64Array.from([2, -1]);
    penalizeRepeats(z, [0, 1], 0.5);
    expect(Array.from(z)).toEqual([4, -0.5]);
    const y = Float64Array.from([2, -1]);
    penalizeRepeats(y, [0, 1], 1);
    expect(Array.from(y)).toEqual([2, -1]);
  });
});

describe('samplingControlsError', () => {
  it('refuses what the definitions do not cover, in one line', () => {
    expect(samplingControlsError({ topK: 5, topP: 0.9, repetitionPenalty: 1.3, repetitionWindow: 20 })).toBeUndefined();
    expect(samplingControlsError({ topP: 0 })).toMatch(/top-p must be in \(0, 1\]/);
    expect(samplingControlsError({ topP: 1.5 })).toMatch(/top-p/);
    expect(samplingControlsError({ topK: 2.5 })).toMatch(/top-k must be a positive integer/);
    expect(samplingControlsError({ repetitionPenalty: 0 })).toMatch(/greater than 0/);
    expect(samplingControlsError({ repetitionPenalty: -1 })).toMatch(/greater than 0/);
    expect(samplingControlsError({ repetitionWindow: -1 })).toMatch(/window/);
    expect(() => sampleTokens(models[0], randomParams(models[0], 1), { prime: new Uint32Array([0]), length: 2, temperature: 1, seed: 1, controls: { topP: 2 } })).toThrow(/top-p/);
  });
});

// Whole samples on random models with sharpened decoders (so that argmax and sampling differ).
const models: ModelConfig[] = [
  { cell: 'rnn', vocabSize: 17, hiddenSize: 9 },
  { cell: 'lstm', vocabSize: 11, hiddenSize: 6, layers: 2 },
  { cell: 'gru', vocabSize: 23, hiddenSize: 5 },
];

function randomParams(model: ModelConfig, seed: number): Float64Array {
  const layout = paramLayout(model);
  const rng = new Rng(seed);
  const params = new Float64Array(layout.length);
  for (const s of layout.slots) for (let i = 0; i < s.size; i++) params[s.offset + i] = rng.normal() * 0.8;
  return params;
}

describe('sampleTokens with the controls', () => {
  for (const [i, model] of models.entries()) {
    const params = randomParams(model, 70 + i);
    const V = model.vocabSize;
    const base = { prime: Uint32Array.from([0, 1 % V, 2 % V]), length: 200, temperature: 1, seed: 90 + i };
    const run = (controls?: SamplingControls, temperature = base.temperature, stream = 0) =>
      Array.from(sampleTokens(model, params, { ...base, temperature, controls, stream }));
    const plain = run();
    const argmax = run(undefined, 0);

    it(`${model.cell} V=${V}: top-k=1 and a tiny top-p equal argmax at any temperature`, () => {
      expect(new Set(plain).size).toBeGreaterThan(3); // plain sampling is not argmax here
      expect(plain).not.toEqual(argmax);
      for (const t of [0.5, 1, 3]) {
        expect(run({ topK: 1 }, t)).toEqual(argmax);
        expect(run({ topP: 1e-9 }, t)).toEqual(argmax);
      }
    });

    it(`${model.cell} V=${V}: top-p=1, top-k=V, top-k past V and penalty 1 equal plain sampling`, () => {
      expect(run({ topP: 1 })).toEqual(plain);
      expect(run({ topK: V })).toEqual(plain);
      expect(run({ topK: V + 5, topP: 1 })).toEqual(plain);
      expect(run({ repetitionPenalty: 1 })).toEqual(plain);
      expect(run({ repetitionPenalty: 1, repetitionWindow: 3 })).toEqual(plain);
    });

    it(`${model.cell} V=${V}: the filters and the penalty do what they say, step by step`, () => {
      const controls = { topK: 4, topP: 0.8, repetitionPenalty: 1.5, repetitionWindow: 5 };
      const tokens = run(controls);
      expect(tokens).not.toEqual(plain);
      // Every step's distribution: at most 4 tokens, the drawn one among them.
      const seqAll = [...base.prime, ...tokens];
      let step = 0;
      sampleTokens(model, params, {
        ...base, controls,
        onProbs: (k, p) => {
          const support = [...p.keys()].filter((v) => p[v] > 0);
          expect(support.length).toBeGreaterThanOrEqual(1);
          expect(support.length).toBeLessThanOrEqual(4);
          expect(support).toContain(seqAll[k + 1]);
          step++;
        },
      });
      expect(step).toBe(base.length);
      // A strong penalty over the last 5 tokens. With every logit negative (the decoder's bias
      // lowered by 100, which leaves the softmax as it was) a penalised logit, multiplied by 1e6,
      // loses to every other: no token repeats within 5. (With positive logits CTRL's division
      // only shrinks them towards 0, where an unpenalised negative logit may still trail.)
      const low = params.slice();
      const { decoderBias } = paramLayout(model);
      for (let v = 0; v < V; v++) low[decoderBias.offset + v] -= 100;
      const greedy = (controls: SamplingControls) => Array.from(sampleTokens(model, low, { ...base, temperature: 0, controls }));
      expect(greedy({})).toEqual(argmax);
      const all = [...base.prime, ...greedy({ repetitionPenalty: 1e6, repetitionWindow: 5 })];
      for (let j = base.prime.length; j < all.length; j++) {
        expect(all.slice(Math.max(0, j - 5), j), `token ${j}`).not.toContain(all[j]);
      }
      // The whole-sequence window (0): no repeat until every token has been used.
      const fresh = greedy({ repetitionPenalty: 1e6 }).slice(0, V - base.prime.length);
      expect(new Set([...base.prime, ...fresh]).size).toBe(V);
    });

    it(`${model.cell} V=${V}: streams draw their own uniforms (stream 0 is the default)`, () => {
      expect(run(undefined, 1, 0)).toEqual(plain);
      expect(run(undefined, 1, 1)).not.toEqual(plain);
    });
  }
});
