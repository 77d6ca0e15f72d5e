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
// Each invocation owns BR sequences x BU hidden units and computes every gate of those units, so
// the pointwise part needs no other invocation's result: unit k's gates are rows k, H+k, 2H+k,
// 3H+k of W_hh. lstm and gru also save what the backward step needs (cells.ts: SAVED), per
// position [4][H]: lstm i, f, g, o; gru r, z, n, gh_n.
// h_{t-1} and h_t live in one buffer at disjoint offsets (as in matmul.wgsl's recurrent modes):
// WebGPU forbids binding overlapping ranges of one buffer twice when one of them is writable.

override CELL: u32 = 0u;  // 0 rnn, 1 lstm, 2 gru
override WG: u32 = 64;

const CELL_RNN: u32 = 0u;
const CELL_LSTM: u32 = 1u;
const CELL_GRU: u32 = 2u;
const MAX_G: u32 = 4u;
const BR: u32 = 4u;  // sequences per invocation
const BU: u32 = 4u;  // hidden units per invocation

struct Uniforms {
  B: u32, H: u32, offWhh: u32, offBhh: u32,
  offGi: u32, offHin: u32, offHout: u32, offSaved: u32,
  offCin: u32, offCout: u32, unitBlocks: u32, pad: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
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

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
// Clamped because some drivers compute tanh from exp and overflow to NaN for large inputs;
// tanh(15) already rounds to 1.0 in f32.
fn tanhSafe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let H = u.H;
  let B = u.B;
  let G = gates();
  let rowBlocks = (B + BR - 1u) / BR;
  if (gid.x >= u.unitBlocks * rowBlocks) { return; }
  let k0 = (gid.x % u.unitBlocks) * BU;
  let b0 = (gid.x / u.unitBlocks) * BR;

  // Rows and units past the edge are clamped to the last one: computed, never stored.
  var hRow: array<u32, BR>;
  for (var r = 0u; r < BR; r++) { hRow[r] = u.offHin + min(b0 + r, B - 1u) * H; }
  var wRow: array<array<u32, BU>, MAX_G>;
  for (var q = 0u; q < G; q++) {
    for (var c = 0u; c < BU; c++) { wRow[q][c] = u.offWhh + (q * H + min(k0 + c, H - 1u)) * H; }
  }
  var acc: array<array<array<f32, BU>, MAX_G>, BR>;
  for (var j = 0u; j < H; j++) {
    var a: array<f32, BR>;
    for (var r = 0u; r < BR; r++) { a[r] = hAll[hRow[r] + j]; }
    for (var q = 0u; q < G; q++) {
      var w: array<f32, BU>;
      for (var c = 0u; c < BU; c++) { w[c] = params[wRow[q][c] + j]; }
      for (var r = 0u; r < BR; r++) {
        for (var c = 0u; c < BU; c++) { acc[r][q][c] += a[r] * w[c]; }
      }
    }
  }

  let GH = G * H;
  var out = acc;
  for (var r = 0u; r < BR; r++) {
    let b = b0 + r;
    if (b >= B) { break; }
    for (var c = 0u; c < BU; c++) {
      let k = k0 + c;
      if (k >= H) { break; }
      let x = u.offGi + b * GH + k;                // gi of gate q is at x + q*H
      let bh = u.offBhh + k;                       // b_hh of gate q is at bh + q*H
      let o = b * H + k;
      if (CELL == CELL_RNN) {
        hAll[u.offHout + o] = tanhSafe(gi[x] + out[r][0][c] + params[bh]);
      } else if (CELL == CELL_LSTM) {
        let i = sigmoid(gi[x] + out[r][0][c] + params[bh]);
        let f = sigmoid(gi[x + H] + out[r][1][c] + params[bh + H]);
        let g = tanhSafe(gi[x + 2u * H] + out[r][2][c] + params[bh + 2u * H]);
        let og = sigmoid(gi[x + 3u * H] + out[r][3][c] + params[bh + 3u * H]);
        let cNew = f * cAll[u.offCin + o] + i * g;
        cAll[u.offCout + o] = cNew;
        hAll[u.offHout + o] = og * tanhSafe(cNew);
        let s = u.offSaved + b * 4u * H + k;
        saved[s] = i;
        saved[s + H] = f;
        saved[s + 2u * H] = g;
        saved[s + 3u * H] = og;
      } else {
        let rg = sigmoid(gi[x] + out[r][0][c] + params[bh]);
        let z = sigmoid(gi[x + H] + out[r][1][c] + params[bh + H]);
        let ghn = out[r][2][c] + params[bh + 2u * H];
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
