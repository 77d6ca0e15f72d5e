/** shaders/column_sum.wgsl: the bias gradients, out[offOut + j] = sum over rows of X[offX + r * cols + j]. */
import source from '../../../shaders/column_sum.wgsl?raw';
import { COLUMN_SUM_WG } from '../buffers.ts';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, grid1D, reads, UniformLayout, writes, type Launch, type Sized } from './common.ts';

const UNIFORMS = new UniformLayout({ rows: 'u32', cols: 'u32', offX: 'u32', offOut: 'u32' });

export const COLUMN_SUM = defineKernel({
  name: 'column_sum',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/cpu/cells.ts: gatePreactivationsBackward (db_ih, db_hh) and src/cpu/stacked.ts: backward (db_dec)',
  bindings: ['X', 'out', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main', 'main_v4'],
});

const WG = COLUMN_SUM_WG;

/** Whether main_v4 can read X: cols and offX multiples of 4, X holding whole vec4s to the last row's end. */
function v4Fits(a: { X: Sized; rows: number; cols: number; offX?: number }): boolean {
  const offX = a.offX ?? 0;
  return a.cols % 4 === 0 && offX % 4 === 0 && a.X.size >= 4 * (offX + a.rows * a.cols);
}

/**
 * main_v4 from 1024 columns where it fits (2048 x 10,000: about half main's time on lavapipe, side
 * by side; 2048 x 1024 faster too), else main: narrower, a quarter of the invocations leaves too
 * few workgroups to keep the cores busy (2048 x 256: one workgroup, 4x slower than main's four).
 */
export function columnSumVariantFor(a: { X: Sized; rows: number; cols: number; offX?: number }): 'main' | 'main_v4' {
  return a.cols >= 1024 && v4Fits(a) ? 'main_v4' : 'main';
}

export function columnSumLaunch<T extends Sized>(
  a: { X: T; out: T; rows: number; cols: number; offX?: number; offOut?: number; variant?: 'main' | 'main_v4' }, maxPerDim = 65535,
): Launch<T> {
  const offX = a.offX ?? 0, offOut = a.offOut ?? 0;
  const variant = a.variant ?? columnSumVariantFor(a);
  if (variant === 'main_v4' && !v4Fits(a)) throw new Error(`column_sum main_v4 cannot read ${a.rows}x${a.cols} at ${offX}`);
  const perInvocation = variant === 'main_v4' ? 4 : 1;
  const g = grid1D(Math.ceil(a.cols / perInvocation), WG, maxPerDim);
  return {
    kernel: COLUMN_SUM,
    entryPoint: variant,
    constants: { WG },
    bindings: bindAll(COLUMN_SUM, {
      X: { buffer: a.X, touches: [reads(offX, a.rows * a.cols)] },
      out: { buffer: a.out, touches: [writes(offOut, a.cols)] },
      u: { uniforms: UNIFORMS.pack({ rows: a.rows, cols: a.cols, offX, offOut }) },
    }),
    x: g.x,
    y: g.y,
  };
}
