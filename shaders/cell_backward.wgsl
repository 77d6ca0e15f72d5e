// One timestep of one recurrent layer's backward pass for B sequences (backpropagation through
// time runs t = T-1 .. 0, one dispatch each), fused: the product W_hh^T dgh_{t+1} that carries
// the gradient from step t+1 into h_t, then the cell's pointwise backward (lib/cell.wgsl).
// CPU twin: the time loop of backward() in src/cpu/stacked.ts, i.e. cellPointwiseBackward and the
// dL/dh part of gatePreactivationsBackward in src/cpu/cells.ts.
//
//   dh_t  = dAbove_t + [t < T-1] (W_hh^T dgh_{t+1} + direct_{t+1})      (dAbove: from the layer
//           above or the decoder, dropout already applied)
//   dc_t  = [t < T-1] dc carried from step t+1                           (lstm)
//   then the cell's formulas give dgi_t, dgh_t [B, G*H], direct_t (the part of dL/dh_{t-1} that
//   bypasses W_hh: z*dh for the gru, 0 otherwise) and, for the lstm, dL/dc_{t-1}.
//
// Each invocation owns ROWS sequences x 16 units: reading dgh_{t+1} of every gate, it produces all
// gates of its units, so no other invocation's output of this step is needed. main_v4 reads the
// 16 units' W_hh values of row j as four vec4s (H and offWhh multiples of 4), main one by one.
// dState holds, per layer, [direct | dc | dh0] each [B, H]; an invocation reads and overwrites
// only its own elements of direct and dc. tail = 1 (gradients() only, after step 0) writes
// dh0 = W_hh^T dgh_0 + direct_0 instead: the gradient with respect to the initial hidden state.

//#include "lib/cell_step.wgsl"

// Units per invocation: 16, or fewer as the tuner chose (src/gpu/kernels/cell.ts: CELL_CANDIDATES;
// main_v4 needs a multiple of 4). Arrays are sized MAX_BU.
override BU: u32 = 16u;
const MAX_BU: u32 = 16u;

struct Uniforms {
  B: u32, H: u32, offWhh: u32, hasNext: u32,
  offDGhNext: u32, offDG: u32, offDAbove: u32, offSaved: u32,
  offHin: u32, offHout: u32, offCin: u32, offCout: u32,
  offDState: u32, tail: u32, unitBlocks: u32, dhParts: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(0) var<storage, read> params4: array<vec4<f32>>;  // main_v4's view of the same binding
// main_dh's view of binding 0 (the split plan, src/gpu/plan.ts, where W_hh exceeds a binding):
// W_hh^T dgh_{t+1} in dhParts partial sums [dhParts][B][H], from matmuls over row ranges of W_hh.
@group(0) @binding(0) var<storage, read> dhIn: array<f32>;
@group(0) @binding(1) var<storage, read_write> dGh: array<f32>;  // reads step t+1, writes step t
@group(0) @binding(2) var<storage, read_write> dGi: array<f32>;
@group(0) @binding(3) var<storage, read> dAbove: array<f32>;
@group(0) @binding(4) var<storage, read> hAll: array<f32>;
@group(0) @binding(5) var<storage, read> cAll: array<f32>;
@group(0) @binding(6) var<storage, read> saved: array<f32>;
@group(0) @binding(7) var<storage, read_write> dState: array<f32>;
@group(0) @binding(8) var<uniform> u: Uniforms;

alias Acc = array<array<f32, MAX_BU>, MAX_ROWS>;

// acc[r][c] = (W_hh^T dgh_{t+1})[b0 + r, k0 + c]; W_hh[j, k] is at offWhh + j*H + k.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = cellBlock(gid.x, u.B, u.unitBlocks, BU);
  if (!blk.ok) { return; }
  var acc: Acc;
  if (u.hasNext == 1u) {
    let gr = rowStarts(u.offDGhNext, blk.b0, u.B, gates() * u.H);
    var kc: array<u32, MAX_BU>;
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

// main_v4 accumulates vec4s of units: AccV[r][v] holds units 4v .. 4v + 3.
alias AccV = array<array<vec4<f32>, MAX_BU / 4u>, MAX_ROWS>;

@compute @workgroup_size(WG)
fn main_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = cellBlock(gid.x, u.B, u.unitBlocks, BU);
  var acc: AccV;
  if (u.hasNext == 1u) {
    let gr = rowStarts(u.offDGhNext, blk.b0, u.B, gates() * u.H);
    let H4 = u.H / 4u;
    let w0 = (u.offWhh + blk.k0) / 4u;
    // Past the last block: no iterations rather than an early return (lib/cell_step.wgsl: tripCount).
    let kn = tripCount(gates() * u.H, blk.ok);
    for (var j = 0u; j < kn; j++) {
      var a: array<f32, MAX_ROWS>;
      for (var r = 0u; r < ROWS; r++) { a[r] = dGh[gr[r] + j]; }
      // All of row j's vec4s before any multiply-add, as in cell_forward's main_v4 (1.6x there).
      // Units past H read the next row's first values (past the last row: whatever follows W_hh
      // in the buffer, which the host checks exists); they are never stored.
      var w: array<vec4<f32>, MAX_BU / 4u>;
      for (var v = 0u; v < BU / 4u; v++) { w[v] = params4[w0 + j * H4 + v]; }
      for (var r = 0u; r < ROWS; r++) {
        for (var v = 0u; v < BU / 4u; v++) { acc[r][v] += a[r] * w[v]; }
      }
    }
  }
  if (!blk.ok) { return; }
  var sum: Acc;
  for (var r = 0u; r < ROWS; r++) {
    for (var v = 0u; v < BU / 4u; v++) {
      for (var e = 0u; e < 4u; e++) { sum[r][4u * v + e] = acc[r][v][e]; }
    }
  }
  finish(blk.b0, blk.k0, sum);
}

// The split plan's step: the product's partial sums summed from dhIn.
@compute @workgroup_size(WG)
fn main_dh(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = cellBlock(gid.x, u.B, u.unitBlocks, BU);
  if (!blk.ok) { return; }
  var acc: Acc;
  if (u.hasNext == 1u) {
    let hr = rowStarts(0u, blk.b0, u.B, u.H);
    let BH = u.B * u.H;
    for (var p = 0u; p < u.dhParts; p++) {
      for (var c = 0u; c < BU; c++) {
        let k = min(blk.k0 + c, u.H - 1u);
        for (var r = 0u; r < ROWS; r++) { acc[r][c] += dhIn[p * BH + hr[r] + k]; }
      }
    }
  }
  finish(blk.b0, blk.k0, acc);
}

// The saved values q = 0..3 of one unit, at s + q*H.
fn loadSaved(s: u32, H: u32) -> vec4<f32> {
  return vec4<f32>(saved[s], saved[s + H], saved[s + 2u * H], saved[s + 3u * H]);
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
      let s = u.offSaved + b * 4u * H + k;
      if (CELL == CELL_RNN) {
        let da = rnnBackward(hAll[u.offHout + o], dh);
        dGi[g0] = da;
        dGh[g0] = da;
        dState[direct + o] = 0.0;
      } else if (CELL == CELL_LSTM) {
        let d = lstmBackward(loadSaved(s, H), cAll[u.offCin + o], cAll[u.offCout + o], dh, dcNext);
        dGi[g0] = d.da.x; dGh[g0] = d.da.x;
        dGi[g0 + H] = d.da.y; dGh[g0 + H] = d.da.y;
        dGi[g0 + 2u * H] = d.da.z; dGh[g0 + 2u * H] = d.da.z;
        dGi[g0 + 3u * H] = d.da.w; dGh[g0 + 3u * H] = d.da.w;
        dState[dcAt + o] = d.dcPrev;
        dState[direct + o] = 0.0;
      } else {
        let d = gruBackward(loadSaved(s, H), hAll[u.offHin + o], dh);
        dGi[g0] = d.dgi.x; dGh[g0] = d.dgh.x;
        dGi[g0 + H] = d.dgi.y; dGh[g0 + H] = d.dgh.y;
        dGi[g0 + 2u * H] = d.dgi.z; dGh[g0 + 2u * H] = d.dgh.z;
        dState[direct + o] = d.direct;
      }
    }
  }
}
