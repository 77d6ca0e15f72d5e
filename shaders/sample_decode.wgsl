// The sampler's decoder (sample.wgsl says how the three kernels take turns): once a step's top
// layer is done, logits = W_dec h + b_dec for every stream, in blocks of SLOTS vocabulary rows x
// ROWS streams per invocation. CPU twin: sampleTokens in src/cpu/sample.ts (its logits).

override WG: u32 = 64;
override ROWS: u32 = 1u;  // streams per invocation (at most MAX_ROWS)
override TRANSPOSED: bool = false;  // W_dec from its transposed copy in weightsT (offDecT, ldDecT)

struct Uniforms {
  H: u32, V: u32, streams: u32, layers: u32,
  seqLen: u32, blocks: u32, offDecW: u32, offDecB: u32,
  offDecT: u32, ldDecT: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> seq: array<u32>;     // tokens, then each stream's step
@group(0) @binding(2) var<storage, read> hState: array<f32>;  // h twice (lib/sample_step.wgsl)
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;  // [streams * V]
@group(0) @binding(4) var<uniform> u: Uniforms;
@group(0) @binding(5) var<storage, read> weightsT: array<vec4<f32>>;  // W_dec^T [H, ldDecT] at offDecT

//#include "lib/sample_step.wgsl"

// The decoder for every stream, once the step's top layer is done: blocks of SLOTS vocabulary rows.
@compute @workgroup_size(WG)
fn decode(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let blk = blockOf(gid.x, wid.y, SLOTS);
  if (!blk.ok) { return; }
  let V = u.V;
  let k = stepOf(blk.n0);
  var rows: array<u32, SLOTS>;
  for (var s = 0u; s < SLOTS; s++) { rows[s] = min(blk.i0 + s, V - 1u); }
  var acc: Acc;
  var top: array<u32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    top[r] = hAt(1u - (k & 1u), u.layers - 1u, blk.n[r]);
    for (var s = 0u; s < SLOTS; s++) { acc[r][s] = params[u.offDecB + rows[s]]; }
  }
  if (TRANSPOSED) {
    columnsTimes(&acc, u.offDecT, u.ldDecT, u.H, rows, SLOTS, top);
  } else {
    rowsTimes(&acc, u.offDecW, u.H, rows, SLOTS, top);
  }
  for (var r = 0u; r < ROWS; r++) {
    let n = blk.n0 + r;
    if (n >= u.streams) { break; }
    for (var s = 0u; s < SLOTS; s++) {
      let v = blk.i0 + s;
      if (v >= V) { break; }
      logits[n * V + v] = acc[r][s];
    }
  }
}

