/** shaders/column_sum.wgsl: the bias gradients, out[offOut + j] = sum over rows of X[offX + r * cols + j]. */
import source from '../../../shaders/column_sum.wgsl?raw';
import { COLUMN_SUM_WG } from '../buffers.ts';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch } from './common.ts';

const UNIFORMS = new UniformLayout({ rows: 'u32', cols: 'u32', offX: 'u32', offOut: 'u32' });

export const COLUMN_SUM = defineKernel({
  name: 'column_sum',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/cpu/cells.ts: gatePreactivationsBackward (db_ih, db_hh) and src/cpu/stacked.ts: backward (db_dec)',
  bindings: ['X', 'out', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main'],
});

const WG = COLUMN_SUM_WG;

export function columnSumLaunch<T>(a: { X: T; out: T; rows: number; cols: number; offX?: number; offOut?: number }): Launch<T> {
  const offX = a.offX ?? 0, offOut = a.offOut ?? 0;
  return {
    kernel: COLUMN_SUM,
    entryPoint: 'main',
    constants: { WG },
    bindings: bindAll(COLUMN_SUM, {
      X: { buffer: a.X, touches: [reads(offX, a.rows * a.cols)] },
      out: { buffer: a.out, touches: [writes(offOut, a.cols)] },
      u: { uniforms: UNIFORMS.pack({ rows: a.rows, cols: a.cols, offX, offOut }) },
    }),
    x: Math.ceil(a.cols / WG),
    y: 1,
  };
}
