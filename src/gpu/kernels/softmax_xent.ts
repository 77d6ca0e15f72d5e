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
  entryPoints: ['main'],
});

export const SOFTMAX_WG = 64;

/** The words a logits buffer needs: whole vec4s, as the kernel reads them through a vec4 view. */
export const softmaxLogitsWords = (rows: number, cols: number) => Math.ceil((rows * cols) / 4) * 4;

/** A row per invocation, read as vec4s (shaders/softmax_xent.wgsl says why). */
export function softmaxXentLaunch<T extends Sized>(
  a: { logits: T; targets: T; rowLoss: T; rows: number; cols: number; scale: number }, maxPerDim: number,
): Launch<T> {
  const words = softmaxLogitsWords(a.rows, a.cols);
  if (a.logits.size < 4 * words) throw new Error(`softmax_xent needs the logits buffer to hold whole vec4s (${a.rows}x${a.cols} in ${a.logits.size} bytes)`);
  const g = grid1D(a.rows, SOFTMAX_WG, maxPerDim);
  return {
    kernel: SOFTMAX_XENT,
    entryPoint: 'main',
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
