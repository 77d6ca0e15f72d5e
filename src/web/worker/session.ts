/**
 * The engine's side of the web page: holds the text and the model, and answers the page's
 * requests (protocol.ts) one at a time, in order. No DOM: worker.ts wires it to postMessage,
 * IndexedDB and navigator.gpu, and the Node tests drive it directly on the CPU.
 *
 * The pieces: text.ts (the corpus), backends.ts (adapters and devices), training.ts (the engine's
 * training loop, mapped to messages), model-files.ts (checkpoints and the browser's copy),
 * bench.ts (GPU against CPU). Anything that must see a consistent model while training (a
 * download, a sample on request) runs at the loop's next safe point, between two iterations.
 */
import { decodeCheckpoint, encodeCheckpoint, type CheckpointData } from '../../checkpoint/model-checkpoint.ts';
import { BatchStream } from '../../data/split.ts';
import { DEFAULT_CHARSET } from '../../data/text.ts';
import type { LoopCheckpoint } from '../../engine/training-loop.ts';
import { DivergedError, Trainer } from '../../engine/trainer.ts';
import { DeviceLostError } from '../../gpu/backend.ts';
import type { Backend } from '../../model/backend.ts';
import type { DataOptions, DataSource, ErrorArea, ModelForm, Placement, Reply, Request, SamplingSettings, SavedModelInfo, Status } from '../protocol.ts';
import { configsFromForm } from '../shared.ts';
import { Backends, type GpuProvider } from './backends.ts';
import type { TuningStore } from '../../gpu/tuner.ts';
import { benchmark } from './bench.ts';
import { areaOf, errorReply, UserError } from './errors.ts';
import { checkForm } from './form-check.ts';
import { checkpointOf, fileNameOf, runFromCheckpoint, storeCheckpoint, type ModelStore } from './model-files.ts';
import { newTrainer, progressOf, sampleReply, sampleRequest, statusOf, type Run } from './run.ts';
import { dataInfo, findText, prepareText, readSource, textFits, trainValOf, type PreparedData, type TextSources } from './text.ts';
import { DEFAULT_TIMING, TrainingRun, type Timing } from './training.ts';

export interface SessionOptions extends TextSources {
  post: (reply: Reply, transfer?: Transferable[]) => void;
  gpu: GpuProvider;
  store: ModelStore;
  /** The kernel tuner's cache (IndexedDB on the page); absent in tests. */
  tuning?: TuningStore;
  /** Timings (seconds); the defaults suit a person watching, tests shorten them. */
  timing?: Partial<Timing>;
}

export class Session {
  private readonly backends: Backends;
  private data: PreparedData | undefined;
  private run: Run | undefined;
  private runCounter = 0;
  private phase: Status['phase'] = 'empty';
  private activity: string | undefined;
  private sampling: SamplingSettings = { prime: '', temperature: 0.8, length: 300, every: 5 };
  private readonly timing: Timing;
  private queue: Promise<void> = Promise.resolve();
  private training: { run: TrainingRun; done: Promise<void> } | undefined;

  constructor(private readonly o: SessionOptions) {
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
    this.backends = new Backends(o.gpu, (reason) => this.onDeviceLost(reason), (line) => this.post({ type: 'notice', message: line }), o.tuning);
  }

  /** Requests run one at a time, in order; pause and sampling settings act at once. */
  handle(req: Request): Promise<void> {
    if (req.type === 'sampling') {
      this.sampling = { ...req.settings };
      return Promise.resolve();
    }
    if (req.type === 'pause') this.training?.run.stop();
    if (req.type === 'sample' && this.training?.run.loop.running) {
      this.training.run.loop.requestSample();
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
      case 'pause': await this.stop(); return;
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
    this.post(errorReply(e, area));
    if (this.phase === 'busy') this.phase = this.run ? (this.run.lost ? 'lost' : 'paused') : 'empty';
    this.activity = undefined;
    this.postStatus();
  }

  // --------------------------------------------------------------------------------------------
  // Status

  /** Seconds trained, the current stretch of training included. */
  private elapsedOf(r: Run): number {
    return this.training && this.run === r ? this.training.run.loop.elapsed : r.elapsed;
  }

  private postStatus(): void {
    const r = this.run;
    const status = statusOf(r, { phase: this.phase, activity: this.activity, elapsed: r ? this.elapsedOf(r) : 0 }, this.backends);
    this.post({ type: 'status', status });
  }

  private busy(activity: string): void {
    this.phase = 'busy';
    this.activity = activity;
    this.postStatus();
  }

  private settle(): void {
    this.activity = undefined;
    this.phase = !this.run ? 'empty' : this.run.lost ? 'lost' : progressOf(this.run).iteration > 0 ? 'paused' : 'ready';
    this.postStatus();
  }

  // --------------------------------------------------------------------------------------------
  // Start-up and data

  private async init(): Promise<void> {
    await this.backends.probe();
    let saved: SavedModelInfo | undefined;
    try {
      saved = (await this.o.store.loadModel())?.info;
    } catch {
      saved = undefined;
    }
    this.post({ type: 'hello', adapters: this.backends.adapters, gpuError: this.backends.gpuError, saved });
    this.postStatus();
  }

  private async loadData(source: DataSource, options: DataOptions): Promise<void> {
    const cached = this.data?.text;
    const text = source.kind === 'builtin' && cached?.source === `builtin:${source.id}` && textFits(cached, options.charset)
      ? cached
      : await readSource(this.o, source, options.charset);
    this.data = prepareText(text, options);
    this.post({ type: 'data', info: dataInfo(this.data) });
  }

  // --------------------------------------------------------------------------------------------
  // Models

  private async build(form: ModelForm, placement: Placement): Promise<void> {
    if (!this.data) throw new UserError('data', 'choose a text first');
    checkForm(form);
    await this.stop();
    const d = this.data;
    const { model, train } = configsFromForm(form, d.tokenizer.vocab.length);
    // The text must hold B streams of T+1 tokens: checked before the old model goes.
    new BatchStream(trainValOf(d).train, train.batchSize, train.seqLength);
    this.busy('setting up the model');
    this.dropRun();
    const backend = await this.backends.make(model, train, form.seed, placement);
    const trainer = newTrainer(backend, d);
    const progress = trainer.progress();
    this.run = {
      id: ++this.runCounter, model, train, seed: form.seed, tokenizer: d.tokenizer, lowercase: d.options.lowercase, charset: d.options.charset,
      corpus: d.text.corpus, text: d.text, backend, placement, trainer, progress, elapsed: 0,
      snapshot: { state: await backend.exportState(), progress, elapsed: 0 },
    };
    this.settle();
  }

  private dropRun(): void {
    if (!this.run) return;
    this.run.backend.destroy();
    this.run = undefined;
  }

  /** The model as it stands, or as kept when its device was lost. */
  private async currentState(r: Run, area: ErrorArea): Promise<LoopCheckpoint> {
    if (r.lost) {
      if (!r.snapshot) throw new UserError(area, 'the GPU device was lost before any copy of the model was kept');
      return r.snapshot;
    }
    const take = async () => ({ progress: structuredClone(progressOf(r)), elapsed: this.elapsedOf(r), state: await r.backend.exportState() });
    return this.training ? this.training.run.loop.atSafePoint(take) : take();
  }

  /** Moves the model to another backend or adapter, weights, optimizer and position included. */
  private async place(placement: Placement): Promise<void> {
    const r = this.run;
    if (!r) return;
    const resume = await this.stop();
    const { state, progress, elapsed } = await this.currentState(r, 'gpu');
    this.busy(placement.backend === 'gpu' ? 'moving the model to the GPU' : 'moving the model to the CPU');
    let backend: Backend;
    try {
      backend = await this.backends.make(r.model, r.train, r.seed, placement);
    } catch (e) {
      this.settle();
      throw e;
    }
    backend.importState(state);
    r.backend.destroy();
    Object.assign(r, { backend, placement, lost: undefined, elapsed, progress, snapshot: { state, progress, elapsed } });
    if (r.trainer && r.text) {
      r.trainer = new Trainer(backend, r.trainer.trainIds, r.trainer.valIds);
      r.trainer.restore(progress);
    }
    this.settle();
    if (resume) await this.start();
  }

  // --------------------------------------------------------------------------------------------
  // Training

  private async start(): Promise<void> {
    const r = this.run;
    if (!r) throw new UserError('train', 'build a model first');
    if (r.lost) throw new UserError('train', 'the GPU device was lost: choose the CPU or the GPU again to continue from the kept model');
    if (!r.trainer) throw new UserError('train', 'this model was loaded without its text: choose a text whose characters are all in its vocabulary, then load it again');
    if (this.training) return;
    this.phase = 'training';
    this.postStatus();
    const run = new TrainingRun({
      post: (reply) => this.post(reply),
      timing: this.timing,
      sampleEvery: () => this.sampling.every,
      sampleRequest: (it) => {
        try {
          return sampleRequest(r, this.sampling, it);
        } catch (e) {
          this.report(e, 'sample');
          return undefined;
        }
      },
      autosave: (c, quiet) => this.autosave(r, c).catch((e: unknown) => {
        // A full or missing IndexedDB is worth a line, not a stop.
        if (!quiet) this.report(new UserError('file', `could not keep the model in this browser: ${(e as Error).message}`), 'file');
      }),
    }, r, r.trainer);
    const done = run.run().then(({ failure }) => this.afterTraining(r, failure)).finally(() => {
      this.training = undefined;
    });
    this.training = { run, done };
  }

  /** Stops training after the iterations in flight; resolves, once every loss is back, with whether it was running. */
  private async stop(): Promise<boolean> {
    const t = this.training;
    if (!t) return false;
    const wasRunning = !t.run.stopping;
    t.run.stop();
    await t.done;
    return wasRunning;
  }

  private async afterTraining(r: Run, failure: unknown): Promise<void> {
    if (failure === undefined) {
      this.phase = 'paused';
      this.postStatus();
      return;
    }
    // A readback can fail before device.lost resolves: give the loss a moment to be told.
    if (!r.lost && r.backend.kind === 'gpu' && !(failure instanceof DivergedError)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (r.lost || failure instanceof DeviceLostError) {
      this.markLost(r, (failure as Error)?.message ?? 'device lost');
      await this.saveLost(r);
    } else {
      this.phase = 'paused';
      this.report(failure, 'train');
    }
  }

  private onDeviceLost(reason: string): void {
    const r = this.run;
    if (!r || r.backend.kind !== 'gpu' || r.lost) return;
    this.markLost(r, reason);
    if (this.training) {
      this.training.run.loop.abort(new DeviceLostError(reason));
    } else {
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

  /** The copy kept in memory goes to the browser's storage: the device that held the model is gone. */
  private async saveLost(r: Run): Promise<void> {
    if (r.snapshot) await this.storeAndTell(r, checkpointOf(r, r.snapshot)).catch(() => undefined);
  }

  private async loseDevice(): Promise<void> {
    const r = this.run;
    if (!r || r.backend.kind !== 'gpu') throw new UserError('gpu', 'no model on the GPU');
    await this.backends.loseDevice(r.placement.adapter);
  }

  // --------------------------------------------------------------------------------------------
  // Sampling

  private async sampleAndPost(): Promise<void> {
    const r = this.run;
    if (!r) throw new UserError('sample', 'build or load a model first');
    if (r.lost) throw new UserError('sample', 'the GPU device was lost: move the model to the CPU or the GPU first');
    const iteration = progressOf(r).iteration;
    const { options, primeText } = sampleRequest(r, this.sampling, iteration);
    const all = await r.backend.sampleMany(options, options.count);
    this.post(sampleReply(r.tokenizer, primeText, iteration, options, all));
  }

  // --------------------------------------------------------------------------------------------
  // Checkpoints and the browser's copy

  private async save(): Promise<void> {
    const r = this.run;
    if (!r) throw new UserError('file', 'nothing to save yet: build or load a model first');
    const ck = checkpointOf(r, await this.currentState(r, 'file'));
    const bytes = encodeCheckpoint(ck);
    await this.storeAndTell(r, ck, bytes).catch(() => undefined);
    const copy = bytes.slice().buffer;
    this.post({ type: 'checkpoint', bytes: copy, filename: fileNameOf(r, ck) }, [copy]);
  }

  private async autosave(r: Run, c: LoopCheckpoint): Promise<void> {
    if (r.lost || this.run !== r) return;
    await this.storeAndTell(r, checkpointOf(r, c));
  }

  private async storeAndTell(r: Run, ck: CheckpointData, bytes?: Uint8Array): Promise<void> {
    this.post({ type: 'saved', saved: await storeCheckpoint(this.o.store, r, ck, bytes) });
  }

  private async forget(): Promise<void> {
    await this.o.store.forgetModel();
    this.post({ type: 'saved', saved: undefined });
  }

  private async loadCheckpoint(name: string, bytes: Uint8Array, placement: Placement): Promise<void> {
    const ck = decodeCheckpoint(bytes, name);
    await this.stop();
    this.busy('loading the model');
    const { data, note } = await findText(this.o, this.data, (n) => this.o.store.loadText(n), ck.progress.corpus, ck.progress.lowercase, ck.progress.charset ?? DEFAULT_CHARSET, ck.tokenizerObject);
    this.dropRun();
    const backend = await this.backends.make(ck.model, ck.train, ck.progress.seed ?? 1, placement);
    const loaded = runFromCheckpoint(ck, name, ++this.runCounter, backend, placement, data);
    const r = loaded.run;
    if (r.trainer) {
      this.data = data;
      this.post({ type: 'data', info: dataInfo(data!) });
    }
    this.run = r;
    this.settle();
    if (r.valLoss !== undefined) this.post({ type: 'val', iteration: r.progress.iteration, loss: r.valLoss });
    const extra = loaded.note ?? note;
    const converted = ck.conversion ? `, ${ck.conversion}` : '';
    this.post({ type: 'notice', message: `Loaded ${name} (iteration ${r.progress.iteration}${converted})${extra ? `; ${extra}` : ''}.` });
    await this.storeAndTell(r, ck, bytes).catch(() => undefined);
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
    const wasRunning = await this.stop();
    this.busy('benchmarking');
    try {
      const results = await benchmark(this.backends, this.data, form, adapterId, iterations, (reply) => this.post(reply));
      this.post({ type: 'bench', results, form });
    } finally {
      this.settle();
    }
    if (wasRunning) await this.start();
  }
}
