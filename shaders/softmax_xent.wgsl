// Softmax cross-entropy and its gradient for each row (position) of the logits: `main` gives a row
// to a workgroup, `main_rows` a row to one invocation (see there for when each wins).
// The logits are overwritten in place with dL/dlogits = (softmax - onehot(target)) * scale,
// where scale = 1 / (T*B) because the loss is the mean over positions.
// rowLoss[row] = -log softmax[target]; a second kernel (loss_sum.wgsl) adds the rows up.

//#include "lib/reduce.wgsl"

override WG: u32 = 64;

struct Uniforms { rows: u32, cols: u32, scale: f32, rowsPerDim: u32 }

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(3) var<uniform> u: Uniforms;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // Rows beyond 65535 workgroups spill into the y dimension.
  let row = wid.y * u.rowsPerDim + wid.x;
  if (row >= u.rows) { return; } // uniform per workgroup, so the barriers below stay uniform
  let base = row * u.cols;
  var m = -3.4e38;
  for (var c = lid; c < u.cols; c += WG) { m = max(m, logits[base + c]); }
  m = reduceMax(lid, m);
  var s = 0.0;
  for (var c = lid; c < u.cols; c += WG) { s += exp(logits[base + c] - m); }
  s = reduceSum(lid, s);
  let label = targets[row];
  if (lid == 0u) { rowLoss[row] = log(s) - (logits[base + label] - m); }
  // Every invocation must read logits[label] above before any overwrites it.
  storageBarrier();
  workgroupBarrier();
  for (var c = lid; c < u.cols; c += WG) {
    let p = exp(logits[base + c] - m) / s;
    logits[base + c] = (p - select(0.0, 1.0, c == label)) * u.scale;
  }
}

// One invocation per row, no barriers: on CPU drivers (lavapipe) a workgroup barrier costs tens of
// microseconds, so for small vocabularies looping over a row in one invocation is far faster than
// a tree reduction across the workgroup. Same arithmetic and output as main.
@compute @workgroup_size(WG)
fn main_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * u.rowsPerDim + gid.x;
  if (row >= u.rows) { return; }
  let base = row * u.cols;
  var m = -3.4e38;
  for (var c = 0u; c < u.cols; c++) { m = max(m, logits[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < u.cols; c++) { s += exp(logits[base + c] - m); }
  let label = targets[row];
  rowLoss[row] = log(s) - (logits[base + label] - m);
  for (var c = 0u; c < u.cols; c++) {
    let p = exp(logits[base + c] - m) / s;
    logits[base + c] = (p - select(0.0, 1.0, c == label)) * u.scale;
  }
}
