// Text generation on the GPU: one workgroup owns one stream's whole hidden state (in workgroup
// memory) and runs many timesteps in one dispatch, so generating N tokens costs a few dispatches
// and one readback instead of N round trips. CPU twin: sampleTokens in src/cpu/sample.ts.
//
// Step k feeds token seq[k] (the priming text, then what was generated) and, once the priming
// text is consumed, draws seq[k + 1] from softmax(logits / temperature) by inverse CDF with the
// counter-based uniform uniformAt(seed, stream, k) (src/util/random.ts), or takes the argmax when
// temperature is 0.

override WG: u32 = 256;
override MAX_H: u32 = 256;          // hidden size rounded up; sizes the workgroup array
override RECORD_PROBS: bool = false; // write every step's distribution (parity tests)
const MAX_UNITS: u32 = 16u;          // hidden units per invocation: H <= 16 * WG

struct Uniforms {
  H: u32, V: u32, seqLen: u32, primeLen: u32,
  stepBegin: u32, stepEnd: u32, seed: u32, temperature: f32,
  offWxh: u32, offWhh: u32, offBh: u32, offWhy: u32,
  offBy: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> seq: array<u32>;     // [streams * seqLen]
@group(0) @binding(2) var<storage, read_write> hState: array<f32>;  // [streams * H]
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;  // [streams * V] scratch
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;   // [seqLen * V] when RECORD_PROBS
@group(0) @binding(5) var<uniform> u: Uniforms;

var<workgroup> h: array<f32, MAX_H>;
var<workgroup> partial: array<f32, WG>;
var<workgroup> partialIdx: array<u32, WG>;
var<workgroup> token: u32;
var<workgroup> chosenChunk: u32;
var<workgroup> goalInChunk: f32;

fn pcgHash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn uniformAt(seed: u32, stream: u32, step: u32) -> f32 {
  let x = pcgHash(pcgHash(pcgHash(seed) ^ stream) ^ step);
  return f32(x >> 8u) / 16777216.0;
}

fn sumPartials(lid: u32) -> f32 {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let stream = wid.x;
  let H = u.H;
  let V = u.V;
  for (var i = lid; i < H; i += WG) { h[i] = hState[stream * H + i]; }
  // Each invocation owns a contiguous slice of the vocabulary, so the CDF can be scanned per slice.
  let chunk = (V + WG - 1u) / WG;
  let vBegin = min(lid * chunk, V);
  let vEnd = min(vBegin + chunk, V);
  let lBase = stream * V;
  workgroupBarrier();

  for (var k = u.stepBegin; k < u.stepEnd; k++) {
    if (lid == 0u) { token = seq[stream * u.seqLen + k]; }
    let x = workgroupUniformLoad(&token);

    // h <- tanh(Wxh[:, x] + Whh h + bh): new values stay in registers until everyone has read h.
    var hNew: array<f32, MAX_UNITS>;
    for (var r = 0u; r < MAX_UNITS; r++) {
      let i = lid + r * WG;
      if (i >= H) { break; }
      var z = params[u.offBh + i] + params[u.offWxh + i * V + x];
      let row = u.offWhh + i * H;
      for (var j = 0u; j < H; j++) { z += params[row + j] * h[j]; }
      hNew[r] = tanh(clamp(z, -15.0, 15.0));
    }
    workgroupBarrier();
    for (var r = 0u; r < MAX_UNITS; r++) {
      let i = lid + r * WG;
      if (i >= H) { break; }
      h[i] = hNew[r];
    }
    workgroupBarrier();

    // While priming, only the state matters; the last priming token predicts the first output.
    if (k + 1u < u.primeLen) { continue; }

    var localMax = -3.4e38;
    var localArg = vBegin;
    for (var v = vBegin; v < vEnd; v++) {
      var y = params[u.offBy + v];
      let row = u.offWhy + v * H;
      for (var j = 0u; j < H; j++) { y += params[row + j] * h[j]; }
      logits[lBase + v] = y;
      if (y > localMax) { localMax = y; localArg = v; }
    }
    partial[lid] = localMax;
    partialIdx[lid] = select(0xffffffffu, localArg, vBegin < vEnd);
    workgroupBarrier();
    // Max (and the lowest index holding it, for argmax) over the workgroup.
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid < s) {
        let a = partial[lid];
        let b = partial[lid + s];
        if (b > a || (b == a && partialIdx[lid + s] < partialIdx[lid])) {
          partial[lid] = b;
          partialIdx[lid] = partialIdx[lid + s];
        }
      }
      workgroupBarrier();
    }
    let maxLogit = partial[0];
    let argMax = partialIdx[0];
    workgroupBarrier();

    let temp = max(u.temperature, 1e-6);
    var localSum = 0.0;
    for (var v = vBegin; v < vEnd; v++) { localSum += exp((logits[lBase + v] - maxLogit) / temp); }
    partial[lid] = localSum;
    let total = sumPartials(lid);
    if (RECORD_PROBS) {
      for (var v = vBegin; v < vEnd; v++) { probs[k * V + v] = exp((logits[lBase + v] - maxLogit) / temp) / total; }
    }

    if (u.temperature <= 0.0) {
      if (lid == 0u) { token = argMax; }
    } else {
      // Inverse CDF: thread 0 finds the slice holding the target mass, its owner scans inside it.
      partial[lid] = localSum;
      workgroupBarrier();
      if (lid == 0u) {
        let goal = uniformAt(u.seed, stream, k) * total;
        var acc = 0.0;
        var c = 0u;
        var last = 0u;
        var found = false;
        for (var q = 0u; q < WG; q++) {
          if (partial[q] <= 0.0) { continue; }
          last = q;
          if (acc + partial[q] > goal) { c = q; found = true; break; }
          acc += partial[q];
        }
        // Rounding can leave goal at the very end of the mass: take the last non-empty slice.
        if (!found) { c = last; acc -= partial[last]; }
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
  for (var i = lid; i < H; i += WG) { hState[stream * H + i] = h[i]; }
}
