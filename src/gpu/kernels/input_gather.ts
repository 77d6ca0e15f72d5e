/** shaders/input_gather.wgsl: layer 0's input projection for all positions, a column gather of W_ih (inputs are one-hot). */
import source from '../../../shaders/input_gather.wgsl?raw';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, grid1D, reads, UniformLayout, writes, type Launch } from './common.ts';

const UNIFORMS = new UniformLayout({
  N: 'u32', GH: 'u32', V: 'u32', offWih: 'u32', offBih: 'u32', perRow: 'u32', rowStart: 'u32', rows: 'u32',
});

export const INPUT_GATHER = defineKernel({
  name: 'input_gather',
  wgsl: composeWgsl(source),
  cpuTwin: "src/cpu/cells.ts: gatePreactivations (gi for token inputs)",
  bindings: ['params', 'tokens', 'gi', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main', 'main_rows'],
});

const WG = 64;

/**
 * gi[p, j] = W_ih[j, tokens[p]] + b_ih[j] for the N positions and GH = G*H rows of W_ih [GH, V];
 * without offBih (the split plan's main_rows), W_ih[j, tokens[p]] alone for the rows j of `rows`
 * (all by default), W_ih's first of them at offWih.
 */
export function inputGatherLaunch<T>(
  a: { params: T; tokens: T; gi: T; N: number; GH: number; V: number; offWih: number; offBih?: number; rows?: { start: number; count: number } },
  maxPerDim: number,
): Launch<T> {
  const rows = a.offBih === undefined ? a.rows ?? { start: 0, count: a.GH } : { start: 0, count: a.GH };
  const g = grid1D(a.N * rows.count, WG, maxPerDim);
  return {
    kernel: INPUT_GATHER,
    entryPoint: a.offBih === undefined ? 'main_rows' : 'main',
    constants: { WG },
    bindings: bindAll(INPUT_GATHER, {
      params: { buffer: a.params, touches: [reads(a.offWih, rows.count * a.V), ...(a.offBih === undefined ? [] : [reads(a.offBih, a.GH)])] },
      tokens: { buffer: a.tokens, touches: [reads(0, a.N)] },
      // main_rows: columns start .. start + count - 1 of each position's row.
      gi: { buffer: a.gi, touches: [writes(rows.start, (a.N - 1) * a.GH + rows.count)] },
      u: {
        uniforms: UNIFORMS.pack({
          N: a.N, GH: a.GH, V: a.V, offWih: a.offWih, offBih: a.offBih ?? 0, perRow: g.perRow, rowStart: rows.start, rows: rows.count,
        }),
      },
    }),
    x: g.x,
    y: g.y,
  };
}
