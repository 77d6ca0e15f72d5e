/**
 * The dropout rule both backends follow bit for bit: an inverted-dropout mask drawn from a
 * counter-based generator, so the GPU regenerates exactly the CPU's mask without storing it.
 */
import type { FullModelConfig } from './config.ts';
import type { FloatArray, FloatArrayConstructor } from './layout.ts';
import { uniformAt } from '../util/random.ts';

/**
 * Seed of the dropout masks, derived from the run's seed so that a run is reproducible from one
 * number while the masks stay independent of the initialisation (Rng) and sampling streams.
 */
export function dropoutSeed(seed: number): number {
  return (seed ^ 0x5eed_d0d0) >>> 0;
}

/** Elements of a dropout mask: L sites (the output of each layer, as seen from above) x T x B x H. */
export function dropoutMaskLength(config: FullModelConfig, seqLength: number, batchSize: number): number {
  return config.layers * seqLength * batchSize * config.hiddenSize;
}

/**
 * The integer form of `u >= p` for u = j / 2^24 (a 24-bit hash j): keep iff j >= ceil(p * 2^24).
 * A GPU kernel compares integers, so both sides keep the same elements with no float rounding.
 */
export function dropoutKeepThreshold(p: number): number {
  return Math.ceil(p * 2 ** 24);
}

/**
 * The inverted-dropout mask for one training iteration, [L][T][B][H]: element
 *   m = ((s*T + t)*B + b)*H + k
 * multiplies unit k of layer s's output h^s_t of sequence b on its way up (into layer s+1, or into
 * the decoder for s = L-1). Each element is 0 or 1/(1-p):
 *
 *   u = uniformAt(seed, iteration, m)     (src/util/random.ts: 24-bit u = j / 2^24)
 *   keep  <=>  u >= p                     (so P(keep) = 1 - p, up to 2^-24)
 *
 * shaders/dropout.wgsl keeps j >= dropoutKeepThreshold(p), the same set; the kept value is 1/(1-p)
 * rounded to the array's type. `seed` is the run's dropout seed (not the sampler's), `iteration`
 * the training step (u32); m must stay below 2^32.
 */
export function dropoutMask(
  config: FullModelConfig, seqLength: number, batchSize: number, seed: number, iteration: number, Float: FloatArrayConstructor = Float32Array,
): FloatArray {
  const n = dropoutMaskLength(config, seqLength, batchSize);
  if (n > 2 ** 32) throw new Error('dropout mask has more than 2^32 elements');
  const p = config.dropout;
  const scale = 1 / (1 - p);
  const mask = new Float(n);
  for (let m = 0; m < n; m++) mask[m] = uniformAt(seed, iteration, m) >= p ? scale : 0;
  return mask;
}
