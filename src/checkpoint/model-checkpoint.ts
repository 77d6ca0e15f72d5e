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
 */
import { CheckpointError, decodeSafetensors, encodeSafetensors, type Tensor } from './safetensors.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { CELL_TYPES } from '../model/cells.ts';
import { paramLayout } from '../model/layout.ts';
import type { ModelState } from '../model/backend.ts';
import type { StreamState } from '../data/split.ts';
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

export function decodeCheckpoint(bytes: Uint8Array, name = 'checkpoint'): CheckpointData & { tokenizerObject: Tokenizer } {
  const { tensors, metadata } = decodeSafetensors(bytes, name);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${name}: format "${metadata.format ?? 'none'}" is not ${CHECKPOINT_FORMAT}`);
  }
  const stored = parseJson(metadata, 'model', name) as ModelConfig;
  const train = parseJson(metadata, 'train', name) as TrainConfig;
  const tokenizerJson = parseJson(metadata, 'tokenizer', name) as TokenizerJSON;
  const progress = parseJson(metadata, 'progress', name) as CheckpointData['progress'] & { optimizerStep: number };
  const legacy = stored?.layers === undefined;
  if (!CELL_TYPES.includes(stored?.cell) || !(stored.hiddenSize > 0) || !(stored.vocabSize > 0) ||
      !(Number.isInteger(stored.layers ?? 1) && (stored.layers ?? 1) >= 1) || !((stored.dropout ?? 0) >= 0 && (stored.dropout ?? 0) < 1)) {
    throw new CheckpointError(`${name}: unsupported model ${JSON.stringify(stored)}`);
  }
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
  const take = (key: string, shape: number[], absentAsZeros = false): Float32Array => {
    const t = tensors[key];
    if (!t && absentAsZeros) return new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (!t) throw new CheckpointError(`${name}: tensor ${key} is missing`);
    if (t.shape.join('x') !== shape.join('x')) {
      throw new CheckpointError(`${name}: tensor ${key} has shape [${t.shape}] but the model needs [${shape}]`);
    }
    return t.data;
  };
  const params = new Float32Array(layout.length);
  const optM = new Float32Array(layout.length);
  const optV = new Float32Array(layout.length);
  for (const s of layout.slots) {
    // The old single-bias rnn stored bias_hh_l0 as zeros and kept no optimizer moments for it.
    const momentsMayLack = legacy && s.name === 'rnn.bias_hh_l0';
    params.set(take(s.name, s.shape), s.offset);
    optM.set(take(`optimizer.m.${s.name}`, s.shape, momentsMayLack), s.offset);
    optV.set(take(`optimizer.v.${s.name}`, s.shape, momentsMayLack), s.offset);
  }
  const stateShape = legacy ? [train.batchSize, model.hiddenSize] : [model.layers!, train.batchSize, model.hiddenSize];
  const hidden = take('state.hidden', stateShape);
  const cellState = model.cell === 'lstm' ? take('state.cell', stateShape) : undefined;
  for (const [k, a] of [['parameters', params], ['hidden state', hidden], ['memory cells', cellState ?? hidden]] as const) {
    if (!a.every(Number.isFinite)) throw new CheckpointError(`${name}: the ${k} contain NaN or infinity`);
  }
  return {
    model, train, tokenizer: tokenizerJson, tokenizerObject: tokenizer, progress,
    state: { params, optM, optV, optStep: progress.optimizerStep ?? 0, hidden, ...(cellState ? { cellState } : {}) },
  };
}
