/** Text generation on the CPU: the twin of shaders/sample.wgsl, drawing the same uniforms. */
import type { ModelConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';
import type { FloatArray } from '../model/init.ts';
import { uniformAt } from '../util/random.ts';
import { outputLogits, rnnStep } from './rnn.ts';

export interface CpuSampleOptions {
  prime: Uint32Array;
  length: number;
  temperature: number;
  seed: number;
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

export function sampleTokens(config: ModelConfig, params: FloatArray, opts: CpuSampleOptions): Uint32Array {
  const { hiddenSize: H, vocabSize: V } = config;
  const layout = paramLayout(config);
  if (opts.prime.length < 1) throw new Error('sampling needs at least one priming token');
  const seq = new Uint32Array(opts.prime.length + opts.length);
  seq.set(opts.prime);
  let h = new Float64Array(H);
  let hNext = new Float64Array(H);
  const logits = new Float64Array(V);
  const weights = new Float64Array(V);
  const stream = opts.stream ?? 0;
  const temp = Math.max(opts.temperature, 1e-6);
  for (let k = 0; k + 1 < seq.length; k++) {
    rnnStep(params, layout, H, V, seq, k, 1, h, 0, hNext, 0);
    [h, hNext] = [hNext, h];
    if (k + 1 < opts.prime.length) continue;
    outputLogits(params, layout, H, V, h, 0, logits);
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
