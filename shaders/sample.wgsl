// Text generation on the GPU: one workgroup owns one stream's whole state, every layer's h (and
// the LSTM's c) in workgroup memory, and runs many timesteps in one dispatch, so generating N
// tokens costs a few dispatches and one readback instead of N round trips. Every cell and depth:
// per layer, gi = W_ih x + b_ih (a column gather for the token at layer 0, a dot with the layer
// below's new h above it) and gh = W_hh h + b_hh, then the cell's pointwise math, the same
// functions training runs (lib/cell.wgsl). No dropout (it is a training-time regulariser).
// CPU twin: sampleTokens in src/cpu/sample.ts.
//
// Step k feeds token seq[k] (the priming text, then what was generated) and, once the priming
// text is consumed, draws seq[k + 1] from softmax(logits / temperature) by inverse CDF with the
// counter-based uniform uniformAt(seed, stream, k) (lib/hash.wgsl, src/util/random.ts), or takes
// the argmax when temperature is 0.

//#include "lib/cell.wgsl"
//#include "lib/hash.wgsl"
//#include "lib/reduce.wgsl"

override WG: u32 = 256;
override MAX_STATE: u32 = 256;      // layers x hidden size rounded up; sizes the workgroup array h
override MAX_CELLS: u32 = 1;        // MAX_STATE for the lstm's memory cells c, 1 for the other cells
override RECORD_PROBS: bool = false; // write every step's distribution (parity tests)
const MAX_UNITS: u32 = 16u;          // hidden units per invocation: H <= 16 * WG
const MAX_LAYERS: u32 = 8u;

struct Uniforms {
  H: u32, V: u32, seqLen: u32, primeLen: u32,
  stepBegin: u32, stepEnd: u32, seed: u32, temperature: f32,
  offDecW: u32, offDecB: u32, layers: u32, pad: u32,
  // Per layer: offsets of weight_ih, weight_hh, bias_ih, bias_hh in params.
  layer: array<vec4<u32>, MAX_LAYERS>,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> seq: array<u32>;     // [streams * seqLen]
@group(0) @binding(2) var<storage, read_write> hState: array<f32>;  // [streams * 2 * layers * H]: h, then c
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;  // [streams * V] scratch
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;   // [seqLen * V] when RECORD_PROBS
@group(0) @binding(5) var<uniform> u: Uniforms;

var<workgroup> h: array<f32, MAX_STATE>;  // layer l's h at [l*H, (l+1)*H)
var<workgroup> c: array<f32, MAX_CELLS>;  // lstm only
// Beside lib/reduce.wgsl's scratch: the argmax's indices.
var<workgroup> scratchIdx: array<u32, WG>;
var<workgroup> token: u32;
var<workgroup> chosenChunk: u32;
var<workgroup> goalInChunk: f32;

// Unit i of layer l at this step, given the layer's input (token x at layer 0, else the layer
// below's new h in workgroup memory): writes the new h and c of that unit to hOut / cOut.
fn cellUnit(l: u32, i: u32, x: u32, hOut: ptr<function, f32>, cOut: ptr<function, f32>) {
  let H = u.H;
  let off = u.layer[l];
  let inputs = select(H, u.V, l == 0u);
  var gi: array<f32, 4>;
  var gh: array<f32, 4>;
  for (var q = 0u; q < gates(); q++) {
    let row = q * H + i;
    var a = params[off.z + row];
    if (l == 0u) {
      a += params[off.x + row * inputs + x];
    } else {
      let w = off.x + row * inputs;
      let below = (l - 1u) * H;
      for (var j = 0u; j < H; j++) { a += params[w + j] * h[below + j]; }
    }
    var b = params[off.w + row];
    let w = off.y + row * H;
    let mine = l * H;
    for (var j = 0u; j < H; j++) { b += params[w + j] * h[mine + j]; }
    gi[q] = a;
    gh[q] = b;
  }
  if (CELL == CELL_LSTM) {
    let y = lstmForward(vec4<f32>(gi[0] + gh[0], gi[1] + gh[1], gi[2] + gh[2], gi[3] + gh[3]), c[l * H + i]);
    *cOut = y.c;
    *hOut = y.h;
  } else if (CELL == CELL_GRU) {
    *hOut = gruForward(vec2<f32>(gi[0] + gh[0], gi[1] + gh[1]), gi[2], gh[2], h[l * H + i]).h;
  } else {
    *hOut = rnnForward(gi[0] + gh[0]);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let stream = wid.x;
  let H = u.H;
  let V = u.V;
  let LH = u.layers * H;
  let stateBase = stream * 2u * LH;
  for (var i = lid; i < LH; i += WG) {
    h[i] = hState[stateBase + i];
    if (CELL == CELL_LSTM) { c[i] = hState[stateBase + LH + i]; }
  }
  // Each invocation owns a contiguous slice of the vocabulary, so the CDF can be scanned per slice.
  let chunk = (V + WG - 1u) / WG;
  let vBegin = min(lid * chunk, V);
  let vEnd = min(vBegin + chunk, V);
  let lBase = stream * V;
  workgroupBarrier();

  for (var k = u.stepBegin; k < u.stepEnd; k++) {
    if (lid == 0u) { token = seq[stream * u.seqLen + k]; }
    let x = workgroupUniformLoad(&token);

    // Layer by layer; new values stay in registers until everyone has read the layer's old h.
    for (var l = 0u; l < u.layers; l++) {
      var hNew: array<f32, MAX_UNITS>;
      var cNew: array<f32, MAX_UNITS>;
      for (var r = 0u; r < MAX_UNITS; r++) {
        let i = lid + r * WG;
        if (i >= H) { break; }
        var hv = 0.0;
        var cv = 0.0;
        cellUnit(l, i, x, &hv, &cv);
        hNew[r] = hv;
        cNew[r] = cv;
      }
      workgroupBarrier();
      for (var r = 0u; r < MAX_UNITS; r++) {
        let i = lid + r * WG;
        if (i >= H) { break; }
        h[l * H + i] = hNew[r];
        if (CELL == CELL_LSTM) { c[l * H + i] = cNew[r]; }
      }
      workgroupBarrier();
    }
    let top = (u.layers - 1u) * H;

    // While priming, only the state matters; the last priming token predicts the first output.
    if (k + 1u < u.primeLen) { continue; }

    var localMax = -3.4e38;
    var localArg = vBegin;
    for (var v = vBegin; v < vEnd; v++) {
      var y = params[u.offDecB + v];
      let row = u.offDecW + v * H;
      for (var j = 0u; j < H; j++) { y += params[row + j] * h[top + j]; }
      logits[lBase + v] = y;
      if (y > localMax) { localMax = y; localArg = v; }
    }
    scratch[lid] = localMax;
    scratchIdx[lid] = select(0xffffffffu, localArg, vBegin < vEnd);
    workgroupBarrier();
    // Max (and the lowest index holding it, for argmax) over the workgroup.
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid < s) {
        let a = scratch[lid];
        let b = scratch[lid + s];
        if (b > a || (b == a && scratchIdx[lid + s] < scratchIdx[lid])) {
          scratch[lid] = b;
          scratchIdx[lid] = scratchIdx[lid + s];
        }
      }
      workgroupBarrier();
    }
    let maxLogit = scratch[0];
    let argMax = scratchIdx[0];
    workgroupBarrier();

    let temp = max(u.temperature, 1e-6);
    var localSum = 0.0;
    for (var v = vBegin; v < vEnd; v++) { localSum += exp((logits[lBase + v] - maxLogit) / temp); }
    let total = reduceSum(lid, localSum);
    if (RECORD_PROBS) {
      for (var v = vBegin; v < vEnd; v++) { probs[k * V + v] = exp((logits[lBase + v] - maxLogit) / temp) / total; }
    }

    if (u.temperature <= 0.0) {
      if (lid == 0u) { token = argMax; }
    } else {
      // Inverse CDF: thread 0 finds the slice holding the target mass, its owner scans inside it.
      scratch[lid] = localSum;
      workgroupBarrier();
      if (lid == 0u) {
        let goal = uniformAt(u.seed, stream, k) * total;
        var acc = 0.0;
        var c = 0u;
        var last = 0u;
        var found = false;
        for (var q = 0u; q < WG; q++) {
          if (scratch[q] <= 0.0) { continue; }
          last = q;
          if (acc + scratch[q] > goal) { c = q; found = true; break; }
          acc += scratch[q];
        }
        // Rounding can leave goal at the very end of the mass: take the last non-empty slice.
        if (!found) { c = last; acc -= scratch[last]; }
        chosenChunk = c;
        goalInChunk = goal - acc;
      }
      workgroupBarrier();
      if (lid == chosenChunk) {
        var acc = 0.0;
        var pick = max(vBegin, min(vEnd, V) - 1u);
        for (var v = vBegin; v < vEnd; v++) {
          acc += exp((logits[lBase + v] - maxLogit) / temp);
          if (acc > goalInChunk) { pick = v; break; }
        }
        token = pick;
      }
    }
    workgroupBarrier();
    if (lid == 0u && k + 1u < u.seqLen) { seq[stream * u.seqLen + k + 1u] = token; }
    // The next step reads seq[k + 1] written just above by invocation 0.
    storageBarrier();
    workgroupBarrier();
  }
  for (var i = lid; i < LH; i += WG) {
    hState[stateBase + i] = h[i];
    if (CELL == CELL_LSTM) { hState[stateBase + LH + i] = c[i]; }
  }
}
