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
// the pointwise part needs no other invocation's result: unit k's gates are rows k, H+k, 2H+k,
// 3H+k of W_hh. BU x G = 16 (or 15) accumulators per sequence whatever the cell: on CPU drivers
// loads, not multiply-adds, set the speed, and each h value loaded serves all 16 of them, each
// weight loaded all ROWS sequences. lstm and gru also save what the backward step needs
// (cells.ts: SAVED), per position [4][H]: lstm i, f, g, o; gru r, z, n, gh_n.
// h_{t-1} and h_t live in one buffer at disjoint offsets (as in matmul.wgsl's recurrent modes):
// WebGPU forbids binding overlapping ranges of one buffer twice when one of them is writable.

override CELL: u32 = 0u;  // 0 rnn, 1 lstm, 2 gru
override WG: u32 = 64;

const CELL_RNN: u32 = 0u;
const CELL_LSTM: u32 = 1u;
const CELL_GRU: u32 = 2u;
// Sequences per invocation: MAX_ROWS, or 4 when the batch is that small (the host picks; see
// cellBlock in src/gpu/kernels.ts). Arrays are sized MAX_ROWS; loops run to ROWS, a constant once
// the pipeline is specialized, so the unused rows compile away.
override ROWS: u32 = 8u;
const MAX_ROWS: u32 = 8u;
const SLOTS: u32 = 16u;  // accumulators per sequence: gates x units, so BU = 16 / G units (rnn 16, gru 5, lstm 4)

struct Uniforms {
  B: u32, H: u32, offWhh: u32, offBhh: u32,
  offGi: u32, offHin: u32, offHout: u32, offSaved: u32,
  offCin: u32, offCout: u32, unitBlocks: u32, pad: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
// A vec4 view of the same binding for main_v4 (WGSL allows this across entry points), which reads
// each W_hh row four columns at a time: for H and offWhh multiples of 4.
@group(0) @binding(0) var<storage, read> params4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gi: array<f32>;          // [B, G*H] of this step, b_ih included
@group(0) @binding(2) var<storage, read_write> hAll: array<f32>;  // reads h_{t-1}, writes h_t
@group(0) @binding(3) var<storage, read_write> cAll: array<f32>;  // lstm: reads c_{t-1}, writes c_t
@group(0) @binding(4) var<storage, read_write> saved: array<f32>; // lstm, gru: [B][4][H]
@group(0) @binding(5) var<uniform> u: Uniforms;

fn gates() -> u32 {
  if (CELL == CELL_LSTM) { return 4u; }
  if (CELL == CELL_GRU) { return 3u; }
  return 1u;
}
fn units() -> u32 { return SLOTS / gates(); }

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

// Where rows b0.. of h_{t-1} start, and slot q*BU + c's row of W_hh (gate q, unit k0 + c); rows
// and units past the edge are clamped to the last one: computed, never stored.
fn hRows(b0: u32) -> array<u32, MAX_ROWS> {
  var r: array<u32, MAX_ROWS>;
  for (var i = 0u; i < ROWS; i++) { r[i] = u.offHin + min(b0 + i, u.B - 1u) * u.H; }
  return r;
}
fn wRows(k0: u32) -> array<u32, SLOTS> {
  var w: array<u32, SLOTS>;
  let BU = units();
  for (var q = 0u; q < gates(); q++) {
    for (var c = 0u; c < BU; c++) { w[q * BU + c] = u.offWhh + (q * u.H + min(k0 + c, u.H - 1u)) * u.H; }
  }
  return w;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block(gid);
  if (!blk.ok) { return; }
  let hr = hRows(blk.b0);
  let wr = wRows(blk.k0);
  let n = gates() * units();
  var acc: Acc;
  var bias: array<f32, SLOTS>;
  for (var j = 0u; j < u.H; j++) {
    var a: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) { a[r] = hAll[hr[r] + j]; }
    for (var s = 0u; s < n; s++) {
      let w = params[wr[s] + j];
      for (var r = 0u; r < ROWS; r++) { acc[r][s] += a[r] * w; }
    }
  }
  let BU = units();
  for (var s = 0u; s < n; s++) { bias[s] = params[u.offBhh + (s / BU) * u.H + min(blk.k0 + s % BU, u.H - 1u)]; }
  finish(blk.b0, blk.k0, acc, bias);
}

@compute @workgroup_size(WG)
fn main_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block(gid);
  if (!blk.ok) { return; }
  let hr = hRows(blk.b0);
  let wr = wRows(blk.k0);
  let n = gates() * units();
  var acc: Acc;
  var bias: array<f32, SLOTS>;
  for (var j = 0u; j < u.H; j += 4u) {
    var a: array<vec4<f32>, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) {
      let i = hr[r] + j;
      a[r] = vec4<f32>(hAll[i], hAll[i + 1u], hAll[i + 2u], hAll[i + 3u]);
    }
    for (var s = 0u; s < n; s++) {
      let w = params4[(wr[s] + j) / 4u];
      for (var r = 0u; r < ROWS; r++) { acc[r][s] += dot(a[r], w); }
    }
  }
  let BU = units();
  for (var s = 0u; s < n; s++) {
    let i = u.offBhh + (s / BU) * u.H + min(blk.k0 + s % BU, u.H - 1u);
    bias[s] = params4[i / 4u][i % 4u];
  }
  finish(blk.b0, blk.k0, acc, bias);
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
