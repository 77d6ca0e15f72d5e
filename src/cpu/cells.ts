/**
 * The recurrent cells of the CPU reference, one position (one sequence at one time step) at a
 * time: the vanilla RNN, PyTorch's nn.LSTM and PyTorch's nn.GRU. Like src/cpu/stacked.ts this is a
 * specification to be read, so it favours plain loops over speed; it runs in float64 for the
 * finite-difference check or float32 to mirror the GPU (values round where they are stored in an
 * array of the caller's Float type; the pre-activation scratch below stays float64, as registers).
 *
 * Every cell first forms PyTorch's two products over ALL gates at once (one matrix per side, the
 * gates' rows stacked in PyTorch's order):
 *
 *   gi = W_ih x + b_ih      [G*H]    (for a one-hot x, W_ih x is column x of W_ih: a gather)
 *   gh = W_hh h + b_hh      [G*H]
 *
 * and then a pointwise part that differs per cell (row k of gate q is gi[q*H + k]):
 *
 *   rnn  (G = 1):         h' = tanh(gi + gh)
 *   lstm (G = 4: i f g o): i = σ(gi_i + gh_i)   f = σ(gi_f + gh_f)   g = tanh(gi_g + gh_g)   o = σ(gi_o + gh_o)
 *                          c' = f*c + i*g        h' = o*tanh(c')
 *   gru  (G = 3: r z n):   r = σ(gi_r + gh_r)   z = σ(gi_z + gh_z)   n = tanh(gi_n + r*gh_n)
 *                          h' = (1 - z)*n + z*h
 *
 * The GRU is why gi and gh are kept apart: its candidate n sees W_hn h + b_hn only through r*,
 * so b_hn is not interchangeable with b_in. For the RNN and the LSTM, gi and gh only ever enter
 * as a sum, so dL/dgi = dL/dgh.
 *
 * The backward step runs the same two halves in reverse: the pointwise backward turns dL/dh'
 * (and dL/dc' for the LSTM) into dL/dgi and dL/dgh, plus whatever reaches h and c directly
 * (z*dh' for the GRU, f*dc' for the LSTM); the linear backward accumulates the four tensors'
 * gradients and adds W_hh^T dgh to dL/dh and, for a dense input, forms dL/dx = W_ih^T dgi.
 */
import type { CellType } from '../model/cells.ts';
import type { FloatArray } from '../model/layout.ts';
import { axpy, dot } from './rnn.ts';

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** One layer's four tensors, as views into the flat parameter (or gradient) array. */
export interface LayerTensors {
  /** [G*H, In] row-major. */
  wIh: FloatArray;
  /** [G*H, H] row-major. */
  wHh: FloatArray;
  bIh: FloatArray;
  bHh: FloatArray;
  inputSize: number;
}

/**
 * A layer's input over the whole chunk: token ids for layer 0 (x one-hot, position p = t*B + b),
 * or dense vectors [T*B*In] for the layers above (the layer below's h, after dropout).
 */
export type LayerInput = { tokens: ArrayLike<number> } | { x: FloatArray };

// ---------------------------------------------------------------------------------------------
// The linear half, shared by every cell.

/** gi = W_ih x_p + b_ih and gh = W_hh h + b_hh, [G*H] each. */
export function gatePreactivations(
  w: LayerTensors, rows: number, H: number, input: LayerInput, p: number, h: FloatArray, gi: Float64Array, gh: Float64Array,
): void {
  const In = w.inputSize;
  for (let j = 0; j < rows; j++) {
    const wx = 'tokens' in input ? w.wIh[j * In + input.tokens[p]] : dot(w.wIh, j * In, input.x, p * In, In);
    gi[j] = w.bIh[j] + wx;
    gh[j] = w.bHh[j] + dot(w.wHh, j * H, h, 0, H);
  }
}

/**
 * Backward of gatePreactivations at position p: dW_ih += dgi x^T, db_ih += dgi, dW_hh += dgh h^T,
 * db_hh += dgh, dh += W_hh^T dgh (dh already holds any direct term), and for a dense input
 * dx = W_ih^T dgi (pass dx = null for tokens: nothing flows into a one-hot input).
 */
export function gatePreactivationsBackward(
  w: LayerTensors, dw: LayerTensors, rows: number, H: number, input: LayerInput, p: number, h: FloatArray,
  dgi: FloatArray, dgh: FloatArray, dh: FloatArray, dx: FloatArray | null,
): void {
  const In = w.inputSize;
  if (dx) dx.fill(0);
  for (let j = 0; j < rows; j++) {
    dw.bIh[j] += dgi[j];
    if ('tokens' in input) dw.wIh[j * In + input.tokens[p]] += dgi[j];
    else axpy(dgi[j], input.x, p * In, dw.wIh, j * In, In);
    dw.bHh[j] += dgh[j];
    axpy(dgh[j], h, 0, dw.wHh, j * H, H); // dW_hh[j,:] += dgh_j h
    axpy(dgh[j], w.wHh, j * H, dh, 0, H); // dh += W_hh[j,:] dgh_j
    if (dx) axpy(dgi[j], w.wIh, j * In, dx, 0, In); // dx += W_ih[j,:] dgi_j
  }
}

// ---------------------------------------------------------------------------------------------
// The pointwise half, per cell. All arrays are views of one position: index k is hidden unit k.

export function rnnPointwise(H: number, gi: Float64Array, gh: Float64Array, hOut: FloatArray): void {
  for (let k = 0; k < H; k++) hOut[k] = Math.tanh(gi[k] + gh[k]);
}

/** dL/da = dL/dh' (1 - h'^2) for a = gi + gh; nothing reaches h directly. */
export function rnnPointwiseBackward(H: number, hOut: FloatArray, dhOut: Float64Array, dgi: FloatArray, dgh: FloatArray, dhDirect: FloatArray): void {
  for (let k = 0; k < H; k++) {
    const h = hOut[k];
    dgi[k] = dhOut[k] * (1 - h * h);
    dgh[k] = dgi[k];
    dhDirect[k] = 0;
  }
}

export function lstmPointwise(
  H: number, gi: Float64Array, gh: Float64Array, cIn: FloatArray, hOut: FloatArray, cOut: FloatArray, saved: FloatArray,
): void {
  for (let k = 0; k < H; k++) {
    const i = sigmoid(gi[k] + gh[k]);
    const f = sigmoid(gi[H + k] + gh[H + k]);
    const g = Math.tanh(gi[2 * H + k] + gh[2 * H + k]);
    const o = sigmoid(gi[3 * H + k] + gh[3 * H + k]);
    const c = f * cIn[k] + i * g;
    cOut[k] = c;
    hOut[k] = o * Math.tanh(c);
    saved[k] = i;
    saved[H + k] = f;
    saved[2 * H + k] = g;
    saved[3 * H + k] = o;
  }
}

/**
 * dhOut = dL/dh' (from the output above and from step t+1), dcOut = dL/dc' from step t+1.
 *   do = dh' tanh(c')              dc = dc' + dh' o (1 - tanh(c')^2)
 *   di = dc g   df = dc c   dg = dc i   dL/dc (into step t-1) = dc f
 * then through σ' = σ(1-σ) and tanh' = 1 - tanh^2. Nothing reaches h directly.
 */
export function lstmPointwiseBackward(
  H: number, saved: FloatArray, cIn: FloatArray, cOut: FloatArray, dhOut: Float64Array, dcOut: FloatArray,
  dgi: FloatArray, dgh: FloatArray, dhDirect: FloatArray, dcIn: FloatArray,
): void {
  for (let k = 0; k < H; k++) {
    const i = saved[k], f = saved[H + k], g = saved[2 * H + k], o = saved[3 * H + k];
    const tc = Math.tanh(cOut[k]);
    const dh = dhOut[k];
    const dc = dcOut[k] + dh * o * (1 - tc * tc);
    dgi[k] = dc * g * i * (1 - i);
    dgi[H + k] = dc * cIn[k] * f * (1 - f);
    dgi[2 * H + k] = dc * i * (1 - g * g);
    dgi[3 * H + k] = dh * tc * o * (1 - o);
    dcIn[k] = dc * f;
    dhDirect[k] = 0;
  }
  dgh.set(dgi);
}

export function gruPointwise(H: number, gi: Float64Array, gh: Float64Array, hIn: FloatArray, hOut: FloatArray, saved: FloatArray): void {
  for (let k = 0; k < H; k++) {
    const r = sigmoid(gi[k] + gh[k]);
    const z = sigmoid(gi[H + k] + gh[H + k]);
    const ghn = gh[2 * H + k];
    const n = Math.tanh(gi[2 * H + k] + r * ghn);
    hOut[k] = (1 - z) * n + z * hIn[k];
    saved[k] = r;
    saved[H + k] = z;
    saved[2 * H + k] = n;
    saved[3 * H + k] = ghn;
  }
}

/**
 *   dn = dh' (1 - z)   dz = dh' (h - n)   dL/dh (direct) = dh' z
 *   n = tanh(a_n), a_n = gi_n + r gh_n:  da_n = dn (1 - n^2);  dgi_n = da_n;  dgh_n = da_n r;  dr = da_n gh_n
 *   r, z through σ' = σ(1-σ), with dgi = dgh for both.
 */
export function gruPointwiseBackward(
  H: number, saved: FloatArray, hIn: FloatArray, dhOut: Float64Array, dgi: FloatArray, dgh: FloatArray, dhDirect: FloatArray,
): void {
  for (let k = 0; k < H; k++) {
    const r = saved[k], z = saved[H + k], n = saved[2 * H + k], ghn = saved[3 * H + k];
    const dh = dhOut[k];
    const dan = dh * (1 - z) * (1 - n * n);
    const dar = dan * ghn * r * (1 - r);
    const daz = dh * (hIn[k] - n) * z * (1 - z);
    dgi[k] = dar;
    dgh[k] = dar;
    dgi[H + k] = daz;
    dgh[H + k] = daz;
    dgi[2 * H + k] = dan;
    dgh[2 * H + k] = dan * r;
    dhDirect[k] = dh * z;
  }
}

// ---------------------------------------------------------------------------------------------
// One uniform signature over the three cells, for the layer loop in src/cpu/stacked.ts.
// c arrays are ignored (and may be empty) for the cells without a memory cell.

export function cellPointwise(
  cell: CellType, H: number, gi: Float64Array, gh: Float64Array,
  hIn: FloatArray, cIn: FloatArray, hOut: FloatArray, cOut: FloatArray, saved: FloatArray,
): void {
  if (cell === 'rnn') rnnPointwise(H, gi, gh, hOut);
  else if (cell === 'lstm') lstmPointwise(H, gi, gh, cIn, hOut, cOut, saved);
  else gruPointwise(H, gi, gh, hIn, hOut, saved);
}

/**
 * Writes dgi, dgh [G*H], dhDirect [H] (the part of dL/dh that does not pass through W_hh) and,
 * for the LSTM, dcIn = dL/dc entering this step, given dhOut = dL/dh' and dcOut = dL/dc'.
 */
export function cellPointwiseBackward(
  cell: CellType, H: number, saved: FloatArray,
  hIn: FloatArray, cIn: FloatArray, hOut: FloatArray, cOut: FloatArray,
  dhOut: Float64Array, dcOut: FloatArray, dgi: FloatArray, dgh: FloatArray, dhDirect: FloatArray, dcIn: FloatArray,
): void {
  if (cell === 'rnn') rnnPointwiseBackward(H, hOut, dhOut, dgi, dgh, dhDirect);
  else if (cell === 'lstm') lstmPointwiseBackward(H, saved, cIn, cOut, dhOut, dcOut, dgi, dgh, dhDirect, dcIn);
  else gruPointwiseBackward(H, saved, hIn, dhOut, dgi, dgh, dhDirect);
}
