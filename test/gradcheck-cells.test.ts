/**
 * The stacked CPU reference (src/cpu/stacked.ts: rnn, lstm, gru, several layers, dropout) against
 * central finite differences in float64, for every parameter tensor and the initial states h0 and
 * c0, on shapes that are not multiples of anything (B = 1, T = 1 included). Tolerance:
 * relative error 1e-6 per element against max(|analytic|, |numeric|) with
 * an absolute floor of 1e-9; eps = 1e-5.
 * Set GRADCHECK_REPORT=1 to print the largest relative error of each case.
 */
import { describe, expect, it } from 'vitest';
import type { Chunk } from '../src/cpu/rnn.ts';
import { stackedForwardBackward, stackedLoss, type StackedState } from '../src/cpu/stacked.ts';
import { dropoutMask } from '../src/model/dropout.ts';
import { initParams } from '../src/model/init.ts';
import { paramLayout } from '../src/model/layout.ts';
import type { FullModelConfig } from '../src/model/config.ts';
import { uniformAt, Rng } from '../src/util/random.ts';

interface Case { cell: FullModelConfig['cell']; layers: number; V: number; H: number; T: number; B: number; dropout: number }

const cases: Case[] = [
  { cell: 'lstm', layers: 1, V: 7, H: 5, T: 4, B: 3, dropout: 0 },
  { cell: 'lstm', layers: 1, V: 3, H: 2, T: 1, B: 1, dropout: 0 },
  { cell: 'lstm', layers: 1, V: 4, H: 3, T: 3, B: 2, dropout: 0.3 },
  { cell: 'gru', layers: 1, V: 7, H: 5, T: 4, B: 3, dropout: 0 },
  { cell: 'gru', layers: 1, V: 4, H: 3, T: 1, B: 1, dropout: 0 },
  { cell: 'lstm', layers: 2, V: 5, H: 3, T: 5, B: 1, dropout: 0.3 },
  { cell: 'lstm', layers: 2, V: 6, H: 4, T: 3, B: 2, dropout: 0 },
  { cell: 'gru', layers: 3, V: 5, H: 3, T: 3, B: 2, dropout: 0.3 },
  { cell: 'gru', layers: 3, V: 3, H: 2, T: 1, B: 1, dropout: 0 },
  // One rnn layer: the vanilla RNN (the engine's default model), on the shapes its own check used.
  { cell: 'rnn', layers: 1, V: 7, H: 5, T: 4, B: 3, dropout: 0 },
  { cell: 'rnn', layers: 1, V: 3, H: 1, T: 1, B: 1, dropout: 0 },
  { cell: 'rnn', layers: 1, V: 11, H: 9, T: 6, B: 1, dropout: 0 },
  { cell: 'rnn', layers: 1, V: 2, H: 3, T: 7, B: 5, dropout: 0.2 },
  { cell: 'rnn', layers: 2, V: 7, H: 5, T: 4, B: 3, dropout: 0.3 },
  { cell: 'rnn', layers: 2, V: 2, H: 3, T: 1, B: 1, dropout: 0 },
];

const name = (c: Case) => `${c.cell} L=${c.layers} V=${c.V} H=${c.H} T=${c.T} B=${c.B} dropout=${c.dropout}`;

function setup(c: Case, seed: number) {
  const config: FullModelConfig = { cell: c.cell, vocabSize: c.V, hiddenSize: c.H, layers: c.layers, dropout: c.dropout };
  const layout = paramLayout(config);
  const rng = new Rng(seed);
  const params = new Float64Array(layout.length);
  // Weights large enough that the nonlinearities are far from linear, so a wrong derivative cannot hide.
  for (const s of layout.slots) for (let i = 0; i < s.size; i++) params[s.offset + i] = rng.normal() * 0.6;
  const n = c.layers * c.B * c.H;
  const state0: StackedState = {
    h: Float64Array.from({ length: n }, () => rng.next() - 0.5),
    c: c.cell === 'lstm' ? Float64Array.from({ length: n }, () => 2 * rng.next() - 1) : null,
  };
  const tokens = (k: number) => Uint32Array.from({ length: k }, () => Math.floor(rng.next() * c.V));
  const chunk: Chunk = { inputs: tokens(c.T * c.B), targets: tokens(c.T * c.B), seqLength: c.T, batchSize: c.B };
  const mask = c.dropout > 0 ? dropoutMask(config, c.T, c.B, seed, 3, Float64Array) : null;
  return { config, layout, params, state0, chunk, mask };
}

/** Relative error against max(|analytic|, |numeric|, 1e-3), i.e. 1e-6 with an absolute floor of 1e-9; throws above 1e-6, returns it otherwise. */
function expectClose(analytic: number, numeric: number, what: string): number {
  const err = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), 1e-9 / 1e-6);
  if (err > 1e-6) throw new Error(`${what}: analytic ${analytic} vs numeric ${numeric} (relative error ${err})`);
  return err;
}

const eps = 1e-5;
function numeric(arr: Float64Array, k: number, f: () => number): number {
  const saved = arr[k];
  arr[k] = saved + eps;
  const up = f();
  arr[k] = saved - eps;
  const down = f();
  arr[k] = saved;
  return (up - down) / (2 * eps);
}

describe('stacked CPU reference vs finite differences (float64)', () => {
  for (const [i, c] of cases.entries()) {
    it(name(c), () => {
      const { config, layout, params, state0, chunk, mask } = setup(c, 200 + i);
      if (mask) {
        // The fixed mask must actually drop some units and keep others at 1/(1-p).
        expect(mask.some((m) => m === 0)).toBe(true);
        expect(mask.some((m) => m === 1 / (1 - c.dropout))).toBe(true);
      }
      const r = stackedForwardBackward(config, params, state0, chunk, mask, Float64Array);
      const fwd = stackedLoss(config, params, state0, chunk, mask, Float64Array);
      expect(fwd.loss).toBe(r.loss);
      expect(fwd.hLast).toEqual(r.hLast);
      expect(fwd.cLast).toEqual(r.cLast);
      expect(r.cLast === null).toBe(c.cell !== 'lstm');
      expect(r.dc0 === null).toBe(c.cell !== 'lstm');

      const f = () => stackedLoss(config, params, state0, chunk, mask, Float64Array).loss;
      let maxErr = 0;
      let checked = 0;
      for (const s of layout.slots) {
        for (let j = 0; j < s.size; j++) {
          maxErr = Math.max(maxErr, expectClose(r.grads[s.offset + j], numeric(params, s.offset + j, f), `${s.name}[${j}]`));
          checked++;
        }
      }
      const h0 = state0.h as Float64Array;
      for (let j = 0; j < h0.length; j++) maxErr = Math.max(maxErr, expectClose(r.dh0[j], numeric(h0, j, f), `h0[${j}]`));
      if (state0.c) {
        const c0 = state0.c as Float64Array;
        for (let j = 0; j < c0.length; j++) maxErr = Math.max(maxErr, expectClose(r.dc0![j], numeric(c0, j, f), `c0[${j}]`));
      }
      // Every tensor is covered, and the padding between tensors stays exactly zero in the gradient.
      const inSlot = new Set(layout.slots.flatMap((s) => Array.from({ length: s.size }, (_, j) => s.offset + j)));
      for (let k = 0; k < layout.length; k++) if (!inSlot.has(k)) expect(r.grads[k]).toBe(0);
      expect(checked).toBe(inSlot.size);
      expect(layout.slots.every((s) => s.offset % 64 === 0)).toBe(true);
      if (process.env.GRADCHECK_REPORT) console.log(`${name(c)}: ${checked} params, max relative error ${maxErr.toExponential(2)}`);
    });
  }

  it('detects a wrong gradient (the check can fail)', () => {
    const { config, layout, params, state0, chunk, mask } = setup(cases.find((c) => c.layers === 2 && c.dropout > 0)!, 7);
    const { grads } = stackedForwardBackward(config, params, state0, chunk, mask, Float64Array);
    const k = layout.byName['rnn.weight_hh_l1'].offset + 3;
    const num = numeric(params, k, () => stackedLoss(config, params, state0, chunk, mask, Float64Array).loss);
    expect(() => expectClose(grads[k], num, 'unperturbed')).not.toThrow();
    expect(() => expectClose(grads[k] * 1.001, num, 'perturbed')).toThrow(/relative error/);
  });
});

describe('stacked CPU reference: layout, initialisation, dropout mask', () => {
  it('uses PyTorch names, shapes and 64-aligned offsets', () => {
    const layout = paramLayout({ cell: 'lstm', vocabSize: 10, hiddenSize: 6, layers: 2, dropout: 0 });
    expect(layout.slots.map((s) => [s.name, s.shape, s.offset])).toEqual([
      ['rnn.weight_ih_l0', [24, 10], 0],
      ['rnn.weight_hh_l0', [24, 6], 256],
      ['rnn.bias_ih_l0', [24], 448],
      ['rnn.bias_hh_l0', [24], 512],
      ['rnn.weight_ih_l1', [24, 6], 576],
      ['rnn.weight_hh_l1', [24, 6], 768],
      ['rnn.bias_ih_l1', [24], 960],
      ['rnn.bias_hh_l1', [24], 1024],
      ['decoder.weight', [10, 6], 1088],
      ['decoder.bias', [10], 1152],
    ]);
    expect(layout.length).toBe(1216);
    const gru = paramLayout({ cell: 'gru', vocabSize: 10, hiddenSize: 6, layers: 3, dropout: 0 });
    expect(gru.byName['rnn.weight_ih_l2'].shape).toEqual([18, 6]);
    expect(() => paramLayout({ cell: 'gru', vocabSize: 10, hiddenSize: 6, layers: 0, dropout: 0 })).toThrow(/layers/);
    expect(() => paramLayout({ cell: 'gru', vocabSize: 10, hiddenSize: 6, layers: 1, dropout: 1 })).toThrow(/dropout/);
  });

  it('initialises within PyTorch\'s bound 1/sqrt(H), the LSTM forget-gate bias at 1 (b_ih) and 0 (b_hh), padding zero, deterministic in the seed', () => {
    const H = 16;
    const config: FullModelConfig = { cell: 'lstm', vocabSize: 9, hiddenSize: H, layers: 2, dropout: 0.2 };
    const layout = paramLayout(config);
    const params = initParams(config, 5, Float64Array);
    const k = 1 / Math.sqrt(H);
    for (const s of layout.slots) {
      const v = params.subarray(s.offset, s.offset + s.size);
      if (s.name.startsWith('rnn.bias_')) continue;
      expect(v.every((x) => Math.abs(x) <= k)).toBe(true);
      expect(v.some((x) => x !== 0)).toBe(true);
    }
    for (const l of layout.layers) {
      const bih = params.subarray(l.biasIh.offset, l.biasIh.offset + 4 * H);
      const bhh = params.subarray(l.biasHh.offset, l.biasHh.offset + 4 * H);
      for (let j = 0; j < 4 * H; j++) {
        const forget = j >= H && j < 2 * H;
        if (forget) {
          expect(bih[j]).toBe(1);
          expect(bhh[j]).toBe(0);
        } else {
          expect(Math.abs(bih[j])).toBeLessThanOrEqual(k);
          expect(Math.abs(bhh[j])).toBeLessThanOrEqual(k);
        }
      }
    }
    // Padding zero; deterministic in the seed; the GRU has no forget gate to set.
    const inSlot = new Set(layout.slots.flatMap((s) => Array.from({ length: s.size }, (_, j) => s.offset + j)));
    for (let i = 0; i < layout.length; i++) if (!inSlot.has(i)) expect(params[i]).toBe(0);
    expect(initParams(config, 5, Float64Array)).toEqual(params);
    const gru = initParams({ ...config, cell: 'gru' }, 5, Float64Array);
    const gl = paramLayout({ ...config, cell: 'gru' });
    expect(gru.subarray(gl.layers[0].biasIh.offset, gl.layers[0].biasIh.offset + 3 * H).some((x) => x === 1)).toBe(false);
  });

  it('generates the dropout mask from uniformAt(seed, iteration, element)', () => {
    const config: FullModelConfig = { cell: 'gru', vocabSize: 5, hiddenSize: 8, layers: 2, dropout: 0.3 };
    const T = 16, B = 4, H = 8;
    const mask = dropoutMask(config, T, B, 42, 9, Float64Array);
    expect(mask.length).toBe(2 * T * B * H);
    let kept = 0;
    for (let s = 0; s < 2; s++) for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) for (let k = 0; k < H; k++) {
      const m = ((s * T + t) * B + b) * H + k;
      const keep = uniformAt(42, 9, m) >= 0.3;
      expect(mask[m]).toBe(keep ? 1 / 0.7 : 0);
      // The integer form of the rule, for a GPU twin: keep <=> (24-bit draw) >= ceil(p * 2^24).
      expect(uniformAt(42, 9, m) * 2 ** 24 >= Math.ceil(0.3 * 2 ** 24)).toBe(keep);
      kept += keep ? 1 : 0;
    }
    expect(kept / mask.length).toBeGreaterThan(0.6);
    expect(kept / mask.length).toBeLessThan(0.8);
    expect(dropoutMask(config, T, B, 42, 10, Float64Array)).not.toEqual(mask);
    // The mask is an input: with p > 0 and no mask, forward is evaluation (no dropout, no scaling).
    const params = initParams(config, 1, Float64Array);
    const chunk: Chunk = { inputs: new Uint32Array(T * B), targets: new Uint32Array(T * B).fill(1), seqLength: T, batchSize: B };
    const state0 = { h: new Float64Array(2 * B * H), c: null };
    const ones = new Float64Array(mask.length).fill(1);
    expect(stackedLoss(config, params, state0, chunk, null, Float64Array).loss).toBe(stackedLoss(config, params, state0, chunk, ones, Float64Array).loss);
    expect(stackedLoss(config, params, state0, chunk, mask, Float64Array).loss).not.toBe(stackedLoss(config, params, state0, chunk, null, Float64Array).loss);
  });

  it('keeps the GRU b_hn apart from b_in (it sits inside r*); the other biases get equal gradients', () => {
    for (const [i, c] of cases.entries()) {
      if (c.cell === 'rnn') continue;
      const { config, layout, params, state0, chunk, mask } = setup(c, 200 + i);
      const { grads } = stackedForwardBackward(config, params, state0, chunk, mask, Float64Array);
      const G = c.cell === 'lstm' ? 4 : 3, H = c.H;
      for (const l of layout.layers) {
        const dbi = grads.subarray(l.biasIh.offset, l.biasIh.offset + G * H);
        const dbh = grads.subarray(l.biasHh.offset, l.biasHh.offset + G * H);
        const shared = c.cell === 'lstm' ? G * H : 2 * H; // gru: r and z blocks only
        expect(dbh.subarray(0, shared)).toEqual(dbi.subarray(0, shared));
        if (c.cell === 'gru') expect(dbh.subarray(2 * H)).not.toEqual(dbi.subarray(2 * H));
      }
    }
  });

  it('carries the state across chunks: two chunks equal one long chunk', () => {
    for (const cell of ['rnn', 'lstm', 'gru'] as const) {
      const config: FullModelConfig = { cell, vocabSize: 6, hiddenSize: 4, layers: 2, dropout: 0 };
      const params = initParams(config, 3, Float64Array);
      const B = 2, T = 6;
      const rng = new Rng(4);
      const tok = (k: number) => Uint32Array.from({ length: k }, () => Math.floor(rng.next() * 6));
      const inputs = tok(T * B), targets = tok(T * B);
      const whole = stackedLoss(config, params, { h: new Float64Array(2 * B * 4), c: cell === 'lstm' ? new Float64Array(2 * B * 4) : null }, { inputs, targets, seqLength: T, batchSize: B }, null, Float64Array);
      const half = (from: number, s: StackedState) => stackedLoss(config, params, s, {
        inputs: inputs.subarray(from * B, (from + 3) * B), targets: targets.subarray(from * B, (from + 3) * B), seqLength: 3, batchSize: B,
      }, null, Float64Array);
      const a = half(0, { h: new Float64Array(2 * B * 4), c: cell === 'lstm' ? new Float64Array(2 * B * 4) : null });
      const b = half(3, { h: a.hLast, c: a.cLast });
      expect((a.loss + b.loss) / 2).toBeCloseTo(whole.loss, 12);
      expect(b.hLast).toEqual(whole.hLast);
      expect(b.cLast).toEqual(whole.cLast);
    }
  });
});
