/**
 * Training on the page: the engine's TrainingLoop with cadences in seconds (a person is watching,
 * whatever the model's speed), its events turned into messages. Losses go out in batches a few
 * times a second; validation, samples and the in-memory copy come every few seconds; the copy in
 * the browser's storage less often, and when the run stops.
 */
import type { LoopCheckpoint } from '../../engine/training-loop.ts';
import { TrainingLoop } from '../../engine/training-loop.ts';
import type { Trainer } from '../../engine/trainer.ts';
import type { SampleOptions } from '../../model/backend.ts';
import type { Reply } from '../protocol.ts';
import { sampleReply, type Run } from './run.ts';

/** Seconds between the loop's actions; the defaults suit a person watching, tests shorten them. */
export interface Timing {
  firstValidation: number;
  validation: number;
  snapshot: number;
  autosave: number;
  progress: number;
}

export const DEFAULT_TIMING: Timing = { firstValidation: 2, validation: 8, snapshot: 20, autosave: 90, progress: 0.25 };
/** Validation batches: a fixed prefix of the held-out split, so successive values compare. */
export const VAL_BATCHES = 8;
/** The speed shown is over this many seconds, so it follows the current rate. */
const SPEED_WINDOW_S = 5;

export interface TrainingHost {
  post(reply: Reply): void;
  timing: Timing;
  /** Seconds between automatic samples (0: none); the user may change it while training. */
  sampleEvery(): number;
  /** The sample to take now, or undefined when the settings are not usable (already reported). */
  sampleRequest(iteration: number): { options: SampleOptions & { count: number }; primeText: string } | undefined;
  /** Keeps the model in the browser's storage; `quiet`: a failure is not reported. */
  autosave(c: LoopCheckpoint, quiet: boolean): Promise<void>;
}

/** Tokens per second over the last few seconds of losses. */
class Speed {
  private seen: { t: number; it: number }[] = [];
  perSecond = NaN;
  constructor(private readonly tokensPerIteration: number) {}

  add(t: number, it: number): void {
    const seen = this.seen;
    seen.push({ t, it });
    while (seen.length > 2 && t - seen[0]!.t > SPEED_WINDOW_S * 1000) seen.shift();
    if (seen.length < 2) return;
    const a = seen[0]!;
    const b = seen[seen.length - 1]!;
    this.perSecond = ((b.it - a.it) * this.tokensPerIteration * 1000) / Math.max(1e-6, b.t - a.t);
  }
}

/** One stretch of training, from Start (or Resume) to Pause or a failure. */
export class TrainingRun {
  readonly loop: TrainingLoop;
  /** Pause was asked for: the loop ends after the iterations in flight. */
  stopping = false;

  constructor(host: TrainingHost, private readonly r: Run, trainer: Trainer) {
    const t = host.timing;
    const points: { it: number[]; loss: number[] } = { it: [], loss: [] };
    const speed = new Speed(trainer.tokensPerIteration);
    let lastPost = performance.now();
    let nextStore = lastPost + t.autosave * 1000;
    let primeText = '';
    const flush = () => {
      if (points.it.length === 0) return;
      host.post({
        type: 'progress', iterations: points.it, losses: points.loss, tokensPerSecond: speed.perSecond,
        iteration: trainer.iteration, epoch: trainer.stream.progress, elapsed: this.loop.elapsed,
      });
      points.it = [];
      points.loss = [];
      lastPost = performance.now();
    };
    this.flush = flush;
    this.loop = new TrainingLoop({
      trainer,
      elapsedBefore: r.elapsed,
      yieldEveryMs: 50,
      evaluate: { every: { seconds: t.validation, first: t.firstValidation, costFactor: 10 }, batches: VAL_BATCHES, atEnd: 'always', endBatches: VAL_BATCHES },
      sample: {
        every: () => {
          const every = host.sampleEvery();
          // Samples take at most a fifth of the time, once the sampler's pipeline exists.
          return { seconds: every, first: Math.min(t.firstValidation, every || Infinity), costFactor: 4 };
        },
        options: (it) => {
          const req = host.sampleRequest(it);
          primeText = req?.primeText ?? '';
          return req?.options;
        },
      },
      checkpoint: { every: { seconds: t.snapshot, costFactor: 20 } },
      events: {
        onLoss: (it, loss) => {
          const now = performance.now();
          r.trainLoss = loss;
          points.it.push(it);
          points.loss.push(loss);
          speed.add(now, it);
          if (now - lastPost >= t.progress * 1000) flush();
        },
        onEval: (it, loss) => {
          r.valLoss = loss;
          host.post({ type: 'val', iteration: it, loss });
        },
        onSample: (it, _tokens, o, all) => {
          host.post(sampleReply(r.tokenizer, primeText, it, o, all));
        },
        onCheckpoint: async (c, final) => {
          r.snapshot = c;
          if (!final && performance.now() < nextStore) return;
          await host.autosave(c, final);
          nextStore = performance.now() + t.autosave * 1000;
        },
      },
    });
  }

  private readonly flush: () => void;

  stop(): void {
    this.stopping = true;
    this.loop.stop();
  }

  /** Trains until stopped; resolves (never rejects) with the failure that ended it, if any. */
  async run(): Promise<{ failure?: unknown }> {
    try {
      await this.loop.run();
      return {};
    } catch (failure) {
      return { failure };
    } finally {
      this.r.elapsed = this.loop.elapsed;
      this.flush();
    }
  }
}
