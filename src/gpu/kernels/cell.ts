/**
 * Host side of what cell_forward.wgsl and cell_backward.wgsl share (shaders/lib/cell_step.wgsl,
 * lib/cell.wgsl): the CELL override's codes, how sequences and units are split over invocations,
 * and when W_hh can be read as vec4s.
 */
import { GATES, type CellType } from '../../model/cells.ts';
import type { Sized } from './common.ts';

/** lib/cell.wgsl's CELL override (its CELL_RNN, CELL_LSTM, CELL_GRU; test/wgsl.test.ts checks). */
export const CELL_CODE: Readonly<Record<CellType, number>> = { rnn: 0, lstm: 1, gru: 2 };
export const CELL_WG = 64;

export type CellKernel = 'cell_forward' | 'cell_backward';

/**
 * Sequences each invocation owns: 8 (each weight loaded serves 8; 23-37% faster per step than 4
 * at B = 32 on lavapipe), or for smaller batches the batch rounded up to 1, 2 or 4, so that no
 * invocation computes clamped copies of the last sequence.
 */
export function cellRows(B: number): number {
  return B >= 5 ? 8 : B >= 3 ? 4 : Math.max(1, B);
}

/**
 * Sequences x units each invocation owns: forward, up to 16 accumulators per sequence spread over
 * the gates in whole vec4s of units (rnn 16 units, lstm 4, gru 4: cell_forward.wgsl's units());
 * backward, 16 units (its BU). A tuned blocking (cellBlocking) replaces either.
 */
export function cellBlock(kernel: CellKernel, cell: CellType, B: number, tuned?: CellBlocking): { rows: number; units: number } {
  if (tuned) return tuned;
  return { rows: cellRows(B), units: kernel === 'cell_forward' ? Math.floor(16 / GATES[cell] / 4) * 4 : 16 };
}

/** A tuned blocking of a cell step: sequences and units (forward: of every gate) per invocation. */
export interface CellBlocking { rows: number; units: number }

/**
 * The blockings the tuner chooses among for a cell step (src/gpu/tuner.ts), by the name it prints
 * and caches: `rows` sequences (at most the batch's cellRows) x `units` units per invocation; absent
 * fields keep the default's. The first is today's blocking, which suits CPU drivers (each weight
 * loaded serves many accumulators); the others spread B x H over 2-128 times as many invocations,
 * as hardware GPUs want (rows1-units1: one invocation per sequence and unit, adjacent invocations
 * reading adjacent weights).
 */
export const CELL_CANDIDATES: Readonly<Record<string, { rows?: number; units?: number }>> = {
  rows8: {},
  rows4: { rows: 4 },
  'rows2-units4': { rows: 2, units: 4 },
  'rows1-units4': { rows: 1, units: 4 },
  'rows1-units1': { rows: 1, units: 1 },
};
export const DEFAULT_CELL_CANDIDATE = 'rows8';

/** A candidate's blocking for this step, or undefined for the default (today's launch exactly). */
export function cellBlocking(kernel: CellKernel, cell: CellType, B: number, candidate: string): CellBlocking | undefined {
  const c = CELL_CANDIDATES[candidate];
  if (!c) throw new Error(`internal: no cell candidate ${candidate}`);
  if (candidate === DEFAULT_CELL_CANDIDATE) return undefined;
  const d = cellBlock(kernel, cell, B);
  return { rows: Math.min(c.rows ?? d.rows, cellRows(B)), units: c.units ?? d.units };
}

/**
 * The candidates a step can run: its invocations within the device's workgroups per dimension;
 * `distinct` (what is worth timing): none that blocks it as the default or an earlier candidate
 * does (small batches clamp the rows).
 */
export function cellCandidatesFor(kernel: CellKernel, cell: CellType, B: number, H: number, maxPerDim: number, distinct = true): string[] {
  const seen = new Set<string>();
  return Object.keys(CELL_CANDIDATES).filter((c) => {
    const tuned = cellBlocking(kernel, cell, B, c);
    const b = cellBlock(kernel, cell, B, tuned);
    const key = `${b.rows}x${b.units}`;
    if ((distinct && seen.has(key)) || cellGrid(kernel, cell, B, H, tuned).x > maxPerDim) return false;
    seen.add(key);
    return true;
  });
}

/** What a tuned choice for a cell step is filed under (src/gpu/plan.ts: KernelChoice). */
export function cellShapeKey(kernel: CellKernel, cell: CellType, B: number, H: number, vec4: boolean): string {
  return `${kernel} ${cell} B=${B} H=${H} ${vec4 ? 'main_v4' : 'main'}`;
}

/** The pipeline constants for a cell and batch size; a tuned blocking adds its units (UNITS forward, BU backward). */
export function cellConstants(cell: CellType, B: number, kernel?: CellKernel, tuned?: CellBlocking): Record<string, number> {
  const base = { CELL: CELL_CODE[cell], WG: CELL_WG, ROWS: tuned?.rows ?? cellRows(B) };
  if (!tuned || !kernel) return base;
  return { ...base, [kernel === 'cell_forward' ? 'UNITS' : 'BU']: tuned.units };
}

/**
 * Whether W_hh can be read as vec4s (main_v4): H and its offset (in params for cell_backward, of
 * W_hh^T in whhT for cell_forward) multiples of 4, and the buffer holding it plus the 16 floats
 * past it that an edge block may read (and never stores).
 */
export function cellVec4(buffer: Sized, H: number, offWhh: number, cell: CellType): boolean {
  return H % 4 === 0 && offWhh % 4 === 0 && buffer.size >= 4 * (offWhh + GATES[cell] * H * H + 16);
}

export function cellEntryPoint(buffer: Sized, H: number, offWhh: number, cell: CellType, tuned?: CellBlocking): 'main' | 'main_v4' {
  return cellVec4(buffer, H, offWhh, cell) && (!tuned || tuned.units % 4 === 0) ? 'main_v4' : 'main';
}

/** Invocations: one per block (cellBlock), in x only; unitBlocks goes to the shader too. */
export function cellGrid(kernel: CellKernel, cell: CellType, B: number, H: number, tuned?: CellBlocking): { x: number; unitBlocks: number } {
  const { rows, units } = cellBlock(kernel, cell, B, tuned);
  const unitBlocks = Math.ceil(H / units);
  return { x: Math.ceil((unitBlocks * Math.ceil(B / rows)) / CELL_WG), unitBlocks };
}
