/**
 * The training loop the CLI and the web page both run. Browser-safe.
 *
 * Several iterations stay enqueued at once: Trainer.step() returns as soon as an iteration is on
 * the device, and its loss is read later, oldest first, so the GPU never idles on a readback. The
 * queue is drained only where the CPU needs the model itself (validation, samples, checkpoints,
 * a caller's atSafePoint work): there every enqueued iteration has finished and its loss is known.
 *
 * Cadences count iterations (the CLI: reproducible runs) or seconds of training (the page: a
 * person watching, whatever the model's speed). The shells only map the events to their output.
 */
import type { ModelState, SampleOptions } from '../model/backend.ts';
import type { TrainerProgress } from '../checkpoint/model-checkpoint.ts';
import { divergence, type Trainer } from './trainer.ts';

/**
 * When a periodic action is due. `iterations`: at every multiple of n. `seconds`: that long after
 * the last one ended (the first `first` seconds after the run starts), and at least `costFactor`
 * times as long as the last one took, so slow validation or sampling cannot crowd out training;
 * the first run's time is not counted, as it includes compiling pipelines. 0 turns it off.
 */
export type Cadence = { iterations: number } | { seconds: number; first?: number; costFactor?: number };

/** A cadence, or a function read at every iteration when the user may change it mid-run. */
export type CadenceSource = Cadence | (() => Cadence);

/** The model between two iterations: what a checkpoint holds, and what a page keeps in memory. */
export interface LoopCheckpoint {
  state: ModelState;
  progress: TrainerProgress;
  /** Seconds of training, earlier runs included. */
  elapsed: number;
}

export type LoopEnd = 'finished' | 'stopped';

export interface TrainingLoopEvents {
  /** After each iteration is enqueued, before its loss is known (tests stop runs or break devices here). */
  onStep?(iteration: number): void | Promise<void>;
  /** Every iteration's loss, in order. A loss that is not finite ends the run with DivergedError instead. */
  onLoss?(iteration: number, loss: number): void;
  onEval?(iteration: number, loss: number, final: boolean): void | Promise<void>;
  /** `tokens` is the first sample, `all` every one of the `count` side by side. */
  onSample?(iteration: number, tokens: Uint32Array, options: SampleOptions, all: Uint32Array[]): void | Promise<void>;
  onCheckpoint?(checkpoint: LoopCheckpoint, final: boolean): void | Promise<void>;
  /** Training goes on after a pause for the actions above: a speed meter should leave that time out. */
  onResume?(): void;
  /** Every iteration has finished; the final evaluation, sample and checkpoint come next. */
  onEnding?(reason: LoopEnd): void;
}

export interface TrainingLoopOptions {
  trainer: Trainer;
  /** The run finishes when the trainer reaches this iteration; without it, it runs until stopped. */
  until?: number;
  /** Iterations enqueued ahead of the oldest unread loss (default 3, the GPU backend's readback ring). */
  inFlight?: number;
  evaluate?: {
    every: CadenceSource;
    /** Held-out batches per evaluation (default: all). */
    batches?: number;
    /** A last evaluation when the run ends: only when it finished, or also when stopped (default: never). */
    atEnd?: 'finished' | 'always';
    endBatches?: number;
  };
  sample?: {
    every: CadenceSource;
    /** What to sample at this iteration, and how many samples side by side (default 1); undefined skips it. */
    options(iteration: number): (SampleOptions & { count?: number }) | undefined;
    /** A last sample when the run finishes, unless one was just taken. */
    atEnd?: boolean;
  };
  /** Periodic checkpoints; a final one is made whenever the run ends without error. */
  checkpoint?: { every: CadenceSource };
  events?: TrainingLoopEvents;
  /** Milliseconds, monotonic (default performance.now). */
  now?: () => number;
  /** Lets timers, signals and messages in between iterations (default: a macrotask). */
  yieldToEvents?: () => Promise<void>;
  /** Yield at most this often (default 0: after every iteration). */
  yieldEveryMs?: number;
  /** Seconds trained before this run (a resumed or restarted model). */
  elapsedBefore?: number;
}

const DEFAULT_IN_FLIGHT = 3;

/** A macrotask without setTimeout's clamping, in browsers, workers and Node alike. */
export function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(0);
  });
}

/** When one periodic action is next due. */
class Timer {
  private next: number;
  private runs = 0;

  constructor(private readonly source: CadenceSource, start: number) {
    const c = this.cadence();
    this.next = 'seconds' in c ? start + (c.first ?? c.seconds) * 1000 : 0;
  }

  private cadence(): Cadence {
    return typeof this.source === 'function' ? this.source() : this.source;
  }

  due(iteration: number, now: number): boolean {
    const c = this.cadence();
    if ('iterations' in c) return c.iterations > 0 && iteration % c.iterations === 0;
    return c.seconds > 0 && now >= this.next;
  }

  /** After the action ran from `started` to `now` (milliseconds). */
  done(started: number, now: number): void {
    const c = this.cadence();
    if (!('seconds' in c)) return;
    const cost = this.runs++ === 0 ? 0 : (c.costFactor ?? 0) * (now - started);
    this.next = now + Math.max(c.seconds * 1000, cost);
  }
}

export class TrainingLoop {
  private readonly trainer: Trainer;
  private readonly events: TrainingLoopEvents;
  private readonly now: () => number;
  private readonly inFlight: number;
  private readonly queue: { iteration: number; loss: Promise<number> }[] = [];
  private readonly hooks: (() => Promise<void>)[] = [];
  private stopping = false;
  private aborted: { reason: unknown } | undefined;
  private sampleRequested = false;
  private lastSampleAt = -1;
  private started: number | undefined;
  private ended: number | undefined;
  private state: 'new' | 'running' | 'done' = 'new';

  constructor(private readonly o: TrainingLoopOptions) {
    this.trainer = o.trainer;
    this.events = o.events ?? {};
    this.now = o.now ?? (() => performance.now());
    this.inFlight = Math.max(1, o.inFlight ?? DEFAULT_IN_FLIGHT);
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Seconds of training, earlier runs included; it stops counting when the run ends. */
  get elapsed(): number {
    if (this.started === undefined) return this.o.elapsedBefore ?? 0;
    return (this.o.elapsedBefore ?? 0) + ((this.ended ?? this.now()) - this.started) / 1000;
  }

  /** Ends the run after the iteration in flight, with the final evaluation and checkpoint (a pause, a Ctrl-C). */
  stop(): void {
    this.stopping = true;
  }

  /** Ends the run at once, with no final actions: run() rejects with `reason` (a lost device). */
  abort(reason: unknown): void {
    this.aborted ??= { reason };
  }

  /** A sample at the next safe point, whatever the cadence says. */
  requestSample(): void {
    this.sampleRequested = true;
  }

  /** Runs `fn` where the model is consistent: between two iterations while running, at once otherwise. */
  atSafePoint<T>(fn: () => Promise<T>): Promise<T> {
    if (this.state !== 'running') return fn();
    return new Promise<T>((resolve, reject) => {
      this.hooks.push(() => fn().then(resolve, reject));
    });
  }

  /** The model as it stands; only at a safe point (inside an event handler, or when not running). */
  async checkpoint(): Promise<LoopCheckpoint> {
    const { trainer } = this;
    const state = await trainer.backend.exportState();
    if (![state.params, state.hidden, state.cellState ?? new Float32Array()].every((a) => a.every(Number.isFinite))) {
      throw divergence(trainer, `the model's parameters became NaN or infinite by iteration ${trainer.iteration}`);
    }
    return { state, progress: structuredClone(trainer.progress()), elapsed: this.elapsed };
  }

  /** Trains until `until`, stop() or abort(); rejects with the first error (DivergedError, a lost device...). */
  async run(): Promise<{ reason: LoopEnd; iteration: number }> {
    if (this.state !== 'new') throw new Error('a TrainingLoop runs once');
    this.state = 'running';
    const { trainer, events, o } = this;
    this.started = this.now();
    const timers = {
      evaluate: o.evaluate && new Timer(o.evaluate.every, this.started),
      sample: o.sample && new Timer(o.sample.every, this.started),
      checkpoint: o.checkpoint && new Timer(o.checkpoint.every, this.started),
    };
    const yieldEvery = o.yieldEveryMs ?? 0;
    const yieldNow = o.yieldToEvents ?? yieldToEvents;
    let lastYield = this.started;
    try {
      while (!this.stopping && !this.aborted && (o.until === undefined || trainer.iteration < o.until)) {
        const step = await trainer.step();
        // A rejection is reported when its turn comes in settle(), in order.
        step.loss.catch(() => undefined);
        this.queue.push(step);
        await events.onStep?.(step.iteration);
        while (this.queue.length >= this.inFlight) await this.settle();
        if (this.aborted) break;

        const it = step.iteration;
        const now = this.now();
        const last = o.until !== undefined && it >= o.until;
        const evalNow = !last && timers.evaluate?.due(it, now) && trainer.canValidate;
        const sampleNow = !last && timers.sample && (this.sampleRequested || timers.sample.due(it, now));
        const saveNow = !last && timers.checkpoint?.due(it, now);
        if (evalNow || sampleNow || saveNow || this.hooks.length) {
          await this.drain();
          await this.runHooks();
          if (evalNow) await this.timed(timers.evaluate!, () => this.evaluate(o.evaluate!.batches, false));
          if (sampleNow) {
            this.sampleRequested = false;
            await this.timed(timers.sample!, () => this.sample());
          }
          if (saveNow) await this.timed(timers.checkpoint!, async () => events.onCheckpoint?.(await this.checkpoint(), false));
          events.onResume?.();
        }
        if (this.now() - lastYield >= yieldEvery) {
          await yieldNow();
          lastYield = this.now();
        }
      }
      if (this.aborted) throw this.aborted.reason;
      await this.drain();
      // A stop that coincides with the last iteration is still the stop the user asked for.
      const reason: LoopEnd = this.stopping ? 'stopped' : 'finished';
      events.onEnding?.(reason);
      const e = o.evaluate;
      if (e?.atEnd && (e.atEnd === 'always' || reason === 'finished') && trainer.canValidate) await this.evaluate(e.endBatches, true);
      if (o.sample?.atEnd && reason === 'finished' && this.lastSampleAt !== trainer.iteration) await this.sample();
      if (events.onCheckpoint) await events.onCheckpoint(await this.checkpoint(), true);
      return { reason, iteration: trainer.iteration };
    } finally {
      this.ended = this.now();
      this.state = 'done';
      // Work asked for while the run was ending still runs, on the model as the run left it.
      await this.runHooks().catch(() => undefined);
    }
  }

  private async settle(): Promise<void> {
    const item = this.queue.shift()!;
    const loss = await item.loss;
    this.events.onLoss?.(item.iteration, loss);
  }

  private async drain(): Promise<void> {
    while (this.queue.length) await this.settle();
  }

  private async runHooks(): Promise<void> {
    while (this.hooks.length) await this.hooks.shift()!();
  }

  private async timed(timer: Timer, fn: () => Promise<void>): Promise<void> {
    const t0 = this.now();
    await fn();
    timer.done(t0, this.now());
  }

  private async evaluate(batches: number | undefined, final: boolean): Promise<void> {
    const { trainer } = this;
    const loss = await trainer.validate(batches || Infinity);
    if (!Number.isFinite(loss)) throw divergence(trainer, `the validation loss became ${loss} at iteration ${trainer.iteration}`);
    await this.events.onEval?.(trainer.iteration, loss, final);
  }

  private async sample(): Promise<void> {
    const it = this.trainer.iteration;
    const options = this.o.sample?.options(it);
    if (!options) return;
    const all = await this.trainer.backend.sampleMany(options, options.count ?? 1);
    this.lastSampleAt = it;
    await this.events.onSample?.(it, all[0], options, all);
  }
}
