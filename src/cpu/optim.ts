/**
 * Clipping and the optimizers, over the flat parameter array (CPU twin of shaders/optimizer.wgsl).
 * Each gradient element is clipped to [-clip, clip] first (min-char-rnn's rule). The formulas and
 * where each optimizer keeps its state: src/model/optimizer.ts.
 */
import type { FloatArray } from '../model/layout.ts';
import { ADAGRAD_EPS, ADAM, optimizerHyper, RMSPROP, type OptimizerName, type OptimizerOptions } from '../model/optimizer.ts';

export interface OptimizerState {
  /** Adam: first moment. Adagrad: sum of squared gradients. SGD: momentum buffer. RMSprop: unused. */
  m: FloatArray;
  /** Adam: second moment. RMSprop: running mean of squared gradients. Adagrad, SGD: unused. */
  v: FloatArray;
  /** Updates applied so far (Adam's bias correction and the learning-rate schedule need it). */
  step: number;
}

export function newOptimizerState(length: number, Float: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array): OptimizerState {
  return { m: new Float(length), v: new Float(length), step: 0 };
}

/**
 * One update with learning rate `lr` (the schedule's rate for this step: the caller computes it
 * with learningRateAt). `opt` is an optimizer's name (its default hyperparameters) or its options.
 */
export function optimizerUpdate(
  opt: OptimizerName | OptimizerOptions, params: FloatArray, grads: FloatArray, state: OptimizerState, lr: number, clip: number,
): void {
  const o = typeof opt === 'string' ? { optimizer: opt } : opt;
  state.step += 1;
  const { m, v } = state;
  const clipped = (i: number) => Math.min(clip, Math.max(-clip, grads[i]));
  switch (o.optimizer) {
    case 'adagrad':
      for (let i = 0; i < params.length; i++) {
        const g = clipped(i);
        m[i] += g * g;
        params[i] -= (lr * g) / Math.sqrt(m[i] + ADAGRAD_EPS);
      }
      return;
    case 'rmsprop': {
      const { alpha } = optimizerHyper(o);
      for (let i = 0; i < params.length; i++) {
        const g = clipped(i);
        v[i] = alpha * v[i] + (1 - alpha) * g * g;
        params[i] -= (lr * g) / (Math.sqrt(v[i]) + RMSPROP.eps);
      }
      return;
    }
    case 'sgd': {
      const { momentum: mu, nesterov } = optimizerHyper(o);
      for (let i = 0; i < params.length; i++) {
        const g = clipped(i);
        m[i] = mu * m[i] + g;
        params[i] -= lr * (nesterov ? g + mu * m[i] : m[i]);
      }
      return;
    }
    case 'adam': {
      const { beta1, beta2, eps } = ADAM;
      const c1 = 1 - Math.pow(beta1, state.step);
      const c2 = 1 - Math.pow(beta2, state.step);
      for (let i = 0; i < params.length; i++) {
        const g = clipped(i);
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        params[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
      }
      return;
    }
    default:
      throw new Error(`unknown optimizer ${String(o.optimizer)}`);
  }
}
