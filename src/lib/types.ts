// The public types of the package: what `import ... from 'webgpu-rnn'` offers, in Node and in the
// browser alike. Declared here, not re-exported from the engine, so that the package's `.d.ts`
// names nothing internal (API Extractor fails the build if it would: src/lib/build/).

/** Recurrent cell: Elman RNN (tanh), LSTM (gates i, f, g, o) or GRU (r, z, n), as PyTorch's nn.RNN, nn.LSTM, nn.GRU. */
export type CellType = 'rnn' | 'lstm' | 'gru';

/** `gpu`: WebGPU (fails without an adapter); `cpu`: the plain TypeScript reference; `auto`: the GPU when an adapter exists. */
export type BackendChoice = 'gpu' | 'cpu' | 'auto';

/** Character level (Unicode code points) or word level (words, with spaces and punctuation as tokens). */
export type TokenizerLevel = 'char' | 'word';

/** How a {@link Tokenizer} is built from text. */
export interface TokenizerOptions {
  /** `char` (default) or `word`. */
  level?: TokenizerLevel;
  /**
   * What the text keeps, as the CLI's `--charset`: `clean` and `raw` (default `clean`) take your
   * text as it is; `letters` keeps a-z and one space for every run of anything else (vocabulary 27).
   * The tokenizer applies it to every text it encodes (training text, primes).
   */
  charset?: 'clean' | 'raw' | 'letters';
  /** Lowercase every text before encoding (always for `letters`). Default false. */
  lowercase?: boolean;
  /** Word level: largest vocabulary, `<unk>` included. Default 10000. */
  maxVocab?: number;
  /** Word level: tokens seen fewer times become `<unk>`. Default 1. */
  minCount?: number;
  /** Word level: false for no `<unk>` (every distinct token must fit in maxVocab). Default true. */
  unk?: boolean;
}

/**
 * A learning-rate schedule over updates: char-rnn's step decay (times `decay` every `every`
 * updates once `after` updates are done) or a cosine from `lr` down to `min` over `iterations`.
 */
export type LrSchedule =
  | { kind: 'none' }
  | { kind: 'step'; decay: number; every: number; after: number }
  | { kind: 'cosine'; min: number; iterations: number };

/** The model's shape and how it trains. Names follow PyTorch's `nn.LSTM(hidden_size, num_layers, dropout)` and `optim.Adam(lr)`. */
export interface ModelOptions {
  /** Default `rnn`. */
  cell?: CellType;
  /** Hidden units per layer (PyTorch's hidden_size). Default 128. */
  hiddenSize?: number;
  /** Recurrent layers stacked (num_layers). Default 1. */
  numLayers?: number;
  /** Dropout between layers and before the decoder, in training only; in [0, 1). Default 0. */
  dropout?: number;
  /** Steps of backpropagation through time per iteration (T). Default 64. */
  seqLength?: number;
  /** Sequences trained side by side (B). Default 32. */
  batchSize?: number;
  /** Default `adam`. `rmsprop` and `sgd` follow torch.optim.RMSprop and torch.optim.SGD. */
  optimizer?: 'adam' | 'adagrad' | 'rmsprop' | 'sgd';
  /** Learning rate. Default 0.003. */
  lr?: number;
  /** SGD's momentum (PyTorch's, dampening 0), in [0, 1). Default 0.9. */
  momentum?: number;
  /** SGD with Nesterov momentum. Default false. */
  nesterov?: boolean;
  /** RMSprop's decay of the mean square (PyTorch's alpha). Default 0.95, char-rnn's. */
  rmsDecay?: number;
  /** How the learning rate changes with the updates made. Default: constant. */
  lrSchedule?: LrSchedule;
  /** Each gradient element is clipped to [-clip, clip] before the update. Default 5. */
  clip?: number;
  /** Each sequence's carried hidden state is zeroed once every this many iterations (staggered); 0: only when the data wraps. Default 16. */
  stateReset?: number;
  /** Initial weights, data order, dropout masks. Default 1. */
  seed?: number;
}

/**
 * A WebGPU `GPUDevice`, typed by the few members this package relies on, so that these declarations
 * need neither `@webgpu/types` nor a DOM lib; any real GPUDevice is one.
 */
export interface WebGPUDevice {
  readonly limits: object;
  readonly queue: object;
  readonly lost: Promise<unknown>;
  createBuffer(descriptor: never): unknown;
  createComputePipeline(descriptor: never): unknown;
  destroy(): void;
}

/** Where a model runs. */
export interface DeviceOptions {
  /** Default `auto`. */
  backend?: BackendChoice;
  /**
   * A WebGPU device you already have (implies the GPU backend). The model never destroys it;
   * without it, the model acquires its own (Dawn in Node, `navigator.gpu` in the browser) and
   * releases it in {@link RNNModel.dispose}.
   */
  device?: WebGPUDevice;
  /** Called with one line when `auto` falls back to the CPU (default: ignored). */
  onWarning?: (line: string) => void;
}

/** Options of {@link createModel}. */
export interface CreateModelOptions extends ModelOptions, DeviceOptions {
  /** The vocabulary; the model's input and output size is `tokenizer.vocabSize`. */
  tokenizer: Tokenizer;
}

/** The full configuration of a model, defaults filled in. */
export interface ModelConfig extends Required<ModelOptions> {
  vocabSize: number;
}

/** Reported after every training iteration. */
export interface TrainProgress {
  /** Iterations done, earlier {@link RNNModel.fit} calls included. */
  iteration: number;
  /** This iteration's training loss, nats per token. */
  loss: number;
  /** Passes over the training text, fractional. */
  epoch: number;
  /** Training tokens per second in this call so far. */
  tokensPerSecond: number;
  /** The latest validation loss (nats per token) in this call, when one was computed. */
  valLoss?: number;
}

/** Options of {@link RNNModel.fit}. */
export interface FitOptions {
  /** Iterations to train in this call. Default 100 (ignored when `epochs` is given). */
  iterations?: number;
  /** Passes over the training text instead of a count of iterations. */
  epochs?: number;
  /** The held-out tail of the text used for validation. Default 0.05; 0 for none. */
  valFraction?: number;
  /** Validation every this many iterations (0: only at the end). Default 0. */
  evalEvery?: number;
  /** Validation batches per evaluation (default: all). */
  evalBatches?: number;
  /** Called after every iteration, in order. */
  onProgress?: (progress: TrainProgress) => void;
  /** Stops after the iteration in flight; fit then resolves with `stopped: true` and the model stays usable. */
  signal?: AbortSignal;
}

/** What {@link RNNModel.fit} did. */
export interface FitResult {
  /** The iteration reached (earlier calls included). */
  iteration: number;
  /** Mean training loss of this call's last (up to 20) iterations, nats per token; NaN when none ran. */
  loss: number;
  /** Validation loss at the end, nats per token; absent without a held-out split. */
  valLoss?: number;
  /** True when `signal` stopped it early. */
  stopped: boolean;
  /** Seconds this call trained. */
  seconds: number;
}

/** Options of {@link RNNModel.sample}. */
export interface SampleOptions {
  /** Tokens to generate. Default 200. */
  length?: number;
  /** Softmax temperature; lower is more conservative. Default 0.8. */
  temperature?: number;
  /** Always take the most likely token (temperature 0). Default false. */
  argmax?: boolean;
  /** Text fed before generating (not repeated in the result). Default: a newline, or the first token. */
  prime?: string;
  /** Random seed: the same seed, model and options give the same text. Default: random. */
  seed?: number;
  /** Draw only from the tokens whose logit is at least the k-th largest (ties stay). Default: all. */
  topK?: number;
  /** Nucleus sampling: the smallest most-likely set of tokens holding at least p of the mass, in (0, 1]. Default 1. */
  topP?: number;
  /** CTRL's repetition penalty (as Hugging Face applies it): the logits of recent tokens are divided by it when positive, multiplied when negative. Default 1. */
  repetitionPenalty?: number;
  /** How many previous tokens (prime included) the penalty looks at; 0: all. Default 0. */
  repetitionWindow?: number;
}

/** A chunk of token ids, time-major: `inputs[t * batchSize + b]` is sequence b's token at step t. */
export interface TokenChunk {
  /** `seqLength * batchSize` ids. */
  inputs: Uint32Array;
  /** The token following each input. */
  targets: Uint32Array;
}

/** One tensor of the flat parameter array, under PyTorch's `state_dict` name (`rnn.weight_ih_l0`, ..., `decoder.bias`). */
export interface ParameterInfo {
  name: string;
  shape: number[];
  /** Where it starts in the flat array. */
  offset: number;
  /** Elements (the product of shape). */
  size: number;
}

/** A tensor: row-major data and its shape. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/**
 * Everything that determines the next iteration: parameters and optimizer moments as flat arrays in
 * the layout of {@link RNNModel.parameters}, and the hidden state carried between chunks.
 */
export interface TrainingState {
  params: Float32Array;
  /** Adam's first moment, Adagrad's sum of squares, or SGD's momentum buffer. */
  optM: Float32Array;
  /** Adam's second moment or RMSprop's mean square (zeros for Adagrad and SGD). */
  optV: Float32Array;
  /** Optimizer steps taken. */
  optStep: number;
  /** Carried hidden state `[numLayers, batchSize, hiddenSize]` (PyTorch's h_0). */
  hidden: Float32Array;
  /** LSTM only: the carried memory cells, same shape (c_0). */
  cellState?: Float32Array;
}

/** Loss and gradients of one chunk from the current state, without an update. */
export interface Gradients {
  /** Mean cross-entropy, nats per token. */
  loss: number;
  /** Gradient of the loss, in the flat layout of {@link RNNModel.parameters} (before clipping). */
  grads: Float32Array;
  /** Hidden state after the chunk, `[numLayers, batchSize, hiddenSize]`. */
  hLast: Float32Array;
  /** Gradient with respect to the initial hidden state. */
  dh0: Float32Array;
  /** LSTM only: memory cells after the chunk, and the gradient with respect to the initial ones. */
  cLast?: Float32Array;
  dc0?: Float32Array;
}

/** Maps text to token ids and back; saved with the model. */
export interface Tokenizer {
  readonly level: TokenizerLevel;
  readonly charset: 'clean' | 'raw' | 'letters';
  readonly lowercase: boolean;
  /** id to token. */
  readonly vocab: readonly string[];
  readonly vocabSize: number;
  /** Throws on a character outside the vocabulary (word level with `<unk>`: maps unknown words to it). */
  encode(text: string): Uint32Array;
  decode(ids: ArrayLike<number>): string;
}

/** A language model: a stack of recurrent layers and a linear decoder over the vocabulary. */
export interface RNNModel {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  /** The backend chosen: `gpu` or `cpu`. */
  readonly device: 'gpu' | 'cpu';
  /** The adapter's name, or the CPU reference. */
  readonly deviceName: string;
  /** Number of trainable values. */
  readonly numParameters: number;
  /** Training iterations done so far (across fit calls and saves). */
  readonly iteration: number;
  /**
   * Trains on `text` (or ids from this model's tokenizer): its last `valFraction` is held out,
   * the rest is cut into `batchSize` streams read `seqLength` tokens at a time. Calling it again
   * with text of the same length continues where the streams stopped.
   */
  fit(text: string | Uint32Array, options?: FitOptions): Promise<FitResult>;
  /** Mean loss (nats per token) over the full batches of `text`, from a zero hidden state; changes nothing. */
  evaluate(text: string | Uint32Array): Promise<number>;
  /** Generates text, continuing from the state training left (a zero state for a fresh model). */
  sample(options?: SampleOptions): Promise<string>;
  /** `count` independent samples side by side (in the same GPU dispatches); sample i draws random stream i of the seed, so the first equals `sample`'s. */
  sampleMany(count: number, options?: SampleOptions): Promise<string[]>;
  /** The model as a safetensors file (the CLI's checkpoint format: `npx webgpu-rnn sample --checkpoint` reads it). */
  save(): Promise<Uint8Array>;
  /** The flat parameter layout, with PyTorch's names and shapes. */
  parameters(): ParameterInfo[];
  /** Parameters by PyTorch name: `load_state_dict` of an `nn.RNN`/`nn.LSTM`/`nn.GRU` called `rnn` plus an `nn.Linear` called `decoder`. */
  stateDict(): Promise<Record<string, Tensor>>;
  /** Loss and gradients of one chunk of `seqLength * batchSize` tokens, without an update. */
  lossAndGradients(chunk: TokenChunk): Promise<Gradients>;
  /** A copy of the full training state. */
  exportState(): Promise<TrainingState>;
  /** Replaces the full training state (checked against the model's shape). */
  importState(state: TrainingState): void;
  /** Frees the model's buffers and its own GPU device. */
  dispose(): void;
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions extends DeviceOptions {
  /** Another batch size for further training or sampling (the carried state then starts from zeros). */
  batchSize?: number;
}
