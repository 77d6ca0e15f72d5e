/**
 * Train/validation split and the batches fed to the model. Browser-safe.
 *
 * Layout is time-major, index t*B + b, because the model walks time step by step and at each
 * step wants the B tokens of that step side by side (one contiguous row to upload or gather).
 */
import { DataError } from './text.ts';
import type { TokenIds } from './tokenizer.ts';

/**
 * A fixed held-out tail, as char-rnn does: contiguous, so validation text is text the model has
 * never seen in any context, and fixed, so validation losses of different runs compare.
 */
export function splitTrainVal<T extends TokenIds>(ids: T, valFraction = 0.05): { train: T; val: T } {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new DataError(`validation fraction must be in [0, 1), got ${valFraction}`);
  }
  const nVal = Math.floor(ids.length * valFraction);
  const cut = ids.length - nVal;
  return { train: ids.subarray(0, cut) as T, val: ids.subarray(cut) as T };
}

export interface Batch {
  /** B*T token ids, time-major: inputs[t*B + b] is stream b's token at step t. */
  inputs: Uint32Array;
  /** The token that follows each input: targets[t*B + b] === inputs[(t+1)*B + b] for t < T-1. */
  targets: Uint32Array;
  /** Completed passes over the data before this batch (0 during the first). */
  epoch: number;
  /** True when the streams jumped back to their starts for this batch: reset the hidden state. */
  wrapped: boolean;
}

export interface StreamState {
  /** Offset of the next batch inside every stream. */
  position: number;
  epoch: number;
}

function checkShape(B: number, T: number): void {
  if (!Number.isInteger(B) || B < 1) throw new DataError(`--batch-size must be a positive integer, got ${B}`);
  if (!Number.isInteger(T) || T < 1) throw new DataError(`--seq-length must be a positive integer, got ${T}`);
}

/**
 * Time-major [T, B] block of `ids` starting at `position` within each of the B streams of length
 * `streamLength`, and the block one token later.
 */
function gather(ids: TokenIds, B: number, steps: number, streamLength: number, position: number) {
  const inputs = new Uint32Array(steps * B);
  const targets = new Uint32Array(steps * B);
  for (let b = 0; b < B; b++) {
    const start = b * streamLength + position;
    for (let t = 0; t < steps; t++) {
      inputs[t * B + b] = ids[start + t]!;
      targets[t * B + b] = ids[start + t + 1]!;
    }
  }
  return { inputs, targets };
}

/**
 * B contiguous streams over the training ids, read T tokens at a time (char-rnn's scheme).
 * Each stream is continuous text, so the hidden state at the end of one batch is the right
 * starting state for the next: truncated BPTT sees dependencies longer than T.
 */
export class BatchStream {
  readonly batchSize: number;
  readonly seqLength: number;
  /** Tokens in each stream; the last len % B tokens of the data are never used. */
  readonly streamLength: number;
  /** Batches in one pass; the last < T tokens of each stream are skipped. */
  readonly batchesPerEpoch: number;
  private readonly ids: TokenIds;
  private position = 0;
  private epoch = 0;

  constructor(ids: TokenIds, batchSize: number, seqLength: number) {
    checkShape(batchSize, seqLength);
    const B = batchSize;
    const T = seqLength;
    const M = Math.floor(ids.length / B);
    // Targets run one token past the inputs, and must not spill into the next stream.
    if (M < T + 1) {
      throw new DataError(
        `corpus too short: ${ids.length} tokens give ${B} streams of ${M}, ` +
          `need at least T+1 = ${T + 1} (lower --batch-size or --seq-length)`,
      );
    }
    this.ids = ids;
    this.batchSize = B;
    this.seqLength = T;
    this.streamLength = M;
    this.batchesPerEpoch = Math.floor((M - 1) / T);
  }

  next(): Batch {
    const T = this.seqLength;
    let wrapped = false;
    // Wrapping is decided here rather than after the previous batch, so state() between two
    // calls always names the batch that comes next, and restore() needs no extra flag.
    if (this.position + T + 1 > this.streamLength) {
      this.position = 0;
      this.epoch++;
      wrapped = true;
    }
    const { inputs, targets } = gather(this.ids, this.batchSize, T, this.streamLength, this.position);
    const batch = { inputs, targets, epoch: this.epoch, wrapped };
    this.position += T;
    return batch;
  }

  /** Fractional epochs done, for progress displays and learning-rate schedules. */
  get progress(): number {
    return this.epoch + Math.min(1, Math.floor(this.position / this.seqLength) / this.batchesPerEpoch);
  }

  state(): StreamState {
    return { position: this.position, epoch: this.epoch };
  }

  /**
   * Resume exactly where a checkpoint left off. A state from a different corpus or batch shape
   * could land anywhere, so impossible ones are refused rather than clamped.
   */
  restore(state: StreamState): void {
    const { position, epoch } = state;
    if (!Number.isInteger(position) || position < 0 || position > this.streamLength) {
      throw new DataError(`cannot resume: position ${position} is outside streams of ${this.streamLength} tokens`);
    }
    if (!Number.isInteger(epoch) || epoch < 0) throw new DataError(`cannot resume: bad epoch ${epoch}`);
    this.position = position;
    this.epoch = epoch;
  }
}

export interface EvalBatch {
  /** steps*B ids, time-major like Batch. */
  inputs: Uint32Array;
  targets: Uint32Array;
  /** Time steps in this batch: T, except possibly fewer in the last one. */
  steps: number;
}

/**
 * One deterministic pass over `ids` (the validation split) in the same B-stream layout as
 * training. Start from a zero hidden state and carry it across the batches: they continue each
 * other. Unlike training, the tail is not skipped: the last batch is shorter instead, so every
 * token after the first of each stream is predicted exactly once and the loss covers the split.
 */
export function* evalBatches(ids: TokenIds, B: number, T: number): Generator<EvalBatch> {
  checkShape(B, T);
  const M = Math.floor(ids.length / B);
  if (M < 2) {
    throw new DataError(
      `validation split too short: ${ids.length} tokens give ${B} streams of ${M}, ` +
        `need at least 2 (lower --batch-size or use a larger corpus)`,
    );
  }
  for (let position = 0; position < M - 1; position += T) {
    const steps = Math.min(T, M - 1 - position);
    yield { ...gather(ids, B, steps, M, position), steps };
  }
}
