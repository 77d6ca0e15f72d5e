// out[offOut + j] = sum over rows r of X[offX + r * cols + j]: the bias gradients
// (dL/dby from dlogits, dL/dbh from dz). `main`: one invocation per column. `main_v4`: four
// columns per invocation read as one vec4 (cols and offX multiples of 4), a quarter of the loads
// and invocations; each column is summed in the same order, so both give the same bits.

override WG: u32 = 64;

struct Uniforms { rows: u32, cols: u32, offX: u32, offOut: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: Uniforms;
// A vec4 view of the same binding (main_v4 reads only this one).
@group(0) @binding(0) var<storage, read> X4: array<vec4<f32>>;

// The invocation's column (main) or vec4 of columns (main_v4): a grid wider than the device's
// workgroups per dimension continues in y (src/gpu/kernels/common.ts: grid1D).
fn column(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.y * groups.x * WG + gid.x;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let j = column(gid, groups);
  if (j >= u.cols) { return; }
  var s = 0.0;
  for (var r = 0u; r < u.rows; r++) { s += X[u.offX + r * u.cols + j]; }
  out[u.offOut + j] = s;
}

@compute @workgroup_size(WG)
fn main_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let j = column(gid, groups) * 4u;
  if (j >= u.cols) { return; }
  let base = (u.offX + j) / 4u;
  let stride = u.cols / 4u;
  var s = vec4<f32>(0.0);
  for (var r = 0u; r < u.rows; r++) { s += X4[base + r * stride]; }
  let at = u.offOut + j;
  out[at] = s.x;
  out[at + 1u] = s.y;
  out[at + 2u] = s.z;
  out[at + 3u] = s.w;
}
