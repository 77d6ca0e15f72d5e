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
// the argmax when temperature is 0. One workgroup per stream: many samples side by side share
// every dispatch, each starting from the same state and drawing its own stream's uniforms.
//
// The sampling controls (SamplingControls in src/model/backend.ts; CPU twin filteredWeights and
// penalizeRepeats in src/cpu/sample.ts): the repetition penalty divides (z > 0) or multiplies the
// logits of the tokens marked in a bitmap of the last `window` tokens; top-k and top-p keep the
// tokens whose logit is at least a threshold (the kept set is always such an upper set), found
// without sorting. Up to DIRECT_MAX_V tokens (DIRECT) each invocation ranks its own tokens against
// all the others: how many logits are larger, and their mass (O(V) per token, four barriers).
// Beyond, a binary search over the logits' order-preserving u32 keys (32 rounds for each filter,
// each a count or a mass over the workgroup in two barriers). The CPU applies the same
// definitions in float64: a kept set can differ only where float32 rounding moves a logit or a
// mass across the edge.

//#include "lib/cell.wgsl"
//#include "lib/hash.wgsl"
//#include "lib/reduce.wgsl"

override WG: u32 = 256;
override MAX_STATE: u32 = 256;      // layers x hidden size rounded up; sizes the workgroup array h
override MAX_CELLS: u32 = 1;        // MAX_STATE for the lstm's memory cells c, 1 for the other cells
override RECORD_PROBS: bool = false; // write every step's distribution (parity tests)
override FILTER: bool = false;      // top-k or top-p in use
override PENALTY: bool = false;     // repetition penalty in use
override SEEN_WORDS: u32 = 1u;      // ceil(V / 32) with PENALTY: the bitmap of penalised tokens
override DIRECT: bool = false;      // FILTER by ranks (V <= DIRECT_MAX_V), else by binary search
override WEIGHTS: u32 = 1u;         // V with DIRECT: every token's weight in workgroup memory
const DIRECT_CHUNK: u32 = 4u;       // tokens per invocation with DIRECT: DIRECT_MAX_V / WG
const SUB: u32 = 16u;               // groupSum: WG / SUB partial sums of SUB
const MAX_UNITS: u32 = 16u;          // hidden units per invocation: H <= 16 * WG
const MAX_LAYERS: u32 = 8u;

struct Uniforms {
  H: u32, V: u32, seqLen: u32, primeLen: u32,
  stepBegin: u32, stepEnd: u32, seed: u32, temperature: f32,
  offDecW: u32, offDecB: u32, layers: u32, topK: u32,
  topP: f32, penalty: f32, window: u32, pad: u32,
  // Per layer: offsets of weight_ih, weight_hh, bias_ih, bias_hh in params.
  layer: array<vec4<u32>, MAX_LAYERS>,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> seq: array<u32>;     // [streams * seqLen]
@group(0) @binding(2) var<storage, read_write> hState: array<f32>;  // [streams * 2 * layers * H]: h, then c
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;  // [streams * V] scratch
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;   // [streams * seqLen * V] when RECORD_PROBS
@group(0) @binding(5) var<uniform> u: Uniforms;

var<workgroup> h: array<f32, MAX_STATE>;  // layer l's h at [l*H, (l+1)*H)
var<workgroup> c: array<f32, MAX_CELLS>;  // lstm only
// Beside lib/reduce.wgsl's scratch: the argmax's indices.
var<workgroup> scratchIdx: array<u32, WG>;
var<workgroup> token: u32;
var<workgroup> chosenChunk: u32;
var<workgroup> goalInChunk: f32;
var<workgroup> partial: array<f32, SUB>;
var<workgroup> seen: array<atomic<u32>, SEEN_WORDS>;
var<workgroup> weights: array<f32, WEIGHTS>;

// Order-preserving key of a float: a < b exactly when orderKey(a) < orderKey(b) (no NaNs).
fn orderKey(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// The sum (or with `isMax` the maximum) of v over the workgroup, the same value on every
// invocation, in two barriers instead of reduceSum's log2(WG) + 2: SUB invocations each combine
// WG / SUB values, then everyone combines those.
fn groupReduce(lid: u32, v: f32, isMax: bool) -> f32 {
  scratch[lid] = v;
  workgroupBarrier();
  if (lid < SUB) {
    var s = scratch[lid * (WG / SUB)];
    for (var i = 1u; i < WG / SUB; i++) {
      let x = scratch[lid * (WG / SUB) + i];
      s = select(s + x, max(s, x), isMax);
    }
    partial[lid] = s;
  }
  workgroupBarrier();
  var t = partial[0];
  for (var i = 1u; i < SUB; i++) { t = select(t + partial[i], max(t, partial[i]), isMax); }
  return t;
}

fn groupSum(lid: u32, v: f32) -> f32 { return groupReduce(lid, v, false); }

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
  let seqBase = stream * u.seqLen;
  workgroupBarrier();

  for (var k = u.stepBegin; k < u.stepEnd; k++) {
    if (lid == 0u) { token = seq[seqBase + k]; }
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

    // The tokens the penalty applies to: seq[k + 1 - window ..= k] (all of seq[0 ..= k] for window 0).
    if (PENALTY) {
      for (var i = lid; i < SEEN_WORDS; i += WG) { atomicStore(&seen[i], 0u); }
      workgroupBarrier();
      let first = select(0u, k + 1u - u.window, u.window > 0u && k + 1u > u.window);
      for (var j = first + lid; j <= k; j += WG) {
        let t = seq[seqBase + j];
        atomicOr(&seen[t >> 5u], 1u << (t & 31u));
      }
      workgroupBarrier();
    }

    var localMax = -3.4e38;
    var localArg = vBegin;
    for (var v = vBegin; v < vEnd; v++) {
      var y = params[u.offDecB + v];
      let row = u.offDecW + v * H;
      for (var j = 0u; j < H; j++) { y += params[row + j] * h[top + j]; }
      if (PENALTY) {
        if ((atomicLoad(&seen[v >> 5u]) & (1u << (v & 31u))) != 0u) { y = select(y * u.penalty, y / u.penalty, y > 0.0); }
      }
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
    // Kept: the tokens whose logit's key is at least `cut` (0: all of them).
    var cut = 0u;
    if (FILTER && DIRECT && u.temperature > 0.0) {
      // Token v survives top-k when fewer than k logits are larger, and top-p when those larger
      // ones (all of them kept by top-k if v is) hold less than p of the mass top-k kept.
      for (var v = vBegin; v < vEnd; v++) { weights[v] = exp((logits[lBase + v] - maxLogit) / temp); }
      workgroupBarrier();
      let k = select(V, u.topK, u.topK > 0u && u.topK < V);
      var larger: array<u32, DIRECT_CHUNK>;
      var above: array<f32, DIRECT_CHUNK>;
      var keptMass = 0.0;
      for (var r = 0u; r < DIRECT_CHUNK; r++) {
        let v = vBegin + r;
        if (v >= vEnd) { break; }
        let z = logits[lBase + v];
        var n = 0u;
        var m = 0.0;
        for (var j = 0u; j < V; j++) {
          if (logits[lBase + j] > z) { n++; m += weights[j]; }
        }
        larger[r] = n;
        above[r] = m;
        if (n < k) { keptMass += weights[v]; }
      }
      let goal = u.topP * groupSum(lid, keptMass);
      var lowest = -3.4e38; // minus the smallest kept logit
      for (var r = 0u; r < DIRECT_CHUNK; r++) {
        let v = vBegin + r;
        if (v >= vEnd) { break; }
        if (larger[r] < k && (u.topP >= 1.0 || above[r] < goal)) { lowest = max(lowest, -logits[lBase + v]); }
      }
      cut = orderKey(-groupReduce(lid, lowest, true));
    } else if (FILTER && u.temperature > 0.0) {
      // Top-k: the largest key t with at least k logits >= t, i.e. the k-th largest logit.
      var hi = orderKey(maxLogit) + 1u;
      if (u.topK > 0u && u.topK < V) {
        for (var r = 0u; r < 32u; r++) {
          let mid = cut + (hi - cut) / 2u;
          var n = 0.0;
          for (var v = vBegin; v < vEnd; v++) { n += select(0.0, 1.0, orderKey(logits[lBase + v]) >= mid); }
          if (groupSum(lid, n) >= f32(u.topK)) { cut = mid; } else { hi = mid; }
        }
      }
      // Top-p: the largest key t at which the kept mass of the logits >= t still reaches p.
      if (u.topP < 1.0) {
        var w = 0.0;
        for (var v = vBegin; v < vEnd; v++) {
          let y = logits[lBase + v];
          w += select(0.0, exp((y - maxLogit) / temp), orderKey(y) >= cut);
        }
        let goal = u.topP * groupSum(lid, w);
        hi = orderKey(maxLogit) + 1u;
        for (var r = 0u; r < 32u; r++) {
          let mid = cut + (hi - cut) / 2u;
          var m = 0.0;
          for (var v = vBegin; v < vEnd; v++) {
            let y = logits[lBase + v];
            m += select(0.0, exp((y - maxLogit) / temp), orderKey(y) >= mid);
          }
          if (groupSum(lid, m) >= goal) { cut = mid; } else { hi = mid; }
        }
      }
    }

    var localSum = 0.0;
    for (var v = vBegin; v < vEnd; v++) { localSum += weightOf(logits[lBase + v], maxLogit, temp, cut); }
    let total = reduceSum(lid, localSum);
    if (RECORD_PROBS) {
      let at = (seqBase + k) * V;
      for (var v = vBegin; v < vEnd; v++) { probs[at + v] = weightOf(logits[lBase + v], maxLogit, temp, cut) / total; }
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
        var pick = vBegin;
        for (var v = vBegin; v < vEnd; v++) {
          let w = weightOf(logits[lBase + v], maxLogit, temp, cut);
          if (w <= 0.0) { continue; }
          pick = v;
          acc += w;
          if (acc > goalInChunk) { break; }
        }
        token = pick;
      }
    }
    workgroupBarrier();
    if (lid == 0u && k + 1u < u.seqLen) { seq[seqBase + k + 1u] = token; }
    // The next step reads seq[k + 1] written just above by invocation 0.
    storageBarrier();
    workgroupBarrier();
  }
  for (var i = lid; i < LH; i += WG) {
    hState[stateBase + i] = h[i];
    if (CELL == CELL_LSTM) { hState[stateBase + LH + i] = c[i]; }
  }
}

// A token's weight in the draw: exp((z - max) / temperature), 0 when the filters dropped it.
fn weightOf(y: f32, maxLogit: f32, temp: f32, cut: u32) -> f32 {
  return select(0.0, exp((y - maxLogit) / temp), orderKey(y) >= cut);
}
