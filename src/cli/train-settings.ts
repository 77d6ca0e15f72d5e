/**
 * What a `train` run is asked to do: the flags and their defaults, or, with --resume, the
 * checkpoint's own settings, which a contradicting flag may not silently override.
 */
import type { BackendChoice } from '../engine/create-backend.ts';
import type { TuneMode } from '../gpu/tuner.ts';
import type { BatchStream } from '../data/split.ts';
import type { TokenizerLevel } from '../data/tokenizer.ts';
import type { Charset } from '../data/text.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import type { CellType } from '../model/cells.ts';
import { optimizerHyper, RMSPROP, SGD, STEP_DECAY, type LrSchedule, type OptimizerName, type OptimizerOptions } from '../model/optimizer.ts';
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
  charset: 'clean' as Charset,
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
  lrSchedule: 'none' as LrSchedule['kind'],
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
  charset: Charset;
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
  /** The optimizers' and the schedules' flags: undefined when not given (the defaults are src/model/optimizer.ts's). */
  momentum?: number;
  nesterov?: boolean;
  rmsDecay?: number;
  lrSchedule: LrSchedule['kind'];
  lrDecay?: number;
  /** In epochs, as char-rnn's. */
  lrDecayEvery?: number;
  lrDecayAfter?: number;
  lrMin?: number;
  clip: number;
  stateReset: number;
  iterations?: number;
  epochs?: number;
  seed: number;
  backend: BackendChoice;
  /** GPU kernel tuning (src/engine/tuning.ts): not part of the run's settings, a checkpoint does not keep it. */
  tune: TuneMode;
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
  charset: Charset;
  checkpointPath: string;
  /** --backend, or on --resume without it the backend that wrote the checkpoint. */
  backend: BackendChoice;
}

/** A flag given with a resumed run that contradicts its checkpoint. */
function mismatch(a: TrainArgs, flag: string, given: unknown, saved: unknown, what: string): CliError {
  return new CliError(
    `${flag} ${given} does not match the checkpoint ${a.resume}, which has ${what} ${saved}: ` +
    `leave ${flag} out to resume it, or start a new run without --resume`,
  );
}

/** Throws if flag `key` was given and its value differs from the checkpoint's. */
function checkAgainst(a: TrainArgs, key: string, flag: string, given: unknown, saved: unknown, what: string): void {
  if (a.given.has(key) && given !== saved) throw mismatch(a, flag, given, saved, what);
}

/** Refuses an optimizer's or a schedule's flag given with another optimizer or schedule than the one it tunes. */
function checkFlagsApply(a: TrainArgs, optimizer: OptimizerName, schedule: LrSchedule['kind']): void {
  const owners: [string, string, boolean, string][] = [
    ['momentum', '--momentum', optimizer === 'sgd', '--optimizer sgd'],
    ['nesterov', '--nesterov', optimizer === 'sgd', '--optimizer sgd'],
    ['rmsDecay', '--rms-decay', optimizer === 'rmsprop', '--optimizer rmsprop'],
    ['lrDecay', '--lr-decay', schedule === 'step', '--lr-schedule step'],
    ['lrDecayEvery', '--lr-decay-every', schedule === 'step', '--lr-schedule step'],
    ['lrDecayAfter', '--lr-decay-after', schedule === 'step', '--lr-schedule step'],
    ['lrMin', '--lr-min', schedule === 'cosine', '--lr-schedule cosine'],
  ];
  for (const [key, flag, applies, owner] of owners) {
    if (a.given.has(key) && !applies) {
      throw new UsageError(`${flag} applies only to ${owner}${a.resume ? `, and ${a.resume} was trained with ${optimizer}, schedule ${schedule}` : ''}`);
    }
  }
}

/** A fresh run's optimizer hyperparameters, stored explicitly (so the checkpoint says what was used). */
function optimizerFields(a: TrainArgs): Omit<OptimizerOptions, 'optimizer'> {
  if (a.optimizer === 'sgd') {
    const momentum = a.momentum ?? SGD.momentum;
    if (a.nesterov && momentum === 0) throw new UsageError('--nesterov needs a --momentum above 0');
    return { momentum, nesterov: a.nesterov ?? false };
  }
  if (a.optimizer === 'rmsprop') return { rmsDecay: a.rmsDecay ?? RMSPROP.alpha };
  return {};
}

/** A resumed run keeps its checkpoint's shape; a flag that contradicts it is an error, not a silent override. */
function resumeSettings(a: TrainArgs, ck: LoadedCheckpoint, notes: string[]): Settings {
  const path = a.resume!;
  const check = (key: string, flag: string, given: unknown, saved: unknown, what: string) => checkAgainst(a, key, flag, given, saved, what);
  const saved = fullModelConfig(ck.model);
  check('cell', '--cell', a.cell, saved.cell, 'cell');
  check('layers', '--layers', a.layers, saved.layers, 'layers');
  check('dropout', '--dropout', a.dropout, saved.dropout, 'dropout');
  check('hidden', '--hidden', a.hidden, ck.model.hiddenSize, 'hidden size');
  check('batchSize', '--batch-size', a.batchSize, ck.train.batchSize, 'batch size');
  check('seqLength', '--seq-length', a.seqLength, ck.train.seqLength, 'sequence length');
  check('optimizer', '--optimizer', a.optimizer, ck.train.optimizer, 'optimizer');
  checkFlagsApply(a, ck.train.optimizer, ck.train.lrSchedule?.kind ?? 'none');
  const hyper = optimizerHyper(ck.train);
  check('momentum', '--momentum', a.momentum, hyper.momentum, 'momentum');
  check('nesterov', '--nesterov', a.nesterov, hyper.nesterov, 'nesterov');
  check('rmsDecay', '--rms-decay', a.rmsDecay, hyper.alpha, 'RMSprop decay');
  check('lrSchedule', '--lr-schedule', a.lrSchedule, ck.train.lrSchedule?.kind ?? 'none', 'learning-rate schedule');
  check('level', '--level', a.level, ck.tokenizer.level, 'level');
  check('charset', '--charset', a.charset, ck.progress.charset, 'charset');
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
    charset: ck.progress.charset ?? a.charset,
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
  if (a.charset === 'letters' && a.given.has('lowercase') && a.lowercase === false) {
    throw new UsageError('--charset letters keeps lowercase a-z only: leave out --no-lowercase');
  }
  if (a.resume !== undefined) {
    const ck = readCheckpoint(a.resume, (line) => notes.push(line));
    return { ck, s: resumeSettings(a, ck, notes) };
  }
  checkFlagsApply(a, a.optimizer, a.lrSchedule);
  if (a.lrSchedule === 'cosine' && (a.lrMin ?? 0) > a.lr) {
    throw new UsageError(`--lr-min ${a.lrMin} is above --lr ${a.lr}: the cosine schedule goes down from --lr to --lr-min`);
  }
  return {
    s: {
      train: {
        seqLength: a.seqLength, batchSize: a.batchSize, optimizer: a.optimizer, ...optimizerFields(a),
        learningRate: a.lr, clip: a.clip, stateReset: a.stateReset,
      },
      seed: a.seed,
      corpus: a.corpus,
      lowercase: a.lowercase,
      charset: a.charset,
      checkpointPath: a.checkpoint ?? '',
      backend: a.backend,
    },
  };
}

/** Epochs as whole updates, for the step schedule (at least one between decays). */
const updatesIn = (epochs: number, batchesPerEpoch: number, min: number) => Math.max(min, Math.round(epochs * batchesPerEpoch));

/**
 * Sets the run's learning-rate schedule, once the batches per epoch and the target iteration are
 * known: a fresh run's from its flags (epochs converted to updates; cosine spans the whole run),
 * a resumed run's as its checkpoint has it, where a contradicting flag is an error.
 */
export function applySchedule(a: TrainArgs, s: Settings, ck: LoadedCheckpoint | undefined, batchesPerEpoch: number, target: number, notes: string[]): void {
  const { train } = s;
  const every = (epochs: number | undefined) => updatesIn(epochs ?? STEP_DECAY.everyEpochs, batchesPerEpoch, 1);
  const after = (epochs: number | undefined) => updatesIn(epochs ?? STEP_DECAY.afterEpochs, batchesPerEpoch, 0);
  if (!ck) {
    if (a.lrSchedule === 'step') {
      train.lrSchedule = { kind: 'step', decay: a.lrDecay ?? STEP_DECAY.decay, every: every(a.lrDecayEvery), after: after(a.lrDecayAfter) };
    } else if (a.lrSchedule === 'cosine') {
      train.lrSchedule = { kind: 'cosine', min: a.lrMin ?? 0, iterations: target };
    }
  } else {
    const saved = ck.train.lrSchedule;
    if (saved?.kind === 'step') {
      const inUpdates = (epochs: number) => `${epochs} (= ${updatesIn(epochs, batchesPerEpoch, 0)} updates)`;
      checkAgainst(a, 'lrDecay', '--lr-decay', a.lrDecay, saved.decay, 'decay factor');
      if (a.lrDecayEvery !== undefined && a.given.has('lrDecayEvery') && every(a.lrDecayEvery) !== saved.every) {
        throw mismatch(a, '--lr-decay-every', inUpdates(a.lrDecayEvery), `${saved.every} updates`, 'a decay every');
      }
      if (a.lrDecayAfter !== undefined && a.given.has('lrDecayAfter') && after(a.lrDecayAfter) !== saved.after) {
        throw mismatch(a, '--lr-decay-after', inUpdates(a.lrDecayAfter), `${saved.after} updates`, 'the first decay after');
      }
    }
    if (saved?.kind === 'cosine') {
      checkAgainst(a, 'lrMin', '--lr-min', a.lrMin, saved.min, 'learning-rate floor');
      if (train.learningRate < saved.min) {
        throw new CliError(`--lr ${train.learningRate} is below the cosine schedule's floor ${saved.min} in ${a.resume}: the rate would rise`);
      }
      if (target > saved.iterations) notes.push(`the cosine schedule ends at iteration ${saved.iterations}: the iterations after it use the floor rate ${saved.min}`);
    }
  }
}
