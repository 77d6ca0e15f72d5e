/**
 * A trained model as one safetensors file: parameters under PyTorch's names (an nn.RNN, nn.LSTM
 * or nn.GRU called `rnn`, with num_layers = layers, plus an nn.Linear called `decoder` load them
 * with load_state_dict; gate order i,f,g,o and r,z,n as PyTorch's), optimizer moments and the
 * carried state under `optimizer.*` / `state.*` (state.hidden and, for the LSTM, state.cell, both
 * [layers, batch, hidden] like PyTorch's h_0 / c_0), and the configuration (cell, layers,
 * dropout), vocabulary and training progress as JSON strings in the metadata. Browser-safe.
 *
 * Checkpoints from before gated cells and stacking (no `layers` in the model, state.hidden
 * [batch, hidden], no optimizer moments for rnn.bias_hh_l0) still load: they are one rnn layer
 * whose bias_hh_l0 was stored as zeros.
 *
 * Tensors stored as F16, BF16 or F64 (written by examples/pytorch_to_checkpoint.py, or any
 * PyTorch save) load converted to F32, then face the same checks as F32 ones.
 */
import { describeConversions } from './dtypes.ts';
import { CheckpointError, decodeSafetensors, encodeSafetensors, type Tensor } from './safetensors.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { CELL_TYPES, GATES, type CellType } from '../model/cells.ts';
import { paramLayout } from '../model/layout.ts';
import { optimizerProblem } from '../model/optimizer.ts';
import type { ModelState } from '../model/backend.ts';
import type { StreamState } from '../data/split.ts';
import { CHARSETS, DEFAULT_CHARSET, isCharset, type Charset } from '../data/text.ts';
import { tokenizerFromJSON, type Tokenizer, type TokenizerJSON } from '../data/tokenizer.ts';

export const CHECKPOINT_FORMAT = 'webgpu-rnn/1';

/** Where training stands: what a resumed run needs to continue exactly (src/engine/trainer.ts). */
export interface TrainerProgress {
  iteration: number;
  stream: StreamState;
}

export interface CheckpointData {
  model: ModelConfig;
  train: TrainConfig;
  tokenizer: TokenizerJSON;
  state: ModelState;
  progress: TrainerProgress & {
    seed: number;
    /** Where the text came from and how it was prepared, so `--resume` rebuilds the same ids. */
    corpus: string;
    lowercase: boolean;
    /** Which characters the text kept (src/data/text.ts); absent in older files, which mean `clean`. */
    charset?: Charset;
    trainLoss?: number;
    valLoss?: number;
    /** Seconds of training so far (across resumes). */
    elapsed?: number;
  };
}

export function encodeCheckpoint(c: CheckpointData): Uint8Array {
  const layout = paramLayout(c.model);
  const tensors: Record<string, Tensor> = {};
  for (const s of layout.slots) {
    const slice = (a: Float32Array) => a.slice(s.offset, s.offset + s.size);
    tensors[s.name] = { shape: s.shape, data: slice(c.state.params) };
    tensors[`optimizer.m.${s.name}`] = { shape: s.shape, data: slice(c.state.optM) };
    tensors[`optimizer.v.${s.name}`] = { shape: s.shape, data: slice(c.state.optV) };
  }
  const full = fullModelConfig(c.model);
  const stateShape = [full.layers, c.train.batchSize, full.hiddenSize];
  tensors['state.hidden'] = { shape: stateShape, data: c.state.hidden };
  if (c.state.cellState) tensors['state.cell'] = { shape: stateShape, data: c.state.cellState };
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    model: JSON.stringify(full),
    train: JSON.stringify(c.train),
    tokenizer: JSON.stringify(c.tokenizer),
    progress: JSON.stringify({ ...c.progress, optimizerStep: c.state.optStep }),
  });
}

function parseJson(meta: Record<string, string>, key: string, name: string): unknown {
  if (!(key in meta)) throw new CheckpointError(`${name}: not a webgpu-rnn checkpoint (no "${key}" in its metadata)`);
  try {
    return JSON.parse(meta[key]);
  } catch {
    throw new CheckpointError(`${name}: the "${key}" metadata is not valid JSON`);
  }
}

/** Bounds no real model comes near; a header claiming more is damage, refused before any arithmetic on it. */
export const CHECKPOINT_LIMITS = { layers: 1024, hiddenSize: 1 << 20, vocabSize: 1 << 24, batchSize: 1 << 20 };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (n: unknown, max: number): n is number => Number.isSafeInteger(n) && (n as number) >= 1 && (n as number) <= max;

/**
 * The model's shape checked against the file itself, before any layout is built or any array
 * allocated: every number is a bounded integer, and the parameters and the carried state it
 * implies fit in the values the file really holds (so metadata claiming 1e9 layers or a vocabulary
 * of 2^40 is one error line, not an out-of-memory abort).
 */
function checkShapeAgainstTensors(
  name: string, stored: unknown, train: unknown, tensors: Record<string, Tensor>,
): void {
  const bad = (what: string): never => {
    throw new CheckpointError(`${name}: damaged checkpoint (${what})`);
  };
  if (!isObject(stored)) bad(`the "model" metadata is ${JSON.stringify(stored)?.slice(0, 80)}, not an object`);
  const m = stored as Record<string, unknown>;
  if (!CELL_TYPES.includes(m.cell as never)) bad(`cell ${JSON.stringify(m.cell)?.slice(0, 40)}`);
  // Absent means a checkpoint from before stacking (one layer); null or anything else is damage.
  const L = m.layers === undefined ? 1 : m.layers;
  const limits = CHECKPOINT_LIMITS;
  if (!isCount(L, limits.layers)) bad(`layers ${JSON.stringify(L)?.slice(0, 40)} is not an integer from 1 to ${limits.layers}`);
  if (!isCount(m.hiddenSize, limits.hiddenSize)) bad(`hiddenSize ${JSON.stringify(m.hiddenSize)?.slice(0, 40)} is not an integer from 1 to ${limits.hiddenSize}`);
  if (!isCount(m.vocabSize, limits.vocabSize)) bad(`vocabSize ${JSON.stringify(m.vocabSize)?.slice(0, 40)} is not an integer from 1 to ${limits.vocabSize}`);
  const dropout = m.dropout === undefined ? 0 : m.dropout;
  if (!(typeof dropout === 'number' && dropout >= 0 && dropout < 1)) bad(`dropout ${JSON.stringify(dropout)?.slice(0, 40)} is not in [0, 1)`);
  if (!isObject(train)) bad(`the "train" metadata is ${JSON.stringify(train)?.slice(0, 80)}, not an object`);
  const B = (train as Record<string, unknown>).batchSize;
  if (!isCount(B, limits.batchSize)) bad(`batch size ${JSON.stringify(B)?.slice(0, 40)} is not an integer from 1 to ${limits.batchSize}`);

  // Each factor is bounded above, so these sums and products are exact in doubles (< 2^53).
  let held = 0;
  for (const t of Object.values(tensors)) held += t.data.length;
  const [layers, H, V, batch] = [L as number, m.hiddenSize as number, m.vocabSize as number, B as number];
  const G = GATES[m.cell as CellType];
  let params = V * H + V;
  for (let l = 0; l < layers && params <= held; l++) params += G * H * ((l === 0 ? V : H) + H + 2);
  // The parameters and the carried state both live in the file (the moments too, but legacy files
  // lack some, and this bound is all the allocation below needs).
  if (params + layers * batch * H > held) {
    bad(
      `its metadata describes a ${m.cell} of ${layers} x ${H} with vocabulary ${V} and batch ${batch}, ` +
      `more values than the ${held} its tensors hold`,
    );
  }
}

export interface DecodedCheckpoint extends CheckpointData {
  tokenizerObject: Tokenizer;
  /**
   * "converted 7 F16 tensors to F32" when the file stored tensors in another dtype (a model saved
   * from PyTorch in half precision, say), for the one line the CLI and the page tell the user;
   * undefined for an all-F32 file. Saving writes F32.
   */
  conversion?: string;
}

const isPosInt = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0;

/**
 * The training settings and progress a run built from the checkpoint relies on (decodeCheckpoint
 * checks the tensors and the model's shape): one CheckpointError naming the file otherwise.
 */
export function checkCheckpointSettings(ck: CheckpointData, name = 'checkpoint'): void {
  const t = ck.train;
  const p = ck.progress as CheckpointData['progress'] | null;
  const bad = (what: string) => new CheckpointError(`${name}: damaged checkpoint (${what})`);
  if (!t || !isPosInt(t.batchSize) || !isPosInt(t.seqLength)) throw bad('batch size or sequence length');
  if (!(t.learningRate > 0) || !(t.clip > 0)) throw bad('learning rate or clip');
  if (t.stateReset !== undefined && !(Number.isInteger(t.stateReset) && t.stateReset >= 0)) throw bad(`state reset ${JSON.stringify(t.stateReset)}`);
  if (!p || !Number.isInteger(p.iteration) || p.iteration < 0 || typeof p.stream !== 'object' || p.stream === null) {
    throw bad('training progress');
  }
  if (typeof p.corpus !== 'string' || typeof p.lowercase !== 'boolean') throw bad('corpus settings');
  if (!Number.isInteger(p.seed)) throw bad('seed');
}

/**
 * A checkpoint file's contents, checked. Every way the file can be wrong throws one
 * CheckpointError naming it (the CLI and the web page print its message as one line).
 */
export function decodeCheckpoint(bytes: Uint8Array, name = 'checkpoint'): DecodedCheckpoint {
  try {
    return decodeChecked(bytes, name);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    // Whatever the checks did not foresee is still this file's fault: say so, naming it.
    throw new CheckpointError(`${name}: damaged checkpoint (${e instanceof Error ? e.message : String(e)})`);
  }
}

function decodeChecked(bytes: Uint8Array, name: string): DecodedCheckpoint {
  const { tensors, metadata, converted } = decodeSafetensors(bytes, name);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${name}: format "${metadata.format ?? 'none'}" is not ${CHECKPOINT_FORMAT}`);
  }
  const stored = parseJson(metadata, 'model', name) as ModelConfig;
  const train = parseJson(metadata, 'train', name) as TrainConfig;
  const tokenizerJson = parseJson(metadata, 'tokenizer', name) as TokenizerJSON;
  const progress = parseJson(metadata, 'progress', name) as CheckpointData['progress'] & { optimizerStep: number };
  checkShapeAgainstTensors(name, stored, train, tensors);
  // Optimizer, hyperparameters and schedule (absent ones, as in older checkpoints, mean the defaults).
  const optProblem = optimizerProblem(train);
  if (optProblem) throw new CheckpointError(`${name}: damaged checkpoint (${optProblem})`);
  if (!isObject(progress)) throw new CheckpointError(`${name}: damaged checkpoint (the "progress" metadata is not an object)`);
  if (progress.charset === undefined) progress.charset = DEFAULT_CHARSET;
  else if (!isCharset(progress.charset)) {
    throw new CheckpointError(`${name}: damaged checkpoint (charset ${JSON.stringify(progress.charset)?.slice(0, 40)} is not one of ${CHARSETS.join(', ')})`);
  }
  const optStep = progress.optimizerStep === undefined ? 0 : progress.optimizerStep;
  if (!(Number.isSafeInteger(optStep) && optStep >= 0)) {
    throw new CheckpointError(`${name}: damaged checkpoint (optimizer step ${JSON.stringify(optStep)?.slice(0, 40)} is not a non-negative integer)`);
  }
  const legacy = stored.layers === undefined;
  const model: ModelConfig = fullModelConfig(stored);
  let tokenizer: Tokenizer;
  try {
    tokenizer = tokenizerFromJSON(tokenizerJson);
  } catch (e) {
    throw new CheckpointError(`${name}: bad vocabulary (${(e as Error).message})`);
  }
  if (tokenizer.vocab.length !== model.vocabSize) {
    throw new CheckpointError(`${name}: vocabulary has ${tokenizer.vocab.length} tokens but the model expects ${model.vocabSize}`);
  }
  const layout = paramLayout(model);
  const conversion = describeConversions(converted);
  /**
   * A tensor of the expected shape whose every value is finite (and, for a second moment, not
   * negative): a poisoned optimizer state would otherwise load, diverge, and "keep the last good
   * checkpoint", which is the poisoned file.
   */
  const take = (key: string, shape: number[], o: { absentAsZeros?: boolean; nonNegative?: boolean } = {}): Float32Array => {
    const t = tensors[key];
    if (!t && o.absentAsZeros) return new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (!t) throw new CheckpointError(`${name}: tensor ${key} is missing`);
    if (t.shape.join('x') !== shape.join('x')) {
      throw new CheckpointError(`${name}: tensor ${key} has shape [${t.shape}] but the model needs [${shape}]`);
    }
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      const x = d[i];
      // x - x is NaN for NaN and for either infinity.
      if (x - x !== 0) throw new CheckpointError(`${name}: tensor ${key} holds ${x} at index ${i} (damaged or diverged; not loaded)`);
      if (o.nonNegative && x < 0) {
        throw new CheckpointError(`${name}: tensor ${key} holds ${x} at index ${i}, but a sum or mean of squares cannot be negative (damaged; not loaded)`);
      }
    }
    return d;
  };
  // Adam: m is the first moment (any sign), v the second. Adagrad: m is the sum of squared
  // gradients, v unused (zeros). RMSprop: v the mean of squared gradients, m unused. SGD: m the
  // momentum buffer (any sign), v unused. See src/model/optimizer.ts. v is never negative.
  const adagrad = train.optimizer === 'adagrad';
  const params = new Float32Array(layout.length);
  const optM = new Float32Array(layout.length);
  const optV = new Float32Array(layout.length);
  for (const s of layout.slots) {
    // The old single-bias rnn stored bias_hh_l0 as zeros and kept no optimizer moments for it.
    const absentAsZeros = legacy && s.name === 'rnn.bias_hh_l0';
    params.set(take(s.name, s.shape), s.offset);
    optM.set(take(`optimizer.m.${s.name}`, s.shape, { absentAsZeros, nonNegative: adagrad }), s.offset);
    optV.set(take(`optimizer.v.${s.name}`, s.shape, { absentAsZeros, nonNegative: true }), s.offset);
  }
  const stateShape = legacy ? [train.batchSize, model.hiddenSize] : [model.layers!, train.batchSize, model.hiddenSize];
  const hidden = take('state.hidden', stateShape);
  const cellState = model.cell === 'lstm' ? take('state.cell', stateShape) : undefined;
  return {
    model, train, tokenizer: tokenizerJson, tokenizerObject: tokenizer, progress,
    ...(conversion ? { conversion } : {}),
    state: { params, optM, optV, optStep, hidden, ...(cellState ? { cellState } : {}) },
  };
}
