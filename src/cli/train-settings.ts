/**
 * What a `train` run is asked to do: the flags and their defaults, or, with --resume, the
 * checkpoint's own settings, which a contradicting flag may not silently override.
 */
import type { BackendChoice } from '../engine/create-backend.ts';
import type { BatchStream } from '../data/split.ts';
import type { TokenizerLevel } from '../data/tokenizer.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import type { CellType } from '../model/cells.ts';
import type { OptimizerName } from '../model/optimizer.ts';
import type { SamplingControls } from '../model/backend.ts';
import { mainPathOf, readCheckpoint, type LoadedCheckpoint } from './checkpoint-files.ts';
import { CliError, UsageError } from './errors.ts';

/**
 * Chosen by measurement on lavapipe (2 cores), where `npm start` should learn visibly in a few
 * minutes: at 150 s of training, hidden 128 x seq 64 x batch 32 with Adam 3e-3..4e-3 reached 1.60
 * nats/char of Reuters validation loss, against 1.86-1.94 for hidden 256 (3-4x slower per iteration).
 */
export const TRAIN_DEFAULTS = {
  corpus: 'reuters',
  level: 'char' as TokenizerLevel,
  maxVocab: 10000,
  minCount: 1,
  cell: 'rnn' as CellType,
  layers: 1,
  dropout: 0,
  hidden: 128,
  seqLength: 64,
  batchSize: 32,
  lr: 3e-3,
  optimizer: 'adam' as OptimizerName,
  clip: 5,
  stateReset: 16,
  iterations: 3000,
  seed: 1,
  backend: 'auto' as BackendChoice,
  checkpointEvery: 1000,
  evalEvery: 500,
  evalBatches: 50,
  sampleEvery: 500,
  sampleLength: 300,
  temperature: 0.8,
  printEvery: 0,
};

export interface TrainArgs {
  corpus: string;
  level: TokenizerLevel;
  lowercase?: boolean;
  maxVocab: number;
  minCount: number;
  unk: boolean;
  cell: CellType;
  layers: number;
  dropout: number;
  hidden: number;
  seqLength: number;
  batchSize: number;
  lr: number;
  optimizer: OptimizerName;
  clip: number;
  stateReset: number;
  iterations?: number;
  epochs?: number;
  seed: number;
  backend: BackendChoice;
  checkpoint?: string;
  checkpointEvery: number;
  evalEvery: number;
  evalBatches: number;
  sampleEvery: number;
  sampleLength: number;
  temperature: number;
  prime?: string;
  resume?: string;
  quiet: boolean;
  printEvery: number;
  /** --top-k, --top-p, --repetition-penalty, --repetition-window for the periodic samples. */
  controls?: SamplingControls;
  /** --num-samples: samples side by side at each sampling point. */
  numSamples: number;
  /** --max-corpus-mb: the largest text file read, in MB. */
  maxCorpusMb?: number;
  /** Flags given on the command line, as opposed to defaults (a resumed run checks them against its checkpoint). */
  given: ReadonlySet<string>;
}

export interface Settings {
  model?: ModelConfig;
  train: TrainConfig;
  seed: number;
  corpus: string;
  lowercase?: boolean;
  checkpointPath: string;
  /** --backend, or on --resume without it the backend that wrote the checkpoint. */
  backend: BackendChoice;
}

/** A resumed run keeps its checkpoint's shape; a flag that contradicts it is an error, not a silent override. */
function resumeSettings(a: TrainArgs, ck: LoadedCheckpoint, notes: string[]): Settings {
  const path = a.resume!;
  const mismatch = (flag: string, given: unknown, saved: unknown, what: string) =>
    new CliError(
      `${flag} ${given} does not match the checkpoint ${path}, which has ${what} ${saved}: ` +
      `leave ${flag} out to resume it, or start a new run without --resume`,
    );
  const check = (key: string, flag: string, given: unknown, saved: unknown, what: string) => {
    if (a.given.has(key) && given !== saved) throw mismatch(flag, given, saved, what);
  };
  const saved = fullModelConfig(ck.model);
  check('cell', '--cell', a.cell, saved.cell, 'cell');
  check('layers', '--layers', a.layers, saved.layers, 'layers');
  check('dropout', '--dropout', a.dropout, saved.dropout, 'dropout');
  check('hidden', '--hidden', a.hidden, ck.model.hiddenSize, 'hidden size');
  check('batchSize', '--batch-size', a.batchSize, ck.train.batchSize, 'batch size');
  check('seqLength', '--seq-length', a.seqLength, ck.train.seqLength, 'sequence length');
  check('optimizer', '--optimizer', a.optimizer, ck.train.optimizer, 'optimizer');
  check('level', '--level', a.level, ck.tokenizer.level, 'level');
  if (a.given.has('lowercase') && a.lowercase !== ck.progress.lowercase) {
    throw new CliError(
      `--${a.lowercase ? '' : 'no-'}lowercase does not match the checkpoint ${path}, which was trained on ` +
      `${ck.progress.lowercase ? 'lowercased' : 'unchanged'} text: leave it out to resume`,
    );
  }
  if (ck.tokenizer.level === 'word') check('unk', '--unk/--no-unk', a.unk, ck.tokenizer.unk, '<unk> setting');
  for (const [key, flag] of [['maxVocab', '--max-vocab'], ['minCount', '--min-count']] as const) {
    if (a.given.has(key)) notes.push(`${flag} is ignored: a resumed run keeps its checkpoint's vocabulary`);
  }
  const train = { ...ck.train };
  if (a.given.has('lr') && a.lr !== train.learningRate) {
    notes.push(`learning rate changed from ${train.learningRate} to ${a.lr}`);
    train.learningRate = a.lr;
  }
  if (a.given.has('clip') && a.clip !== train.clip) {
    notes.push(`gradient clip changed from ${train.clip} to ${a.clip}`);
    train.clip = a.clip;
  }
  if (a.given.has('stateReset') && a.stateReset !== (train.stateReset ?? 0)) {
    notes.push(`state reset changed from every ${train.stateReset ?? 0} to every ${a.stateReset} iterations`);
    train.stateReset = a.stateReset;
  }
  return {
    model: ck.model,
    train,
    seed: a.given.has('seed') ? a.seed : ck.progress.seed,
    corpus: a.given.has('corpus') ? a.corpus : ck.progress.corpus,
    lowercase: ck.progress.lowercase,
    checkpointPath: a.checkpoint ?? mainPathOf(path),
    backend: a.given.has('backend') ? a.backend : ck.progress.backend ?? a.backend,
  };
}

export function targetIterations(a: TrainArgs, stream: BatchStream, ck: LoadedCheckpoint | undefined): number {
  if (a.epochs !== undefined) return Math.max(1, Math.ceil(a.epochs * stream.batchesPerEpoch));
  if (a.iterations !== undefined) return a.iterations;
  return ck?.progress.iterations ?? TRAIN_DEFAULTS.iterations;
}

/** The run's settings and the checkpoint it resumes, if any; `notes` collects what the user should be told. */
export function runSettings(a: TrainArgs, notes: string[]): { ck?: LoadedCheckpoint; s: Settings } {
  // An empty path (an unset shell variable, --resume "$CK") must not mean "no flag": --resume ""
  // would start a fresh run over the trained checkpoint.
  for (const [flag, value] of [['--resume', a.resume], ['--checkpoint', a.checkpoint], ['--corpus', a.corpus]] as const) {
    if (value === '') throw new UsageError(`${flag} must not be empty`);
  }
  if (a.resume !== undefined) {
    const ck = readCheckpoint(a.resume);
    return { ck, s: resumeSettings(a, ck, notes) };
  }
  return {
    s: {
      train: { seqLength: a.seqLength, batchSize: a.batchSize, optimizer: a.optimizer, learningRate: a.lr, clip: a.clip, stateReset: a.stateReset },
      seed: a.seed,
      corpus: a.corpus,
      lowercase: a.lowercase,
      checkpointPath: a.checkpoint ?? '',
      backend: a.backend,
    },
  };
}
