/** Text generation on the CPU, for every cell and depth: the twin of shaders/sample.wgsl, drawing the same uniforms. */
import type { StreamSampleOptions } from '../model/backend.ts';
import { GATES, SAVED } from '../model/cells.ts';
import { fullModelConfig, type ModelConfig } from '../model/config.ts';
import { paramLayout, view, type FloatArray } from '../model/layout.ts';
import { uniformAt } from '../util/random.ts';
import { cellPointwise, gatePreactivations } from './cells.ts';
import { dot } from './rnn.ts';
import { layerTensors } from './stacked.ts';

export interface CpuSampleOptions extends StreamSampleOptions {
  stream?: number;
  /** Called with each step's distribution (parity tests). */
  onProbs?: (step: number, probs: Float64Array) => void;
}

/** Index drawn from unnormalised weights w by inverse CDF at u in [0, 1). */
export function drawIndex(w: ArrayLike<number>, u: number): number {
  let total = 0;
  for (let v = 0; v < w.length; v++) total += w[v];
  const goal = u * total;
  let acc = 0;
  let last = 0;
  for (let v = 0; v < w.length; v++) {
    if (w[v] <= 0) continue;
    last = v;
    acc += w[v];
    if (acc > goal) return v;
  }
  return last;
}

/**
 * One stream through every layer, in float64, no dropout (it is a training-time regulariser).
 * Step k feeds seq[k]; once the priming text is consumed it draws seq[k + 1].
 */
export function sampleTokens(config: ModelConfig, params: FloatArray, opts: CpuSampleOptions): Uint32Array {
  const shape = fullModelConfig(config);
  const { cell, hiddenSize: H, vocabSize: V, layers: L } = shape;
  const layout = paramLayout(shape);
  if (opts.prime.length < 1) throw new Error('sampling needs at least one priming token');
  const G = GATES[cell];
  const seq = new Uint32Array(opts.prime.length + opts.length);
  seq.set(opts.prime);
  const layers = Array.from({ length: L }, (_, l) => layerTensors(layout, l, params));
  // Per layer: state in, state out (swapped after each step), the cell's scratch.
  const h = Array.from({ length: L }, () => [new Float64Array(H), new Float64Array(H)]);
  const c = Array.from({ length: L }, () => [new Float64Array(H), new Float64Array(H)]);
  for (let l = 0; l < L && opts.start; l++) {
    for (let i = 0; i < H; i++) h[l][0][i] = opts.start.hidden[l * H + i];
    if (opts.start.cellState) for (let i = 0; i < H; i++) c[l][0][i] = opts.start.cellState[l * H + i];
  }
  const saved = new Float64Array(SAVED[cell] * H);
  const gi = new Float64Array(G * H), gh = new Float64Array(G * H);
  const wDec = view(params, layout.decoderWeight), bDec = view(params, layout.decoderBias);
  const logits = new Float64Array(V);
  const weights = new Float64Array(V);
  const stream = opts.stream ?? 0;
  const temp = Math.max(opts.temperature, 1e-6);
  for (let k = 0; k + 1 < seq.length; k++) {
    for (let l = 0; l < L; l++) {
      const input = l === 0 ? { tokens: seq.subarray(k, k + 1) } : { x: h[l - 1][0] };
      gatePreactivations(layers[l], G * H, H, input, 0, h[l][0], gi, gh);
      cellPointwise(cell, H, gi, gh, h[l][0], c[l][0], h[l][1], c[l][1], saved);
      h[l].reverse();
      c[l].reverse();
    }
    if (k + 1 < opts.prime.length) continue;
    const top = h[L - 1][0];
    for (let v = 0; v < V; v++) logits[v] = bDec[v] + dot(wDec, v * H, top, 0, H);
    let max = -Infinity;
    let arg = 0;
    for (let v = 0; v < V; v++) if (logits[v] > max) { max = logits[v]; arg = v; }
    for (let v = 0; v < V; v++) weights[v] = Math.exp((logits[v] - max) / temp);
    if (opts.onProbs) {
      const total = weights.reduce((a, b) => a + b, 0);
      opts.onProbs(k, weights.map((w) => w / total));
    }
    seq[k + 1] = opts.temperature <= 0 ? arg : drawIndex(weights, uniformAt(opts.seed, stream, k));
  }
  return seq.slice(opts.prime.length);
}
