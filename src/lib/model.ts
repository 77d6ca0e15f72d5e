/**
 * The package's API over the engine, for both entry points (index.ts for Node, browser.ts for the
 * browser): they differ only in how a GPU device is acquired and released (a `Platform`).
 * Everything here maps the public types (types.ts) onto src/engine and src/checkpoint.
 */
import { checkCheckpointSettings, decodeCheckpoint, encodeCheckpoint } from '../checkpoint/model-checkpoint.ts';
import { splitTrainVal } from '../data/split.ts';
import { CHARSETS, DataError, DEFAULT_CHARSET, userTextFor, type Charset } from '../data/text.ts';
import { CharTokenizer, defaultPrime, WordTokenizer, type Tokenizer as EngineTokenizer } from '../data/tokenizer.ts';
import { createBackend } from '../engine/create-backend.ts';
import { Trainer } from '../engine/trainer.ts';
import { TrainingLoop } from '../engine/training-loop.ts';
import type { GpuContext } from '../gpu/device.ts';
import { samplingControlsError, streamState, zeroCarriedState, type Backend } from '../model/backend.ts';
import { fullModelConfig, type ModelConfig as EngineModel, type TrainConfig } from '../model/config.ts';
import { paramLayout, parameterCount } from '../model/layout.ts';
import { optimizerHyper, optimizerProblem, RMSPROP, SGD, type OptimizerOptions } from '../model/optimizer.ts';
import type {
  CreateModelOptions, DeviceOptions, FitOptions, FitResult, Gradients, LoadModelOptions, ModelConfig, ParameterInfo,
  RNNModel, SampleOptions, Tensor, TokenChunk, Tokenizer, TokenizerOptions, TrainingState,
} from './types.ts';

/** How an entry point gets a WebGPU device of its own, wraps a caller's, and gives its own back. */
export interface Platform {
  acquireGpu(): Promise<GpuContext>;
  wrapDevice(device: GPUDevice): Promise<GpuContext>;
  releaseGpu(ctx: GpuContext): void;
}

/** The defaults of ModelOptions: the CLI's (src/cli/train-settings.ts). */
const DEFAULTS = {
  cell: 'rnn', hiddenSize: 128, numLayers: 1, dropout: 0, seqLength: 64, batchSize: 32,
  optimizer: 'adam', lr: 3e-3, clip: 5, stateReset: 16, seed: 1,
  momentum: SGD.momentum, nesterov: false, rmsDecay: RMSPROP.alpha, lrSchedule: { kind: 'none' },
} as const satisfies Omit<ModelConfig, 'vocabSize'>;
/** The training loss reported by fit is the mean of this call's last this many iterations. */
const LOSS_WINDOW = 20;

const preparedText = (charset: Charset, lowercase: boolean, text: string): string =>
  userTextFor(charset, lowercase ? text.toLowerCase() : text);

class PublicTokenizer implements Tokenizer {
  constructor(
    readonly engine: EngineTokenizer,
    readonly charset: Charset = DEFAULT_CHARSET,
    readonly lowercase = false,
  ) {}
  /** The text as the vocabulary was built from it: lowercased and reduced to the charset. */
  prepare(text: string): string {
    return preparedText(this.charset, this.lowercase, text);
  }
  get level() {
    return this.engine.level;
  }
  get vocab(): readonly string[] {
    return this.engine.vocab;
  }
  get vocabSize(): number {
    return this.engine.vocab.length;
  }
  encode(text: string): Uint32Array {
    return this.engine.encode(this.prepare(text));
  }
  decode(ids: ArrayLike<number>): string {
    return this.engine.decode(ids);
  }
}

/**
 * A vocabulary built from `text`: its characters (Unicode code points, sorted), or its words,
 * spaces and punctuation marks, most frequent first. Save it with the model: ids mean nothing
 * without it.
 */
export function createTokenizer(text: string, options: TokenizerOptions = {}): Tokenizer {
  const { level = 'char', charset = DEFAULT_CHARSET, lowercase, ...word } = options;
  if (level !== 'char' && level !== 'word') throw new DataError(`tokenizer level must be 'char' or 'word', got ${JSON.stringify(level)}`);
  if (!CHARSETS.includes(charset)) throw new DataError(`charset must be one of ${CHARSETS.join(', ')}, got ${JSON.stringify(charset)}`);
  const lower = charset === 'letters' || lowercase === true;
  const body = preparedText(charset, lower, text);
  return new PublicTokenizer(level === 'char' ? CharTokenizer.fromText(body) : WordTokenizer.fromText(body, word), charset, lower);
}

function engineTokenizer(t: Tokenizer): EngineTokenizer {
  if (!(t instanceof PublicTokenizer)) throw new TypeError('the tokenizer must come from createTokenizer or a loaded model');
  return t.engine;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const finiteOrUndefined = (n: number) => (Number.isFinite(n) ? n : undefined);

/** A backend on the device the options ask for; the device acquired for it is released with it. */
async function openBackend(platform: Platform, o: DeviceOptions, model: EngineModel, train: TrainConfig, seed: number) {
  const own = !o.device;
  let ctx: GpuContext | undefined;
  const release = (c: GpuContext) => {
    if (own) platform.releaseGpu(c);
  };
  const made = await createBackend({
    choice: o.device ? 'gpu' : (o.backend ?? 'auto'), model, train, seed,
    acquireGpu: async () => (ctx = o.device ? await platform.wrapDevice(o.device as unknown as GPUDevice) : await platform.acquireGpu()),
    warn: o.onWarning ?? (() => undefined),
    releaseGpu: release,
  });
  return {
    backend: made.backend,
    close() {
      try {
        made.backend.destroy();
      } finally {
        if (ctx) release(ctx);
      }
    },
  };
}

interface Saved {
  iteration: number;
  stream?: { position: number; epoch: number };
  tokens?: number;
  trainLoss?: number;
  valLoss?: number;
  elapsed: number;
}

class Model implements RNNModel {
  readonly config: ModelConfig;
  readonly numParameters: number;
  private progress: Saved;
  private loop: TrainingLoop | undefined;
  private disposed = false;

  constructor(
    readonly tokenizer: PublicTokenizer,
    private readonly engine: { model: EngineModel; train: TrainConfig; seed: number },
    private readonly opened: Awaited<ReturnType<typeof openBackend>>,
    progress: Saved,
  ) {
    const { model, train, seed } = engine;
    const m = fullModelConfig(model);
    this.config = {
      cell: m.cell, vocabSize: m.vocabSize, hiddenSize: m.hiddenSize, numLayers: m.layers, dropout: m.dropout,
      seqLength: train.seqLength, batchSize: train.batchSize, optimizer: train.optimizer, lr: train.learningRate,
      clip: train.clip, stateReset: train.stateReset ?? 0, seed,
      ...optimizerHyperOf(train), lrSchedule: train.lrSchedule ?? { kind: 'none' },
    };
    this.numParameters = parameterCount(model);
    this.progress = progress;
  }

  private get backend(): Backend {
    if (this.disposed) throw new Error('this model was disposed');
    return this.opened.backend;
  }

  get device(): 'gpu' | 'cpu' {
    return this.backend.kind;
  }

  get deviceName(): string {
    return this.backend.description;
  }

  get iteration(): number {
    return this.progress.iteration;
  }

  /** Runs `fn` between two iterations when fit is running, at once otherwise. */
  private safely<T>(fn: () => Promise<T>): Promise<T> {
    return this.loop ? this.loop.atSafePoint(fn) : fn();
  }

  private ids(text: string | Uint32Array): Uint32Array {
    return typeof text === 'string' ? this.tokenizer.encode(text) : text;
  }

  async fit(text: string | Uint32Array, options: FitOptions = {}): Promise<FitResult> {
    if (this.loop) throw new Error('fit is already running on this model');
    const ids = this.ids(text);
    const { train, val } = splitTrainVal(ids, options.valFraction ?? 0.05);
    const trainer = new Trainer(this.backend, train, val);
    trainer.iteration = this.progress.iteration;
    // The same text (by length) continues where the streams stopped; other text starts over, as
    // does the same length split differently (another valFraction: the position may not fit).
    if (this.progress.stream && this.progress.tokens === ids.length) {
      try {
        trainer.restore({ iteration: trainer.iteration, stream: this.progress.stream });
      } catch {
        trainer.restore({ iteration: trainer.iteration, stream: { position: 0, epoch: 0 } });
      }
    }
    const count = options.epochs !== undefined ? Math.ceil(options.epochs * trainer.stream.batchesPerEpoch) : (options.iterations ?? 100);
    if (!(Number.isInteger(count) && count >= 0)) throw new RangeError(`iterations must be a non-negative integer, got ${count}`);
    const losses: number[] = [];
    let valLoss: number | undefined;
    const started = performance.now();
    const first = trainer.iteration;
    const loop = new TrainingLoop({
      trainer,
      until: first + count,
      evaluate: { every: { iterations: options.evalEvery ?? 0 }, batches: options.evalBatches, atEnd: 'always' },
      events: {
        onLoss: (iteration, loss) => {
          losses.push(loss);
          if (losses.length > LOSS_WINDOW) losses.shift();
          const seconds = (performance.now() - started) / 1000;
          options.onProgress?.({
            iteration, loss, epoch: trainer.stream.progress, valLoss,
            tokensPerSecond: seconds > 0 ? ((iteration - first) * trainer.tokensPerIteration) / seconds : 0,
          });
        },
        onEval: (_, loss) => {
          valLoss = loss;
        },
      },
    });
    const stop = () => loop.stop();
    options.signal?.addEventListener('abort', stop);
    if (options.signal?.aborted) loop.stop();
    this.loop = loop;
    try {
      const end = await loop.run();
      const trainLoss = mean(losses);
      this.progress = {
        iteration: end.iteration, stream: trainer.stream.state(), tokens: ids.length, elapsed: this.progress.elapsed + loop.elapsed,
        trainLoss: finiteOrUndefined(trainLoss) ?? this.progress.trainLoss, valLoss: valLoss ?? this.progress.valLoss,
      };
      return { iteration: end.iteration, loss: trainLoss, valLoss, stopped: end.reason === 'stopped', seconds: loop.elapsed };
    } finally {
      this.loop = undefined;
      options.signal?.removeEventListener('abort', stop);
    }
  }

  async evaluate(text: string | Uint32Array): Promise<number> {
    const ids = this.ids(text);
    return this.safely(() => new Trainer(this.backend, ids, ids).validate());
  }

  async sample(options: SampleOptions = {}): Promise<string> {
    return (await this.sampleMany(1, options))[0]!;
  }

  async sampleMany(count: number, options: SampleOptions = {}): Promise<string[]> {
    if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`count must be a positive integer, got ${count}`);
    const tokenizer = this.tokenizer.engine;
    const primeText = options.prime ?? defaultPrime(tokenizer);
    if (primeText === '') throw new DataError('prime is empty: give at least one character');
    const prime = this.tokenizer.encode(primeText);
    const length = options.length ?? 200;
    if (!(Number.isInteger(length) && length >= 0)) throw new RangeError(`length must be a non-negative integer, got ${length}`);
    const temperature = options.argmax ? 0 : (options.temperature ?? 0.8);
    if (!(temperature >= 0 && Number.isFinite(temperature))) throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`);
    const seed = (options.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
    const { topK, topP, repetitionPenalty, repetitionWindow } = options;
    const controls = { topK, topP, repetitionPenalty, repetitionWindow };
    const bad = samplingControlsError(controls);
    if (bad) throw new RangeError(bad);
    const request = { prime, length, temperature, seed, controls };
    return this.safely(async () => {
      const streams = count === 1 ? [await this.backend.sample(request)] : await this.backend.sampleMany(request, count);
      return streams.map((ids) => tokenizer.decode(ids));
    });
  }

  async save(): Promise<Uint8Array> {
    return this.safely(async () => {
      const state = await this.backend.exportState();
      const { model, train, seed } = this.engine;
      const p = this.progress;
      return encodeCheckpoint({
        model, train, tokenizer: this.tokenizer.engine.toJSON(), state,
        progress: {
          iteration: p.iteration, stream: p.stream ?? { position: 0, epoch: 0 }, seed, corpus: 'webgpu-rnn library',
          lowercase: this.tokenizer.lowercase, charset: this.tokenizer.charset,
          trainLoss: p.trainLoss, valLoss: p.valLoss, elapsed: p.elapsed, tokens: p.tokens, backend: this.backend.kind,
        } as Parameters<typeof encodeCheckpoint>[0]['progress'],
      });
    });
  }

  parameters(): ParameterInfo[] {
    return paramLayout(this.engine.model).slots.map((s) => ({ name: s.name, shape: [...s.shape], offset: s.offset, size: s.size }));
  }

  async stateDict(): Promise<Record<string, Tensor>> {
    const { params } = await this.exportState();
    return Object.fromEntries(this.parameters().map((s) => [s.name, { shape: s.shape, data: params.slice(s.offset, s.offset + s.size) }]));
  }

  async lossAndGradients(chunk: TokenChunk): Promise<Gradients> {
    const n = this.config.seqLength * this.config.batchSize;
    if (chunk.inputs.length !== n || chunk.targets.length !== n) {
      throw new RangeError(`a chunk holds seqLength x batchSize = ${n} inputs and targets, got ${chunk.inputs.length} and ${chunk.targets.length}`);
    }
    return this.safely(() => this.backend.gradients(chunk));
  }

  async exportState(): Promise<TrainingState> {
    return this.safely(() => this.backend.exportState());
  }

  importState(state: TrainingState): void {
    if (this.loop) throw new Error('importState while fit is running: stop it first (its signal)');
    this.backend.importState(state);
  }

  dispose(): void {
    if (this.disposed) return;
    this.loop?.abort(new Error('the model was disposed'));
    this.opened.close();
    this.disposed = true;
  }
}

export async function createModelOn(platform: Platform, options: CreateModelOptions): Promise<RNNModel> {
  const tokenizer = options.tokenizer;
  engineTokenizer(tokenizer);
  const o = { ...DEFAULTS, ...definedOnly(options) };
  const model: EngineModel = { cell: o.cell, vocabSize: tokenizer.vocabSize, hiddenSize: o.hiddenSize, layers: o.numLayers, dropout: o.dropout };
  fullModelConfig(model);
  const train: TrainConfig = {
    seqLength: o.seqLength, batchSize: o.batchSize, optimizer: o.optimizer, learningRate: o.lr, clip: o.clip, stateReset: o.stateReset,
    momentum: o.momentum, nesterov: o.nesterov, rmsDecay: o.rmsDecay, lrSchedule: o.lrSchedule,
  };
  checkTrain(train);
  const opened = await openBackend(platform, options, model, train, o.seed);
  return new Model(tokenizer as PublicTokenizer, { model, train, seed: o.seed }, opened, { iteration: 0, elapsed: 0 });
}

export async function loadModelOn(platform: Platform, bytes: Uint8Array, options: LoadModelOptions = {}): Promise<RNNModel> {
  const ck = decodeCheckpoint(bytes, 'model file');
  checkCheckpointSettings(ck, 'model file');
  const batchSize = options.batchSize ?? ck.train.batchSize;
  const train: TrainConfig = { ...ck.train, batchSize };
  checkTrain(train);
  const opened = await openBackend(platform, options, ck.model, train, ck.progress.seed);
  const p = ck.progress as typeof ck.progress & { tokens?: number };
  const sameShape = batchSize === ck.train.batchSize;
  try {
    opened.backend.importState({
      ...ck.state,
      // Another batch size: sampling keeps stream 0 of the carried state, further training starts from zeros.
      ...(sameShape ? {} : batchSize === 1 ? streamState(ck.model, ck.train.batchSize, ck.state) : zeroCarriedState(ck.model, batchSize)),
    });
  } catch (e) {
    opened.close();
    throw e;
  }
  return new Model(new PublicTokenizer(ck.tokenizerObject, ck.progress.charset ?? DEFAULT_CHARSET, ck.progress.lowercase), { model: ck.model, train, seed: ck.progress.seed }, opened, {
    iteration: p.iteration, stream: sameShape ? p.stream : undefined, tokens: p.tokens,
    trainLoss: p.trainLoss, valLoss: p.valLoss, elapsed: p.elapsed ?? 0,
  });
}

function optimizerHyperOf(t: OptimizerOptions): { momentum: number; nesterov: boolean; rmsDecay: number } {
  const h = optimizerHyper(t);
  return { momentum: h.momentum, nesterov: h.nesterov, rmsDecay: h.alpha };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkTrain(t: TrainConfig): void {
  for (const [name, n] of [['seqLength', t.seqLength], ['batchSize', t.batchSize]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be an integer >= 1, got ${n}`);
  }
  const problem = optimizerProblem(t);
  if (problem) throw new RangeError(problem);
  if (!(t.learningRate > 0) || !(t.clip > 0)) throw new RangeError(`lr and clip must be > 0, got ${t.learningRate} and ${t.clip}`);
  if (!(Number.isInteger(t.stateReset) && t.stateReset! >= 0)) throw new RangeError(`stateReset must be an integer >= 0, got ${t.stateReset}`);
}
