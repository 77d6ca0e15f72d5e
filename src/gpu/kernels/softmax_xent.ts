/** shaders/softmax_xent.wgsl: each row's cross-entropy, and its gradient in place of the logits. */
import source from '../../../shaders/softmax_xent.wgsl?raw';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, grid1D, reads, UniformLayout, writes, type Launch, type Sized } from './common.ts';

const UNIFORMS = new UniformLayout({ rows: 'u32', cols: 'u32', scale: 'f32', rowsPerDim: 'u32' });

export const SOFTMAX_XENT = defineKernel({
  name: 'softmax_xent',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/cpu/stacked.ts: forward and backward (the loss and dL/dlogits, with softmaxNorm from src/cpu/rnn.ts)',
  bindings: ['logits', 'targets', 'rowLoss', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main_rows', 'main_rows4', 'main'],
});

export const SOFTMAX_WG = 64;

/**
 * 'rows': a row per invocation (main_rows); 'rows4': the same reading vec4s (main_rows4);
 * 'workgroup': a row per workgroup (main).
 */
export type SoftmaxVariant = 'rows' | 'rows4' | 'workgroup';

const ENTRY: Record<SoftmaxVariant, string> = { rows: 'main_rows', rows4: 'main_rows4', workgroup: 'main' };

/** Whether main_rows4's vec4 view reaches every logit: the buffer holds whole vec4s up to their end. */
export function softmaxVec4Fits(logits: Sized, rows: number, cols: number): boolean {
  return logits.size >= 16 * Math.ceil((rows * cols) / 4);
}

/**
 * A row per invocation: 8-16x faster than a workgroup tree reduction on lavapipe at 2048 x 64-87,
 * where each barrier costs tens of microseconds, and still faster at 2048 x 10,000; read as vec4s
 * where the buffer allows (0.6x main_rows' time at 2048 x 87 and 2048 x 10,000, side by side).
 * Without vec4s, rows wider than 1024 columns get a workgroup each, which keeps a real GPU busy
 * when rows are few.
 */
export function softmaxVariantFor(cols: number, vec4 = false): SoftmaxVariant {
  if (vec4) return 'rows4';
  return cols <= 1024 ? 'rows' : 'workgroup';
}

export function softmaxXentLaunch<T extends Sized>(
  a: { logits: T; targets: T; rowLoss: T; rows: number; cols: number; scale: number; variant?: SoftmaxVariant }, maxPerDim: number,
): Launch<T> {
  const variant = a.variant ?? softmaxVariantFor(a.cols, softmaxVec4Fits(a.logits, a.rows, a.cols));
  if (variant === 'rows4' && !softmaxVec4Fits(a.logits, a.rows, a.cols)) throw new Error(`softmax_xent rows4 needs the logits buffer to hold whole vec4s (${a.rows}x${a.cols} in ${a.logits.size} bytes)`);
  const g = grid1D(a.rows, variant === 'workgroup' ? 1 : SOFTMAX_WG, maxPerDim);
  return {
    kernel: SOFTMAX_XENT,
    entryPoint: ENTRY[variant],
    constants: { WG: SOFTMAX_WG },
    bindings: bindAll(SOFTMAX_XENT, {
      logits: { buffer: a.logits, touches: [reads(0, a.rows * a.cols), writes(0, a.rows * a.cols)] },
      targets: { buffer: a.targets, touches: [reads(0, a.rows)] },
      rowLoss: { buffer: a.rowLoss, touches: [writes(0, a.rows)] },
      u: { uniforms: UNIFORMS.pack({ rows: a.rows, cols: a.cols, scale: a.scale, rowsPerDim: g.perRow }) },
    }),
    x: g.x,
    y: g.y,
  };
}
