/** shaders/loss_sum.wgsl: out[0] = scale * the sum of the rows' losses, by one workgroup. */
import source from '../../../shaders/loss_sum.wgsl?raw';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch } from './common.ts';

const UNIFORMS = new UniformLayout({ n: 'u32', scale: 'f32' });

export const LOSS_SUM = defineKernel({
  name: 'loss_sum',
  wgsl: composeWgsl(source),
  cpuTwin: "src/cpu/stacked.ts: forward (the loss, the mean of the positions' -log softmax[target])",
  bindings: ['rowLoss', 'out', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main'],
});

const WG = 256;

export function lossSumLaunch<T>(a: { rowLoss: T; out: T; n: number; scale: number }): Launch<T> {
  return {
    kernel: LOSS_SUM,
    entryPoint: 'main',
    constants: { WG },
    bindings: bindAll(LOSS_SUM, {
      rowLoss: { buffer: a.rowLoss, touches: [reads(0, a.n)] },
      out: { buffer: a.out, touches: [writes(0, 1)] },
      u: { uniforms: UNIFORMS.pack({ n: a.n, scale: a.scale }) },
    }),
    x: 1,
    y: 1,
  };
}
