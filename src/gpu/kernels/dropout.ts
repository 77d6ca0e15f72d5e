/** shaders/dropout.wgsl: inverted dropout with the mask regenerated, bit for bit the CPU's, from a counter-based hash. */
import source from '../../../shaders/dropout.wgsl?raw';
import { dropoutKeepThreshold } from '../../model/dropout.ts';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, grid1D, reads, uniformBinding, UniformLayout, writes, type Launch, type UniformSource } from './common.ts';

const UNIFORMS = new UniformLayout({
  n: 'u32', offSrc: 'u32', offDst: 'u32', maskBase: 'u32', perRow: 'u32', pad0: 'u32', pad1: 'u32', pad2: 'u32',
});
const MASK = new UniformLayout({ seed: 'u32', iteration: 'u32', threshold: 'u32', scale: 'f32' });

export const DROPOUT = defineKernel({
  name: 'dropout',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/model/dropout.ts: dropoutMask (applied in src/cpu/stacked.ts: forward and backward)',
  bindings: ['src', 'dst', 'u', 'mask'],
  uniforms: { u: UNIFORMS, mask: MASK },
  entryPoints: ['main'],
});

const WG = 64;

/**
 * One iteration's mask: keep element m iff uniformAt(seed, iteration, m) >= p, i.e. its 24-bit
 * hash j >= dropoutKeepThreshold(p), scaled by 1 / (1 - p). p = 0 keeps all (evaluation).
 */
export function dropoutMaskUniform(seed: number, iteration: number, p: number): ArrayBuffer {
  return MASK.pack({ seed: seed >>> 0, iteration: iteration >>> 0, threshold: dropoutKeepThreshold(p), scale: 1 / (1 - p) });
}

/** dst[offDst + i] = src[offSrc + i] * mask(maskBase + i) for i < n; `mask` as dropoutMaskUniform packs it, or its buffer. */
export function dropoutLaunch<T>(
  a: { src: T; dst: T; n: number; offSrc: number; offDst: number; maskBase: number; mask: UniformSource<T> }, maxPerDim: number,
): Launch<T> {
  const g = grid1D(a.n, WG, maxPerDim);
  return {
    kernel: DROPOUT,
    entryPoint: 'main',
    constants: { WG },
    bindings: bindAll(DROPOUT, {
      src: { buffer: a.src, touches: [reads(a.offSrc, a.n)] },
      dst: { buffer: a.dst, touches: [writes(a.offDst, a.n)] },
      u: { uniforms: UNIFORMS.pack({ n: a.n, offSrc: a.offSrc, offDst: a.offDst, maskBase: a.maskBase, perRow: g.perRow }) },
      mask: uniformBinding(a.mask),
    }),
    x: g.x,
    y: g.y,
  };
}
