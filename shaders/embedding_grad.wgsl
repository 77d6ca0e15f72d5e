// dL/dWxh for one-hot inputs: column v of Wxh collects dz at every position whose input token
// is v. The host sorts the positions by token each iteration (it uploads the tokens anyway), so
// each invocation (i, v) sums its own list: no atomics, and O(H * T * B) work instead of O(H * V * T * B).
//   dWxh[i, v] = sum over p in positions[start[v] .. start[v+1]) of dZ[p * H + i]

override WG: u32 = 64;

// rowStart, rows: main_rows only.
struct Uniforms { H: u32, V: u32, offOut: u32, perRow: u32, rowStart: u32, rows: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> dZ: array<f32>;
@group(0) @binding(1) var<storage, read> start: array<u32>;     // [V + 1]
@group(0) @binding(2) var<storage, read> positions: array<u32>;  // [T * B], grouped by token
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> u: Uniforms;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * u.perRow + gid.x;
  if (idx >= u.H * u.V) { return; }
  let i = idx / u.V;
  let v = idx % u.V;
  var s = 0.0;
  for (var q = start[v]; q < start[v + 1u]; q++) { s += dZ[positions[q] * u.H + i]; }
  out[u.offOut + idx] = s;
}

// The split plan's (src/gpu/plan.ts, W_ih larger than one binding): rows rowStart .. rowStart +
// rows - 1 of dWxh only, into `out` bound from the first of them (out[offOut + (i - rowStart) * V + v]).
@compute @workgroup_size(WG)
fn main_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * u.perRow + gid.x;
  if (idx >= u.rows * u.V) { return; }
  let i = u.rowStart + idx / u.V;
  let v = idx % u.V;
  var s = 0.0;
  for (var q = start[v]; q < start[v + 1u]; q++) { s += dZ[positions[q] * u.H + i]; }
  out[u.offOut + idx] = s;
}
