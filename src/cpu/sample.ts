/** Text generation on the CPU, for every cell and depth: the twin of shaders/sample.wgsl, sample_decode.wgsl and sample_draw.wgsl, drawing the same uniforms. */
import { samplingControlsError, type SamplingControls, type StreamSampleOptions } from '../model/backend.ts';
import { GATES, SAVED } from '../model/cells.ts';
import { fullModelConfig, type ModelConfig } from '../model/config.ts';
import { paramLayout, view, type FloatArray } from '../model/layout.ts';
import { uniformAt } from '../util/random.ts';
import { cellPointwise, gatePreactivations } from './cells.ts';
import { dot } from './rnn.ts';
import { layerTensors } from './stacked.ts';

export interface CpuSampleOptions extends StreamSampleOptions {
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
 * CTRL's repetition penalty, in place: the logit of every distinct token among `recent` becomes
 * z / penalty when positive, z * penalty otherwise (once per token however often it occurs).
 */
export function penalizeRepeats(logits: Float64Array, recent: ArrayLike<number>, penalty: number): void {
  if (penalty === 1) return;
  const done = new Set<number>();
  for (let j = 0; j < recent.length; j++) {
    const v = recent[j];
    if (done.has(v)) continue;
    done.add(v);
    logits[v] = logits[v] > 0 ? logits[v] / penalty : logits[v] * penalty;
  }
}

/**
 * The weights one step draws from, proportional to its probabilities: exp((z - max) / temperature)
 * for the tokens top-k and top-p keep, 0 for the others (SamplingControls says which). By the
 * definitions, with no sorting order to break ties: top-k keeps v when fewer than k logits are
 * larger than z_v; top-p keeps v (among those) when the tokens with larger logits hold less than
 * p of the kept mass. `weights` receives them; the largest logit is returned.
 */
export function filteredWeights(logits: ArrayLike<number>, temperature: number, controls: SamplingControls | undefined, weights: Float64Array): number {
  const V = logits.length;
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[v]);
  const temp = Math.max(temperature, 1e-6);
  for (let v = 0; v < V; v++) weights[v] = Math.exp((logits[v] - max) / temp);
  const k = controls?.topK || V;
  const p = controls?.topP ?? 1;
  if (k >= V && p >= 1) return max;
  // Tokens by logit, largest first; equal logits form one group, kept or dropped together.
  const order = Array.from({ length: V }, (_, v) => v).sort((a, b) => logits[b] - logits[a]);
  let kept = 0; // order[0, kept) survive top-k
  while (kept < V && (kept < k || logits[order[kept]] === logits[order[kept - 1]])) kept++;
  let total = 0;
  for (let i = 0; i < kept; i++) total += weights[order[i]];
  let above = 0; // mass of the groups before the current one
  let cut = kept;
  for (let i = 0; i < kept;) {
    if (above >= p * total) { cut = i; break; }
    let j = i;
    while (j < kept && logits[order[j]] === logits[order[i]]) above += weights[order[j++]];
    i = j;
  }
  for (let i = cut; i < V; i++) weights[order[i]] = 0;
  return max;
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
  const controls = opts.controls;
  const bad = samplingControlsError(controls);
  if (bad) throw new Error(bad);
  const penalty = controls?.repetitionPenalty ?? 1;
  const window = controls?.repetitionWindow || Infinity;
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
    penalizeRepeats(logits, seq.subarray(Math.max(0, k + 1 - window), k + 1), penalty);
    filteredWeights(logits, opts.temperature, controls, weights);
    let arg = 0;
    for (let v = 1; v < V; v++) if (logits[v] > logits[arg]) arg = v;
    if (opts.onProbs) {
      const total = weights.reduce((a, b) => a + b, 0);
      opts.onProbs(k, weights.map((w) => w / total));
    }
    seq[k + 1] = opts.temperature <= 0 ? arg : drawIndex(weights, uniformAt(opts.seed, stream, k));
  }
  return seq.slice(opts.prime.length);
}
