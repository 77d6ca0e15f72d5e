// The first layer's input projection for all T*B positions at once: x is one-hot, so W_ih x is a
// column of W_ih (PyTorch's [G*H, V], row-major) and the product is a gather.
//   gi[p, j] = W_ih[j, token[p]] + b_ih[j]          p < N = T*B, j < G*H
// CPU twin: gatePreactivations in src/cpu/cells.ts (its `tokens` branch, gi half).
//
// Positions come grouped by token (src/gpu/kernels/embedding_grad.ts: positionsByToken): run y of
// the chunk's distinct tokens covers positions[runs[y] .. runs[y + 1] - 1], and past the last run
// runs[] holds N (empty runs). An invocation owns one row j and a run at a time: it loads W_ih[j, v]
// once and writes it to every position of token v. Adjacent invocations' rows lie V words apart in
// W_ih, so loading once per token instead of once per position is what pays: 5.3x faster than one
// invocation per element for the lstm at H=512, T*B=2048, V=87 on lavapipe (38.6 -> 7.2 ms).
//
// The split plan (src/gpu/plan.ts, a binding limit smaller than the parameters) gathers rows
// rowStart .. rowStart + rows - 1 of W_ih x alone (hasBias 0: params bound from row rowStart on,
// at offWih) into their columns of gi; cell_forward's main_gh adds b_ih there.

override WG: u32 = 64;

struct Uniforms {
  N: u32, GH: u32, V: u32, offWih: u32,
  offBih: u32, hasBias: u32, rowStart: u32, rows: u32,
  runSlots: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> gi: array<f32>;
@group(0) @binding(3) var<uniform> u: Uniforms;
@group(0) @binding(4) var<storage, read> positions: array<u32>;  // [N] grouped by token
@group(0) @binding(5) var<storage, read> runs: array<u32>;       // [runSlots + 1] where each token's positions start

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let j = min(gid.x, u.rows - 1u);
  let keep = gid.x < u.rows;
  var bias = 0.0;
  if (u.hasBias == 1u) { bias = params[u.offBih + j]; }
  // Runs y, y + (workgroups in y), ...: more run slots than a dispatch's y holds take turns.
  for (var y = gid.y; y < u.runSlots; y += groups.y) {
    let first = runs[y];
    let n = select(0u, runs[y + 1u] - first, keep);
    if (n == 0u) { continue; }
    let w = params[u.offWih + j * u.V + tokens[positions[first]]] + bias;
    for (var i = 0u; i < n; i++) { gi[positions[first + i] * u.GH + u.rowStart + j] = w; }
  }
}
