// out[offOut + j] = sum over rows r of X[offX + r * cols + j]: the bias gradients
// (dL/dby from dlogits, dL/dbh from dz), one invocation per column.

override WG: u32 = 64;

struct Uniforms { rows: u32, cols: u32, offX: u32, offOut: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: Uniforms;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  if (j >= u.cols) { return; }
  var s = 0.0;
  for (var r = 0u; r < u.rows; r++) { s += X[u.offX + r * u.cols + j]; }
  out[u.offOut + j] = s;
}
