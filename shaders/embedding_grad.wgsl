// dL/dWxh for one-hot inputs: column v of Wxh collects dz at every position whose input token
// is v. The host sorts the positions by token each iteration (it uploads the tokens anyway), so
// each invocation sums its own lists: no atomics, and O(H * T * B) work instead of O(H * V * T * B).
//   dWxh[i, v] = sum over p in positions[start[v] .. start[v+1]) of dZ[p * H + i]
// Every entry is written, zeros included: most of the work at word level (V = 10,000 and 2,048
// positions leave most columns empty) is the V * H stores, so the variants differ in how many
// entries one invocation writes, and how:
//   main       one entry per invocation (any shape).
//   main_r4    four rows i of one token: dZ read as vec4s (H a multiple of 4).
//   main_4x4   four rows of four tokens, stored as four vec4s along v (H, V and offOut multiples
//              of 4): 16 times fewer invocations and 4 times fewer store instructions than main.
//   main_rows  as main, over a range of rows only (the split plan's, below).
// All four add a token's positions in the same order, so they give the same bits.

override WG: u32 = 64;

// rowStart, rows: main_rows only.
struct Uniforms { H: u32, V: u32, offOut: u32, perRow: u32, rowStart: u32, rows: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> dZ: array<f32>;
@group(0) @binding(1) var<storage, read> start: array<u32>;     // [V + 1]
@group(0) @binding(2) var<storage, read> positions: array<u32>;  // [T * B], grouped by token
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> u: Uniforms;
// vec4 views of the same bindings (main_r4 reads dZ4; main_4x4 reads dZ4 and writes out4).
@group(0) @binding(0) var<storage, read> dZ4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

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

// Rows i0 .. i0 + 3 of token v, summed as one vec4.
fn tokenSum4(v: u32, i0: u32) -> vec4<f32> {
  var s = vec4<f32>(0.0);
  for (var q = start[v]; q < start[v + 1u]; q++) { s += dZ4[(positions[q] * u.H + i0) / 4u]; }
  return s;
}

@compute @workgroup_size(WG)
fn main_r4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * u.perRow + gid.x;
  if (idx >= u.H / 4u * u.V) { return; }
  let i0 = idx / u.V * 4u;
  let v = idx % u.V;
  let s = tokenSum4(v, i0);
  let at = u.offOut + i0 * u.V + v;
  out[at] = s.x;
  out[at + u.V] = s.y;
  out[at + 2u * u.V] = s.z;
  out[at + 3u * u.V] = s.w;
}

@compute @workgroup_size(WG)
fn main_4x4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * u.perRow + gid.x;
  let V4 = u.V / 4u;
  if (idx >= u.H / 4u * V4) { return; }
  let i0 = idx / V4 * 4u;
  let v0 = idx % V4 * 4u;
  let a = tokenSum4(v0, i0);
  let b = tokenSum4(v0 + 1u, i0);
  let c = tokenSum4(v0 + 2u, i0);
  let d = tokenSum4(v0 + 3u, i0);
  let at = (u.offOut + i0 * u.V + v0) / 4u;
  out4[at] = vec4<f32>(a.x, b.x, c.x, d.x);
  out4[at + V4] = vec4<f32>(a.y, b.y, c.y, d.y);
  out4[at + 2u * V4] = vec4<f32>(a.z, b.z, c.z, d.z);
  out4[at + 3u * V4] = vec4<f32>(a.w, b.w, c.w, d.w);
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
