// One timestep of one recurrent layer for B sequences, all gates at once: the product of the
// recurrent weights over the concatenated gates with the cell's pointwise math (lib/cell.wgsl)
// fused into its epilogue. CPU twin: gatePreactivations + cellPointwise in src/cpu/cells.ts.
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
// h_{t-1} and h_t live in one buffer at disjoint offsets: WebGPU forbids binding overlapping
// ranges of one buffer twice when one of them is writable.

//#include "lib/cell_step.wgsl"

const SLOTS: u32 = 16u;  // accumulators per sequence: gates x units (units(): rnn 16, lstm 4, gru 4)

struct Uniforms {
  B: u32, H: u32, offWhhT: u32, offBhh: u32,
  offGi: u32, offHin: u32, offHout: u32, offSaved: u32,
  offCin: u32, offCout: u32, unitBlocks: u32, offBih: u32,
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
// main_gh's view of binding 6: gh = W_hh h_{t-1} [B, G*H] without biases, computed beforehand by
// matmuls over row ranges of W_hh (the split plan, src/gpu/plan.ts, where W_hh exceeds a binding).
@group(0) @binding(6) var<storage, read> ghIn: array<f32>;

// main_gh's b_ih per slot, added to gi in finish (gi holds W_ih x alone there); zero, as every
// private variable starts, in main and main_v4, where adding it changes nothing.
var<private> giBias: array<f32, SLOTS>;

// Units per invocation as the tuner chose them (src/gpu/kernels/cell.ts: CELL_CANDIDATES), at
// most SLOTS / gates(); 0: the default below. main_v4 needs a multiple of 4.
override UNITS: u32 = 0u;

// A multiple of 4, so that main_v4's vec4s of units start aligned.
fn units() -> u32 {
  if (UNITS != 0u) { return UNITS; }
  return (SLOTS / gates()) / 4u * 4u;
}

alias Acc = array<array<f32, SLOTS>, MAX_ROWS>;

// Slot q*BU + c's column of W_hh^T (gate q, unit k0 + c); units past H are clamped to the last
// one: computed, never stored.
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
  let blk = cellBlock(gid.x, u.B, u.unitBlocks, units());
  if (!blk.ok) { return; }
  let hr = rowStarts(u.offHin, blk.b0, u.B, u.H);
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

// main_v4 accumulates vec4s of units: AccV[r][q * BU/4 + v] holds gate q's units 4v .. 4v + 3.
alias AccV = array<array<vec4<f32>, SLOTS / 4u>, MAX_ROWS>;

@compute @workgroup_size(WG)
fn main_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let BU = units();
  let blk = cellBlock(gid.x, u.B, u.unitBlocks, BU);
  let hr = rowStarts(u.offHin, blk.b0, u.B, u.H);
  let GH4 = gates() * u.H / 4u;
  let H4 = u.H / 4u;
  let n4 = gates() * BU / 4u;
  let w0 = (u.offWhhT + blk.k0) / 4u;
  // Past the last block: no iterations rather than an early return (lib/cell_step.wgsl: tripCount).
  let kn = tripCount(u.H, blk.ok);
  var acc: AccV;
  for (var j = 0u; j < kn; j++) {
    var a: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) { a[r] = hAll[hr[r] + j]; }
    // Gate q's units k0 .. k0 + BU - 1 of row j, all loaded before any multiply-add: interleaving
    // the loads with the arithmetic made the step 1.6x slower on lavapipe (rnn and lstm, B=32
    // H=512). Units past H read on into the next gate, row or the spare floats, never stored.
    var w: array<vec4<f32>, SLOTS / 4u>;
    for (var q = 0u; q < gates(); q++) {
      for (var v = 0u; v < BU / 4u; v++) { w[q * BU / 4u + v] = whhT4[w0 + j * GH4 + q * H4 + v]; }
    }
    for (var r = 0u; r < ROWS; r++) {
      for (var s = 0u; s < n4; s++) { acc[r][s] += a[r] * w[s]; }
    }
  }
  if (!blk.ok) { return; }
  var out: Acc;
  for (var r = 0u; r < ROWS; r++) {
    for (var s = 0u; s < n4; s++) {
      for (var e = 0u; e < 4u; e++) { out[r][4u * s + e] = acc[r][s][e]; }
    }
  }
  finish(blk.b0, blk.k0, out, biases(blk.k0));
}

// The split plan's step: the product came from ghIn, b_ih (there not in gi) goes to giBias;
// params bound from offBih on.
@compute @workgroup_size(WG)
fn main_gh(@builtin(global_invocation_id) gid: vec3<u32>) {
  let BU = units();
  let blk = cellBlock(gid.x, u.B, u.unitBlocks, BU);
  if (!blk.ok) { return; }
  let GH = gates() * u.H;
  let hr = rowStarts(0u, blk.b0, u.B, GH);
  let wc = wCols(blk.k0);
  var acc: Acc;
  for (var s = 0u; s < gates() * BU; s++) {
    giBias[s] = params[u.offBih + wc[s]];
    for (var r = 0u; r < ROWS; r++) { acc[r][s] = ghIn[hr[r] + wc[s]]; }
  }
  finish(blk.b0, blk.k0, acc, biases(blk.k0));
}

// What the backward step reads of one unit: values q = 0..3 at s + q*H.
fn storeSaved(s: u32, H: u32, v: vec4<f32>) {
  saved[s] = v.x;
  saved[s + H] = v.y;
  saved[s + 2u * H] = v.z;
  saved[s + 3u * H] = v.w;
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
      let s = u.offSaved + b * 4u * H + k;  // saved value q at s + q*H
      // Gate q's pre-activation aq = gi + W_hh h + b_hh, summed in that order.
      let a0 = gi[x] + giBias[c] + out[r][c] + bh[c];
      if (CELL == CELL_RNN) {
        hAll[u.offHout + o] = rnnForward(a0);
        continue;
      }
      let a1 = gi[x + H] + giBias[BU + c] + out[r][BU + c] + bh[BU + c];
      if (CELL == CELL_LSTM) {
        let a2 = gi[x + 2u * H] + giBias[2u * BU + c] + out[r][2u * BU + c] + bh[2u * BU + c];
        let a3 = gi[x + 3u * H] + giBias[3u * BU + c] + out[r][3u * BU + c] + bh[3u * BU + c];
        let y = lstmForward(vec4<f32>(a0, a1, a2, a3), cAll[u.offCin + o]);
        cAll[u.offCout + o] = y.c;
        hAll[u.offHout + o] = y.h;
        storeSaved(s, H, y.saved);
      } else {
        let y = gruForward(vec2<f32>(a0, a1), gi[x + 2u * H] + giBias[2u * BU + c], out[r][2u * BU + c] + bh[2u * BU + c], hAll[u.offHin + o]);
        hAll[u.offHout + o] = y.h;
        storeSaved(s, H, y.saved);
      }
    }
  }
}
