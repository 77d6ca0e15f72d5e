/**
 * A trained model as one safetensors file: parameters under PyTorch's names (an nn.RNN called
 * `rnn` plus an nn.Linear called `decoder` load them with load_state_dict), optimizer moments
 * and the carried hidden state under `optimizer.*` / `state.*`, and the configuration,
 * vocabulary and training progress as JSON strings in the metadata. Browser-safe.
 */
import { CheckpointError, decodeSafetensors, encodeSafetensors, type Tensor } from './safetensors.ts';
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';
import type { ModelState } from '../engine/backend.ts';
import type { TrainerProgress } from '../engine/trainer.ts';
import { tokenizerFromJSON, type Tokenizer, type TokenizerJSON } from '../data/tokenizer.ts';

export const CHECKPOINT_FORMAT = 'webgpu-rnn/1';

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
    tensors[s.torchName] = { shape: s.shape, data: slice(c.state.params) };
    tensors[`optimizer.m.${s.torchName}`] = { shape: s.shape, data: slice(c.state.optM) };
    tensors[`optimizer.v.${s.torchName}`] = { shape: s.shape, data: slice(c.state.optV) };
  }
  // nn.RNN has two biases that add up; ours is one, so the second is stored as zeros.
  tensors['rnn.bias_hh_l0'] = { shape: [c.model.hiddenSize], data: new Float32Array(c.model.hiddenSize) };
  tensors['state.hidden'] = { shape: [c.train.batchSize, c.model.hiddenSize], data: c.state.hidden };
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    model: JSON.stringify(c.model),
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
  const model = parseJson(metadata, 'model', name) as ModelConfig;
  const train = parseJson(metadata, 'train', name) as TrainConfig;
  const tokenizerJson = parseJson(metadata, 'tokenizer', name) as TokenizerJSON;
  const progress = parseJson(metadata, 'progress', name) as CheckpointData['progress'] & { optimizerStep: number };
  if (model?.cell !== 'rnn' || !(model.hiddenSize > 0) || !(model.vocabSize > 0)) {
    throw new CheckpointError(`${name}: unsupported model ${JSON.stringify(model)}`);
  }
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
  const take = (key: string, shape: number[]): Float32Array => {
    const t = tensors[key];
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
    params.set(take(s.torchName, s.shape), s.offset);
    optM.set(take(`optimizer.m.${s.torchName}`, s.shape), s.offset);
    optV.set(take(`optimizer.v.${s.torchName}`, s.shape), s.offset);
  }
  // A bias_hh_l0 trained elsewhere (PyTorch) folds into our single bias.
  const bhh = take('rnn.bias_hh_l0', [model.hiddenSize]);
  const bh = layout.byName.bh.offset;
  for (let i = 0; i < model.hiddenSize; i++) params[bh + i] += bhh[i];
  const hidden = take('state.hidden', [train.batchSize, model.hiddenSize]);
  for (const [k, a] of [['parameters', params], ['hidden state', hidden]] as const) {
    if (!a.every(Number.isFinite)) throw new CheckpointError(`${name}: the ${k} contain NaN or infinity`);
  }
  return {
    model, train, tokenizer: tokenizerJson, tokenizerObject: tokenizer, progress,
    state: { params, optM, optV, optStep: progress.optimizerStep ?? 0, hidden },
  };
}
