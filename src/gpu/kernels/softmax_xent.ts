/** shaders/softmax_xent.wgsl: each row's cross-entropy, and its gradient in place of the logits. */
import source from '../../../shaders/softmax_xent.wgsl?raw';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, grid1D, reads, UniformLayout, writes, type Launch } from './common.ts';

const UNIFORMS = new UniformLayout({ rows: 'u32', cols: 'u32', scale: 'f32', rowsPerDim: 'u32' });

export const SOFTMAX_XENT = defineKernel({
  name: 'softmax_xent',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/cpu/stacked.ts: forward and backward (the loss and dL/dlogits, with softmaxNorm from src/cpu/rnn.ts)',
  bindings: ['logits', 'targets', 'rowLoss', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main_rows', 'main'],
});

export const SOFTMAX_WG = 64;

/** 'rows': a row per invocation (main_rows); 'workgroup': a row per workgroup (main). */
export type SoftmaxVariant = 'rows' | 'workgroup';

/**
 * A row per invocation up to 1024 columns (char-level vocabularies): 8-16x faster than a workgroup
 * tree reduction on lavapipe at 2048 x 64-87, where each barrier costs tens of microseconds. Wider
 * rows (word vocabularies) get a workgroup each, which keeps a real GPU busy when rows are few.
 */
export function softmaxVariantFor(cols: number): SoftmaxVariant {
  return cols <= 1024 ? 'rows' : 'workgroup';
}

export function softmaxXentLaunch<T>(
  a: { logits: T; targets: T; rowLoss: T; rows: number; cols: number; scale: number; variant?: SoftmaxVariant }, maxPerDim: number,
): Launch<T> {
  const variant = a.variant ?? softmaxVariantFor(a.cols);
  const g = grid1D(a.rows, variant === 'rows' ? SOFTMAX_WG : 1, maxPerDim);
  return {
    kernel: SOFTMAX_XENT,
    entryPoint: variant === 'rows' ? 'main_rows' : 'main',
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
