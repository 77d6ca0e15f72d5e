// Text generation on the GPU, each step's work spread over the device. Per generated token the
// host encodes one dispatch per layer (this shader: every stream's units of that layer, in blocks
// of UNITS units x all their gates over many invocations), one for the decoder (sample_decode.wgsl:
// blocks of vocabulary rows) and one for the draw (sample_draw.wgsl: one workgroup per stream), and
// whole runs of tokens go into one submit; the text is read back once at the end. Many samples
// (streams) side by side share every dispatch, and each weight loaded serves ROWS of them. The
// same dispatches and uniforms serve every step: each stream's step counter lives in `seq`, and the
// draw moves it on (lib/sample_step.wgsl). CPU twin: sampleTokens in src/cpu/sample.ts.
//
// Per layer, gi = W_ih x + b_ih (a column gather for the token at layer 0, a product with the
// layer below's new h above it) and gh = W_hh h + b_hh, then the cell's pointwise math, the same
// functions training runs (lib/cell.wgsl). No dropout (it is a training-time regulariser).

//#include "lib/cell.wgsl"

override WG: u32 = 64;
override ROWS: u32 = 1u;   // streams per invocation (at most MAX_ROWS)
override UNITS: u32 = 4u;  // hidden units per invocation, every gate of them (UNITS x gates <= SLOTS)
// W_hh from its transposed copy in weightsT (offWhhT), where the model keeps one (not the split plan).
override TRANSPOSED: bool = false;

struct Uniforms {
  H: u32, V: u32, streams: u32, layers: u32,
  layer: u32, seqLen: u32, blocks: u32, offWhhT: u32,
  offWih: u32, offWhh: u32, offBih: u32, offBhh: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> seq: array<u32>;           // tokens, then each stream's step
@group(0) @binding(2) var<storage, read_write> hState: array<f32>;  // h twice, then c (lstm)
@group(0) @binding(3) var<uniform> u: Uniforms;
@group(0) @binding(4) var<storage, read> weightsT: array<vec4<f32>>;  // W_hh^T [H, G*H] of this layer at offWhhT

//#include "lib/sample_step.wgsl"

// One layer's step for every stream: unit blocks of UNITS units x all their gates.
@compute @workgroup_size(WG)
fn cell(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let blk = blockOf(gid.x, wid.y, UNITS);
  if (!blk.ok) { return; }
  let H = u.H;
  let l = u.layer;
  let k = stepOf(blk.n0);  // every stream is at the same step
  let p = k & 1u;
  let slots = gates() * UNITS;
  // Slot q*UNITS + c: gate q of unit i0 + c, row q*H + i of the weights (units past H clamped).
  var rows: array<u32, SLOTS>;
  for (var s = 0u; s < slots; s++) { rows[s] = (s / UNITS) * H + min(blk.i0 + s % UNITS, H - 1u); }
  var gi: Acc;
  var gh: Acc;
  var hIn: array<u32, MAX_ROWS>;
  var below: array<u32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    hIn[r] = hAt(p, l, blk.n[r]);
    below[r] = hAt(1u - p, max(l, 1u) - 1u, blk.n[r]);
    for (var s = 0u; s < slots; s++) {
      gi[r][s] = params[u.offBih + rows[s]];
      gh[r][s] = params[u.offBhh + rows[s]];
    }
  }
  if (l == 0u) {
    // The one-hot input: column x of W_ih [G*H, V].
    for (var r = 0u; r < ROWS; r++) {
      let x = seq[blk.n[r] * u.seqLen + k];
      for (var s = 0u; s < slots; s++) { gi[r][s] += params[u.offWih + rows[s] * u.V + x]; }
    }
  } else {
    rowsTimes(&gi, u.offWih, H, rows, slots, below);
  }
  if (TRANSPOSED) {
    columnsTimes(&gh, u.offWhhT, gates() * H, H, rows, slots, hIn);
  } else {
    rowsTimes(&gh, u.offWhh, H, rows, slots, hIn);
  }
  let out = 1u - p;
  for (var r = 0u; r < ROWS; r++) {
    let n = blk.n0 + r;
    if (n >= u.streams) { break; }
    for (var c = 0u; c < UNITS; c++) {
      let i = blk.i0 + c;
      if (i >= H) { break; }
      let hOut = hAt(out, l, n) + i;
      let a0 = gi[r][c] + gh[r][c];
      if (CELL == CELL_LSTM) {
        let at = cAt(l, n) + i;
        let y = lstmForward(vec4<f32>(a0, gi[r][UNITS + c] + gh[r][UNITS + c], gi[r][2u * UNITS + c] + gh[r][2u * UNITS + c],
                                      gi[r][3u * UNITS + c] + gh[r][3u * UNITS + c]), hState[at]);
        hState[at] = y.c;
        hState[hOut] = y.h;
      } else if (CELL == CELL_GRU) {
        let a1 = gi[r][UNITS + c] + gh[r][UNITS + c];
        hState[hOut] = gruForward(vec2<f32>(a0, a1), gi[r][2u * UNITS + c], gh[r][2u * UNITS + c], hState[hIn[r] + i]).h;
      } else {
        hState[hOut] = rnnForward(a0);
      }
    }
  }
}

