/** shaders/cell_backward.wgsl: one timestep of one layer's backward pass, W_hh^T dgh_{t+1} fused with the cell's pointwise backward. */
import source from '../../../shaders/cell_backward.wgsl?raw';
import { GATES, SAVED, type CellType } from '../../model/cells.ts';
import { composeWgsl } from '../wgsl.ts';
import { cellConstants, cellEntryPoint, cellGrid, type CellBlocking } from './cell.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch, type Region, type Sized } from './common.ts';

const UNIFORMS = new UniformLayout({
  B: 'u32', H: 'u32', offWhh: 'u32', hasNext: 'u32',
  offDGhNext: 'u32', offDG: 'u32', offDAbove: 'u32', offSaved: 'u32',
  offHin: 'u32', offHout: 'u32', offCin: 'u32', offCout: 'u32',
  offDState: 'u32', tail: 'u32', unitBlocks: 'u32', dhParts: 'u32',
});

export const CELL_BACKWARD = defineKernel({
  name: 'cell_backward',
  wgsl: composeWgsl(source),
  cpuTwin: "src/cpu/stacked.ts: backward's time loop (cellPointwiseBackward and the dL/dh part of gatePreactivationsBackward, src/cpu/cells.ts)",
  bindings: ['params', 'dGh', 'dGi', 'dAbove', 'hAll', 'cAll', 'saved', 'dState', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main', 'main_v4', 'main_dh'],
});

/** Offsets (in floats) of one backward step. */
export interface CellBackwardStep {
  B: number; H: number; offWhh: number;
  /** dgh of step t+1, or undefined at t = T-1 (nothing comes back from the future). */
  offDGhNext?: number;
  offDG: number; offDAbove: number; offSaved: number;
  offHin: number; offHout: number; offCin: number; offCout: number;
  /** This layer's [direct | dc | dh0] blocks, each [B, H]. */
  offDState: number;
  /** Write dh0 = W_hh^T dgh_0 + direct_0 instead of a step (offDGhNext = step 0's dgh). */
  tail?: boolean;
}

/**
 * The split plan's step (main_dh): W_hh^T dgh_{t+1} computed beforehand as `parts` partial sums
 * [parts][B][H] in `dh` (bound in params' slot), by matmuls over row ranges of W_hh.
 */
export interface PrecomputedDh<T> { dh: T; parts: number }

export function cellBackwardLaunch<T extends Sized>(
  cell: CellType, s: CellBackwardStep, b: { params: T; dGh: T; dGi: T; dAbove: T; hAll: T; cAll: T; saved: T; dState: T },
  /** A tuned blocking (cell.ts: cellBlocking); absent: the default. */
  tuned?: CellBlocking,
  pre?: PrecomputedDh<T>,
): Launch<T> {
  // The tuner times main and main_v4 only; the split plan's steps keep the default blocking.
  if (pre && tuned) throw new Error('internal: cell_backward main_dh runs the default blocking only');
  const { B, H } = s;
  const GH = GATES[cell] * H, BH = B * H;
  const entryPoint = pre ? 'main_dh' : cellEntryPoint(b.params, H, s.offWhh, cell, tuned);
  const v4 = entryPoint === 'main_v4';
  const g = cellGrid('cell_backward', cell, B, H, tuned);
  const hasNext = s.offDGhNext !== undefined;
  const step = !s.tail;
  const lstm = cell === 'lstm';
  const direct = s.offDState, dc = s.offDState + BH, dh0 = s.offDState + 2 * BH;
  const dState: Region[] = s.tail
    ? [reads(direct, BH), writes(dh0, BH)]
    : [...(hasNext ? [reads(direct, BH)] : []), ...(hasNext && lstm ? [reads(dc, BH)] : []), writes(direct, BH), ...(lstm ? [writes(dc, BH)] : [])];
  // What the pointwise backward reads: rnn h_t; gru h_{t-1} and the saved gates; lstm c_{t-1}, c_t and the saved gates.
  const hReads = !step || lstm ? [] : [reads(cell === 'rnn' ? s.offHout : s.offHin, BH)];
  return {
    kernel: CELL_BACKWARD,
    entryPoint,
    constants: cellConstants(cell, B, 'cell_backward', tuned),
    bindings: bindAll(CELL_BACKWARD, {
      // main_v4 reads up to 16 floats past W_hh (never stored).
      params: pre
        ? { buffer: pre.dh, touches: hasNext ? [reads(0, pre.parts * BH)] : [] }
        : { buffer: b.params, touches: hasNext ? [reads(s.offWhh, GH * H + (v4 ? 16 : 0))] : [] },
      dGh: { buffer: b.dGh, touches: [...(hasNext && !pre ? [reads(s.offDGhNext!, B * GH)] : []), ...(step ? [writes(s.offDG, B * GH)] : [])] },
      dGi: { buffer: b.dGi, touches: step ? [writes(s.offDG, B * GH)] : [] },
      dAbove: { buffer: b.dAbove, touches: step ? [reads(s.offDAbove, BH)] : [] },
      hAll: { buffer: b.hAll, touches: hReads },
      cAll: { buffer: b.cAll, touches: step && lstm ? [reads(s.offCin, BH), reads(s.offCout, BH)] : [] },
      saved: { buffer: b.saved, touches: step && SAVED[cell] ? [reads(s.offSaved, B * SAVED[cell] * H)] : [] },
      dState: { buffer: b.dState, touches: dState },
      u: {
        uniforms: UNIFORMS.pack({
          ...s, hasNext: hasNext ? 1 : 0, offDGhNext: s.offDGhNext ?? 0, tail: s.tail ? 1 : 0, unitBlocks: g.unitBlocks, dhParts: pre?.parts ?? 0,
        }),
      },
    }),
    x: g.x,
    y: 1,
  };
}
