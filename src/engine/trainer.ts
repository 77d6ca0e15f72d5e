/**
 * What the training loop (training-loop.ts) steps: the batch stream over the training split, the
 * backend, state resets, validation over the held-out tail, and divergence detection.
 * Browser-safe (no Node imports).
 */
import type { Backend } from '../model/backend.ts';
import type { TrainerProgress } from '../checkpoint/model-checkpoint.ts';
import { BatchStream, evalBatches } from '../data/split.ts';
import type { TokenIds } from '../data/tokenizer.ts';

export class DivergedError extends Error {}

/** What to change when training diverges, in the CLI's words (the page rewords the flags). */
export function divergence(trainer: Trainer, what: string): DivergedError {
  const { learningRate, clip } = trainer.backend.train;
  return new DivergedError(`${what}: lower --lr (now ${learningRate}) or --clip (now ${clip})`);
}

export class Trainer {
  readonly stream: BatchStream;
  iteration = 0;

  constructor(readonly backend: Backend, readonly trainIds: TokenIds, readonly valIds: TokenIds) {
    this.stream = new BatchStream(trainIds, backend.train.batchSize, backend.train.seqLength);
  }

  get tokensPerIteration(): number {
    return this.backend.train.batchSize * this.backend.train.seqLength;
  }

  /**
   * Enqueues the next iteration. Resolves once it is enqueued, with a promise of its loss that
   * rejects with DivergedError if the loss is not finite.
   */
  async step(): Promise<{ iteration: number; loss: Promise<number> }> {
    const batch = this.stream.next();
    if (batch.wrapped) this.backend.resetState();
    else {
      const due = streamsToReset(this.iteration, this.backend.train.batchSize, this.backend.train.stateReset ?? 0);
      if (due.length) this.backend.resetState(due);
    }
    const { loss } = await this.backend.trainStep(batch);
    const iteration = ++this.iteration;
    const checked = loss.then((l) => {
      if (!Number.isFinite(l)) throw divergence(this, `the training loss became ${l} at iteration ${iteration}`);
      return l;
    });
    return { iteration, loss: checked };
  }

  /** The held-out split holds at least one full batch of B x T (plus the targets' one token). */
  get canValidate(): boolean {
    const { batchSize: B, seqLength: T } = this.backend.train;
    return this.valIds.length >= B * (T + 1);
  }

  /**
   * Predictions validate(maxBatches) scores: B x T per full batch. The held-out split is cut into
   * B streams, and each stream's last partial batch (fewer than T steps) is left out, as the
   * backends run fixed T x B shapes.
   */
  validationTokens(maxBatches = Infinity): number {
    const { batchSize: B, seqLength: T } = this.backend.train;
    if (!this.canValidate) return 0;
    const full = Math.floor((Math.floor(this.valIds.length / B) - 1) / T);
    return Math.min(full, maxBatches) * B * T;
  }

  /**
   * Mean validation loss (nats per token) over the first `maxBatches` full batches of the
   * held-out split (all of them when omitted), from a zero hidden state. NaN when the split
   * holds no full batch of B x T.
   */
  async validate(maxBatches = Infinity): Promise<number> {
    const { batchSize: B, seqLength: T } = this.backend.train;
    if (!this.canValidate) return NaN;
    const chunks = [];
    for (const c of evalBatches(this.valIds, B, T)) {
      if (c.steps !== T || chunks.length >= maxBatches) break;
      chunks.push(c);
    }
    return this.backend.evaluate(chunks);
  }

  progress(): TrainerProgress {
    return { iteration: this.iteration, stream: this.stream.state() };
  }

  restore(p: TrainerProgress): void {
    this.iteration = p.iteration;
    this.stream.restore(p.stream);
  }
}

/**
 * The streams whose carried state is zeroed before iteration `iteration` (0-based), when each is
 * reset once every `every` iterations: stream b at the iterations i > 0 with
 * (i + floor(b * every / B)) % every == 0, so the resets spread evenly over the iterations (two
 * streams each for B = 32, every = 16) rather than all landing on one. Depends on the iteration
 * alone, so a resumed run resets exactly where the uninterrupted one would have.
 */
export function streamsToReset(iteration: number, batchSize: number, every: number): number[] {
  if (!(every > 0) || iteration === 0) return [];
  const due: number[] = [];
  for (let b = 0; b < batchSize; b++) if ((iteration + Math.floor((b * every) / batchSize)) % every === 0) due.push(b);
  return due;
}

export const LN2 = Math.log(2);
/** Nats per token to bits per token. */
export const bits = (nats: number) => nats / LN2;
