/**
 * `train`: a training run as a user sees it. The loop itself is the engine's (TrainingLoop, the
 * one the web page runs too); this file prepares the text and the backend, and maps the loop's
 * events to the progress bar, log lines and checkpoint files, and Ctrl-C to a stop that saves.
 */
import { TrainingLoop, type LoopCheckpoint } from '../engine/training-loop.ts';
import { DivergedError, Trainer } from '../engine/trainer.ts';
import { BatchStream } from '../data/split.ts';
import { DataError, DEFAULT_CHARSET, userTextFor } from '../data/text.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import { DeviceLostError } from '../gpu/backend.ts';
import { bindsInWindows, formatBytes } from '../gpu/memory.ts';
import { describeSamplingControls } from '../model/backend.ts';
import { fullModelConfig, type ModelConfig } from '../model/config.ts';
import { parameterCount } from '../model/layout.ts';
import { describeOptimizer } from '../model/optimizer.ts';
import { openBackend, type OpenBackend } from './backend.ts';
import { bestPath, checkOutputPath, outputRefusal, pruneBest, writeCheckpoint, type LoadedCheckpoint } from './checkpoint-files.ts';
import { describePreparation, isNamedCorpus, prepareCorpus, type PreparedCorpus } from './corpus.ts';
import { COMMAND } from './command.ts';
import { CliError, EXIT_OK, UsageError, oneLine } from './errors.ts';
import { duration, int, loss, unitOf } from './format.ts';
import { SIGINT_INTERRUPTION, type CliIO, type Interruption } from './io.ts';
import { Progress } from './progress.ts';
import { defaultPrime, encodePrime } from './sampling.ts';
import { applySchedule, runSettings, targetIterations, type Settings, type TrainArgs } from './train-settings.ts';

/** A second Ctrl-C sooner than this after the first is the same key press, relayed twice. */
const INTERRUPT_DEBOUNCE_MS = 300;
/** The displayed training loss is the mean of the last this many iterations. */
const LOSS_WINDOW = 20;

const finiteOrUndefined = (n: number) => (Number.isFinite(n) ? n : undefined);
/** Lets timers (the progress bar) and signals (Ctrl-C) run between iterations, even on the CPU. */
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/** What stopped a run, in a few words, for the messages. */
function describeInterruption(why: Interruption): string {
  if (why.kind === 'signal') return why.signal === 'SIGINT' ? 'Ctrl-C (SIGINT)' : why.signal;
  if (why.kind === 'orphaned') return 'the parent npm process is gone';
  return why.error.code === 'EPIPE' ? `${why.stream} was closed` : `writing to ${why.stream} failed (${oneLine(why.error.message)})`;
}

/**
 * Turns stop requests into a stop that saves. The first one (a signal, npm going away, a failing
 * stdout) stops the loop after the iteration in flight; the loop then saves a checkpoint and the
 * process exits with the request's code. A second signal quits without saving as soon as the
 * event loop runs (at once on the GPU, when the iteration computing ends on the CPU); the last
 * checkpoint written stays whole, writes being atomic. Before training starts there is nothing to
 * save: a request ends the run at once.
 */
class Stopper {
  private first?: { why: Interruption; at: number };
  private loop?: TrainingLoop;
  private bar?: Progress;

  constructor(private readonly io: CliIO) {}

  private canWrite(stream: 'stdout' | 'stderr'): boolean {
    return this.io.writable?.(stream) ?? true;
  }

  /** A line for the user: stdout when it still works, else stderr. */
  private tell(line: string, preferStderr = false): void {
    if (!preferStderr && this.canWrite('stdout')) this.io.stdout.write(`${line}\n`);
    else if (this.canWrite('stderr')) this.io.stderr.write(`${line}\n`);
  }

  attach(loop: TrainingLoop, bar: Progress): void {
    this.loop = loop;
    this.bar = bar;
    if (this.first) loop.stop();
  }

  request(why: Interruption): void {
    const { io } = this;
    if (this.first) {
      if (why.kind !== 'signal') return; // a pipe or npm going away while already stopping changes nothing
      const prev = this.first.why;
      // Only a second signal quits. A signal right after npm went away or a pipe closed is most
      // likely the same event seen twice (a terminal's Ctrl-C reaches npm and us): it becomes the reason.
      if (prev.kind !== 'signal') {
        this.first = { why, at: io.now() };
        return;
      }
      // One key press can arrive twice in quick succession: from the terminal and from npm's (or
      // tsx's) relay. Count that as one.
      if (prev.signal === why.signal && io.now() - this.first.at < INTERRUPT_DEBOUNCE_MS) return;
      this.bar?.stop();
      this.tell(`interrupted again: quitting without saving (${why.signal}); the checkpoint on disk is the last one written`, true);
      io.exitNow(why.code);
      return;
    }
    this.first = { why, at: io.now() };
    if (!this.loop) {
      // Nothing trained yet, nothing to save.
      if (why.kind === 'output' && why.error.code !== 'EPIPE') this.tell(`error: ${describeInterruption(why)}`, true);
      else this.tell(`${describeInterruption(why)}: stopped before training started, nothing saved`, why.kind === 'output');
      io.exitNow(why.code);
      return;
    }
    this.loop.stop();
    const again = why.kind === 'signal' ? ` (${why.signal === 'SIGINT' ? 'Ctrl-C again' : 'another signal'} to quit without saving)` : '';
    const line = `${describeInterruption(why)}: stopping after the iterations in flight to save a checkpoint${again}`;
    // A failing output gets one line, at the end; a signal is acknowledged at once.
    if (why.kind !== 'output' && this.canWrite('stdout')) this.bar?.notice(line);
  }

  /** After the loop stopped and saved: the one line that says so, and the exit code. */
  report(iteration: number, ckPath: string): number {
    const why = this.first?.why ?? SIGINT_INTERRUPTION;
    if (why.kind === 'output' || !this.canWrite('stdout')) {
      const error = why.kind === 'output' && why.error.code !== 'EPIPE' ? 'error: ' : '';
      this.tell(`${error}${describeInterruption(why)}: stopped at iteration ${int(iteration)}, saved ${ckPath} (resume with --resume ${ckPath})`, true);
    } else {
      this.io.stdout.write(`interrupted at iteration ${int(iteration)}: saved ${ckPath}\nresume with: ${COMMAND} train --resume ${ckPath}\n`);
    }
    return why.code;
  }
}

/** "LSTM, 2 layers of 128, dropout 0.2" / "RNN, hidden 128". */
export function describeModel(model: ModelConfig): string {
  const { cell, layers, hiddenSize, dropout } = fullModelConfig(model);
  const shape = layers > 1 ? `${layers} layers of ${hiddenSize}` : `hidden ${hiddenSize}`;
  return `${cell.toUpperCase()}, ${shape}${dropout > 0 ? `, dropout ${dropout}` : ''}`;
}

/** Everything a run needs before a backend exists; every check that can fail cheaply fails here. */
interface Plan {
  ck?: LoadedCheckpoint;
  s: Settings;
  data: PreparedCorpus;
  tokenizer: Tokenizer;
  model: ModelConfig;
  ckPath: string;
  batchesPerEpoch: number;
  target: number;
  prime?: Uint32Array;
  notes: string[];
  loadSeconds: number;
}

function planRun(a: TrainArgs, io: CliIO): Plan {
  if (a.epochs !== undefined && a.iterations !== undefined) throw new UsageError('give --iterations or --epochs, not both');
  const notes: string[] = [];
  const { ck, s } = runSettings(a, notes);
  const { train } = s;

  const t0 = io.now();
  const data = ck
    ? prepareCorpus({ spec: s.corpus, lowercase: s.lowercase, charset: s.charset, maxMb: a.maxCorpusMb }, ck.tokenizerObject)
    : prepareCorpus({ spec: s.corpus, lowercase: s.lowercase, charset: s.charset, maxMb: a.maxCorpusMb }, { level: a.level, maxVocab: a.maxVocab, minCount: a.minCount, unk: a.unk });
  const { tokenizer } = data;
  if (ck?.progress.tokens !== undefined && ck.progress.tokens !== data.ids.length) {
    throw new CliError(
      `${s.corpus} gives ${int(data.ids.length)} tokens but ${a.resume} was trained on ${int(ck.progress.tokens)}: ` +
      `it is not the same text (give --corpus with the file it was trained on)`,
    );
  }
  const model: ModelConfig = s.model ?? {
    cell: a.cell, vocabSize: tokenizer.vocab.length, hiddenSize: a.hidden, layers: a.layers, dropout: a.dropout,
  };
  if (!ck) s.checkpointPath ||= `checkpoints/${data.stem}-${tokenizer.level}${data.charset === DEFAULT_CHARSET ? '' : `-${data.charset}`}.safetensors`;
  const ckPath = s.checkpointPath;
  let stream: BatchStream;
  try {
    stream = new BatchStream(data.train, train.batchSize, train.seqLength);
  } catch (e) {
    if (e instanceof DataError) throw new DataError(`${s.corpus}: ${e.message}`);
    throw e;
  }
  const target = targetIterations(a, stream, ck);
  applySchedule(a, s, ck, stream.batchesPerEpoch, target, notes);
  const startIteration = ck?.progress.iteration ?? 0;
  if (target <= startIteration) {
    throw new CliError(
      `${a.resume} is already at iteration ${startIteration} of ${target}: pass a larger --iterations (or --epochs) to train further`,
    );
  }
  checkOutputPath(ckPath, corpusFiles(s.corpus));
  const prime = a.sampleEvery > 0 ? encodePrime(tokenizer, userTextFor(s.charset, a.prime ?? defaultPrime(tokenizer))) : undefined;
  if (prime?.unknown.length) notes.push(`--prime: ${prime.unknown.map((t) => JSON.stringify(t)).join(', ')} not in the vocabulary, read as <unk>`);
  return {
    ck, s, data, tokenizer, model, ckPath, batchesPerEpoch: stream.batchesPerEpoch, target, prime: prime?.ids, notes,
    loadSeconds: (io.now() - t0) / 1000,
  };
}

function printSetup(a: TrainArgs, p: Plan, opened: OpenBackend, say: (line: string) => void, io: CliIO): void {
  const { s, data, tokenizer, model, target } = p;
  const { train } = s;
  const { backend } = opened;
  const unit = unitOf(tokenizer.level);
  const gpuNote = opened.gpu?.isFallback ? ' (a software adapter: expect it to be slow)' : '';
  say(`backend: ${backend.kind === 'gpu' ? 'GPU' : 'CPU'}, ${backend.description}${gpuNote}`);
  if (opened.kernels) say(opened.kernels.line);
  say(
    `corpus: ${s.corpus}${describePreparation(data)}, ${int(data.chars)} chars` +
    `${unit === 'char' ? '' : ` = ${int(data.ids.length)} tokens (words, spaces and punctuation)`}, ` +
    `vocabulary ${int(tokenizer.vocab.length)}; ${int(data.train.length)} for training, ${int(data.val.length)} held out ` +
    `(loaded in ${p.loadSeconds.toFixed(1)}s)`,
  );
  say(
    `model: ${describeModel(model)}, ${int(parameterCount(model))} parameters, ` +
    `${backend.kind === 'gpu' ? 'GPU memory' : 'memory'} ${formatBytes(opened.memoryBytes)}` +
    // The split plan (src/gpu/plan.ts): parameters past the adapter's binding limit.
    (opened.gpu && bindsInWindows(model, train, opened.gpu.limits)
      ? ` (parameters bound in windows of up to ${formatBytes(opened.gpu.limits.maxStorageBufferBindingSize)}, the adapter's binding limit)`
      : ''),
  );
  say(
    `training: ${int(target)} iterations of ${train.batchSize} x ${train.seqLength} ${unit}s (${(target / p.batchesPerEpoch).toFixed(2)} epochs), ` +
    `${describeOptimizer(train)}, clip ${train.clip}, ` +
    `${train.stateReset ? `state reset every ${train.stateReset}` : 'state carried'}, seed ${s.seed}`,
  );
  say(`checkpoint: ${p.ckPath} (${a.checkpointEvery > 0 ? `every ${a.checkpointEvery} iterations, ` : ''}at the end and on Ctrl-C)`);
  if (data.val.length < train.batchSize * (train.seqLength + 1)) {
    io.stderr.write(
      `note: the held-out ${int(data.val.length)} ${unit}s are fewer than one batch of ${train.batchSize} x ${train.seqLength + 1}: no validation loss\n`,
    );
  }
  for (const n of p.notes) io.stderr.write(`note: ${n}\n`);
}

/** The files a run reads, which no output may replace. */
const corpusFiles = (spec: string): string[] => (isNamedCorpus(spec) ? [] : [spec]);

export async function runTrain(a: TrainArgs, io: CliIO): Promise<number> {
  const say = (line: string) => {
    if (!a.quiet) io.stdout.write(`${line}\n`);
  };
  // From here on a signal or a failing stdout stops the run instead of ending the process.
  const stopper = new Stopper(io);
  const unregister = io.onInterrupt((why) => stopper.request(why ?? SIGINT_INTERRUPTION));
  try {
    return await train(a, io, say, stopper);
  } finally {
    unregister();
  }
}

async function train(a: TrainArgs, io: CliIO, say: (line: string) => void, stopper: Stopper): Promise<number> {
  const p = planRun(a, io);
  const { ck, s, data, tokenizer, model, ckPath, target } = p;
  const { train } = s;

  // The GPU's size limits are checked here, before anything is allocated.
  const warnings: string[] = [];
  const opened = await openBackend(io, s.backend, model, train, s.seed, (line) => warnings.push(line), a.tune, ck?.progress.kernels);
  const { backend } = opened;
  if (ck?.progress.backend && ck.progress.backend !== backend.kind) {
    warnings.push(
      `${a.resume} was trained on the ${ck.progress.backend.toUpperCase()} and continues on the ${backend.kind.toUpperCase()}: ` +
      'the run will match an uninterrupted one to float32 rounding, not bit for bit',
    );
  }
  let progress: Progress | undefined;
  try {
    for (const w of warnings) io.stderr.write(`note: ${oneLine(w)}\n`);
    printSetup(a, p, opened, say, io);

    const trainer = new Trainer(backend, data.train, data.val);
    if (ck) {
      backend.importState(ck.state);
      trainer.restore(ck.progress);
      say(`resuming ${a.resume} at iteration ${int(trainer.iteration)} (epoch ${trainer.stream.progress.toFixed(2)})`);
    }
    let lastSaved: { path: string; iteration: number } | undefined = ck ? { path: a.resume!, iteration: trainer.iteration } : undefined;
    let best = ck?.progress.bestValLoss ?? Infinity;
    let bestFile: string | undefined;
    let valLoss = ck?.progress.valLoss ?? NaN;
    const window: number[] = [];
    const trainLoss = () => (window.length ? window.reduce((x, y) => x + y, 0) / window.length : ck?.progress.trainLoss ?? NaN);
    const bar = new Progress(io, {
      total: target, start: trainer.iteration, tokensPerIteration: trainer.tokensPerIteration,
      level: tokenizer.level, quiet: a.quiet, printEvery: a.printEvery,
    });
    progress = bar;
    bar.setValLoss(valLoss);

    const save = (path: string, c: LoopCheckpoint) =>
      writeCheckpoint(path, {
        model, train, tokenizer: tokenizer.toJSON(), state: c.state,
        progress: {
          ...c.progress, seed: s.seed, corpus: data.source, lowercase: data.lowercase, charset: data.charset,
          trainLoss: finiteOrUndefined(trainLoss()), valLoss: finiteOrUndefined(valLoss), elapsed: c.elapsed,
          iterations: target, tokens: data.ids.length, bestValLoss: finiteOrUndefined(best), backend: backend.kind,
          kernels: opened.kernels?.choice,
        },
      });
    const prime = p.prime;
    const loop: TrainingLoop = new TrainingLoop({
      trainer,
      until: target,
      evaluate: { every: { iterations: a.evalEvery }, batches: a.evalBatches, atEnd: 'finished' },
      sample: prime && {
        every: { iterations: a.sampleEvery },
        options: (it) => ({ prime, length: a.sampleLength, temperature: a.temperature, seed: (s.seed + it) >>> 0, controls: a.controls, count: a.numSamples }),
        atEnd: true,
      },
      checkpoint: { every: { iterations: a.checkpointEvery } },
      now: () => io.now(),
      yieldToEvents: yieldToEventLoop,
      elapsedBefore: ck?.progress.elapsed ?? 0,
      events: {
        onStep: (it) => io.onStep?.(it, opened.gpu),
        onLoss: (it, l) => {
          window.push(l);
          if (window.length > LOSS_WINDOW) window.shift();
          io.onLoss?.(it, l);
          bar.update(it, trainLoss());
        },
        onEval: async (it, v, final) => {
          valLoss = v;
          bar.setValLoss(v);
          if (v < best) {
            best = v;
            const file = bestPath(ckPath, v);
            // The name is known only now: it gets the checks the main path got at the start, and a
            // refusal costs the best-model copy, never the run.
            const refused = outputRefusal(file, corpusFiles(s.corpus), 'best model');
            if (refused) io.stderr.write(`note: ${oneLine(refused)}; not saved\n`);
            else {
              await save(file, await loop.checkpoint());
              await pruneBest(ckPath, file, v);
              bestFile = file;
            }
          }
          if (!final) bar.log(`iteration ${int(it)}: validation loss ${loss(v, tokenizer.level)}${bestFile && best === v ? `, best so far -> ${bestFile}` : ''}`);
        },
        onSample: (it, _tokens, _o, all) => {
          const n = all.length;
          const header = (i: number) => `----- sample ${n > 1 ? `${i + 1} of ${n} ` : ''}at iteration ${int(it)} (temperature ${a.temperature}${describeSamplingControls(a.controls)}) -----`;
          bar.log(`${all.map((t, i) => `${header(i)}\n${a.prime ?? ''}${tokenizer.decode(t)}`).join('\n')}\n-----`);
        },
        onCheckpoint: async (c) => {
          await save(ckPath, c);
          lastSaved = { path: ckPath, iteration: c.progress.iteration };
        },
        onResume: () => bar.paused(),
        onEnding: (reason) => {
          bar.stop();
          if (reason === 'finished' && trainer.canValidate) say(`validating on ${int(trainer.validationTokens())} of the ${int(data.val.length)} held-out ${unitOf(tokenizer.level)}s (every full batch)...`);
        },
      },
    });

    stopper.attach(loop, bar);

    let end;
    try {
      bar.start();
      end = await loop.run();
    } catch (e) {
      bar.stop();
      const kept = lastSaved ? `the last good checkpoint is kept: ${lastSaved.path} (iteration ${int(lastSaved.iteration)})` : 'no checkpoint was written';
      if (e instanceof DivergedError) throw new DivergedError(`${e.message}; ${kept}`);
      const lost = opened.lost();
      if (e instanceof DeviceLostError || lost !== undefined) {
        throw new DeviceLostError(`the GPU device was lost (${oneLine(lost ?? (e as Error).message)}) at iteration ${int(trainer.iteration)}; ${kept}`);
      }
      throw e;
    }
    if (end.reason === 'stopped') return stopper.report(end.iteration, ckPath);
    io.stdout.write(
      `done: iteration ${int(end.iteration)} in ${duration(loop.elapsed)}; training loss ${loss(trainLoss(), tokenizer.level)}, ` +
      `validation loss ${loss(valLoss, tokenizer.level)}\n`,
    );
    io.stdout.write(`saved ${ckPath}${bestFile ? `; best validation loss in ${bestFile}` : ''}\n`);
    say(`sample from it with: ${COMMAND} sample --checkpoint ${ckPath}`);
    return EXIT_OK;
  } finally {
    progress?.stop();
    opened.close();
  }
}
