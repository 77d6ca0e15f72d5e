// The three cells' pointwise math, forward and backward, one hidden unit at a time: the WGSL twin
// of src/cpu/cells.ts (rnnPointwise, lstmPointwise, gruPointwise and their *Backward). Training
// (cell_forward.wgsl, cell_backward.wgsl) and generation (sample.wgsl) all call these, so the
// sampler cannot drift from the model it samples.
//
// Forward, the gates that see gi = W_ih x + b_ih and gh = W_hh h + b_hh only through their sum
// (all of the rnn's and the lstm's, the gru's r and z) take that sum a, which each caller adds up
// in its own order; the gru's candidate takes gi_n and gh_n apart, as it sees gh_n only through r.
// Vectors hold gate q in component q, in PyTorch's order (lstm i f g o, gru r z).

override CELL: u32 = 0u;  // src/gpu/kernels/cell.ts: CELL_CODE
const CELL_RNN: u32 = 0u;
const CELL_LSTM: u32 = 1u;
const CELL_GRU: u32 = 2u;

// Gates per unit (src/model/cells.ts: GATES).
fn gates() -> u32 {
  if (CELL == CELL_LSTM) { return 4u; }
  if (CELL == CELL_GRU) { return 3u; }
  return 1u;
}

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
// Clamped because some drivers compute tanh from exp and overflow to NaN for large inputs;
// tanh(15) already rounds to 1.0 in f32.
fn tanhSafe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }

// ---- forward: h' (and the LSTM's c'), and what the backward step reads (src/model/cells.ts: SAVED)

fn rnnForward(a: f32) -> f32 { return tanhSafe(a); }

struct LstmForward { h: f32, c: f32, saved: vec4<f32> }  // saved: i, f, g, o

fn lstmForward(a: vec4<f32>, cPrev: f32) -> LstmForward {
  let i = sigmoid(a.x);
  let f = sigmoid(a.y);
  let g = tanhSafe(a.z);
  let o = sigmoid(a.w);
  let c = f * cPrev + i * g;
  return LstmForward(o * tanhSafe(c), c, vec4<f32>(i, f, g, o));
}

struct GruForward { h: f32, saved: vec4<f32> }  // saved: r, z, n, gh_n

fn gruForward(a: vec2<f32>, giN: f32, ghN: f32, hPrev: f32) -> GruForward {
  let r = sigmoid(a.x);
  let z = sigmoid(a.y);
  let n = tanhSafe(giN + r * ghN);
  return GruForward((1.0 - z) * n + z * hPrev, vec4<f32>(r, z, n, ghN));
}

// ---- backward: from dh = dL/dh' (and the LSTM's dL/dc' from step t+1) to dL/dgi and dL/dgh,
// and what reaches the previous step's state without passing through W_hh

// dL/da for a = gi + gh, so dgi = dgh; nothing reaches h directly.
fn rnnBackward(h: f32, dh: f32) -> f32 { return dh * (1.0 - h * h); }

struct LstmBackward { da: vec4<f32>, dcPrev: f32 }  // da: i f g o, dgi = dgh = da

fn lstmBackward(saved: vec4<f32>, cPrev: f32, c: f32, dh: f32, dcNext: f32) -> LstmBackward {
  let i = saved.x;
  let f = saved.y;
  let g = saved.z;
  let o = saved.w;
  let tc = tanhSafe(c);
  let dc = dcNext + dh * o * (1.0 - tc * tc);
  let di = dc * g * i * (1.0 - i);
  let df = dc * cPrev * f * (1.0 - f);
  let dg = dc * i * (1.0 - g * g);
  let dout = dh * tc * o * (1.0 - o);
  return LstmBackward(vec4<f32>(di, df, dg, dout), dc * f);
}

struct GruBackward { dgi: vec3<f32>, dgh: vec3<f32>, direct: f32 }  // direct = dL/dh via z

fn gruBackward(saved: vec4<f32>, hPrev: f32, dh: f32) -> GruBackward {
  let r = saved.x;
  let z = saved.y;
  let n = saved.z;
  let ghn = saved.w;
  let dan = dh * (1.0 - z) * (1.0 - n * n);
  let dar = dan * ghn * r * (1.0 - r);
  let daz = dh * (hPrev - n) * z * (1.0 - z);
  return GruBackward(vec3<f32>(dar, daz, dan), vec3<f32>(dar, daz, dan * r), dh * z);
}
