// Gradient clipping and the optimizer update over the whole flat parameter buffer in one pass
// (CPU twin: src/cpu/optim.ts). OPTIMIZER 0 = Adagrad, 1 = Adam, 2 = RMSprop, 3 = SGD (momentum,
// Nesterov); the formulas and which of m, v each keeps: src/model/optimizer.ts.
// It also keeps the transposed copy of each layer's W_hh that cell_forward.wgsl reads (whhT) in
// step with the parameters, so the copy costs no dispatch of its own: layer l's W_hh
// [rows = G*H, cols = H] at params[whhAt[l]] goes to whhT[l * rows * cols ..] as [cols, rows].
// Where decRows > 0 it keeps the decoder's too, for the logits product's vectorised path: the
// weight [decRows = V, decCols = H] at params[decAt] goes to whhT[decOff ..] as [decCols, decLd],
// and the bias [V] at params[decBiasAt] to row decCols after it.

override WG: u32 = 256;
override OPTIMIZER: u32 = 1;

struct Uniforms {
  n: u32, perRow: u32, lr: f32, clip: f32,
  // Adam's bias corrections 1 - beta^step, computed on the host in f64.
  c1: f32, c2: f32, beta1: f32, beta2: f32,
  // 1 - beta from the host too: 1 - 0.999 in f32 arithmetic is off by 1.3e-5 relative.
  // RMSprop's alpha travels as beta2 (its v update is Adam's).
  eps: f32, oneMinusBeta1: f32, oneMinusBeta2: f32, whhLayers: u32,
  whhRows: u32, whhCols: u32, momentum: f32, nesterov: u32,
  decAt: u32, decBiasAt: u32, decRows: u32, decCols: u32,
  decOff: u32, decLd: u32,
}

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> u: Uniforms;
@group(0) @binding(5) var<storage, read_write> whhT: array<f32>;
@group(0) @binding(6) var<storage, read> whhAt: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * u.perRow + gid.x;
  if (i >= u.n) { return; }
  let g = clamp(grads[i], -u.clip, u.clip);
  if (OPTIMIZER == 0u) {
    m[i] += g * g;
    params[i] -= u.lr * g / sqrt(m[i] + u.eps);
  } else if (OPTIMIZER == 1u) {
    m[i] = u.beta1 * m[i] + u.oneMinusBeta1 * g;
    v[i] = u.beta2 * v[i] + u.oneMinusBeta2 * g * g;
    params[i] -= u.lr * (m[i] / u.c1) / (sqrt(v[i] / u.c2) + u.eps);
  } else if (OPTIMIZER == 2u) {
    // torch.optim.RMSprop: eps outside the square root.
    v[i] = u.beta2 * v[i] + u.oneMinusBeta2 * g * g;
    params[i] -= u.lr * g / (sqrt(v[i]) + u.eps);
  } else {
    // torch.optim.SGD, dampening 0: buf = mu * buf + g; Nesterov steps by g + mu * buf.
    let buf = u.momentum * m[i] + g;
    m[i] = buf;
    params[i] -= u.lr * select(buf, g + u.momentum * buf, u.nesterov != 0u);
  }
  let size = u.whhRows * u.whhCols;
  for (var l = 0u; l < u.whhLayers; l++) {
    let e = i - whhAt[l];  // wraps past size when i is below the layer's W_hh
    if (e < size) { whhT[l * size + (e % u.whhCols) * u.whhRows + e / u.whhCols] = params[i]; }
  }
  let d = i - u.decAt;  // wraps as e does
  if (d < u.decRows * u.decCols) { whhT[u.decOff + (d % u.decCols) * u.decLd + d / u.decCols] = params[i]; }
  let db = i - u.decBiasAt;
  if (db < u.decRows) { whhT[u.decOff + u.decCols * u.decLd + db] = params[i]; }
}
