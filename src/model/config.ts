/** Shapes and hyperparameters shared by every backend, the CLI, the web page and the benchmarks. */

export type CellType = 'rnn';
export type OptimizerName = 'adam' | 'adagrad';

export interface ModelConfig {
  cell: CellType;
  /** Number of tokens (characters or words). */
  vocabSize: number;
  hiddenSize: number;
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
}

export const defaultTrainConfig: TrainConfig = {
  seqLength: 64,
  batchSize: 32,
  optimizer: 'adam',
  learningRate: 2e-3,
  clip: 5,
};
