/**
 * The engine's side of the web page: owns the text, the Backend and the Trainer, runs the
 * training loop, and answers the page's requests (protocol.ts). No DOM: worker.ts wires it to
 * postMessage, IndexedDB and navigator.gpu, and the Node tests drive it directly on the CPU.
 *
 * Training keeps the GPU fed the way the engine intends: Trainer.step() returns once an iteration
 * is enqueued and its loss arrives later, so the loop only waits when the backend's ring of loss
 * readbacks is full. Everything that must see a consistent model (validation, samples,
 * snapshots, checkpoints, moving to another backend) runs between two steps, at a "safe point".
 */
import type { Backend, ModelState } from '../model/backend.ts';
import { createBackend } from '../engine/create-backend.ts';
import { DivergedError, Trainer } from '../engine/trainer.ts';
import type { TrainerProgress } from '../checkpoint/model-checkpoint.ts';
import type { GpuContext } from '../gpu/device.ts';
import { DeviceLostError, GpuBackend } from '../gpu/backend.ts';
import { checkFits, DeviceLimitError } from '../gpu/memory.ts';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointData } from '../checkpoint/model-checkpoint.ts';
import { CheckpointError } from '../checkpoint/safetensors.ts';
import { BatchStream, splitTrainVal } from '../data/split.ts';
import { DataError, decodeUtf8 } from '../data/text.ts';
import { CharTokenizer, WordTokenizer, type Tokenizer } from '../data/tokenizer.ts';
import { type ModelConfig, type TrainConfig } from '../model/config.ts';
import { CELL_TYPES } from '../model/cells.ts';
import { adapterTitle, configsFromForm, parameterCount } from './shared.ts';
import type {
  AdapterOption, BenchResult, DataInfo, DataOptions, DataSource, ErrorArea, ModelForm, ModelSummary, Placement, Reply,
  Request, SamplingSettings, SavedModelInfo, Status,
} from './protocol.ts';

export interface GpuProvider {
  /** The adapters this browser offers, best first; an error line when there are none. */
  probe(): Promise<{ adapters: AdapterOption[]; error?: string }>;
  /** A device on the given adapter (kept and reused until lost or another adapter is asked for). */
  acquire(adapterId: number): Promise<GpuContext>;
}

export interface StoredModel {
  info: SavedModelInfo;
  bytes: ArrayBuffer;
}

/** Where the last model (and the user's own text, so it can keep training) survive reloads. */
export interface ModelStore {
  saveModel(m: StoredModel): Promise<void>;
  loadModel(): Promise<StoredModel | undefined>;
  forgetModel(): Promise<void>;
  saveText(name: string, bytes: ArrayBuffer): Promise<void>;
  loadText(name: string): Promise<ArrayBuffer | undefined>;
}

export interface BuiltinCorpus {
  id: string;
  checkpointName: string;
  url: string;
}

export interface SessionOptions {
  post: (reply: Reply, transfer?: Transferable[]) => void;
  gpu: GpuProvider;
  store: ModelStore;
  builtins: BuiltinCorpus[];
  fetchText: (url: string) => Promise<ArrayBuffer>;
  /** Timings (seconds); the defaults suit a person watching, tests shorten them. */
  timing?: Partial<Timing>;
}

export interface Timing {
  firstValidation: number;
  validation: number;
  snapshot: number;
  autosave: number;
  progress: number;
}

const DEFAULT_TIMING: Timing = { firstValidation: 2, validation: 8, snapshot: 20, autosave: 90, progress: 0.25 };
/** Validation batches: a fixed prefix of the held-out split, so successive values compare. */
export const VAL_BATCHES = 8;
export const VAL_FRACTION = 0.05;
const PREVIEW_CHARS = 600;
/** Larger user files would make the tab's memory the problem before the model is. */
export const MAX_TEXT_BYTES = 256 * 2 ** 20;
/** The user's file is kept with the model for resuming only up to this size. */
const MAX_STORED_TEXT_BYTES = 64 * 2 ** 20;

interface Text {
  /** 'builtin:<id>' or 'file'. */
  source: string;
  /** Shown on the page. */
  name: string;
  /** progress.corpus in checkpoints. */
  corpus: string;
  /** Decoded, newline-normalised, not lowercased. */
  raw: string;
  /** The user's file, kept so the text can be stored with the model. */
  fileBytes?: ArrayBuffer;
}

interface PreparedData {
  text: Text;
  options: DataOptions;
  tokenizer: Tokenizer;
  ids: Uint32Array;
}

interface Snapshot {
  state: ModelState;
  progress: TrainerProgress;
  elapsed: number;
}

interface Run {
  id: number;
  model: ModelConfig;
  train: TrainConfig;
  seed: number;
  tokenizer: Tokenizer;
  lowercase: boolean;
  corpus: string;
  text?: Text;
  backend: Backend;
  placement: Placement;
  /** Absent when the text is not here: the model can sample but not train. */
  trainer?: Trainer;
  /** Progress of a sample-only model (the trainer holds it otherwise). */
  progress: TrainerProgress;
  elapsed: number;
  trainLoss?: number;
  valLoss?: number;
  snapshot?: Snapshot;
  lost?: { reason: string; keptIteration: number };
}

export class UserError extends Error {
  constructor(readonly area: ErrorArea, message: string) {
    super(message);
  }
}

/** The engine's messages name CLI flags; on the page the same settings are form fields. */
export function pageWording(message: string): string {
  return message
    .replace(/--lr\b/g, 'the learning rate')
    .replace(/--clip\b/g, 'the gradient clip')
    .replace(/--batch-size\b/g, 'the batch size')
    .replace(/--seq-length\b/g, 'the sequence length')
    .replace(/--max-vocab\b/g, 'the maximum vocabulary')
    .replace(/--min-count\b/g, 'the minimum count')
    .replace(/\s*\(run npm install\)/g, '');
}

const now = () => performance.now() / 1000;

/** Lets queued messages in: a macrotask, without setTimeout's clamping. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(0);
  });
}

function safeFileStem(s: string): string {
  return s.replace(/\.[A-Za-z0-9]{1,8}$/, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '').slice(0, 40) || 'text';
}

export function checkpointFilename(r: { corpus: string; model: ModelConfig; level: string; iteration: number; valLoss?: number }): string {
  const val = r.valLoss !== undefined && Number.isFinite(r.valLoss) ? `-val${r.valLoss.toFixed(3)}` : '';
  const depth = (r.model.layers ?? 1) > 1 ? `${r.model.layers}x` : '';
  return `${safeFileStem(r.corpus)}-${r.model.cell}${depth}${r.model.hiddenSize}-${r.level}-i${r.iteration}${val}.safetensors`;
}

export class Session {
  private adapters: AdapterOption[] = [];
  private gpuError: string | undefined;
  private data: PreparedData | undefined;
  private run: Run | undefined;
  private runCounter = 0;
  private phase: Status['phase'] = 'empty';
  private activity: string | undefined;
  private sampling: SamplingSettings = { prime: '', temperature: 0.8, length: 300, every: 5 };
  private readonly timing: Timing;
  private queue: Promise<void> = Promise.resolve();
  private lostContexts = new WeakSet<GpuContext>();
  private watchedContexts = new WeakSet<GpuContext>();
  /** Training loop state. */
  private wantRun = false;
  private loop: Promise<void> | undefined;
  /** True while the loop is between its steps and will run queued hooks. */
  private looping = false;
  private hooks: (() => Promise<void>)[] = [];
  private sampleNow = false;

  constructor(private readonly o: SessionOptions) {
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
  }

  /** Requests run one at a time, in order; pause and sampling settings act at once. */
  handle(req: Request): Promise<void> {
    if (req.type === 'sampling') {
      this.sampling = { ...req.settings };
      return Promise.resolve();
    }
    if (req.type === 'pause') this.wantRun = false;
    if (req.type === 'sample' && this.looping) {
      this.sampleNow = true;
      return Promise.resolve();
    }
    const next = this.queue.then(() => this.dispatch(req)).catch((e: unknown) => this.report(e, areaOf(req)));
    this.queue = next;
    return next;
  }

  private async dispatch(req: Request): Promise<void> {
    switch (req.type) {
      case 'init': return this.init();
      case 'data': return this.loadData(req.source, req.options);
      case 'build': return this.build(req.form, req.placement);
      case 'start': return this.start();
      case 'pause': return this.stop();
      case 'place': return this.place(req.placement);
      case 'sample': return this.sampleAndPost();
      case 'save': return this.save();
      case 'load': return this.loadCheckpoint(req.name, new Uint8Array(req.bytes), req.placement);
      case 'restore': return this.restore(req.placement);
      case 'forget': return this.forget();
      case 'bench': return this.bench(req.form, req.adapter, req.iterations);
      case 'lose-device': return this.loseDevice();
      case 'sampling': return;
    }
  }

  private post(reply: Reply, transfer?: Transferable[]): void {
    this.o.post(reply, transfer);
  }

  private report(e: unknown, area: ErrorArea): void {
    const err = e as Error;
    let a = area;
    if (e instanceof UserError) a = e.area;
    else if (e instanceof DeviceLimitError) a = 'model';
    else if (e instanceof CheckpointError) a = 'file';
    const known = e instanceof UserError || e instanceof DataError || e instanceof DeviceLimitError ||
      e instanceof CheckpointError || e instanceof DivergedError || e instanceof DeviceLostError;
    const message = known ? err.message : `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`;
    this.post({ type: 'error', area: a, message: pageWording(message.split('\n')[0]!) });
    if (this.phase === 'busy') this.phase = this.run ? (this.run.lost ? 'lost' : 'paused') : 'empty';
    this.activity = undefined;
    this.postStatus();
  }

  // --------------------------------------------------------------------------------------------
  // Status

  private status(): Status {
    const r = this.run;
    const progress = r ? this.progressOf(r) : undefined;
    const s: Status = {
      phase: this.phase,
      runId: r?.id ?? 0,
      iteration: progress?.iteration ?? 0,
      epoch: r?.trainer ? r.trainer.stream.progress : progress?.stream.epoch ?? 0,
      elapsed: r ? r.elapsed + this.liveSeconds() : 0,
      canTrain: Boolean(r?.trainer),
      activity: this.activity,
    };
    if (r) {
      s.model = this.summary(r);
      const adapter = this.adapters.find((a) => a.id === r.placement.adapter);
      s.backend = {
        kind: r.backend.kind,
        adapter: r.placement.adapter,
        description: r.backend.kind === 'gpu' && adapter ? adapterTitle(adapter) : r.backend.description,
        software: r.backend.kind === 'gpu' ? Boolean(adapter?.software) : false,
        dispatches: r.backend.perStep.dispatches,
        memoryBytes: r.backend instanceof GpuBackend ? r.backend.memoryBytes : undefined,
      };
      if (r.lost) s.lost = { ...r.lost };
    }
    return s;
  }

  private summary(r: Run): ModelSummary {
    return {
      cell: r.model.cell, layers: r.model.layers ?? 1, dropout: r.model.dropout ?? 0, hiddenSize: r.model.hiddenSize, vocabSize: r.model.vocabSize,
      seqLength: r.train.seqLength, batchSize: r.train.batchSize, optimizer: r.train.optimizer,
      learningRate: r.train.learningRate, clip: r.train.clip, stateReset: r.train.stateReset ?? 0, seed: r.seed,
      level: r.tokenizer.level, lowercase: r.lowercase, corpus: r.corpus, parameters: parameterCount(r.model),
    };
  }

  private postStatus(): void {
    this.post({ type: 'status', status: this.status() });
  }

  private busy(activity: string): void {
    this.phase = 'busy';
    this.activity = activity;
    this.postStatus();
  }

  private settle(): void {
    this.activity = undefined;
    this.phase = !this.run ? 'empty' : this.run.lost ? 'lost' : this.progressOf(this.run).iteration > 0 ? 'paused' : 'ready';
    this.postStatus();
  }

  private progressOf(r: Run): TrainerProgress {
    return r.trainer ? r.trainer.progress() : r.progress;
  }

  // --------------------------------------------------------------------------------------------
  // Start-up and data

  private async init(): Promise<void> {
    const probe = await this.o.gpu.probe();
    this.adapters = probe.adapters;
    this.gpuError = probe.error;
    let saved: SavedModelInfo | undefined;
    try {
      saved = (await this.o.store.loadModel())?.info;
    } catch {
      saved = undefined;
    }
    this.post({ type: 'hello', adapters: this.adapters, gpuError: this.gpuError, saved });
    this.postStatus();
  }

  private async readSource(source: DataSource): Promise<Text> {
    if (source.kind === 'builtin') {
      const b = this.o.builtins.find((c) => c.id === source.id);
      if (!b) throw new UserError('data', `no embedded corpus called ${source.id}`);
      let bytes: ArrayBuffer;
      try {
        bytes = await this.o.fetchText(source.url || b.url);
      } catch (e) {
        throw new UserError('data', `could not fetch the ${b.id} text (${(e as Error).message})`);
      }
      return { source: `builtin:${b.id}`, name: b.id, corpus: b.checkpointName, raw: decodeUtf8(new Uint8Array(bytes), b.id) };
    }
    if (source.bytes.byteLength > MAX_TEXT_BYTES) {
      throw new UserError('data', `${source.name}: is ${Math.round(source.bytes.byteLength / 2 ** 20)} MiB; the page takes text files up to ${MAX_TEXT_BYTES / 2 ** 20} MiB`);
    }
    return { source: 'file', name: source.name, corpus: source.name, raw: decodeUtf8(new Uint8Array(source.bytes), source.name), fileBytes: source.bytes };
  }

  private prepare(text: Text, options: DataOptions, tokenizer?: Tokenizer): PreparedData {
    const body = options.lowercase ? text.raw.toLowerCase() : text.raw;
    const tok = tokenizer ?? (options.level === 'word'
      ? WordTokenizer.fromText(body, { maxVocab: options.maxVocab })
      : CharTokenizer.fromText(body));
    const ids = tok.encode(body);
    return { text, options, tokenizer: tok, ids };
  }

  private postData(d: PreparedData): void {
    const { train, val } = splitTrainVal(d.ids, VAL_FRACTION);
    const info: DataInfo = {
      source: d.text.source, name: d.text.name, chars: countChars(d.text.raw), tokens: d.ids.length,
      vocabSize: d.tokenizer.vocab.length, trainTokens: train.length, valTokens: val.length,
      options: d.options, preview: d.text.raw.slice(0, PREVIEW_CHARS),
    };
    this.post({ type: 'data', info });
  }

  private async loadData(source: DataSource, options: DataOptions): Promise<void> {
    const text = source.kind === 'builtin' && this.data?.text.source === `builtin:${source.id}` ? this.data.text : await this.readSource(source);
    this.data = this.prepare(text, options);
    this.postData(this.data);
  }

  // --------------------------------------------------------------------------------------------
  // Models

  private async makeBackend(model: ModelConfig, train: TrainConfig, seed: number, placement: Placement): Promise<Backend> {
    if (placement.backend === 'gpu') {
      const adapter = this.adapters.find((a) => a.id === placement.adapter);
      if (!adapter) throw new UserError('gpu', this.gpuError ?? 'no WebGPU adapter: choose the CPU backend');
      // Sizes first, against the adapter's limits, so an impossible model is a sentence, not a lost device.
      checkFits(model, train, adapter.limits as unknown as GPUSupportedLimits);
    }
    const { backend, gpu } = await createBackend({
      choice: placement.backend, model, train, seed,
      acquireGpu: () => this.acquire(placement.adapter),
      warn: (line) => this.post({ type: 'notice', message: line }),
    });
    if (gpu && this.lostContexts.has(gpu)) {
      backend.destroy();
      throw new UserError('gpu', 'the GPU device was lost while the model was being set up');
    }
    return backend;
  }

  private async acquire(adapterId: number): Promise<GpuContext> {
    const ctx = await this.o.gpu.acquire(adapterId);
    if (!this.watchedContexts.has(ctx)) {
      this.watchedContexts.add(ctx);
      void ctx.device.lost.then((info) => this.onDeviceLost(ctx, info.message || String(info.reason)));
    }
    return ctx;
  }

  private newTrainer(backend: Backend, d: PreparedData): Trainer {
    const { train, val } = splitTrainVal(d.ids, VAL_FRACTION);
    return new Trainer(backend, train, val);
  }

  private async build(form: ModelForm, placement: Placement): Promise<void> {
    if (!this.data) throw new UserError('data', 'choose a text first');
    checkForm(form);
    await this.stop();
    const d = this.data;
    const { model, train } = configsFromForm(form, d.tokenizer.vocab.length);
    // The text must hold B streams of T+1 tokens: checked before the old model goes.
    new BatchStream(splitTrainVal(d.ids, VAL_FRACTION).train, train.batchSize, train.seqLength);
    this.busy('setting up the model');
    this.dropRun();
    const backend = await this.makeBackend(model, train, form.seed, placement);
    const trainer = this.newTrainer(backend, d);
    this.run = {
      id: ++this.runCounter, model, train, seed: form.seed, tokenizer: d.tokenizer, lowercase: d.options.lowercase,
      corpus: d.text.corpus, text: d.text, backend, placement, trainer, progress: trainer.progress(), elapsed: 0,
    };
    await this.takeSnapshot(this.run);
    this.settle();
  }

  private dropRun(): void {
    if (!this.run) return;
    this.run.backend.destroy();
    this.run = undefined;
  }

  /** Moves the model to another backend or adapter, weights, optimizer and position included. */
  private async place(placement: Placement): Promise<void> {
    const r = this.run;
    if (!r) return;
    const wasRunning = this.wantRun;
    await this.stop();
    let state: ModelState;
    let progress: TrainerProgress;
    let elapsed = r.elapsed;
    if (r.lost) {
      if (!r.snapshot) throw new UserError('gpu', 'the GPU device was lost before any copy of the model was kept');
      ({ state, progress, elapsed } = r.snapshot);
    } else {
      progress = this.progressOf(r);
      state = await r.backend.exportState();
    }
    this.busy(placement.backend === 'gpu' ? 'moving the model to the GPU' : 'moving the model to the CPU');
    let backend: Backend;
    try {
      backend = await this.makeBackend(r.model, r.train, r.seed, placement);
    } catch (e) {
      this.settle();
      throw e;
    }
    backend.importState(state);
    r.backend.destroy();
    r.backend = backend;
    r.placement = placement;
    r.lost = undefined;
    r.elapsed = elapsed;
    r.progress = progress;
    if (r.trainer && r.text) {
      r.trainer = new Trainer(backend, r.trainer.trainIds, r.trainer.valIds);
      r.trainer.restore(progress);
    }
    r.snapshot = { state, progress, elapsed };
    this.settle();
    if (wasRunning) await this.start();
  }

  // --------------------------------------------------------------------------------------------
  // The training loop

  private liveSince: number | undefined;

  private liveSeconds(): number {
    return this.liveSince === undefined ? 0 : now() - this.liveSince;
  }

  private async start(): Promise<void> {
    const r = this.run;
    if (!r) throw new UserError('train', 'build a model first');
    if (r.lost) throw new UserError('train', 'the GPU device was lost: choose the CPU or the GPU again to continue from the kept model');
    if (!r.trainer) throw new UserError('train', 'this model was loaded without its text: choose a text whose characters are all in its vocabulary, then load it again');
    if (this.loop) return;
    this.wantRun = true;
    this.phase = 'training';
    this.postStatus();
    this.loop = this.trainLoop(r, r.trainer).finally(() => {
      this.loop = undefined;
    });
  }

  /** Stops the loop after the iteration in flight and waits until every loss has come back. */
  private async stop(): Promise<void> {
    this.wantRun = false;
    if (this.loop) await this.loop;
  }

  /** Runs `fn` between two training steps (or at once when not training). */
  private atSafePoint<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.looping) return fn();
    return new Promise<T>((resolve, reject) => {
      this.hooks.push(() => fn().then(resolve, reject));
    });
  }

  private async trainLoop(r: Run, trainer: Trainer): Promise<void> {
    const t = this.timing;
    const tokensPerIteration = trainer.tokensPerIteration;
    const inflight = new Set<Promise<void>>();
    let failure: unknown;
    const points: { it: number[]; loss: number[] } = { it: [], loss: [] };
    const seen: { t: number; it: number }[] = [];
    let tokensPerSecond = NaN;
    const start = now();
    this.liveSince = start;
    let lastYield = start;
    let lastPost = start;
    let nextVal = start + t.firstValidation;
    let nextSample = start + Math.min(t.firstValidation, this.sampling.every || Infinity);
    let nextSnapshot = start + t.snapshot;
    let nextSave = start + t.autosave;
    let samples = 0;
    this.looping = true;

    const flush = () => {
      if (points.it.length === 0) return;
      const p = this.progressOf(r);
      this.post({
        type: 'progress', iterations: points.it, losses: points.loss, tokensPerSecond,
        iteration: p.iteration, epoch: trainer.stream.progress, elapsed: r.elapsed + this.liveSeconds(),
      });
      points.it = [];
      points.loss = [];
      lastPost = now();
    };
    const drain = async () => {
      await Promise.all(inflight);
    };

    try {
      while (this.wantRun && failure === undefined) {
        let step: { iteration: number; loss: Promise<number> };
        try {
          step = await trainer.step();
        } catch (e) {
          failure = e;
          break;
        }
        const done = step.loss.then((loss) => {
          const tNow = now();
          r.trainLoss = loss;
          points.it.push(step.iteration);
          points.loss.push(loss);
          seen.push({ t: tNow, it: step.iteration });
          while (seen.length > 2 && tNow - seen[0]!.t > 5) seen.shift();
          if (seen.length >= 2) {
            const a = seen[0]!;
            const b = seen[seen.length - 1]!;
            tokensPerSecond = ((b.it - a.it) * tokensPerIteration) / Math.max(1e-9, b.t - a.t);
          }
        }, (e: unknown) => {
          failure ??= e;
        });
        inflight.add(done);
        void done.finally(() => inflight.delete(done));

        try {
          const tNow = now();
          if (tNow - lastPost >= t.progress) flush();
          // Safe point: nothing of this loop is half-done here.
          while (this.hooks.length) await this.hooks.shift()!();
          if (this.sampleNow || (this.sampling.every > 0 && tNow >= nextSample)) {
            this.sampleNow = false;
            const t0 = now();
            await this.sampleAndPost().catch((e: unknown) => this.report(e, 'sample'));
            // Samples take at most a fifth of the time, once the sampler's pipeline exists.
            nextSample = now() + Math.max(this.sampling.every, samples++ === 0 ? 0 : 4 * (now() - t0));
          }
          if (tNow >= nextVal) {
            await drain();
            const t0 = now();
            await this.validate(r, trainer);
            nextVal = now() + Math.max(t.validation, 10 * (now() - t0));
          }
          if (tNow >= nextSnapshot) {
            const t0 = now();
            await this.takeSnapshot(r);
            nextSnapshot = now() + Math.max(t.snapshot, 20 * (now() - t0));
          }
          if (tNow >= nextSave) {
            // A full or missing IndexedDB is worth a line, not a stop.
            await this.autosave(r, true).catch((e: unknown) => this.report(new UserError('file', `could not keep the model in this browser: ${(e as Error).message}`), 'file'));
            nextSave = now() + t.autosave;
          }
          if (now() - lastYield > 0.05) {
            await yieldToEvents();
            lastYield = now();
          }
        } catch (e) {
          failure = e;
          break;
        }
      }
      await drain();
    } finally {
      this.looping = false;
      r.elapsed += this.liveSeconds();
      this.liveSince = undefined;
      flush();
      // Hooks queued while the loop was ending still run.
      while (this.hooks.length) await this.hooks.shift()!().catch(() => undefined);
    }

    this.wantRun = false;
    // A readback can fail before device.lost resolves: give the loss a moment to be told.
    if (failure !== undefined && !r.lost && r.backend.kind === 'gpu' && !(failure instanceof DivergedError)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (r.lost || failure instanceof DeviceLostError) {
      this.markLost(r, (failure as Error)?.message ?? 'device lost');
      await this.saveLost(r);
    } else if (failure !== undefined) {
      this.phase = 'paused';
      this.report(failure, 'train');
    } else {
      // The chart ends on a validation point for the model as it now stands.
      if (r.trainer) await this.validate(r, r.trainer).catch(() => undefined);
      this.phase = 'paused';
      this.postStatus();
      await this.autosave(r).catch(() => undefined);
    }
  }

  private async validate(r: Run, trainer: Trainer): Promise<void> {
    const loss = await trainer.validate(VAL_BATCHES);
    if (Number.isNaN(loss)) return;
    r.valLoss = loss;
    this.post({ type: 'val', iteration: trainer.iteration, loss });
  }

  private async takeSnapshot(r: Run): Promise<void> {
    if (r.lost) return;
    const progress = this.progressOf(r);
    const elapsed = r.elapsed + this.liveSeconds();
    const state = await r.backend.exportState();
    r.snapshot = { state, progress: structuredClone(progress), elapsed };
  }

  private onDeviceLost(ctx: GpuContext, reason: string): void {
    this.lostContexts.add(ctx);
    const r = this.run;
    if (!r || r.backend.kind !== 'gpu' || r.lost) return;
    this.markLost(r, reason);
    this.wantRun = false;
    if (!this.loop) {
      this.phase = 'lost';
      this.postStatus();
      void this.saveLost(r);
    }
  }

  private markLost(r: Run, reason: string): void {
    if (!r.lost) {
      const clean = reason.replace(/^the GPU device was lost \((.*)\); the last checkpoint is kept$/, '$1');
      r.lost = { reason: clean.replace(/\.\s*$/, '') || 'unknown reason', keptIteration: r.snapshot?.progress.iteration ?? 0 };
    }
    this.phase = 'lost';
    this.postStatus();
  }

  private async saveLost(r: Run): Promise<void> {
    if (!r.snapshot) return;
    await this.storeCheckpoint(r, this.checkpointOf(r, r.snapshot.state, r.snapshot.progress, r.snapshot.elapsed)).catch(() => undefined);
  }

  private async loseDevice(): Promise<void> {
    const r = this.run;
    if (!r || r.backend.kind !== 'gpu') throw new UserError('gpu', 'no model on the GPU');
    const ctx = await this.o.gpu.acquire(r.placement.adapter);
    ctx.device.destroy();
  }

  // --------------------------------------------------------------------------------------------
  // Sampling

  private primeIds(r: Run): { prime: Uint32Array; text: string } {
    const text = r.lowercase ? this.sampling.prime.toLowerCase() : this.sampling.prime;
    if (text.length === 0) {
      const nl = r.tokenizer.vocab.indexOf('\n');
      return { prime: new Uint32Array([nl >= 0 ? nl : 0]), text: '' };
    }
    let prime: Uint32Array;
    try {
      prime = r.tokenizer.encode(text);
    } catch (e) {
      throw new UserError('sample', `prime text: ${(e as Error).message}`);
    }
    return { prime, text };
  }

  private async sampleAndPost(): Promise<void> {
    const r = this.run;
    if (!r) throw new UserError('sample', 'build or load a model first');
    if (r.lost) throw new UserError('sample', 'the GPU device was lost: move the model to the CPU or the GPU first');
    const { prime, text } = this.primeIds(r);
    const iteration = this.progressOf(r).iteration;
    const temperature = this.sampling.temperature;
    const length = Math.max(1, Math.min(2000, Math.round(this.sampling.length)));
    const seed = (iteration * 2654435761 + Math.floor(Math.random() * 65536)) >>> 0;
    const tokens = await r.backend.sample({ prime, length, temperature, seed });
    this.post({ type: 'sample', prime: text, text: r.tokenizer.decode(tokens), iteration, temperature });
  }

  // --------------------------------------------------------------------------------------------
  // Checkpoints and the browser's copy

  private checkpointOf(r: Run, state: ModelState, progress: TrainerProgress, elapsed: number): CheckpointData {
    return {
      model: r.model, train: r.train, tokenizer: r.tokenizer.toJSON(), state,
      progress: {
        ...structuredClone(progress), seed: r.seed, corpus: r.corpus, lowercase: r.lowercase,
        trainLoss: r.trainLoss, valLoss: r.valLoss, elapsed,
      },
    };
  }

  /** The model as a checkpoint; `inLoop` when the training loop itself asks (it is at a safe point). */
  private async currentCheckpoint(r: Run, inLoop = false): Promise<CheckpointData> {
    const take = async () => {
      if (r.lost) {
        if (!r.snapshot) throw new UserError('file', 'the GPU device was lost before any copy of the model was kept');
        return this.checkpointOf(r, r.snapshot.state, r.snapshot.progress, r.snapshot.elapsed);
      }
      const progress = structuredClone(this.progressOf(r));
      const elapsed = r.elapsed + this.liveSeconds();
      const state = await r.backend.exportState();
      return this.checkpointOf(r, state, progress, elapsed);
    };
    return inLoop ? take() : this.atSafePoint(take);
  }

  private async save(): Promise<void> {
    const r = this.run;
    if (!r) throw new UserError('file', 'nothing to save yet: build or load a model first');
    const ck = await this.currentCheckpoint(r);
    const bytes = encodeCheckpoint(ck);
    const filename = checkpointFilename({ corpus: r.corpus, model: r.model, level: r.tokenizer.level, iteration: ck.progress.iteration, valLoss: ck.progress.valLoss });
    await this.storeCheckpoint(r, ck, bytes).catch(() => undefined);
    const copy = bytes.slice().buffer;
    this.post({ type: 'checkpoint', bytes: copy, filename }, [copy]);
  }

  private async autosave(r: Run, inLoop = false): Promise<void> {
    if (r.lost || this.run !== r) return;
    const ck = await this.currentCheckpoint(r, inLoop);
    await this.storeCheckpoint(r, ck);
  }

  private async storeCheckpoint(r: Run, ck: CheckpointData, encoded?: Uint8Array): Promise<void> {
    const bytes = encoded ?? encodeCheckpoint(ck);
    const info: SavedModelInfo = {
      name: checkpointFilename({ corpus: r.corpus, model: r.model, level: r.tokenizer.level, iteration: ck.progress.iteration, valLoss: ck.progress.valLoss }),
      savedAt: Date.now(), iteration: ck.progress.iteration, bytes: bytes.byteLength,
    };
    const buf = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer as ArrayBuffer : bytes.slice().buffer;
    if (r.text?.fileBytes && r.text.fileBytes.byteLength <= MAX_STORED_TEXT_BYTES) {
      await this.o.store.saveText(r.text.name, r.text.fileBytes);
    }
    await this.o.store.saveModel({ info, bytes: buf });
    this.post({ type: 'saved', saved: info });
  }

  private async forget(): Promise<void> {
    await this.o.store.forgetModel();
    this.post({ type: 'saved', saved: undefined });
  }

  /** The text a checkpoint was trained on, if it is here: an embedded corpus, the current text, or the stored file. */
  private async findText(corpus: string, lowercase: boolean, tokenizer: Tokenizer): Promise<{ data?: PreparedData; note?: string }> {
    const options: DataOptions = { level: tokenizer.level, lowercase, maxVocab: tokenizer.vocab.length };
    const attempts: (() => Promise<Text | undefined>)[] = [
      async () => {
        const b = this.o.builtins.find((c) => c.checkpointName === corpus);
        return b ? this.readSource({ kind: 'builtin', id: b.id, url: b.url }) : undefined;
      },
      async () => (this.data?.text.corpus === corpus ? this.data.text : undefined),
      async () => {
        const bytes = await this.o.store.loadText(corpus).catch(() => undefined);
        return bytes ? this.readSource({ kind: 'file', name: corpus, bytes }) : undefined;
      },
      async () => this.data?.text,
    ];
    for (const attempt of attempts) {
      let text: Text | undefined;
      try {
        text = await attempt();
      } catch {
        text = undefined;
      }
      if (!text) continue;
      try {
        return { data: this.prepare(text, options, tokenizer) };
      } catch {
        // A character outside the model's vocabulary: try the next candidate.
      }
    }
    return { note: `its text (${corpus}) is not here and the current text has characters outside its vocabulary, so it can sample but not train` };
  }

  private async loadCheckpoint(name: string, bytes: Uint8Array, placement: Placement): Promise<void> {
    const ck = decodeCheckpoint(bytes, name);
    await this.stop();
    this.busy('loading the model');
    const { data, note } = await this.findText(ck.progress.corpus, ck.progress.lowercase, ck.tokenizerObject);
    this.dropRun();
    const backend = await this.makeBackend(ck.model, ck.train, ck.progress.seed ?? 1, placement);
    try {
      backend.importState(ck.state);
    } catch (e) {
      backend.destroy();
      throw e;
    }
    const progress: TrainerProgress = { iteration: ck.progress.iteration ?? 0, stream: ck.progress.stream ?? { position: 0, epoch: 0 } };
    let trainer: Trainer | undefined;
    let extra = note;
    if (data) {
      try {
        trainer = this.newTrainer(backend, data);
        try {
          trainer.restore(progress);
        } catch {
          trainer.restore({ iteration: progress.iteration, stream: { position: 0, epoch: 0 } });
          extra = `its place in the text does not exist in ${data.text.name}, so training continues from the start of the text`;
        }
        this.data = data;
        this.postData(data);
      } catch (e) {
        trainer = undefined;
        extra = `it can sample but not train here: ${pageWording((e as Error).message)}`;
      }
    }
    this.run = {
      id: ++this.runCounter, model: ck.model, train: ck.train, seed: ck.progress.seed ?? 1, tokenizer: ck.tokenizerObject,
      lowercase: ck.progress.lowercase ?? false, corpus: ck.progress.corpus ?? name, text: data?.text, backend, placement,
      trainer, progress, elapsed: ck.progress.elapsed ?? 0, trainLoss: ck.progress.trainLoss, valLoss: ck.progress.valLoss,
      snapshot: { state: ck.state, progress, elapsed: ck.progress.elapsed ?? 0 },
    };
    this.settle();
    if (this.run.valLoss !== undefined) this.post({ type: 'val', iteration: progress.iteration, loss: this.run.valLoss });
    this.post({ type: 'notice', message: `Loaded ${name} (iteration ${progress.iteration})${extra ? `; ${extra}` : ''}.` });
    await this.storeCheckpoint(this.run, ck, bytes).catch(() => undefined);
  }

  private async restore(placement: Placement): Promise<void> {
    const m = await this.o.store.loadModel();
    if (!m) throw new UserError('file', 'no model is saved in this browser');
    await this.loadCheckpoint(m.info.name, new Uint8Array(m.bytes), placement);
  }

  // --------------------------------------------------------------------------------------------
  // GPU against CPU

  private async bench(form: ModelForm, adapterId: number, iterations: number): Promise<void> {
    if (!this.data) throw new UserError('bench', 'choose a text first');
    checkForm(form);
    const wasRunning = this.wantRun;
    await this.stop();
    this.busy('benchmarking');
    const d = this.data;
    const { model, train } = configsFromForm(form, d.tokenizer.vocab.length);
    const { train: trainIds } = splitTrainVal(d.ids, VAL_FRACTION);
    const results: BenchResult[] = [];
    const placements: Placement[] = [];
    const gpuAdapter = this.adapters.find((a) => a.id === adapterId) ?? this.adapters[0];
    if (gpuAdapter) placements.push({ backend: 'gpu', adapter: gpuAdapter.id });
    placements.push({ backend: 'cpu', adapter: -1 });
    try {
      for (const p of placements) {
        let backend: Backend;
        try {
          backend = await this.makeBackend(model, train, form.seed, p);
        } catch (e) {
          this.post({ type: 'error', area: 'bench', message: `${p.backend.toUpperCase()}: ${pageWording((e as Error).message)}` });
          continue;
        }
        try {
          const stream = new BatchStream(trainIds, train.batchSize, train.seqLength);
          // One untimed iteration: pipelines compile, the JIT warms up.
          await (await backend.trainStep(stream.next())).loss;
          // The CPU gets a time box: at a large hidden size one iteration takes seconds.
          const budget = p.backend === 'cpu' ? 6 : 30;
          const t0 = now();
          let n = 0;
          let last: Promise<number> = Promise.resolve(0);
          while (n < iterations && (n === 0 || now() - t0 < budget)) {
            last = (await backend.trainStep(stream.next())).loss;
            n++;
            if (p.backend === 'cpu') await yieldToEvents();
          }
          await last;
          const seconds = now() - t0;
          const adapter = this.adapters.find((a) => a.id === p.adapter);
          results.push({
            kind: p.backend, description: p.backend === 'gpu' && adapter ? adapterTitle(adapter) : backend.description,
            iterations: n, seconds, tokensPerSecond: (n * train.batchSize * train.seqLength) / seconds, msPerIteration: (seconds * 1000) / n,
          });
        } finally {
          backend.destroy();
        }
      }
      this.post({ type: 'bench', results, form });
    } finally {
      this.settle();
    }
    if (wasRunning) await this.start();
  }
}

function areaOf(req: Request): ErrorArea {
  switch (req.type) {
    case 'data': return 'data';
    case 'build': return 'model';
    case 'place': return 'gpu';
    case 'sample': return 'sample';
    case 'save': case 'load': case 'restore': case 'forget': return 'file';
    case 'bench': return 'bench';
    case 'init': case 'lose-device': return 'gpu';
    default: return 'train';
  }
}

function countChars(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

function checkForm(f: ModelForm): void {
  const int = (v: number, lo: number, hi: number, what: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new UserError('model', `${what} must be a whole number from ${lo} to ${hi}, got ${v}`);
  };
  if (!CELL_TYPES.includes(f.cell)) throw new UserError('model', `unknown cell type ${f.cell}`);
  int(f.layers ?? 1, 1, 8, 'the number of layers');
  if (!((f.dropout ?? 0) >= 0 && (f.dropout ?? 0) < 1)) throw new UserError('model', `the dropout must be from 0 up to (not including) 1, got ${f.dropout}`);
  int(f.hiddenSize, 1, 4096, 'the hidden size');
  int(f.seqLength, 1, 4096, 'the sequence length');
  int(f.batchSize, 1, 65535, 'the batch size');
  int(f.seed, 0, 2 ** 32 - 1, 'the seed');
  if (!(f.learningRate > 0 && f.learningRate < 10)) throw new UserError('model', `the learning rate must be above 0 and below 10, got ${f.learningRate}`);
  if (!(f.clip > 0)) throw new UserError('model', `the gradient clip must be above 0, got ${f.clip}`);
  int(f.stateReset ?? 0, 0, 2 ** 31 - 1, 'the state reset (iterations, 0 for never)');
  if (f.optimizer !== 'adam' && f.optimizer !== 'adagrad') throw new UserError('model', `unknown optimizer ${f.optimizer}`);
}
