/**
 * The Backend interface that the CPU reference and the GPU implement, and the types it speaks:
 * what the engine, the CLI, the web page and the benchmarks see of a model.
 */
import { hasCellState } from './cells.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from './config.ts';

/** A chunk of training data: token ids in time-major layout (index t * batchSize + b). */
export interface TokenChunk {
  inputs: Uint32Array;
  targets: Uint32Array;
}

export interface SampleOptions {
  /** Tokens fed before generation starts; at least one (the last one predicts the first output). */
  prime: Uint32Array;
  /** Tokens to generate after the priming text. */
  length: number;
  /** Softmax temperature; 0 means argmax (greedy). */
  temperature: number;
  seed: number;
  /** Sampling controls (absent: off); see SamplingControls. */
  controls?: SamplingControls;
}

/**
 * What each step draws from, in this order (Hugging Face's logits processors and warpers; CTRL's
 * penalty): the repetition penalty on the logits, the temperature, then top-k, then top-p on
 * what top-k kept, renormalised. Temperature 0 takes the argmax of the penalised logits.
 */
export interface SamplingControls {
  /** Keep the tokens whose logit is at least the k-th largest (ties with it stay); 0 or absent: all. */
  topK?: number;
  /**
   * Nucleus: keep token v when the tokens more likely than v (after top-k) hold less than p of the
   * mass, i.e. the smallest most-likely set reaching p (ties at the edge stay); 1 or absent: all.
   */
  topP?: number;
  /**
   * CTRL's repetition penalty: the logit z of every distinct token among the last
   * `repetitionWindow` tokens of the sequence (priming text included) becomes z / penalty when
   * z > 0 and z * penalty otherwise; 1 or absent: none.
   */
  repetitionPenalty?: number;
  /** How many previous tokens the penalty looks at; 0 or absent: the whole sequence so far (Hugging Face's). */
  repetitionWindow?: number;
}

/** What the controls are, for a sample's header: ", top-k 40, top-p 0.9" (empty when none). */
export function describeSamplingControls(c: SamplingControls | undefined): string {
  if (!c) return '';
  const parts: string[] = [];
  if (c.topK) parts.push(`top-k ${c.topK}`);
  if (c.topP !== undefined && c.topP < 1) parts.push(`top-p ${c.topP}`);
  if (c.repetitionPenalty !== undefined && c.repetitionPenalty !== 1) {
    parts.push(`repetition penalty ${c.repetitionPenalty} over ${c.repetitionWindow ? `the last ${c.repetitionWindow} tokens` : 'the whole text'}`);
  }
  return parts.map((x) => `, ${x}`).join('');
}

/** One line describing what is wrong with the controls, or undefined (both backends and every shell check with it). */
export function samplingControlsError(c: SamplingControls | undefined): string | undefined {
  if (!c) return undefined;
  if (c.topK !== undefined && !(Number.isSafeInteger(c.topK) && c.topK >= 0)) return `top-k must be a positive integer (0: off), not ${c.topK}`;
  if (c.topP !== undefined && !(c.topP > 0 && c.topP <= 1)) return `top-p must be in (0, 1], not ${c.topP}`;
  if (c.repetitionPenalty !== undefined && !(c.repetitionPenalty > 0 && Number.isFinite(c.repetitionPenalty))) return `the repetition penalty must be a number greater than 0, not ${c.repetitionPenalty}`;
  if (c.repetitionWindow !== undefined && !(Number.isSafeInteger(c.repetitionWindow) && c.repetitionWindow >= 0)) return `the repetition window must be a non-negative integer, not ${c.repetitionWindow}`;
  return undefined;
}

export interface ModelState {
  params: Float32Array;
  /** Optimizer moments in the parameters' flat layout (Adagrad and SGD use only m; Adam and RMSprop also v). */
  optM: Float32Array;
  optV: Float32Array;
  optStep: number;
  /** Hidden state carried between chunks [layers * batchSize * hiddenSize], layer-major (PyTorch's h_0). */
  hidden: Float32Array;
  /** The LSTM's memory cells, same shape as `hidden`; absent for rnn and gru. */
  cellState?: Float32Array;
}

export interface GradientResult {
  loss: number;
  grads: Float32Array;
  /** [layers * batchSize * hiddenSize], like ModelState.hidden. */
  hLast: Float32Array;
  dh0: Float32Array;
  /** LSTM only: the memory cells after the chunk and the gradient with respect to the initial ones. */
  cLast?: Float32Array;
  dc0?: Float32Array;
}

/** What the CLI, the web page and the benchmarks see; the CPU reference and the GPU both implement it. */
export interface Backend {
  readonly kind: 'cpu' | 'gpu';
  /** Human-readable: the adapter's name, or the CPU reference. */
  readonly description: string;
  readonly model: ModelConfig;
  readonly train: TrainConfig;
  /**
   * Enqueues one iteration (forward, BPTT, clip, update) and returns once it is enqueued. The loss
   * arrives later, so the caller can keep the GPU busy instead of waiting on each readback.
   */
  trainStep(chunk: TokenChunk): Promise<{ loss: Promise<number> }>;
  /** Mean loss over the chunks, from a zero hidden state, without touching the training state. */
  evaluate(chunks: Iterable<TokenChunk>): Promise<number>;
  /**
   * Loss and gradients of one chunk from the current state, no update (parity tests). With dropout,
   * the mask is the one the next trainStep will use (iteration = the optimizer step count).
   */
  gradients(chunk: TokenChunk): Promise<GradientResult>;
  /**
   * Zeroes the carried state of the given streams (all of them when omitted: the data wrapped
   * around), in every layer. Ordered with the iterations around it.
   */
  resetState(streams?: readonly number[]): void;
  /**
   * Generates from the carried state of stream 0 (min-char-rnn's habit): a model trained with its
   * state carried between chunks has rarely seen a zero state, and from one its first characters
   * are often junk. A fresh or reset backend carries zeros.
   */
  sample(options: SampleOptions): Promise<Uint32Array>;
  /**
   * `count` independent samples side by side (one dispatch sequence on the GPU), all from the state
   * `sample` starts from; sample i draws the uniforms of stream i, so sample 0 is `sample`'s.
   */
  sampleMany(options: SampleOptions, count: number): Promise<Uint32Array[]>;
  exportState(): Promise<ModelState>;
  importState(state: ModelState): void;
  /** GPU work per training iteration (zero on the CPU). */
  readonly perStep: { dispatches: number; readbacks: number; submits: number };
  destroy(): void;
}

/** Sampling options for one stream from a given start state (a backend's sampler, or a fallback one). */
export interface StreamSampleOptions extends SampleOptions {
  /** The state to start from, [layers * H] each (zeros when absent). */
  start?: { hidden: ArrayLike<number>; cellState?: ArrayLike<number> };
  /** Which stream's uniforms to draw (uniformAt(seed, stream, step)); 0 when absent. */
  stream?: number;
}

/**
 * Samples on the host from a flat parameter array: what the GPU backend falls back to past its
 * sampler's limits. The engine passes the CPU reference's sampler in, so gpu/ never imports cpu/.
 */
export type HostSampler = (model: ModelConfig, params: Float32Array, options: StreamSampleOptions) => Uint32Array;

/** Throws a one-line error when a state does not fit this model (both backends call it). */
export function checkStateShape(model: ModelConfig, train: TrainConfig, paramCount: number, s: ModelState): void {
  const shape = fullModelConfig(model);
  if (s.params.length !== paramCount || s.optM.length !== paramCount || s.optV.length !== paramCount) {
    throw new Error(`state has ${s.params.length} parameters, this model has ${paramCount}`);
  }
  const n = shape.layers * train.batchSize * shape.hiddenSize;
  if (s.hidden.length !== n) throw new Error(`state has a hidden state of ${s.hidden.length} values, this model needs layers x batch x hidden = ${n}`);
  if (hasCellState(shape.cell) && s.cellState?.length !== n) throw new Error(`an lstm state needs its ${n} memory cells`);
}

/** A zero carried state for `batchSize` sequences: what a state needs when a checkpoint is reused at another batch size. */
export function zeroCarriedState(model: ModelConfig, batchSize: number): Pick<ModelState, 'hidden' | 'cellState'> {
  const n = (model.layers ?? 1) * batchSize * model.hiddenSize;
  return { hidden: new Float32Array(n), ...(model.cell === 'lstm' ? { cellState: new Float32Array(n) } : {}) };
}

/**
 * One stream's slice of a carried state [layers, batchSize, H] (layer-major, like PyTorch's h_0),
 * as [layers, 1, H]: what sampling starts from, or a checkpoint's state reused at batch size 1.
 */
export function streamState(model: ModelConfig, batchSize: number, s: Pick<ModelState, 'hidden' | 'cellState'>, stream = 0): Pick<ModelState, 'hidden' | 'cellState'> {
  const L = model.layers ?? 1, H = model.hiddenSize;
  const pick = (a: Float32Array) => {
    const out = new Float32Array(L * H);
    for (let l = 0; l < L; l++) out.set(a.subarray((l * batchSize + stream) * H, (l * batchSize + stream + 1) * H), l * H);
    return out;
  };
  return { hidden: pick(s.hidden), ...(model.cell === 'lstm' && s.cellState ? { cellState: pick(s.cellState) } : {}) };
}
