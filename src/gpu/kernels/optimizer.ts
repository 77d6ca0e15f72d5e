/**
 * shaders/optimizer.wgsl: clipping and Adagrad, Adam, RMSprop or SGD (momentum, Nesterov) over the
 * flat parameters in one pass, which also keeps the transposed W_hh copies that cell_forward.wgsl
 * reads in step.
 */
import source from '../../../shaders/optimizer.wgsl?raw';
import type { TrainConfig } from '../../model/config.ts';
import { ADAGRAD_EPS, ADAM, learningRateAt, optimizerHyper, RMSPROP, type OptimizerName } from '../../model/optimizer.ts';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, grid1D, reads, uniformBinding, UniformLayout, writes, type Launch, type Region, type UniformSource } from './common.ts';

const UNIFORMS = new UniformLayout({
  n: 'u32', perRow: 'u32', lr: 'f32', clip: 'f32',
  c1: 'f32', c2: 'f32', beta1: 'f32', beta2: 'f32',
  eps: 'f32', oneMinusBeta1: 'f32', oneMinusBeta2: 'f32', whhLayers: 'u32',
  whhRows: 'u32', whhCols: 'u32', momentum: 'f32', nesterov: 'u32',
  decAt: 'u32', decBiasAt: 'u32', decRows: 'u32', decCols: 'u32',
  decOff: 'u32', decLd: 'u32',
});

/** Bytes of the uniform struct (src/gpu/buffers.ts sizes its buffer). */
export const OPTIMIZER_UNIFORM_BYTES = UNIFORMS.bytes;

/** The kernel's OPTIMIZER override constant for each optimizer. */
const KIND_CODE: Record<OptimizerName, number> = { adagrad: 0, adam: 1, rmsprop: 2, sgd: 3 };

export const OPTIMIZER = defineKernel({
  name: 'optimizer',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/cpu/optim.ts: optimizerUpdate',
  bindings: ['params', 'grads', 'm', 'v', 'u', 'whhT', 'whhAt'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main'],
});

const WG = 256;

/**
 * The W_hh blocks mirrored transposed into whhT: one per layer, each [rows, cols] at
 * params[whhAt[l]]; and optionally the decoder's.
 */
export interface WhhCopies { layers: number; rows: number; cols: number; decoder?: DecoderCopy }

/**
 * The decoder weight [rows = V, cols = H] at params[at] mirrored transposed into whhT[off ..] as
 * [cols, ld], and its bias [rows] at params[biasAt] as row `cols` after it: the logits product
 * reads them as a row-major B (src/gpu/buffers.ts: decoderCopyPlace).
 */
export interface DecoderCopy { at: number; biasAt: number; rows: number; cols: number; off: number; ld: number }

/** One optimizer step's settings. */
export interface OptimizerSettings {
  n: number;
  kind: OptimizerName;
  /** This update's learning rate (the schedule's, already applied). */
  lr: number; clip: number;
  /** This update's 1-based step number (Adam's bias correction). */
  step: number;
  /** beta2: Adam's second-moment decay, or RMSprop's alpha (the same update of v). */
  eps: number; beta1: number; beta2: number;
  /** SGD's momentum mu and Nesterov switch (absent: 0, off). */
  momentum?: number; nesterov?: boolean;
  whh?: WhhCopies;
}

/** A training run's settings for update number `step` (the constants are the CPU reference's, src/model/optimizer.ts). */
export function optimizerSettings(train: TrainConfig, n: number, whh: WhhCopies, step: number): OptimizerSettings {
  const kind = train.optimizer;
  const h = optimizerHyper(train);
  return {
    n, kind, lr: learningRateAt(train.learningRate, train.lrSchedule, step), clip: train.clip, step,
    eps: { adagrad: ADAGRAD_EPS, adam: ADAM.eps, rmsprop: RMSPROP.eps, sgd: 0 }[kind],
    beta1: ADAM.beta1, beta2: kind === 'rmsprop' ? h.alpha : ADAM.beta2, momentum: h.momentum, nesterov: h.nesterov, whh,
  };
}

const grid = (n: number, maxPerDim: number) => grid1D(n, WG, maxPerDim);

/**
 * The uniforms of one step, rewritten before each submit: the bias corrections 1 - beta^step and
 * 1 - beta itself computed in f64 on the host (1 - 0.999 in f32 is off by 1.3e-5 relative).
 */
export function optimizerUniforms(a: OptimizerSettings, maxPerDim: number): ArrayBuffer {
  const dec = a.whh?.decoder;
  return UNIFORMS.pack({
    n: a.n, perRow: grid(a.n, maxPerDim).perRow, lr: a.lr, clip: a.clip,
    c1: 1 - Math.pow(a.beta1, a.step), c2: 1 - Math.pow(a.beta2, a.step), beta1: a.beta1, beta2: a.beta2,
    eps: a.eps, oneMinusBeta1: 1 - a.beta1, oneMinusBeta2: 1 - a.beta2, whhLayers: a.whh?.layers ?? 0,
    whhRows: a.whh?.rows ?? 0, whhCols: a.whh?.cols ?? 0, momentum: a.momentum ?? 0, nesterov: a.nesterov ? 1 : 0,
    decAt: dec?.at ?? 0, decBiasAt: dec?.biasAt ?? 0, decRows: dec?.rows ?? 0, decCols: dec?.cols ?? 0,
    decOff: dec?.off ?? 0, decLd: dec?.ld ?? 0,
  });
}

/**
 * `whhT` and `whhAt` are bound even without copies to keep (two distinct buffers: whhT is
 * written); `uniforms` as optimizerUniforms packs them, or the buffer they are written to.
 */
export function optimizerLaunch<T>(
  a: { params: T; grads: T; m: T; v: T; whhT: T; whhAt: T; n: number; kind: OptimizerName; whh?: WhhCopies; uniforms: UniformSource<T> },
  maxPerDim: number,
): Launch<T> {
  const g = grid(a.n, maxPerDim);
  const rw = (n: number): Region[] => [reads(0, n), writes(0, n)];
  const copies = a.whh ? a.whh.layers * a.whh.rows * a.whh.cols : 0;
  const dec = a.whh?.decoder;
  const whhTouches: Region[] = copies ? [writes(0, copies)] : [];
  if (dec) whhTouches.push(...Array.from({ length: dec.cols + 1 }, (_, k) => writes(dec.off + k * dec.ld, dec.rows)));
  return {
    kernel: OPTIMIZER,
    entryPoint: 'main',
    constants: { WG, OPTIMIZER: KIND_CODE[a.kind] },
    bindings: bindAll(OPTIMIZER, {
      params: { buffer: a.params, touches: rw(a.n) },
      grads: { buffer: a.grads, touches: [reads(0, a.n)] },
      m: { buffer: a.m, touches: a.kind === 'rmsprop' ? [] : rw(a.n) },
      v: { buffer: a.v, touches: a.kind === 'adam' || a.kind === 'rmsprop' ? rw(a.n) : [] },
      u: uniformBinding(a.uniforms),
      whhT: { buffer: a.whhT, touches: whhTouches },
      whhAt: { buffer: a.whhAt, touches: a.whh ? [reads(0, a.whh.layers)] : [] },
    }),
    x: g.x,
    y: g.y,
  };
}

/** The decoder's transposed weight and its bias, as optimizer.wgsl keeps them in whhT from word d.off (for writing from the host). */
export function transposedDecoder(params: Float32Array, d: DecoderCopy): Float32Array {
  const out = new Float32Array((d.cols + 1) * d.ld);
  for (let e = 0; e < d.rows * d.cols; e++) out[(e % d.cols) * d.ld + Math.floor(e / d.cols)] = params[d.at + e];
  out.set(params.subarray(d.biasAt, d.biasAt + d.rows), d.cols * d.ld);
  return out;
}

/** W_hh^T of every layer, as optimizer.wgsl keeps it in whhT (for writing it from the host). */
export function transposedWhh(params: Float32Array, offsets: readonly number[], rows: number, cols: number): Float32Array {
  const size = rows * cols;
  // 16 spare floats: cell_forward's vec4 loads for units past H read into them (never stored).
  const out = new Float32Array(offsets.length * size + 16);
  offsets.forEach((off, l) => {
    for (let e = 0; e < size; e++) out[l * size + (e % cols) * rows + Math.floor(e / cols)] = params[off + e];
  });
  return out;
}
