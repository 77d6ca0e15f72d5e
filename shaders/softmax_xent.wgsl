// Softmax cross-entropy and its gradient for each row (position) of the logits: `main` gives a row
// to a workgroup, `main_rows` and `main_rows4` a row to one invocation (see there for when each wins).
// The logits are overwritten in place with dL/dlogits = (softmax - onehot(target)) * scale,
// where scale = 1 / (T*B) because the loss is the mean over positions.
// rowLoss[row] = -log softmax[target]; a second kernel (loss_sum.wgsl) adds the rows up.

//#include "lib/reduce.wgsl"

override WG: u32 = 64;

struct Uniforms { rows: u32, cols: u32, scale: f32, rowsPerDim: u32 }

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
// A vec4 view of the same binding for main_rows4 (which touches only this one).
@group(0) @binding(0) var<storage, read_write> logits4: array<vec4<f32>>;
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

// main_rows with the row read four columns at a time: on CPU drivers each lane's load of its own
// row is a gather, and a vec4 gather costs about 1.75 scalar ones (matmul.wgsl), so a row costs
// less than half the loads. Rows need not start on a vec4 boundary: columns before the first
// boundary and after the last are handled one at a time. exp(l - max) is computed once, kept in
// place of the logit, then scaled by 1 / sum: two exps per column become one. The host
// (src/gpu/kernels/softmax_xent.ts) checks that the buffer holds whole vec4s up to the logits' end.
fn logitAt(i: u32) -> f32 { return logits4[i / 4u][i % 4u]; }

@compute @workgroup_size(WG)
fn main_rows4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * u.rowsPerDim + gid.x;
  if (row >= u.rows) { return; }
  let base = row * u.cols;
  let end = base + u.cols;
  // [base, a0) scalar, vec4s [a0 / 4, a1 / 4), [a1, end) scalar.
  let a0 = min((base + 3u) / 4u * 4u, end);
  let a1 = max(a0, end / 4u * 4u);
  var m4 = vec4<f32>(-3.4e38);
  for (var i = a0 / 4u; i < a1 / 4u; i++) { m4 = max(m4, logits4[i]); }
  var m = max(max(m4.x, m4.y), max(m4.z, m4.w));
  for (var i = base; i < a0; i++) { m = max(m, logitAt(i)); }
  for (var i = a1; i < end; i++) { m = max(m, logitAt(i)); }
  let label = targets[row];
  let top = logitAt(base + label);
  var s4 = vec4<f32>(0.0);
  for (var i = a0 / 4u; i < a1 / 4u; i++) {
    let e = exp(logits4[i] - m);
    logits4[i] = e;
    s4 += e;
  }
  var s = 0.0;
  for (var i = base; i < a0; i++) {
    let e = exp(logitAt(i) - m);
    logits4[i / 4u][i % 4u] = e;
    s += e;
  }
  for (var i = a1; i < end; i++) {
    let e = exp(logitAt(i) - m);
    logits4[i / 4u][i % 4u] = e;
    s += e;
  }
  s += (s4.x + s4.y) + (s4.z + s4.w);
  rowLoss[row] = log(s) - (top - m);
  for (var i = a0 / 4u; i < a1 / 4u; i++) { logits4[i] = logits4[i] / s * u.scale; }
  for (var i = base; i < a0; i++) { logits4[i / 4u][i % 4u] = logitAt(i) / s * u.scale; }
  for (var i = a1; i < end; i++) { logits4[i / 4u][i % 4u] = logitAt(i) / s * u.scale; }
  let l = base + label;
  logits4[l / 4u][l % 4u] = (exp(top - m) / s - 1.0) * u.scale;
}
