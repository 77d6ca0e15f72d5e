/**
 * The CPU reference against central finite differences in float64: every parameter tensor and
 * the initial hidden state, on shapes that are not multiples of anything (B = 1, T = 1 included).
 * Tolerance: relative error 1e-6 per element, measured against max(|analytic|, |numeric|) with an
 * absolute floor of 1e-9 for elements whose gradient is zero or nearly so. With eps = 1e-5 the
 * truncation error is O(eps^2) ~ 1e-10 and the rounding error ~ 1e-16 / 1e-5 = 1e-11, far below.
 */
import { describe, expect, it } from 'vitest';
import { chunkLoss, forwardBackward } from '../src/cpu/rnn.ts';
import { paramLayout } from '../src/model/layout.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { Rng } from '../src/util/random.ts';

const shapes = [
  { V: 7, H: 5, T: 4, B: 3 },
  { V: 3, H: 1, T: 1, B: 1 },
  { V: 11, H: 9, T: 6, B: 1 },
  { V: 5, H: 13, T: 1, B: 2 },
  { V: 2, H: 3, T: 7, B: 5 },
];

function setup({ V, H, T, B }: (typeof shapes)[number], seed: number) {
  const model: ModelConfig = { cell: 'rnn', vocabSize: V, hiddenSize: H };
  const layout = paramLayout(model);
  const rng = new Rng(seed);
  const params = new Float64Array(layout.length);
  // Weights large enough that tanh is far from linear, so a wrong derivative cannot hide.
  for (const s of layout.slots) for (let i = 0; i < s.size; i++) params[s.offset + i] = rng.normal() * 0.6;
  const h0 = Float64Array.from({ length: B * H }, () => rng.next() - 0.5);
  const tokens = (n: number) => Uint32Array.from({ length: n }, () => Math.floor(rng.next() * V));
  const chunk = { inputs: tokens(T * B), targets: tokens(T * B), seqLength: T, batchSize: B };
  return { model, layout, params, h0, chunk };
}

function expectClose(analytic: number, numeric: number, what: string) {
  const err = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), 1e-9 / 1e-6);
  if (err > 1e-6) throw new Error(`${what}: analytic ${analytic} vs numeric ${numeric} (relative error ${err})`);
}

describe('CPU reference vs finite differences (float64)', () => {
  for (const [i, shape] of shapes.entries()) {
    it(`V=${shape.V} H=${shape.H} T=${shape.T} B=${shape.B}`, () => {
      const { model, layout, params, h0, chunk } = setup(shape, 100 + i);
      const { grads, dh0, loss } = forwardBackward(model, params, h0, chunk, Float64Array);
      expect(chunkLoss(model, params, h0, chunk, Float64Array).loss).toBeCloseTo(loss, 12);
      const eps = 1e-5;
      const numeric = (arr: Float64Array, k: number, f: () => number) => {
        const saved = arr[k];
        arr[k] = saved + eps;
        const up = f();
        arr[k] = saved - eps;
        const down = f();
        arr[k] = saved;
        return (up - down) / (2 * eps);
      };
      const f = () => chunkLoss(model, params, h0, chunk, Float64Array).loss;
      let checked = 0;
      for (const s of layout.slots) {
        for (let j = 0; j < s.size; j++) {
          expectClose(grads[s.offset + j], numeric(params, s.offset + j, f), `${s.name}[${j}]`);
          checked++;
        }
      }
      for (let j = 0; j < h0.length; j++) expectClose(dh0[j], numeric(h0, j, f), `h0[${j}]`);
      // Padding between tensors must stay exactly zero in the gradient.
      const inSlot = new Set(layout.slots.flatMap((s) => Array.from({ length: s.size }, (_, j) => s.offset + j)));
      for (let k = 0; k < layout.length; k++) if (!inSlot.has(k)) expect(grads[k]).toBe(0);
      expect(checked).toBe(layout.slots.reduce((a, s) => a + s.size, 0));
    });
  }

  it('detects a wrong gradient (the check can fail)', () => {
    const { model, layout, params, h0, chunk } = setup(shapes[0], 7);
    const { grads } = forwardBackward(model, params, h0, chunk, Float64Array);
    const k = layout.byName.Whh.offset + 3;
    const saved = params[k];
    params[k] = saved + 1e-5;
    const up = chunkLoss(model, params, h0, chunk, Float64Array).loss;
    params[k] = saved - 1e-5;
    const down = chunkLoss(model, params, h0, chunk, Float64Array).loss;
    params[k] = saved;
    expect(() => expectClose(grads[k] * 1.001, (up - down) / 2e-5, 'perturbed')).toThrow(/relative error/);
  });
});
