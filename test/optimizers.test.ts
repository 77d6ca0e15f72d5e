/**
 * The CPU reference's optimizers against hand computations of PyTorch's formulas in float64
 * (torch.optim.RMSprop, torch.optim.SGD with momentum and Nesterov, Adam, min-char-rnn's Adagrad),
 * and the learning-rate schedule at its boundaries, against char-rnn's own loop for the step decay.
 * Tolerance: 1e-15 relative (the same f64 operations in possibly another order) unless stated.
 */
import { describe, expect, it } from 'vitest';
import { newOptimizerState, optimizerUpdate } from '../src/cpu/optim.ts';
import {
  ADAM, describeOptimizer, learningRateAt, optimizerProblem, RMSPROP, SGD, type LrSchedule, type OptimizerOptions,
} from '../src/model/optimizer.ts';

/** Runs the reference over scalar gradients `gs` from parameter p0, in float64; returns each step's parameter and state. */
function run(opt: OptimizerOptions, p0: number, gs: number[], lr: number | ((step: number) => number), clip = 5) {
  const params = Float64Array.of(p0);
  const state = newOptimizerState(1, Float64Array);
  return gs.map((g, k) => {
    optimizerUpdate(opt, params, Float64Array.of(g), state, typeof lr === 'number' ? lr : lr(k + 1), clip);
    return { p: params[0], m: state.m[0], v: state.v[0], step: state.step };
  });
}

const close = (got: number, want: number, rel = 1e-15) => expect(Math.abs(got - want)).toBeLessThanOrEqual(rel * Math.abs(want) + 1e-300);

describe('RMSprop (torch.optim.RMSprop: s = a*s + (1-a)*g^2; p -= lr*g/(sqrt(s) + eps))', () => {
  it('three steps with char-rnn\'s alpha 0.95 by default, and a given alpha', () => {
    const gs = [0.5, -2, 7]; // the third beyond the clip 5
    for (const [opt, a] of [[{ optimizer: 'rmsprop' }, RMSPROP.alpha], [{ optimizer: 'rmsprop', rmsDecay: 0.6 }, 0.6]] as const) {
      const out = run(opt, 1, gs, 0.01);
      let s = 0, p = 1;
      gs.forEach((g0, k) => {
        const g = Math.max(-5, Math.min(5, g0));
        s = a * s + (1 - a) * g * g;
        p -= 0.01 * g / (Math.sqrt(s) + 1e-8);
        close(out[k].v, s);
        close(out[k].p, p);
        expect(out[k].m).toBe(0);
      });
    }
    expect(RMSPROP).toEqual({ alpha: 0.95, eps: 1e-8 });
  });

  it('eps sits outside the square root, as PyTorch (not inside, as Adagrad here)', () => {
    // g = 1e-8: s = 0.05e-16, sqrt(s) = 2.24e-9; outside: lr*g/(2.24e-9 + 1e-8) = 0.82 lr; inside: lr*g/sqrt(s + 1e-8) = 1e-4 lr.
    const [{ p }] = run({ optimizer: 'rmsprop' }, 0, [1e-8], 1);
    close(-p, 1e-8 / (Math.sqrt(0.05 * 1e-16) + 1e-8), 1e-12);
    expect(-p).toBeGreaterThan(0.8);
  });
});

describe('SGD (torch.optim.SGD, dampening 0: buf = mu*buf + g; step = nesterov ? g + mu*buf : buf)', () => {
  const gs = [1, -0.25, 3, 9];
  it('momentum 0.9 by default: buf starts as g, as PyTorch\'s clone of the first gradient', () => {
    const out = run({ optimizer: 'sgd' }, 2, gs, 0.1);
    expect(SGD.momentum).toBe(0.9);
    let buf = 0, p = 2;
    gs.forEach((g0, k) => {
      const g = Math.max(-5, Math.min(5, g0));
      buf = k === 0 ? g : 0.9 * buf + g;
      p -= 0.1 * buf;
      close(out[k].m, buf);
      close(out[k].p, p);
      expect(out[k].v).toBe(0);
    });
    expect(out[0].m).toBe(1);
  });

  it('Nesterov: p -= lr * (g + mu * buf), written out for the first two steps', () => {
    const mu = 0.5, lr = 0.1;
    const out = run({ optimizer: 'sgd', momentum: mu, nesterov: true }, 2, [1, -0.25], lr);
    // Step 1: buf = 1, step = 1 + 0.5*1 = 1.5. Step 2: buf = 0.5 - 0.25 = 0.25, step = -0.25 + 0.125 = -0.125.
    close(out[0].p, 2 - 0.15);
    close(out[1].m, 0.25);
    close(out[1].p, 2 - 0.15 + 0.0125);
  });

  it('momentum 0 is plain SGD: p -= lr * clip(g)', () => {
    const out = run({ optimizer: 'sgd', momentum: 0 }, 2, gs, 0.1);
    let p = 2;
    gs.forEach((g, k) => {
      p -= 0.1 * Math.max(-5, Math.min(5, g));
      close(out[k].p, p);
    });
  });
});

describe('Adam and Adagrad, the same way', () => {
  it('Adam: bias-corrected moments, eps outside the square root', () => {
    const gs = [0.3, -1, 6];
    const out = run({ optimizer: 'adam' }, 0, gs, 0.01);
    const { beta1: b1, beta2: b2, eps } = ADAM;
    let m = 0, v = 0, p = 0;
    gs.forEach((g0, k) => {
      const g = Math.min(5, g0);
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      p -= 0.01 * (m / (1 - b1 ** (k + 1))) / (Math.sqrt(v / (1 - b2 ** (k + 1))) + eps);
      close(out[k].p, p, 1e-14);
    });
  });

  it('Adagrad: mem += g^2; p -= lr*g/sqrt(mem + eps) (min-char-rnn)', () => {
    const out = run({ optimizer: 'adagrad' }, 0, [2, -1], 0.1);
    close(out[0].p, -0.1 * 2 / Math.sqrt(4 + 1e-8));
    close(out[1].p, out[0].p + 0.1 / Math.sqrt(5 + 1e-8));
  });
});

describe('learningRateAt', () => {
  it('none (or absent) is the base rate', () => {
    for (const step of [1, 2, 1e6]) {
      expect(learningRateAt(0.1, undefined, step)).toBe(0.1);
      expect(learningRateAt(0.1, { kind: 'none' }, step)).toBe(0.1);
    }
  });

  it('step: the base rate through update `after`, one decay from after + 1, two from after + every + 1', () => {
    const s: LrSchedule = { kind: 'step', decay: 0.5, every: 3, after: 10 };
    const at = (step: number) => learningRateAt(0.8, s, step);
    expect([1, 10, 11, 13, 14, 16, 17].map(at)).toEqual([0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1]);
  });

  it('step with after = 0: the first decay after `every` updates (none at the start)', () => {
    const s: LrSchedule = { kind: 'step', decay: 0.5, every: 4, after: 0 };
    expect([1, 4, 5, 8, 9].map((k) => learningRateAt(1, s, k))).toEqual([1, 1, 0.5, 0.5, 0.25]);
  });

  it('step reproduces char-rnn\'s loop (lr *= decay after iteration i when i % ntrain == 0 and i / ntrain >= decay_after)', () => {
    const ntrain = 7, decayAfter = 10, decay = 0.97;
    const s: LrSchedule = { kind: 'step', decay, every: ntrain, after: decayAfter * ntrain };
    let lr = 2e-3;
    for (let i = 1; i <= 15 * ntrain; i++) {
      close(learningRateAt(2e-3, s, i), lr, 1e-14); // char-rnn multiplies repeatedly; we take a power
      if (i % ntrain === 0 && i / ntrain >= decayAfter) lr *= decay;
    }
    expect(lr).toBeLessThan(2e-3 * 0.97 ** 5);
  });

  it('cosine: the base rate at update 1, halfway at the middle, the floor at the end and after', () => {
    const s: LrSchedule = { kind: 'cosine', min: 0.1, iterations: 100 };
    expect(learningRateAt(1, s, 1)).toBe(1);
    close(learningRateAt(1, s, 51), 0.55, 1e-15);
    close(learningRateAt(1, s, 26), 0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4)), 1e-15);
    close(learningRateAt(1, s, 101), 0.1, 1e-15);
    expect(learningRateAt(1, s, 5000)).toBe(learningRateAt(1, s, 101));
    // Falls monotonically.
    for (let k = 1; k < 101; k++) expect(learningRateAt(1, s, k + 1)).toBeLessThan(learningRateAt(1, s, k));
  });
});

describe('optimizerProblem: settings a checkpoint, the page or the CLI may hold', () => {
  const base = { learningRate: 0.01 };
  it.each([
    [{ optimizer: 'adam' }, undefined],
    [{ optimizer: 'sgd', momentum: 0.9, nesterov: true }, undefined],
    [{ optimizer: 'rmsprop', rmsDecay: 0.95, lrSchedule: { kind: 'step', decay: 0.97, every: 5, after: 0 } }, undefined],
    [{ optimizer: 'adam', lrSchedule: { kind: 'cosine', min: 0, iterations: 10 } }, undefined],
    [{ optimizer: 'lion' }, /optimizer "lion"/],
    [{ optimizer: 'sgd', momentum: 1 }, /momentum 1 /],
    [{ optimizer: 'sgd', momentum: -0.1 }, /momentum/],
    [{ optimizer: 'sgd', momentum: 0, nesterov: true }, /Nesterov/],
    [{ optimizer: 'sgd', nesterov: 'yes' }, /nesterov/],
    [{ optimizer: 'rmsprop', rmsDecay: 1 }, /RMSprop decay/],
    [{ optimizer: 'rmsprop', rmsDecay: null }, /RMSprop decay/],
    [{ optimizer: 'adam', lrSchedule: { kind: 'step', decay: 0, every: 5, after: 0 } }, /decay/],
    [{ optimizer: 'adam', lrSchedule: { kind: 'step', decay: 0.5, every: 0, after: 0 } }, /every/],
    [{ optimizer: 'adam', lrSchedule: { kind: 'step', decay: 0.5, every: 1.5, after: 0 } }, /every/],
    [{ optimizer: 'adam', lrSchedule: { kind: 'cosine', min: 0.02, iterations: 10 } }, /floor/],
    [{ optimizer: 'adam', lrSchedule: { kind: 'cosine', min: 0, iterations: 0 } }, /length/],
    [{ optimizer: 'adam', lrSchedule: { kind: 'linear' } }, /schedule/],
    [{ optimizer: 'adam', lrSchedule: null }, /schedule/],
  ])('%j', (o, want) => {
    const got = optimizerProblem({ ...base, ...(o as OptimizerOptions) });
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(want);
  });

  it('describeOptimizer says what runs', () => {
    expect(describeOptimizer({ optimizer: 'sgd', momentum: 0.9, nesterov: true, learningRate: 0.1 })).toBe('SGD (Nesterov momentum 0.9) lr 0.1');
    expect(describeOptimizer({ optimizer: 'rmsprop', learningRate: 2e-3, lrSchedule: { kind: 'step', decay: 0.97, every: 7, after: 70 } }))
      .toBe('RMSprop (alpha 0.95) lr 0.002, step decay x0.97 every 7 updates after 70');
  });
});
