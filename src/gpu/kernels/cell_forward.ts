/** shaders/cell_forward.wgsl: one timestep of one layer, W_hh h + b_hh over all gates with the cell's pointwise math fused in. */
import source from '../../../shaders/cell_forward.wgsl?raw';
import { GATES, hasCellState, SAVED, type CellType } from '../../model/cells.ts';
import { composeWgsl } from '../wgsl.ts';
import { cellConstants, cellEntryPoint, cellGrid, type CellBlocking } from './cell.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch, type Region, type Sized } from './common.ts';

const UNIFORMS = new UniformLayout({
  B: 'u32', H: 'u32', offWhhT: 'u32', offBhh: 'u32',
  offGi: 'u32', offHin: 'u32', offHout: 'u32', offSaved: 'u32',
  offCin: 'u32', offCout: 'u32', unitBlocks: 'u32', pad: 'u32',
});

export const CELL_FORWARD = defineKernel({
  name: 'cell_forward',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/cpu/cells.ts: gatePreactivations + cellPointwise',
  bindings: ['params', 'gi', 'hAll', 'cAll', 'saved', 'u', 'whhT'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main', 'main_v4'],
});

/** Offsets (in floats) of one forward step. offWhhT: in whhT, where the optimizer keeps W_hh^T. */
export interface CellForwardStep {
  B: number; H: number;
  offWhhT: number; offBhh: number; offGi: number;
  offHin: number; offHout: number; offSaved: number; offCin: number; offCout: number;
}

export function cellForwardLaunch<T extends Sized>(
  cell: CellType, s: CellForwardStep, b: { params: T; gi: T; hAll: T; cAll: T; saved: T; whhT: T },
  /** A tuned blocking (cell.ts: cellBlocking); absent: the default. */
  tuned?: CellBlocking,
): Launch<T> {
  const { B, H } = s;
  const GH = GATES[cell] * H, BH = B * H;
  const entryPoint = cellEntryPoint(b.whhT, H, s.offWhhT, cell, tuned);
  const v4 = entryPoint === 'main_v4';
  const g = cellGrid('cell_forward', cell, B, H, tuned);
  const state = (offIn: number, offOut: number): Region[] => [reads(offIn, BH), writes(offOut, BH)];
  return {
    kernel: CELL_FORWARD,
    entryPoint,
    constants: cellConstants(cell, B, 'cell_forward', tuned),
    bindings: bindAll(CELL_FORWARD, {
      params: { buffer: b.params, touches: [reads(s.offBhh, GH)] },
      gi: { buffer: b.gi, touches: [reads(s.offGi, B * GH)] },
      hAll: { buffer: b.hAll, touches: state(s.offHin, s.offHout) },
      cAll: { buffer: b.cAll, touches: hasCellState(cell) ? state(s.offCin, s.offCout) : [] },
      saved: { buffer: b.saved, touches: SAVED[cell] ? [writes(s.offSaved, B * SAVED[cell] * H)] : [] },
      u: { uniforms: UNIFORMS.pack({ ...s, unitBlocks: g.unitBlocks }) },
      // main_v4 reads up to 16 floats past W_hh^T (never stored).
      whhT: { buffer: b.whhT, touches: [reads(s.offWhhT, GH * H + (v4 ? 16 : 0))] },
    }),
    x: g.x,
    y: 1,
  };
}
