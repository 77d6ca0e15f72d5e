/** shaders/input_gather.wgsl: layer 0's input projection for all positions, a column gather of W_ih (inputs are one-hot). */
import source from '../../../shaders/input_gather.wgsl?raw';
import { composeWgsl } from '../wgsl.ts';
import { runSlots } from '../buffers.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch } from './common.ts';

const UNIFORMS = new UniformLayout({
  N: 'u32', GH: 'u32', V: 'u32', offWih: 'u32',
  offBih: 'u32', hasBias: 'u32', rowStart: 'u32', rows: 'u32',
  runSlots: 'u32', pad0: 'u32', pad1: 'u32', pad2: 'u32',
});

export const INPUT_GATHER = defineKernel({
  name: 'input_gather',
  wgsl: composeWgsl(source),
  cpuTwin: "src/cpu/cells.ts: gatePreactivations (gi for token inputs)",
  bindings: ['params', 'tokens', 'gi', 'u', 'positions', 'runs'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main'],
});

const WG = 64;

/**
 * gi[p, j] = W_ih[j, tokens[p]] + b_ih[j] for the N positions and GH = G*H rows of W_ih [GH, V];
 * without offBih (the split plan), W_ih[j, tokens[p]] alone for the rows j of `rows` (all by
 * default), W_ih's first of them at offWih. `positions` and `runs` are positionsByToken's.
 */
export function inputGatherLaunch<T>(
  a: {
    params: T; tokens: T; positions: T; runs: T; gi: T; N: number; GH: number; V: number; offWih: number; offBih?: number;
    rows?: { start: number; count: number };
  },
  maxPerDim: number,
): Launch<T> {
  const rows = a.offBih === undefined ? a.rows ?? { start: 0, count: a.GH } : { start: 0, count: a.GH };
  const slots = runSlots(a.N, a.V);
  return {
    kernel: INPUT_GATHER,
    entryPoint: 'main',
    constants: { WG },
    bindings: bindAll(INPUT_GATHER, {
      params: { buffer: a.params, touches: [reads(a.offWih, rows.count * a.V), ...(a.offBih === undefined ? [] : [reads(a.offBih, a.GH)])] },
      tokens: { buffer: a.tokens, touches: [reads(0, a.N)] },
      // Columns start .. start + count - 1 of each position's row.
      gi: { buffer: a.gi, touches: [writes(rows.start, (a.N - 1) * a.GH + rows.count)] },
      u: {
        uniforms: UNIFORMS.pack({
          N: a.N, GH: a.GH, V: a.V, offWih: a.offWih, offBih: a.offBih ?? 0, hasBias: a.offBih === undefined ? 0 : 1,
          rowStart: rows.start, rows: rows.count, runSlots: slots,
        }),
      },
      positions: { buffer: a.positions, touches: [reads(0, a.N)] },
      runs: { buffer: a.runs, touches: [reads(0, slots + 1)] },
    }),
    x: Math.ceil(rows.count / WG),
    y: Math.min(slots, maxPerDim),
  };
}
