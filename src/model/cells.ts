/**
 * The three recurrent cells, as every backend sees them: PyTorch's nn.RNN (tanh), nn.LSTM and
 * nn.GRU, each forming its gates from two products over ALL gates at once (the gates' rows
 * stacked in PyTorch's order: lstm i, f, g, o; gru r, z, n). The math itself is specified in
 * src/cpu/cells.ts and shaders/lib/cell.wgsl.
 */
export type CellType = 'rnn' | 'lstm' | 'gru';

export const CELL_TYPES: readonly CellType[] = ['rnn', 'lstm', 'gru'];

/** Gates per hidden unit: W_ih is [G*H, In], W_hh [G*H, H], both biases [G*H]. */
export const GATES: Record<CellType, number> = { rnn: 1, lstm: 4, gru: 3 };

/**
 * Floats per hidden unit that the forward step saves for the backward step, [SAVED*H] per position:
 * lstm: the activated gates i, f, g, o; gru: r, z, n and gh_n = W_hn h + b_hn (needed for dL/dr).
 * The RNN needs nothing beyond h' itself.
 */
export const SAVED: Record<CellType, number> = { rnn: 0, lstm: 4, gru: 4 };

/** Whether the cell carries a memory cell c besides h (only the LSTM). */
export function hasCellState(cell: CellType): boolean {
  return cell === 'lstm';
}
