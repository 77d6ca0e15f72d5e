// The first layer's input projection for all T*B positions at once: x is one-hot, so W_ih x is a
// column of W_ih (PyTorch's [G*H, V], row-major) and the product is a gather.
//   gi[p, j] = W_ih[j, token[p]] + b_ih[j]          p < N = T*B, j < G*H
// CPU twin: gatePreactivations in src/cpu/cells.ts (its `tokens` branch, gi half).

override WG: u32 = 64;

// rowStart, rows: main_rows only.
struct Uniforms { N: u32, GH: u32, V: u32, offWih: u32, offBih: u32, perRow: u32, rowStart: u32, rows: u32 }

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> gi: array<f32>;
@group(0) @binding(3) var<uniform> u: Uniforms;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * u.perRow + gid.x;
  if (idx >= u.N * u.GH) { return; }
  let p = idx / u.GH;
  let j = idx % u.GH;
  gi[idx] = params[u.offWih + j * u.V + tokens[p]] + params[u.offBih + j];
}

// The split plan's (src/gpu/plan.ts, a binding limit smaller than the parameters): rows rowStart ..
// rowStart + rows - 1 of W_ih x alone (params bound from row rowStart on, at offWih), into their
// columns of gi; W_ih and b_ih are bound apart there, and cell_forward's main_gh adds b_ih.
@compute @workgroup_size(WG)
fn main_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * u.perRow + gid.x;
  if (idx >= u.N * u.rows) { return; }
  let p = idx / u.rows;
  let j = idx % u.rows;
  gi[p * u.GH + u.rowStart + j] = params[u.offWih + j * u.V + tokens[p]];
}
