// Softmax cross-entropy and its gradient for each row (position) of the logits, a row per
// invocation. The logits are overwritten in place with dL/dlogits = (softmax - onehot(target)) * scale,
// where scale = 1 / (T*B) because the loss is the mean over positions.
// rowLoss[row] = -log softmax[target]; a second kernel (loss_sum.wgsl) adds the rows up.
//
// A row per invocation, no barriers: on CPU drivers (lavapipe) a workgroup barrier costs tens of
// microseconds, and a workgroup per row with tree reductions measured 10x slower at 2048 x 87 and
// 1.3-1.6x slower at 256-2048 x 10,000. Each lane's loads of its own row are gathers there, and a
// vec4 gather costs about 1.75 scalar ones (matmul.wgsl), so the row is read four columns at a
// time: 0.6x the time of scalar loads at 2048 x 87 and at 2048 x 10,000, side by side. Rows need
// not start on a vec4 boundary: columns before the first boundary and after the last are handled
// one at a time. exp(l - max) is computed once, kept in place of the logit, then divided by the
// sum: one exp per column instead of two. `logits` is bound as vec4s; the host
// (src/gpu/kernels/softmax_xent.ts) checks that the buffer holds whole vec4s up to the logits'
// end (the plan rounds it up).

override WG: u32 = 64;

struct Uniforms { rows: u32, cols: u32, scale: f32, rowsPerDim: u32 }

@group(0) @binding(0) var<storage, read_write> logits: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(3) var<uniform> u: Uniforms;

fn logitAt(i: u32) -> f32 { return logits[i / 4u][i % 4u]; }

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * u.rowsPerDim + gid.x;
  if (row >= u.rows) { return; }
  let base = row * u.cols;
  let end = base + u.cols;
  // [base, a0) scalar, vec4s [a0 / 4, a1 / 4), [a1, end) scalar.
  let a0 = min((base + 3u) / 4u * 4u, end);
  let a1 = max(a0, end / 4u * 4u);
  var m4 = vec4<f32>(-3.4e38);
  for (var i = a0 / 4u; i < a1 / 4u; i++) { m4 = max(m4, logits[i]); }
  var m = max(max(m4.x, m4.y), max(m4.z, m4.w));
  for (var i = base; i < a0; i++) { m = max(m, logitAt(i)); }
  for (var i = a1; i < end; i++) { m = max(m, logitAt(i)); }
  let label = targets[row];
  let top = logitAt(base + label);
  var s4 = vec4<f32>(0.0);
  for (var i = a0 / 4u; i < a1 / 4u; i++) {
    let e = exp(logits[i] - m);
    logits[i] = e;
    s4 += e;
  }
  var s = 0.0;
  for (var i = base; i < a0; i++) {
    let e = exp(logitAt(i) - m);
    logits[i / 4u][i % 4u] = e;
    s += e;
  }
  for (var i = a1; i < end; i++) {
    let e = exp(logitAt(i) - m);
    logits[i / 4u][i % 4u] = e;
    s += e;
  }
  s += (s4.x + s4.y) + (s4.z + s4.w);
  rowLoss[row] = log(s) - (top - m);
  for (var i = a0 / 4u; i < a1 / 4u; i++) { logits[i] = logits[i] / s * u.scale; }
  for (var i = base; i < a0; i++) { logits[i / 4u][i % 4u] = logitAt(i) / s * u.scale; }
  for (var i = a1; i < end; i++) { logits[i / 4u][i % 4u] = logitAt(i) / s * u.scale; }
  let l = base + label;
  logits[l / 4u][l % 4u] = (exp(top - m) / s - 1.0) * u.scale;
}
