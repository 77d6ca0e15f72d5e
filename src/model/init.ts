import type { ModelConfig } from './config.ts';
import { paramLayout } from './layout.ts';
import { Rng } from '../util/random.ts';

export type FloatArray = Float32Array | Float64Array;
export type FloatArrayConstructor = Float32ArrayConstructor | Float64ArrayConstructor;

/**
 * PyTorch's nn.RNN / nn.Linear initialisation: weights uniform in [-1/sqrt(H), 1/sqrt(H)]
 * (the scale that keeps tanh units out of saturation at any hidden size, where min-char-rnn's
 * fixed 0.01 vanishes for large H). Biases start at zero.
 */
export function initParams(config: ModelConfig, seed: number, Float: FloatArrayConstructor = Float32Array): FloatArray {
  const layout = paramLayout(config);
  const params = new Float(layout.length);
  const rng = new Rng(seed);
  const k = 1 / Math.sqrt(config.hiddenSize);
  for (const slot of layout.slots) {
    if (slot.shape.length < 2) continue;
    for (let i = 0; i < slot.size; i++) params[slot.offset + i] = (2 * rng.next() - 1) * k;
  }
  return params;
}
