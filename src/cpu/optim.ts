/**
 * Clipping and the optimizers, over the flat parameter array (CPU twin of shaders/optimizer.wgsl).
 * Each gradient element is clipped to [-clip, clip] first (min-char-rnn's rule).
 */
import type { FloatArray } from '../model/layout.ts';
import { ADAGRAD_EPS, ADAM, type OptimizerName } from '../model/optimizer.ts';

export interface OptimizerState {
  /** Adagrad: sum of squared gradients. Adam: first moment. */
  m: FloatArray;
  /** Adam: second moment (unused by Adagrad). */
  v: FloatArray;
  /** Updates applied so far (Adam's bias correction needs it). */
  step: number;
}

export function newOptimizerState(length: number, Float: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array): OptimizerState {
  return { m: new Float(length), v: new Float(length), step: 0 };
}

export function optimizerUpdate(
  name: OptimizerName, params: FloatArray, grads: FloatArray, state: OptimizerState, lr: number, clip: number,
): void {
  state.step += 1;
  const { m, v } = state;
  if (name === 'adagrad') {
    for (let i = 0; i < params.length; i++) {
      const g = Math.min(clip, Math.max(-clip, grads[i]));
      m[i] += g * g;
      params[i] -= (lr * g) / Math.sqrt(m[i] + ADAGRAD_EPS);
    }
    return;
  }
  const { beta1, beta2, eps } = ADAM;
  const c1 = 1 - Math.pow(beta1, state.step);
  const c2 = 1 - Math.pow(beta2, state.step);
  for (let i = 0; i < params.length; i++) {
    const g = Math.min(clip, Math.max(-clip, grads[i]));
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    params[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
  }
}
