/** Shapes and hyperparameters shared by every backend, the CLI, the web page and the benchmarks. */
import { GATES, type CellType } from './cells.ts';
import type { LrSchedule, OptimizerOptions } from './optimizer.ts';

export interface ModelConfig {
  cell: CellType;
  /** Number of tokens (characters or words). */
  vocabSize: number;
  hiddenSize: number;
  /**
   * Recurrent layers stacked; absent means 1 (checkpoints written before stacking existed, and
   * callers that only ever built one layer).
   */
  layers?: number;
  /** Dropout between layers and before the decoder, training only; absent means 0. */
  dropout?: number;
}

/** The model with its defaults filled in: the shape every backend actually builds. */
export type FullModelConfig = Required<ModelConfig>;

/** Fills in the defaults and checks the shape; throws a one-line error for an impossible one. */
export function fullModelConfig(model: ModelConfig): FullModelConfig {
  const full = {
    cell: model.cell, vocabSize: model.vocabSize, hiddenSize: model.hiddenSize,
    layers: model.layers ?? 1, dropout: model.dropout ?? 0,
  };
  validateModel(full);
  return full;
}

export function validateModel(config: FullModelConfig): void {
  const { cell, vocabSize: V, hiddenSize: H, layers: L, dropout: p } = config;
  if (!(cell in GATES)) throw new Error(`unknown cell '${cell}'`);
  for (const [name, n] of [['vocabSize', V], ['hiddenSize', H], ['layers', L]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be an integer >= 1, got ${n}`);
  }
  if (!(p >= 0 && p < 1)) throw new Error(`dropout must be in [0, 1), got ${p}`);
}

/** The optimizer and its hyperparameters (OptimizerOptions: optimizer, momentum, nesterov, rmsDecay) and the rest of training. */
export interface TrainConfig extends OptimizerOptions {
  /** Timesteps of backpropagation through time per iteration (T). */
  seqLength: number;
  /** Independent sequences trained side by side (B). */
  batchSize: number;
  /** The base learning rate; the schedule scales it per update (src/model/optimizer.ts: learningRateAt). */
  learningRate: number;
  /** Absent: none (a constant rate), as in checkpoints from before schedules. */
  lrSchedule?: LrSchedule;
  /** Each gradient element is clipped to [-clip, clip] before the update (min-char-rnn's rule). */
  clip: number;
  /**
   * Each stream's carried state is zeroed once every this many iterations, the streams staggered
   * (src/engine/trainer.ts: streamsToReset); 0 or absent: only when the data wraps around. A model
   * that only ever continues a carried state can learn dynamics that go wrong from a zero state,
   * which is where evaluation and a fresh sample start (a GRU did: 2.1 bits/char in training,
   * 5.6 on held-out text).
   */
  stateReset?: number;
}
