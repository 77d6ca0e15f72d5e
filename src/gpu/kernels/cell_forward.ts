/** shaders/cell_forward.wgsl: one timestep of one layer, W_hh h + b_hh over all gates with the cell's pointwise math fused in. */
import source from '../../../shaders/cell_forward.wgsl?raw';
import { GATES, hasCellState, SAVED, type CellType } from '../../model/cells.ts';
import { composeWgsl } from '../wgsl.ts';
import { cellConstants, cellEntryPoint, cellGrid, type CellBlocking } from './cell.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch, type Region, type Sized } from './common.ts';

const UNIFORMS = new UniformLayout({
  B: 'u32', H: 'u32', offWhhT: 'u32', offBhh: 'u32',
  offGi: 'u32', offHin: 'u32', offHout: 'u32', offSaved: 'u32',
  offCin: 'u32', offCout: 'u32', unitBlocks: 'u32', offBih: 'u32',
});

export const CELL_FORWARD = defineKernel({
  name: 'cell_forward',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/cpu/cells.ts: gatePreactivations + cellPointwise',
  bindings: ['params', 'gi', 'hAll', 'cAll', 'saved', 'u', 'whhT'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main', 'main_v4', 'main_gh'],
});

/** Offsets (in floats) of one forward step. offWhhT: in whhT, where the optimizer keeps W_hh^T. */
export interface CellForwardStep {
  B: number; H: number;
  offWhhT: number; offBhh: number; offGi: number;
  offHin: number; offHout: number; offSaved: number; offCin: number; offCout: number;
}

/**
 * The split plan's step (main_gh): W_hh h_{t-1} [B, G*H] computed beforehand into `gh` (bound in
 * whhT's slot), and b_ih at offBih in params (gi holds W_ih x alone there).
 */
export interface PrecomputedGh<T> { gh: T; offBih: number }

export function cellForwardLaunch<T extends Sized>(
  cell: CellType, s: CellForwardStep, b: { params: T; gi: T; hAll: T; cAll: T; saved: T; whhT: T },
  /** A tuned blocking (cell.ts: cellBlocking); absent: the default. */
  tuned?: CellBlocking,
  pre?: PrecomputedGh<T>,
): Launch<T> {
  // The tuner times main and main_v4 only; the split plan's steps keep the default blocking.
  if (pre && tuned) throw new Error('internal: cell_forward main_gh runs the default blocking only');
  const { B, H } = s;
  const GH = GATES[cell] * H, BH = B * H;
  const entryPoint = pre ? 'main_gh' : cellEntryPoint(b.whhT, H, s.offWhhT, cell, tuned);
  const v4 = entryPoint === 'main_v4';
  const g = cellGrid('cell_forward', cell, B, H, tuned);
  const state = (offIn: number, offOut: number): Region[] => [reads(offIn, BH), writes(offOut, BH)];
  return {
    kernel: CELL_FORWARD,
    entryPoint,
    constants: cellConstants(cell, B, 'cell_forward', tuned),
    bindings: bindAll(CELL_FORWARD, {
      params: { buffer: b.params, touches: [...(pre ? [reads(pre.offBih, GH)] : []), reads(s.offBhh, GH)] },
      gi: { buffer: b.gi, touches: [reads(s.offGi, B * GH)] },
      hAll: { buffer: b.hAll, touches: state(s.offHin, s.offHout) },
      cAll: { buffer: b.cAll, touches: hasCellState(cell) ? state(s.offCin, s.offCout) : [] },
      saved: { buffer: b.saved, touches: SAVED[cell] ? [writes(s.offSaved, B * SAVED[cell] * H)] : [] },
      u: { uniforms: UNIFORMS.pack({ ...s, unitBlocks: g.unitBlocks, offBih: pre?.offBih ?? 0 }) },
      // main_v4 reads up to 16 floats past W_hh^T (never stored).
      whhT: pre ? { buffer: pre.gh, touches: [reads(0, B * GH)] } : { buffer: b.whhT, touches: [reads(s.offWhhT, GH * H + (v4 ? 16 : 0))] },
    }),
    x: g.x,
    y: 1,
  };
}
