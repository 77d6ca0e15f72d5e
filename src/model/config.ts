/** Shapes and hyperparameters shared by every backend, the CLI, the web page and the benchmarks. */
import type { StackedConfig } from '../cpu/stacked.ts';

export type CellType = 'rnn' | 'lstm' | 'gru';
export type OptimizerName = 'adam' | 'adagrad';

export const CELL_TYPES: readonly CellType[] = ['rnn', 'lstm', 'gru'];

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
export function fullModelConfig(model: ModelConfig): StackedConfig {
  return {
    cell: model.cell, vocabSize: model.vocabSize, hiddenSize: model.hiddenSize,
    layers: model.layers ?? 1, dropout: model.dropout ?? 0,
  };
}

/**
 * Seed of the dropout masks, derived from the run's seed so that a run is reproducible from one
 * number while the masks stay independent of the initialisation (Rng) and sampling streams.
 */
export function dropoutSeed(seed: number): number {
  return (seed ^ 0x5eed_d0d0) >>> 0;
}

export interface TrainConfig {
  /** Timesteps of backpropagation through time per iteration (T). */
  seqLength: number;
  /** Independent sequences trained side by side (B). */
  batchSize: number;
  optimizer: OptimizerName;
  learningRate: number;
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
