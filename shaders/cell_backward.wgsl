// One timestep of one recurrent layer's backward pass for B sequences (backpropagation through
// time runs t = T-1 .. 0, one dispatch each), fused: the product W_hh^T dgh_{t+1} that carries
// the gradient from step t+1 into h_t, then the cell's pointwise backward.
// CPU twin: the time loop of backward() in src/cpu/stacked.ts, i.e. cellPointwiseBackward and the
// dL/dh part of gatePreactivationsBackward in src/cpu/cells.ts.
//
//   dh_t  = dAbove_t + [t < T-1] (W_hh^T dgh_{t+1} + direct_{t+1})      (dAbove: from the layer
//           above or the decoder, dropout already applied)
//   dc_t  = [t < T-1] dc carried from step t+1                           (lstm)
//   then the cell's formulas (cells.ts) give dgi_t, dgh_t [B, G*H], direct_t (the part of dL/dh_{t-1}
//   that bypasses W_hh: z*dh for the gru, 0 otherwise) and, for the lstm, dL/dc_{t-1}.
//
// Each invocation owns ROWS sequences x 16 units: reading dgh_{t+1} of every gate, it produces all
// gates of its units, so no other invocation's output of this step is needed. main_v4 reads the
// 16 units' W_hh values of row j as four vec4s (H and offWhh multiples of 4), main one by one. dState holds, per
// layer, [direct | dc | dh0] each [B, H]; an invocation reads and overwrites only its own
// elements of direct and dc. TAIL = 1 (gradients() only, after step 0) writes
// dh0 = W_hh^T dgh_0 + direct_0 instead: the gradient with respect to the initial hidden state.

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
const BU: u32 = 16u;

struct Uniforms {
  B: u32, H: u32, offWhh: u32, hasNext: u32,
  offDGhNext: u32, offDG: u32, offDAbove: u32, offSaved: u32,
  offHin: u32, offHout: u32, offCin: u32, offCout: u32,
  offDState: u32, tail: u32, unitBlocks: u32, pad: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(0) var<storage, read> params4: array<vec4<f32>>;  // main_v4's view of the same binding
@group(0) @binding(1) var<storage, read_write> dGh: array<f32>;  // reads step t+1, writes step t
@group(0) @binding(2) var<storage, read_write> dGi: array<f32>;
@group(0) @binding(3) var<storage, read> dAbove: array<f32>;
@group(0) @binding(4) var<storage, read> hAll: array<f32>;
@group(0) @binding(5) var<storage, read> cAll: array<f32>;
@group(0) @binding(6) var<storage, read> saved: array<f32>;
@group(0) @binding(7) var<storage, read_write> dState: array<f32>;
@group(0) @binding(8) var<uniform> u: Uniforms;

fn gates() -> u32 {
  if (CELL == CELL_LSTM) { return 4u; }
  if (CELL == CELL_GRU) { return 3u; }
  return 1u;
}

fn tanhSafe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }

alias Acc = array<array<f32, BU>, MAX_ROWS>;

struct Block { b0: u32, k0: u32, ok: bool }

fn block(gid: vec3<u32>) -> Block {
  let rowBlocks = (u.B + ROWS - 1u) / ROWS;
  return Block((gid.x / u.unitBlocks) * ROWS, (gid.x % u.unitBlocks) * BU, gid.x < u.unitBlocks * rowBlocks);
}

// Rows b0.. of dgh_{t+1}, clamped to the last row past the edge (computed, never stored).
fn gRows(b0: u32) -> array<u32, MAX_ROWS> {
  var g: array<u32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) { g[r] = u.offDGhNext + min(b0 + r, u.B - 1u) * gates() * u.H; }
  return g;
}

// acc[r][c] = (W_hh^T dgh_{t+1})[b0 + r, k0 + c]; W_hh[j, k] is at offWhh + j*H + k.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block(gid);
  if (!blk.ok) { return; }
  var acc: Acc;
  if (u.hasNext == 1u) {
    let gr = gRows(blk.b0);
    var kc: array<u32, BU>;
    for (var c = 0u; c < BU; c++) { kc[c] = min(blk.k0 + c, u.H - 1u); }
    for (var j = 0u; j < gates() * u.H; j++) {
      var a: array<f32, MAX_ROWS>;
      for (var r = 0u; r < ROWS; r++) { a[r] = dGh[gr[r] + j]; }
      let wj = u.offWhh + j * u.H;
      for (var c = 0u; c < BU; c++) {
        let w = params[wj + kc[c]];
        for (var r = 0u; r < ROWS; r++) { acc[r][c] += a[r] * w; }
      }
    }
  }
  finish(blk.b0, blk.k0, acc);
}

@compute @workgroup_size(WG)
fn main_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block(gid);
  if (!blk.ok) { return; }
  var acc: Acc;
  if (u.hasNext == 1u) {
    let gr = gRows(blk.b0);
    // Units past H read the next row's first values (past the last row: whatever follows W_hh in
    // the buffer, which the host checks exists); they are never stored.
    for (var j = 0u; j < gates() * u.H; j++) {
      var a: array<f32, MAX_ROWS>;
      for (var r = 0u; r < ROWS; r++) { a[r] = dGh[gr[r] + j]; }
      let w4 = (u.offWhh + j * u.H + blk.k0) / 4u;
      for (var v = 0u; v < BU / 4u; v++) {
        let w = params4[w4 + v];
        for (var r = 0u; r < ROWS; r++) {
          acc[r][4u * v] += a[r] * w.x;
          acc[r][4u * v + 1u] += a[r] * w.y;
          acc[r][4u * v + 2u] += a[r] * w.z;
          acc[r][4u * v + 3u] += a[r] * w.w;
        }
      }
    }
  }
  finish(blk.b0, blk.k0, acc);
}

fn finish(b0: u32, k0: u32, acc: Acc) {
  let H = u.H;
  let B = u.B;
  let GH = gates() * H;
  let BH = B * H;
  let direct = u.offDState;
  let dcAt = u.offDState + BH;
  let dh0At = u.offDState + 2u * BH;
  var sum = acc;
  // continue, not break: with a break here Mesa's GLSL path (Dawn's OpenGL backend on llvmpipe)
  // spends minutes compiling ROWS = 8 (measured 494 s for the lstm); with continue, under a second.
  for (var r = 0u; r < ROWS; r++) {
    let b = b0 + r;
    if (b >= B) { continue; }
    for (var c = 0u; c < BU; c++) {
      let k = k0 + c;
      if (k >= H) { continue; }
      let o = b * H + k;
      if (u.tail == 1u) {
        dState[dh0At + o] = sum[r][c] + dState[direct + o];
        continue;
      }
      var dh = dAbove[u.offDAbove + o];
      var dcNext = 0.0;
      if (u.hasNext == 1u) {
        dh += sum[r][c] + dState[direct + o];
        if (CELL == CELL_LSTM) { dcNext = dState[dcAt + o]; }
      }
      let g0 = u.offDG + b * GH + k;  // gate q of unit k at g0 + q*H
      if (CELL == CELL_RNN) {
        let h = hAll[u.offHout + o];
        let da = dh * (1.0 - h * h);
        dGi[g0] = da;
        dGh[g0] = da;
        dState[direct + o] = 0.0;
      } else if (CELL == CELL_LSTM) {
        let s = u.offSaved + b * 4u * H + k;
        let i = saved[s];
        let f = saved[s + H];
        let g = saved[s + 2u * H];
        let og = saved[s + 3u * H];
        let tc = tanhSafe(cAll[u.offCout + o]);
        let dc = dcNext + dh * og * (1.0 - tc * tc);
        let di = dc * g * i * (1.0 - i);
        let df = dc * cAll[u.offCin + o] * f * (1.0 - f);
        let dg = dc * i * (1.0 - g * g);
        let dout = dh * tc * og * (1.0 - og);
        dGi[g0] = di; dGh[g0] = di;
        dGi[g0 + H] = df; dGh[g0 + H] = df;
        dGi[g0 + 2u * H] = dg; dGh[g0 + 2u * H] = dg;
        dGi[g0 + 3u * H] = dout; dGh[g0 + 3u * H] = dout;
        dState[dcAt + o] = dc * f;
        dState[direct + o] = 0.0;
      } else {
        let s = u.offSaved + b * 4u * H + k;
        let rg = saved[s];
        let z = saved[s + H];
        let n = saved[s + 2u * H];
        let ghn = saved[s + 3u * H];
        let dan = dh * (1.0 - z) * (1.0 - n * n);
        let dar = dan * ghn * rg * (1.0 - rg);
        let daz = dh * (hAll[u.offHin + o] - n) * z * (1.0 - z);
        dGi[g0] = dar; dGh[g0] = dar;
        dGi[g0 + H] = daz; dGh[g0 + H] = daz;
        dGi[g0 + 2u * H] = dan;
        dGh[g0 + 2u * H] = dan * rg;
        dState[direct + o] = dh * z;
      }
    }
  }
}
