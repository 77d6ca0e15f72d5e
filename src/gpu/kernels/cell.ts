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
 * backward, 16 units (its BU).
 */
export function cellBlock(kernel: CellKernel, cell: CellType, B: number): { rows: number; units: number } {
  return { rows: cellRows(B), units: kernel === 'cell_forward' ? Math.floor(16 / GATES[cell] / 4) * 4 : 16 };
}

/** The pipeline constants for a cell and batch size. */
export function cellConstants(cell: CellType, B: number): Record<string, number> {
  return { CELL: CELL_CODE[cell], WG: CELL_WG, ROWS: cellRows(B) };
}

/**
 * Whether W_hh can be read as vec4s (main_v4): H and its offset (in params for cell_backward, of
 * W_hh^T in whhT for cell_forward) multiples of 4, and the buffer holding it plus the 16 floats
 * past it that an edge block may read (and never stores).
 */
export function cellVec4(buffer: Sized, H: number, offWhh: number, cell: CellType): boolean {
  return H % 4 === 0 && offWhh % 4 === 0 && buffer.size >= 4 * (offWhh + GATES[cell] * H * H + 16);
}

export function cellEntryPoint(buffer: Sized, H: number, offWhh: number, cell: CellType): 'main' | 'main_v4' {
  return cellVec4(buffer, H, offWhh, cell) ? 'main_v4' : 'main';
}

/** Invocations: one per block (cellBlock), in x only; unitBlocks goes to the shader too. */
export function cellGrid(kernel: CellKernel, cell: CellType, B: number, H: number): { x: number; unitBlocks: number } {
  const { rows, units } = cellBlock(kernel, cell, B);
  const unitBlocks = Math.ceil(H / units);
  return { x: Math.ceil((unitBlocks * Math.ceil(B / rows)) / CELL_WG), unitBlocks };
}
