/** The model the worker holds: its settings, its backend, its trainer when its text is here, and what is kept of it. */
import type { TrainerProgress } from '../../checkpoint/model-checkpoint.ts';
import type { Tokenizer } from '../../data/tokenizer.ts';
import { userTextFor, type Charset } from '../../data/text.ts';
import type { LoopCheckpoint } from '../../engine/training-loop.ts';
import { Trainer } from '../../engine/trainer.ts';
import { samplingControlsError, type Backend, type SampleOptions } from '../../model/backend.ts';
import type { ModelConfig, TrainConfig } from '../../model/config.ts';
import { parameterCount } from '../../model/layout.ts';
import { GpuBackend } from '../../gpu/backend.ts';
import type { ModelSummary, Placement, Reply, SamplingSettings, Status } from '../protocol.ts';
import { optimizerFormFields } from '../shared.ts';
import type { Backends } from './backends.ts';
import { UserError } from './errors.ts';
import { trainValOf, type PreparedData, type Text } from './text.ts';

export interface Run {
  /** Changes whenever a new model replaces the old one (the page clears its chart). */
  id: number;
  model: ModelConfig;
  train: TrainConfig;
  seed: number;
  tokenizer: Tokenizer;
  lowercase: boolean;
  /** Which characters the text kept; a prime is read the same way. */
  charset: Charset;
  corpus: string;
  text?: Text;
  backend: Backend;
  placement: Placement;
  /** Absent when the text is not here: the model can sample but not train. */
  trainer?: Trainer;
  /** Progress of a sample-only model (the trainer holds it otherwise). */
  progress: TrainerProgress;
  /** Seconds trained before the current training loop, if any, started. */
  elapsed: number;
  trainLoss?: number;
  valLoss?: number;
  /** The last copy of the model taken in memory: what survives a lost device. */
  snapshot?: LoopCheckpoint;
  lost?: { reason: string; keptIteration: number };
}

export function progressOf(r: Run): TrainerProgress {
  return r.trainer ? r.trainer.progress() : r.progress;
}

export function newTrainer(backend: Backend, d: PreparedData): Trainer {
  const { train, val } = trainValOf(d);
  return new Trainer(backend, train, val);
}

/** The most samples the page shows side by side. */
export const MAX_PAGE_SAMPLES = 8;

/** The sample the settings ask for; a prime the vocabulary cannot encode, or controls out of range, are the user's to fix. */
export function sampleRequest(r: Run, s: SamplingSettings, iteration: number): { options: SampleOptions & { count: number }; primeText: string } {
  const bad = samplingControlsError(s.controls);
  if (bad) throw new UserError('sample', bad);
  const count = s.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_PAGE_SAMPLES) throw new UserError('sample', `samples side by side: from 1 to ${MAX_PAGE_SAMPLES}, not ${count}`);
  const primeText = userTextFor(r.charset, r.lowercase ? s.prime.toLowerCase() : s.prime);
  let prime: Uint32Array;
  if (primeText.length === 0) {
    // A newline: samples start a fresh line, as the CLI's do.
    const nl = r.tokenizer.vocab.indexOf('\n');
    prime = new Uint32Array([nl >= 0 ? nl : 0]);
  } else {
    try {
      prime = r.tokenizer.encode(primeText);
    } catch (e) {
      throw new UserError('sample', `prime text: ${(e as Error).message}`);
    }
  }
  const length = Math.max(1, Math.min(2000, Math.round(s.length)));
  const seed = (iteration * 2654435761 + Math.floor(Math.random() * 65536)) >>> 0;
  return { options: { prime, length, temperature: s.temperature, seed, controls: s.controls, count }, primeText };
}

/** The page's message for samples drawn side by side: the first as `text`, the others as `more`. */
export function sampleReply(tokenizer: Tokenizer, prime: string, iteration: number, o: SampleOptions, all: Uint32Array[]): Extract<Reply, { type: 'sample' }> {
  const [text, ...more] = all.map((t) => tokenizer.decode(t));
  return { type: 'sample', prime, text, iteration, temperature: o.temperature, ...(o.controls ? { controls: o.controls } : {}), ...(more.length ? { more } : {}) };
}

/** What the page shows of the worker's state; `elapsed` counts the training in progress too. */
export function statusOf(r: Run | undefined, now: Pick<Status, 'phase' | 'activity' | 'elapsed'>, backends: Backends): Status {
  const progress = r ? progressOf(r) : undefined;
  const s: Status = {
    ...now,
    runId: r?.id ?? 0,
    iteration: progress?.iteration ?? 0,
    epoch: r?.trainer ? r.trainer.stream.progress : progress?.stream.epoch ?? 0,
    canTrain: Boolean(r?.trainer),
  };
  if (r) {
    s.model = summaryOf(r);
    s.backend = {
      kind: r.backend.kind,
      adapter: r.placement.adapter,
      description: backends.describe(r.backend, r.placement),
      software: r.backend.kind === 'gpu' ? Boolean(backends.adapter(r.placement.adapter)?.software) : false,
      dispatches: r.backend.perStep.dispatches,
      memoryBytes: r.backend instanceof GpuBackend ? r.backend.memoryBytes : undefined,
      kernels: backends.kernels(r.backend),
    };
    if (r.lost) s.lost = { ...r.lost };
  }
  return s;
}

function summaryOf(r: Run): ModelSummary {
  return {
    cell: r.model.cell, layers: r.model.layers ?? 1, dropout: r.model.dropout ?? 0, hiddenSize: r.model.hiddenSize, vocabSize: r.model.vocabSize,
    seqLength: r.train.seqLength, batchSize: r.train.batchSize, optimizer: r.train.optimizer,
    ...optimizerFormFields(r.train),
    learningRate: r.train.learningRate, clip: r.train.clip, stateReset: r.train.stateReset ?? 0, seed: r.seed,
    level: r.tokenizer.level, charset: r.charset, lowercase: r.lowercase, corpus: r.corpus, parameters: parameterCount(r.model),
  };
}
