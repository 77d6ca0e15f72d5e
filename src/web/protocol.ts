/**
 * Messages between the page (main.ts) and the engine's worker (worker.ts, worker/session.ts).
 * The worker owns the Backend and the Trainer; the page only sends commands and draws what
 * comes back. Everything here is structured-clone data.
 */
import type { SamplingControls } from '../model/backend.ts';
import type { TuneMode } from '../gpu/tuner.ts';
import type { CellType } from '../model/cells.ts';
import type { LrSchedule, OptimizerName } from '../model/optimizer.ts';
import type { TokenizerLevel } from '../data/tokenizer.ts';
import type { Charset } from '../data/text.ts';

export type BackendKind = 'gpu' | 'cpu';

/** The limits the page needs to check a model's size before anything is allocated. */
export interface LimitsSummary {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupsPerDimension: number;
}

export interface AdapterOption {
  id: number;
  /** How it was asked for: "WebGPU" or "WebGPU (compatibility)". */
  label: string;
  /** What the adapter says it is (often empty in compatibility mode). */
  name: string;
  /** The adapter reports isFallbackAdapter (SwiftShader does). */
  reportedFallback: boolean;
  /** Our judgement: reported, or a software rasteriser by name or by WebGL renderer. */
  software: boolean;
  /** The WebGL renderer string, a hint at what sits under an adapter that gives no name. */
  glRenderer?: string;
  limits: LimitsSummary;
}

export type DataSource =
  | { kind: 'builtin'; id: string; url: string }
  | { kind: 'file'; name: string; bytes: ArrayBuffer };

export interface DataOptions {
  level: TokenizerLevel;
  /** Which characters to keep (src/data/text.ts): `letters` implies lowercase. */
  charset: Charset;
  lowercase: boolean;
  /** Word level only: softmax size, <unk> included. */
  maxVocab: number;
}

export interface DataInfo {
  /** 'builtin:<id>' or 'file'. */
  source: string;
  name: string;
  chars: number;
  tokens: number;
  vocabSize: number;
  trainTokens: number;
  valTokens: number;
  options: DataOptions;
  /** The first few hundred characters, shown as text. */
  preview: string;
}

export interface ModelForm {
  cell: CellType;
  /** Recurrent layers (absent: 1) and dropout between them (absent: 0). */
  layers?: number;
  dropout?: number;
  hiddenSize: number;
  seqLength: number;
  batchSize: number;
  optimizer: OptimizerName;
  /** sgd: momentum and Nesterov; rmsprop: its decay. Present only for that optimizer (absent: src/model/optimizer.ts's defaults). */
  momentum?: number;
  nesterov?: boolean;
  rmsDecay?: number;
  learningRate: number;
  /**
   * The learning-rate schedule (absent: none), in iterations, the page training without an end:
   * step: times lrDecay every lrDecayEvery iterations from iteration lrDecayAfter; cosine: down to
   * lrMin over lrIterations. Each field present only for its schedule (src/web/shared.ts).
   */
  lrSchedule?: LrSchedule['kind'];
  lrDecay?: number;
  lrDecayEvery?: number;
  lrDecayAfter?: number;
  lrMin?: number;
  lrIterations?: number;
  clip: number;
  /** TrainConfig.stateReset (absent: 0, state carried). */
  stateReset?: number;
  seed: number;
}

export interface Placement {
  backend: BackendKind;
  /** AdapterOption.id; ignored on the CPU. */
  adapter: number;
  /** GPU kernel tuning (src/engine/tuning.ts); absent: auto. */
  tune?: TuneMode;
}

export interface SamplingSettings {
  prime: string;
  temperature: number;
  /** Top-k, top-p and the repetition penalty (absent: plain sampling). */
  controls?: SamplingControls;
  /** Samples side by side (absent: 1). */
  count?: number;
  /** Tokens per sample. */
  length: number;
  /** Seconds between automatic samples while training; 0 turns them off. */
  every: number;
}

export type Phase = 'empty' | 'busy' | 'ready' | 'training' | 'paused' | 'lost';

export interface ModelSummary extends ModelForm {
  vocabSize: number;
  level: TokenizerLevel;
  charset: Charset;
  lowercase: boolean;
  /** progress.corpus of the checkpoint (a corpus name or a file name). */
  corpus: string;
  parameters: number;
}

export interface Status {
  phase: Phase;
  /** Changes whenever a new model replaces the old one (the page clears its chart). */
  runId: number;
  model?: ModelSummary;
  backend?: {
    kind: BackendKind; adapter: number; description: string; software: boolean; dispatches: number; memoryBytes?: number;
    /** On the GPU: the kernel tuner's choice, e.g. "kernels: matmul registers-8x8 for 4 shapes; cell_forward rows8; cell_backward rows8 (6 cached)". */
    kernels?: string;
  };
  iteration: number;
  epoch: number;
  /** Seconds of training, across pauses and loads. */
  elapsed: number;
  /** False when the model came from a checkpoint whose text is not here (sampling only). */
  canTrain: boolean;
  /** What the worker is doing while phase is 'busy'. */
  activity?: string;
  lost?: { reason: string; keptIteration: number };
}

export interface BenchResult {
  kind: BackendKind;
  description: string;
  iterations: number;
  seconds: number;
  tokensPerSecond: number;
  msPerIteration: number;
}

export interface SavedModelInfo {
  name: string;
  savedAt: number;
  iteration: number;
  bytes: number;
}

/** Where an error belongs on the page. */
export type ErrorArea = 'gpu' | 'data' | 'model' | 'train' | 'sample' | 'file' | 'bench';

export type Request =
  | { type: 'init' }
  | { type: 'data'; source: DataSource; options: DataOptions }
  | { type: 'build'; form: ModelForm; placement: Placement }
  | { type: 'start' }
  | { type: 'pause' }
  | { type: 'place'; placement: Placement }
  | { type: 'sampling'; settings: SamplingSettings }
  | { type: 'sample' }
  | { type: 'save' }
  | { type: 'load'; name: string; bytes: ArrayBuffer; placement: Placement }
  | { type: 'restore'; placement: Placement }
  | { type: 'forget' }
  | { type: 'bench'; form: ModelForm; adapter: number; iterations: number }
  /** Test hook: destroys the GPU device as a driver reset would. */
  | { type: 'lose-device' };

export type Reply =
  | { type: 'hello'; adapters: AdapterOption[]; gpuError?: string; saved?: SavedModelInfo }
  | { type: 'data'; info: DataInfo }
  | { type: 'status'; status: Status }
  | { type: 'progress'; iterations: number[]; losses: number[]; tokensPerSecond: number; iteration: number; epoch: number; elapsed: number }
  | { type: 'val'; iteration: number; loss: number }
  | { type: 'sample'; prime: string; text: string; iteration: number; temperature: number; controls?: SamplingControls; more?: string[] }
  | { type: 'checkpoint'; bytes: ArrayBuffer; filename: string }
  | { type: 'bench'; results: BenchResult[]; form: ModelForm }
  | { type: 'saved'; saved?: SavedModelInfo }
  | { type: 'notice'; message: string }
  | { type: 'error'; area: ErrorArea; message: string };
