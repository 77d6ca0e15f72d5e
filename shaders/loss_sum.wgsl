// Mean of the per-row losses into out[0], by one workgroup (the loss is read back
// asynchronously once per iteration, so one small reduction is all it needs).

//#include "lib/reduce.wgsl"

override WG: u32 = 256;

struct Uniforms { n: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> rowLoss: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: Uniforms;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < u.n; i += WG) { s += rowLoss[i]; }
  let total = reduceSum(lid, s);
  if (lid == 0u) { out[0] = total * u.scale; }
}
