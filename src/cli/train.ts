/**
 * `train`: the training loop as a user runs it. Several iterations stay in flight (their losses
 * arrive later and are awaited in order from a small queue) so the GPU never waits on a readback;
 * the queue is drained only where the CPU needs the model itself: validation, samples, checkpoints.
 */
import { statSync } from 'node:fs';
import type { BackendChoice } from '../engine/create-backend.ts';
import { DivergedError, Trainer } from '../engine/trainer.ts';
import { BatchStream } from '../data/split.ts';
import { DataError } from '../data/text.ts';
import type { Tokenizer, TokenizerLevel } from '../data/tokenizer.ts';
import { DeviceLostError } from '../gpu/backend.ts';
import { formatBytes } from '../gpu/memory.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import type { CellType } from '../model/cells.ts';
import type { OptimizerName } from '../model/optimizer.ts';
import { paramLayout } from '../model/layout.ts';
import { openBackend, type OpenBackend } from './backend.ts';
import {
  bestPath, mainPathOf, pruneBest, readCheckpoint, writeCheckpoint, type LoadedCheckpoint,
} from './checkpoint-files.ts';
import { prepareCorpus, type PreparedCorpus } from './corpus.ts';
import { CliError, EXIT_INTERRUPTED, EXIT_OK, UsageError, oneLine } from './errors.ts';
import { duration, int, loss, unitOf } from './format.ts';
import type { CliIO } from './io.ts';
import { Progress } from './progress.ts';
import { defaultPrime, encodePrime, generate } from './sampling.ts';

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
  /** Flags given on the command line, as opposed to defaults (a resumed run checks them against its checkpoint). */
  given: ReadonlySet<string>;
}

/** How many iterations may be enqueued ahead of the oldest loss still unread. */
const IN_FLIGHT = 3;
/** A second Ctrl-C sooner than this after the first is the same key press, relayed twice. */
const INTERRUPT_DEBOUNCE_MS = 300;
/** The displayed training loss is the mean of the last this many iterations. */
const LOSS_WINDOW = 20;

const allFinite = (a: Float32Array) => a.every(Number.isFinite);
const finiteOrUndefined = (n: number) => (Number.isFinite(n) ? n : undefined);
/** Lets timers (the progress bar) and signals (Ctrl-C) run between iterations, even on the CPU. */
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

interface Settings {
  model?: ModelConfig;
  train: TrainConfig;
  seed: number;
  corpus: string;
  lowercase?: boolean;
  checkpointPath: string;
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
  };
}

function targetIterations(a: TrainArgs, stream: BatchStream, ck: LoadedCheckpoint | undefined): number {
  if (a.epochs !== undefined) return Math.max(1, Math.ceil(a.epochs * stream.batchesPerEpoch));
  if (a.iterations !== undefined) return a.iterations;
  return ck?.progress.iterations ?? TRAIN_DEFAULTS.iterations;
}

/** "LSTM, 2 layers of 128, dropout 0.2" / "RNN, hidden 128". */
export function describeModel(model: ModelConfig): string {
  const { cell, layers, hiddenSize, dropout } = fullModelConfig(model);
  const shape = layers > 1 ? `${layers} layers of ${hiddenSize}` : `hidden ${hiddenSize}`;
  return `${cell.toUpperCase()}, ${shape}${dropout > 0 ? `, dropout ${dropout}` : ''}`;
}

function parameterCount(model: ModelConfig): number {
  return paramLayout(model).slots.reduce((n, s) => n + s.size, 0);
}

export async function runTrain(a: TrainArgs, io: CliIO): Promise<number> {
  if (a.epochs !== undefined && a.iterations !== undefined) throw new UsageError('give --iterations or --epochs, not both');
  const say = (line: string) => {
    if (!a.quiet) io.stdout.write(`${line}\n`);
  };
  const notes: string[] = [];

  // --- Settings, from the flags or from the checkpoint being resumed.
  let ck: LoadedCheckpoint | undefined;
  let s: Settings;
  if (a.resume) {
    ck = readCheckpoint(a.resume);
    s = resumeSettings(a, ck, notes);
  } else {
    s = {
      train: { seqLength: a.seqLength, batchSize: a.batchSize, optimizer: a.optimizer, learningRate: a.lr, clip: a.clip, stateReset: a.stateReset },
      seed: a.seed,
      corpus: a.corpus,
      lowercase: a.lowercase,
      checkpointPath: a.checkpoint ?? '',
    };
  }
  const { train } = s;

  // --- The text.
  const t0 = io.now();
  const data: PreparedCorpus = ck
    ? prepareCorpus({ spec: s.corpus, lowercase: s.lowercase }, ck.tokenizerObject)
    : prepareCorpus({ spec: s.corpus, lowercase: s.lowercase }, { level: a.level, maxVocab: a.maxVocab, minCount: a.minCount, unk: a.unk });
  const tokenizer: Tokenizer = data.tokenizer;
  if (ck?.progress.tokens !== undefined && ck.progress.tokens !== data.ids.length) {
    throw new CliError(
      `${s.corpus} gives ${int(data.ids.length)} tokens but ${a.resume} was trained on ${int(ck.progress.tokens)}: ` +
      `it is not the same text (give --corpus with the file it was trained on)`,
    );
  }
  const model: ModelConfig = s.model ?? {
    cell: a.cell, vocabSize: tokenizer.vocab.length, hiddenSize: a.hidden, layers: a.layers, dropout: a.dropout,
  };
  if (!ck) s.checkpointPath ||= `checkpoints/${data.stem}-${tokenizer.level}.safetensors`;
  const ckPath = s.checkpointPath;
  let stream: BatchStream;
  try {
    stream = new BatchStream(data.train, train.batchSize, train.seqLength);
  } catch (e) {
    if (e instanceof DataError) throw new DataError(`${s.corpus}: ${e.message}`);
    throw e;
  }
  const target = targetIterations(a, stream, ck);
  const startIteration = ck?.progress.iteration ?? 0;
  if (target <= startIteration) {
    throw new CliError(
      `${a.resume} is already at iteration ${startIteration} of ${target}: pass a larger --iterations (or --epochs) to train further`,
    );
  }
  try {
    if (statSync(ckPath).isDirectory()) throw new CliError(`--checkpoint ${ckPath} is a directory: give a file name`);
  } catch (e) {
    if (e instanceof CliError) throw e;
  }
  const primeText = a.prime ?? defaultPrime(tokenizer);
  const prime = a.sampleEvery > 0 ? encodePrime(tokenizer, primeText) : undefined;
  if (prime?.unknown.length) notes.push(`--prime: ${prime.unknown.map((t) => JSON.stringify(t)).join(', ')} not in the vocabulary, read as <unk>`);

  // --- The backend (the GPU's size limits are checked here, before anything is allocated).
  const warnings: string[] = [];
  const opened: OpenBackend = await openBackend(io, a.backend, model, train, s.seed, (line) => warnings.push(line));
  const { backend } = opened;
  let unregister: (() => void) | undefined;
  let progressBar: Progress | undefined;
  try {
    for (const w of warnings) io.stderr.write(`note: ${oneLine(w)}\n`);
    const unit = unitOf(tokenizer.level);
    const valAvailable = data.val.length >= train.batchSize * (train.seqLength + 1);
    const kind = backend.kind === 'gpu' ? 'GPU' : 'CPU';
    const gpuNote = opened.gpu?.isFallback ? ' (a software adapter: expect it to be slow)' : '';
    say(`backend: ${kind}, ${backend.description}${gpuNote}`);
    say(
      `corpus: ${s.corpus}${data.lowercase ? ' (lowercased)' : ''}, ${int(data.chars)} chars` +
      `${unit === 'char' ? '' : ` = ${int(data.ids.length)} tokens (words, spaces and punctuation)`}, ` +
      `vocabulary ${int(tokenizer.vocab.length)}; ${int(data.train.length)} for training, ${int(data.val.length)} held out ` +
      `(loaded in ${((io.now() - t0) / 1000).toFixed(1)}s)`,
    );
    say(
      `model: ${describeModel(model)}, ${int(parameterCount(model))} parameters, ` +
      `${backend.kind === 'gpu' ? 'GPU memory' : 'memory'} ${formatBytes(opened.memoryBytes)}`,
    );
    const epochs = target / stream.batchesPerEpoch;
    say(
      `training: ${int(target)} iterations of ${train.batchSize} x ${train.seqLength} ${unit}s (${epochs.toFixed(2)} epochs), ` +
      `${train.optimizer === 'adam' ? 'Adam' : 'Adagrad'} lr ${train.learningRate}, clip ${train.clip}, ` +
      `${train.stateReset ? `state reset every ${train.stateReset}` : 'state carried'}, seed ${s.seed}`,
    );
    say(
      `checkpoint: ${ckPath} (${a.checkpointEvery > 0 ? `every ${a.checkpointEvery} iterations, ` : ''}at the end and on Ctrl-C)`,
    );
    if (!valAvailable) {
      io.stderr.write(
        `note: the held-out ${int(data.val.length)} ${unit}s are fewer than one batch of ${train.batchSize} x ${train.seqLength + 1}: no validation loss\n`,
      );
    }
    for (const n of notes) io.stderr.write(`note: ${n}\n`);

    // --- State.
    const trainer = new Trainer(backend, data.train, data.val);
    if (ck) {
      backend.importState(ck.state);
      trainer.restore(ck.progress);
      say(`resuming ${a.resume} at iteration ${int(startIteration)} (epoch ${trainer.stream.progress.toFixed(2)})`);
    }
    const elapsedBefore = ck?.progress.elapsed ?? 0;
    const started = io.now();
    const elapsed = () => elapsedBefore + (io.now() - started) / 1000;
    let lastSaved: { path: string; iteration: number } | undefined = ck ? { path: a.resume!, iteration: startIteration } : undefined;
    let best = ck?.progress.bestValLoss ?? Infinity;
    let bestFile: string | undefined;
    let valLoss = ck?.progress.valLoss ?? NaN;
    const window: number[] = [];
    const trainLoss = () => (window.length ? window.reduce((x, y) => x + y, 0) / window.length : ck?.progress.trainLoss ?? NaN);

    const progress = new Progress(io, {
      total: target, start: startIteration, tokensPerIteration: trainer.tokensPerIteration,
      level: tokenizer.level, quiet: a.quiet, printEvery: a.printEvery,
    });
    progressBar = progress;
    progress.setValLoss(valLoss);

    // --- Ctrl-C: the first stops after the iteration in flight and saves; the second quits at once.
    let interrupted = false;
    let interruptedAt = 0;
    unregister = io.onInterrupt(() => {
      // tsx (npm start) relays Ctrl-C to its child when the child has not acknowledged it within
      // 30 ms, so one key press can arrive twice in quick succession: count that as one.
      if (interrupted && io.now() - interruptedAt < INTERRUPT_DEBOUNCE_MS) return;
      if (interrupted) {
        progress.stop();
        io.stderr.write('interrupted again: quitting without saving\n');
        io.exitNow(EXIT_INTERRUPTED);
        return;
      }
      interrupted = true;
      interruptedAt = io.now();
      progress.notice('stopping after the iterations in flight to save a checkpoint (Ctrl-C again to quit at once)');
    });

    const save = async (path: string) => {
      const state = await backend.exportState();
      if (!allFinite(state.params) || !allFinite(state.hidden)) {
        throw new DivergedError(
          `the model's parameters became NaN or infinite by iteration ${trainer.iteration}: ` +
          `lower --lr (now ${train.learningRate}) or --clip (now ${train.clip})`,
        );
      }
      await writeCheckpoint(path, {
        model, train, tokenizer: tokenizer.toJSON(), state,
        progress: {
          ...trainer.progress(), seed: s.seed, corpus: data.source, lowercase: data.lowercase,
          trainLoss: finiteOrUndefined(trainLoss()), valLoss: finiteOrUndefined(valLoss), elapsed: elapsed(),
          iterations: target, tokens: data.ids.length, bestValLoss: finiteOrUndefined(best),
        },
      });
    };
    const saveMain = async () => {
      await save(ckPath);
      lastSaved = { path: ckPath, iteration: trainer.iteration };
    };
    const validate = async (maxBatches: number) => {
      if (!valAvailable) return NaN;
      const v = await trainer.validate(maxBatches);
      if (!Number.isFinite(v)) {
        throw new DivergedError(
          `the validation loss became ${v} at iteration ${trainer.iteration}: ` +
          `lower --lr (now ${train.learningRate}) or --clip (now ${train.clip})`,
        );
      }
      valLoss = v;
      progress.setValLoss(v);
      if (v < best) {
        best = v;
        const file = bestPath(ckPath, v);
        await save(file);
        await pruneBest(ckPath, file, v);
        bestFile = file;
      }
      return v;
    };
    let lastSampleAt = -1;
    const sample = async () => {
      const text = await generate(backend, tokenizer, prime!.ids, a.sampleLength, a.temperature, s.seed + trainer.iteration);
      lastSampleAt = trainer.iteration;
      progress.log(`----- sample at iteration ${int(trainer.iteration)} (temperature ${a.temperature}) -----\n${a.prime ?? ''}${text}\n-----`);
    };

    const queue: { iteration: number; loss: Promise<number> }[] = [];
    const settle = async () => {
      const item = queue.shift()!;
      const l = await item.loss;
      window.push(l);
      if (window.length > LOSS_WINDOW) window.shift();
      io.onLoss?.(item.iteration, l);
      progress.update(item.iteration, trainLoss());
    };
    const drain = async () => {
      while (queue.length) await settle();
    };

    let finished = false;
    try {
      progress.start();
      while (trainer.iteration < target && !interrupted) {
        const step = await trainer.step();
        step.loss.catch(() => undefined); // rejections are handled when settled, in order
        queue.push(step);
        await io.onStep?.(step.iteration, opened.gpu);
        while (queue.length >= IN_FLIGHT) await settle();
        const it = step.iteration;
        const due = (n: number) => n > 0 && it % n === 0 && it < target;
        const evalNow = due(a.evalEvery);
        const sampleNow = due(a.sampleEvery);
        const saveNow = due(a.checkpointEvery);
        if (evalNow || sampleNow || saveNow) {
          await drain();
          if (evalNow) {
            const v = await validate(a.evalBatches || Infinity);
            if (Number.isFinite(v)) {
              progress.log(`iteration ${int(it)}: validation loss ${loss(v, tokenizer.level)}${bestFile && best === v ? `, best so far -> ${bestFile}` : ''}`);
            }
          }
          if (sampleNow) await sample();
          if (saveNow) await saveMain();
          progress.paused();
        }
        await yieldToEventLoop();
      }
      await drain();
      if (!interrupted && valAvailable) {
        progress.stop();
        say(`validating on all ${int(data.val.length)} held-out ${unit}s...`);
        await validate(Infinity);
      }
      if (interrupted) {
        await saveMain();
        progress.stop();
        io.stdout.write(
          `interrupted at iteration ${int(trainer.iteration)}: saved ${ckPath}\n` +
          `resume with: npm run rnn -- train --resume ${ckPath}\n`,
        );
        return EXIT_INTERRUPTED;
      }
      progress.stop();
      if (a.sampleEvery > 0 && lastSampleAt !== trainer.iteration) await sample();
      await saveMain();
      finished = true;
    } catch (e) {
      progress.stop();
      const kept = lastSaved ? `the last good checkpoint is kept: ${lastSaved.path} (iteration ${int(lastSaved.iteration)})` : 'no checkpoint was written';
      if (e instanceof DivergedError) {
        throw new DivergedError(`${e.message}; ${kept}`);
      }
      const lost = opened.lost();
      if (e instanceof DeviceLostError || lost !== undefined) {
        throw new DeviceLostError(`the GPU device was lost (${oneLine(lost ?? (e as Error).message)}) at iteration ${int(trainer.iteration)}; ${kept}`);
      }
      throw e;
    }

    if (finished) {
      io.stdout.write(
        `done: iteration ${int(trainer.iteration)} in ${duration(elapsed())}; training loss ${loss(trainLoss(), tokenizer.level)}, ` +
        `validation loss ${loss(valLoss, tokenizer.level)}\n`,
      );
      io.stdout.write(`saved ${ckPath}${bestFile ? `; best validation loss in ${bestFile}` : ''}\n`);
      say(`sample from it with: npm run rnn -- sample --checkpoint ${ckPath}`);
    }
    return EXIT_OK;
  } finally {
    progressBar?.stop();
    unregister?.();
    opened.close();
  }
}
