import { fullModelConfig, type ModelConfig } from './config.ts';
import { paramLayout, view, type FloatArray, type FloatArrayConstructor } from './layout.ts';
import { Rng } from '../util/random.ts';

/**
 * PyTorch's initialisation of nn.RNN / nn.LSTM / nn.GRU and nn.Linear(H, V): EVERY tensor,
 * biases included, uniform in [-1/sqrt(H), 1/sqrt(H)] (nn.Linear's bound is 1/sqrt(fan_in) =
 * 1/sqrt(H) too), drawn slot by slot in layout order from Rng(seed). Then, for the LSTM, the
 * forget gate's bias is set to 1 (Gers et al.; Jozefowicz et al. 2015): bias_ih's f block = 1 and
 * bias_hh's f block = 0, so the gate's total bias is exactly 1.
 */
export function initParams(model: ModelConfig, seed: number, Float: FloatArrayConstructor = Float32Array): FloatArray {
  const config = fullModelConfig(model);
  const layout = paramLayout(config);
  const H = config.hiddenSize;
  const params = new Float(layout.length);
  const rng = new Rng(seed);
  const k = 1 / Math.sqrt(H);
  for (const slot of layout.slots) {
    for (let i = 0; i < slot.size; i++) params[slot.offset + i] = (2 * rng.next() - 1) * k;
  }
  if (config.cell === 'lstm') {
    for (const s of layout.layers) {
      view(params, s.biasIh).fill(1, H, 2 * H);
      view(params, s.biasHh).fill(0, H, 2 * H);
    }
  }
  return params;
}
