// One timestep of one recurrent layer for B sequences, all gates at once: the product of the
// recurrent weights over the concatenated gates with the cell's pointwise math fused into its
// epilogue. CPU twin: gatePreactivations + cellPointwise in src/cpu/cells.ts.
//
//   gh = W_hh h_{t-1} + b_hh                    [B, G*H]  (W_hh is PyTorch's [G*H, H], row-major)
//   gi = W_ih x_t + b_ih                        [B, G*H]  precomputed for all T steps at once
//   rnn  (G=1): h = tanh(gi + gh)
//   lstm (G=4, i f g o): c = f*c_{t-1} + i*g,  h = o*tanh(c)
//   gru  (G=3, r z n):   n = tanh(gi_n + r*gh_n),  h = (1-z)*n + z*h_{t-1}
//
// Each invocation owns ROWS sequences x BU hidden units and computes every gate of those units, so
// the pointwise part needs no other invocation's result. W_hh comes from its transposed copy
// whhT [H, G*H] (the optimizer keeps it in step with the parameters; shaders/optimizer.wgsl), so
// that for each j the invocation's weights, columns q*H + k0 .. q*H + k0 + BU - 1 of row j, are
// contiguous: main_v4 reads them as vec4s. In W_hh's own layout they sit in BU x G rows of length
// H, read a vec4 of j at a time, and the step was 1.5x slower on lavapipe (B=32: rnn H=512 3.0
// against 2.0 ms, lstm H=256 3.8 against 2.4).
// BU x G = 16 (12 for the gru) accumulators per sequence: on CPU drivers loads, not
// multiply-adds, set the speed, and each h value loaded serves all of them, each weight loaded
// all ROWS sequences. lstm and gru also save what the backward step needs (cells.ts: SAVED), per
// position [4][H]: lstm i, f, g, o; gru r, z, n, gh_n.
// h_{t-1} and h_t live in one buffer at disjoint offsets (as in matmul.wgsl's recurrent modes):
// WebGPU forbids binding overlapping ranges of one buffer twice when one of them is writable.

override CELL: u32 = 0u;  // 0 rnn, 1 lstm, 2 gru
override WG: u32 = 64;

const CELL_RNN: u32 = 0u;
const CELL_LSTM: u32 = 1u;
const CELL_GRU: u32 = 2u;
// Sequences per invocation: MAX_ROWS, or 1, 2 or 4 for batches that small (the host picks; see
// cellRows in src/gpu/kernels.ts). Arrays are sized MAX_ROWS; loops run to ROWS, a constant once
// the pipeline is specialized, so the unused rows compile away.
override ROWS: u32 = 8u;
const MAX_ROWS: u32 = 8u;
const SLOTS: u32 = 16u;  // accumulators per sequence: gates x units (units(): rnn 16, lstm 4, gru 4)

struct Uniforms {
  B: u32, H: u32, offWhhT: u32, offBhh: u32,
  offGi: u32, offHin: u32, offHout: u32, offSaved: u32,
  offCin: u32, offCout: u32, unitBlocks: u32, pad: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;     // b_hh
@group(0) @binding(1) var<storage, read> gi: array<f32>;          // [B, G*H] of this step, b_ih included
@group(0) @binding(2) var<storage, read_write> hAll: array<f32>;  // reads h_{t-1}, writes h_t
@group(0) @binding(3) var<storage, read_write> cAll: array<f32>;  // lstm: reads c_{t-1}, writes c_t
@group(0) @binding(4) var<storage, read_write> saved: array<f32>; // lstm, gru: [B][4][H]
@group(0) @binding(5) var<uniform> u: Uniforms;
@group(0) @binding(6) var<storage, read> whhT: array<f32>;       // W_hh^T [H, G*H] at offWhhT
// A vec4 view of the same binding for main_v4 (WGSL allows this across entry points): for H and
// offWhhT multiples of 4, with 16 floats to spare past the end (read past H, never stored).
@group(0) @binding(6) var<storage, read> whhT4: array<vec4<f32>>;

fn gates() -> u32 {
  if (CELL == CELL_LSTM) { return 4u; }
  if (CELL == CELL_GRU) { return 3u; }
  return 1u;
}
// A multiple of 4, so that main_v4's vec4s of units start aligned.
fn units() -> u32 { return (SLOTS / gates()) / 4u * 4u; }

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
// Clamped because some drivers compute tanh from exp and overflow to NaN for large inputs;
// tanh(15) already rounds to 1.0 in f32.
fn tanhSafe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }

alias Acc = array<array<f32, SLOTS>, MAX_ROWS>;

struct Block { b0: u32, k0: u32, ok: bool }

fn block(gid: vec3<u32>) -> Block {
  let rowBlocks = (u.B + ROWS - 1u) / ROWS;
  let ok = gid.x < u.unitBlocks * rowBlocks;
  return Block((gid.x / u.unitBlocks) * ROWS, (gid.x % u.unitBlocks) * units(), ok);
}

// Where rows b0.. of h_{t-1} start, and slot q*BU + c's column of W_hh^T (gate q, unit k0 + c);
// rows and units past the edge are clamped to the last one: computed, never stored.
fn hRows(b0: u32) -> array<u32, MAX_ROWS> {
  var r: array<u32, MAX_ROWS>;
  for (var i = 0u; i < ROWS; i++) { r[i] = u.offHin + min(b0 + i, u.B - 1u) * u.H; }
  return r;
}
fn wCols(k0: u32) -> array<u32, SLOTS> {
  var w: array<u32, SLOTS>;
  let BU = units();
  for (var q = 0u; q < gates(); q++) {
    for (var c = 0u; c < BU; c++) { w[q * BU + c] = q * u.H + min(k0 + c, u.H - 1u); }
  }
  return w;
}

fn biases(k0: u32) -> array<f32, SLOTS> {
  var bias: array<f32, SLOTS>;
  let BU = units();
  for (var s = 0u; s < gates() * BU; s++) { bias[s] = params[u.offBhh + (s / BU) * u.H + min(k0 + s % BU, u.H - 1u)]; }
  return bias;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block(gid);
  if (!blk.ok) { return; }
  let hr = hRows(blk.b0);
  let wc = wCols(blk.k0);
  let n = gates() * units();
  let GH = gates() * u.H;
  var acc: Acc;
  for (var j = 0u; j < u.H; j++) {
    var a: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) { a[r] = hAll[hr[r] + j]; }
    let wj = u.offWhhT + j * GH;
    for (var s = 0u; s < n; s++) {
      let w = whhT[wj + wc[s]];
      for (var r = 0u; r < ROWS; r++) { acc[r][s] += a[r] * w; }
    }
  }
  finish(blk.b0, blk.k0, acc, biases(blk.k0));
}

@compute @workgroup_size(WG)
fn main_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block(gid);
  if (!blk.ok) { return; }
  let hr = hRows(blk.b0);
  let BU = units();
  let GH = gates() * u.H;
  var acc: Acc;
  for (var j = 0u; j < u.H; j++) {
    var a: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) { a[r] = hAll[hr[r] + j]; }
    // Gate q's units k0 .. k0 + BU - 1 of row j; units past H read on into the next gate, row or
    // the spare floats, and are never stored.
    let wj = (u.offWhhT + j * GH + blk.k0) / 4u;
    for (var q = 0u; q < gates(); q++) {
      for (var v = 0u; v < BU / 4u; v++) {
        let w = whhT4[wj + q * u.H / 4u + v];
        let s = q * BU + 4u * v;
        for (var r = 0u; r < ROWS; r++) {
          acc[r][s] += a[r] * w.x;
          acc[r][s + 1u] += a[r] * w.y;
          acc[r][s + 2u] += a[r] * w.z;
          acc[r][s + 3u] += a[r] * w.w;
        }
      }
    }
  }
  finish(blk.b0, blk.k0, acc, biases(blk.k0));
}

// The pointwise part for the block's sequences and units; acc[r][q*BU + c] is gh without b_hh,
// bias[q*BU + c] is b_hh, for gate q of unit k0 + c.
fn finish(b0: u32, k0: u32, acc: Acc, bias: array<f32, SLOTS>) {
  let H = u.H;
  let B = u.B;
  let GH = gates() * H;
  let BU = units();
  var out = acc;
  var bh = bias;
  for (var r = 0u; r < ROWS; r++) {
    let b = b0 + r;
    if (b >= B) { break; }
    for (var c = 0u; c < BU; c++) {
      let k = k0 + c;
      if (k >= H) { break; }
      let x = u.offGi + b * GH + k;  // gi of gate q is at x + q*H
      let o = b * H + k;
      if (CELL == CELL_RNN) {
        hAll[u.offHout + o] = tanhSafe(gi[x] + out[r][c] + bh[c]);
      } else if (CELL == CELL_LSTM) {
        let i = sigmoid(gi[x] + out[r][c] + bh[c]);
        let f = sigmoid(gi[x + H] + out[r][BU + c] + bh[BU + c]);
        let g = tanhSafe(gi[x + 2u * H] + out[r][2u * BU + c] + bh[2u * BU + c]);
        let og = sigmoid(gi[x + 3u * H] + out[r][3u * BU + c] + bh[3u * BU + c]);
        let cNew = f * cAll[u.offCin + o] + i * g;
        cAll[u.offCout + o] = cNew;
        hAll[u.offHout + o] = og * tanhSafe(cNew);
        let s = u.offSaved + b * 4u * H + k;
        saved[s] = i;
        saved[s + H] = f;
        saved[s + 2u * H] = g;
        saved[s + 3u * H] = og;
      } else {
        let rg = sigmoid(gi[x] + out[r][c] + bh[c]);
        let z = sigmoid(gi[x + H] + out[r][BU + c] + bh[BU + c]);
        let ghn = out[r][2u * BU + c] + bh[2u * BU + c];
        let n = tanhSafe(gi[x + 2u * H] + rg * ghn);
        hAll[u.offHout + o] = (1.0 - z) * n + z * hAll[u.offHin + o];
        let s = u.offSaved + b * 4u * H + k;
        saved[s] = rg;
        saved[s + H] = z;
        saved[s + 2u * H] = n;
        saved[s + 3u * H] = ghn;
      }
    }
  }
}
