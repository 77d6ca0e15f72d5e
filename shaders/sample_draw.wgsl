// The sampler's draw (sample.wgsl says how the three kernels take turns), one workgroup per stream:
// step k, once the priming text is consumed, draws seq[k + 1] from softmax(logits / temperature)
// by inverse CDF with the counter-based uniform uniformAt(seed, stream, k) (lib/hash.wgsl,
// src/util/random.ts), or takes the argmax when temperature is 0; then, also while priming, the
// stream's step counter moves on to k + 1. Each stream draws its own uniforms.
// CPU twin: sampleTokens (filteredWeights, penalizeRepeats, drawIndex) in src/cpu/sample.ts.
//
// The sampling controls (SamplingControls in src/model/backend.ts): the repetition penalty divides
// (z > 0) or multiplies the logits of the tokens marked in a bitmap of the last `window` tokens;
// top-k and top-p keep the tokens whose logit is at least a threshold (the kept set is always such
// an upper set), found without sorting. Up to DIRECT_MAX_V tokens (DIRECT) each invocation ranks
// its own tokens against all the others: how many logits are larger, and their mass (O(V) per
// token, four barriers). Beyond, a binary search over the logits' order-preserving u32 keys (32
// rounds for each filter, each a count or a mass over the workgroup in two barriers). The CPU
// applies the same definitions in float64: a kept set can differ only where float32 rounding moves
// a logit or a mass across the edge.

//#include "lib/hash.wgsl"
//#include "lib/reduce.wgsl"

override WG: u32 = 64;
override FUSED_DECODE: bool = false; // compute the logits here (small V x H): no sample_decode.wgsl dispatch
override ROWS: u32 = 1u;            // lib/sample_step.wgsl's streams per invocation: this kernel's one
override DECODE_ROWS: u32 = 1u;     // with FUSED_DECODE: ceil(V / WG), logits per invocation (at most SLOTS)
override TRANSPOSED: bool = false;   // with FUSED_DECODE: W_dec from its transposed copy in weightsT (offDecT, ldDecT)
override RECORD_PROBS: bool = false; // write every step's distribution (parity tests)
override FILTER: bool = false;      // top-k or top-p in use
override PENALTY: bool = false;     // repetition penalty in use
override SEEN_WORDS: u32 = 1u;      // ceil(V / 32) with PENALTY: the bitmap of penalised tokens
override DIRECT: bool = false;      // FILTER by ranks (V <= DIRECT_MAX_V), else by binary search
override WEIGHTS: u32 = 1u;         // V with DIRECT: every token's weight in workgroup memory
const DIRECT_CHUNK: u32 = 16u;      // tokens per invocation with DIRECT: DIRECT_MAX_V / WG
const SUB: u32 = 16u;               // groupSum: WG / SUB partial sums of SUB

struct Uniforms {
  V: u32, streams: u32, seqLen: u32, primeLen: u32,
  seed: u32, temperature: f32, topK: u32, topP: f32,
  penalty: f32, window: u32, H: u32, layers: u32,
  offDecW: u32, offDecB: u32, blocks: u32, offDecT: u32,
  ldDecT: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;        // the decoder, with FUSED_DECODE
@group(0) @binding(1) var<storage, read_write> seq: array<u32>;     // [streams * seqLen] tokens, then [streams] steps
@group(0) @binding(2) var<storage, read> hState: array<f32>;        // the top layer's h, with FUSED_DECODE
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;  // [streams * V]; the penalty rewrites its tokens'
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;   // [streams * seqLen * V] when RECORD_PROBS
@group(0) @binding(5) var<uniform> u: Uniforms;
@group(0) @binding(6) var<storage, read> weightsT: array<vec4<f32>>;      // W_dec^T [H, ldDecT] at offDecT, with TRANSPOSED

//#include "lib/sample_step.wgsl"

// The fused decoder's row s of invocation lid: runs of DECODE_ROWS (a multiple of 4) adjacent rows
// from the transposed copy (lib/sample_step.wgsl: columnsTimes), else rows a workgroup apart.
fn decodeRow(lid: u32, s: u32) -> u32 {
  if (TRANSPOSED) { return lid * DECODE_ROWS + s; }
  return lid + s * WG;
}

// Beside lib/reduce.wgsl's scratch:
var<workgroup> token: u32;
var<workgroup> step: u32;
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

// One workgroup per stream: the step's draw from the logits sample_decode.wgsl wrote, then the
// stream's step counter moves on. While priming only the counter moves.
@compute @workgroup_size(WG)
fn draw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let stream = wid.x;
  let V = u.V;
  if (lid == 0u) { step = seq[u.streams * u.seqLen + stream]; }
  let k = workgroupUniformLoad(&step);
  let seqBase = stream * u.seqLen;
  // While priming, only the state matters; the last priming token predicts the first output.
  if (k + 1u >= u.primeLen) {
    // Each invocation owns a contiguous slice of the vocabulary, so the CDF can be scanned per slice.
    let chunk = (V + WG - 1u) / WG;
    let vBegin = min(lid * chunk, V);
    let vEnd = min(vBegin + chunk, V);
    let lBase = stream * V;

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

    if (FUSED_DECODE) {
      // The step's logits, as sample_decode.wgsl computes them, DECODE_ROWS rows per invocation.
      var rows: array<u32, SLOTS>;
      var acc: Acc;
      for (var s = 0u; s < DECODE_ROWS; s++) {
        rows[s] = min(decodeRow(lid, s), V - 1u);
        acc[0][s] = params[u.offDecB + rows[s]];
      }
      var top: array<u32, MAX_ROWS>;
      top[0] = hAt(1u - (k & 1u), u.layers - 1u, stream);
      if (TRANSPOSED) {
        columnsTimes(&acc, u.offDecT, u.ldDecT, u.H, rows, DECODE_ROWS, top);
      } else {
        rowsTimes(&acc, u.offDecW, u.H, rows, DECODE_ROWS, top);
      }
      for (var s = 0u; s < DECODE_ROWS; s++) {
        let v = decodeRow(lid, s);
        if (v < V) { logits[lBase + v] = acc[0][s]; }
      }
      storageBarrier();
    }

    var localMax = -3.4e38;
    var localArg = vBegin;
    for (var v = vBegin; v < vEnd; v++) {
      var y = logits[lBase + v];
      if (PENALTY) {
        if ((atomicLoad(&seen[v >> 5u]) & (1u << (v & 31u))) != 0u) {
          y = select(y * u.penalty, y / u.penalty, y > 0.0);
          logits[lBase + v] = y;
        }
      }
      if (y > localMax) { localMax = y; localArg = v; }
    }
    // The penalised logits, written above, are read by every invocation below.
    storageBarrier();
    // The largest logit and, for the argmax, the lowest index holding it (two barriers each).
    let maxLogit = groupReduce(lid, localMax, true);
    var argMax = 0u;
    if (u.temperature <= 0.0) {
      argMax = u32(-groupReduce(lid, select(-3.4e38, -f32(localArg), vBegin < vEnd && localMax == maxLogit), true));
    }

    let temp = max(u.temperature, 1e-6);
    // Kept: the tokens whose logit's key is at least `cut` (0: all of them).
    var cut = 0u;
    if (FILTER && DIRECT && u.temperature > 0.0) {
      // Token v survives top-k when fewer than k logits are larger, and top-p when those larger
      // ones (all of them kept by top-k if v is) hold less than p of the mass top-k kept.
      for (var v = vBegin; v < vEnd; v++) { weights[v] = exp((logits[lBase + v] - maxLogit) / temp); }
      workgroupBarrier();
      let kTop = select(V, u.topK, u.topK > 0u && u.topK < V);
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
        if (n < kTop) { keptMass += weights[v]; }
      }
      let goal = u.topP * groupSum(lid, keptMass);
      var lowest = -3.4e38; // minus the smallest kept logit
      for (var r = 0u; r < DIRECT_CHUNK; r++) {
        let v = vBegin + r;
        if (v >= vEnd) { break; }
        if (larger[r] < kTop && (u.topP >= 1.0 || above[r] < goal)) { lowest = max(lowest, -logits[lBase + v]); }
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
    let total = groupSum(lid, localSum);
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
    if (lid == 0u) { seq[seqBase + k + 1u] = token; }
  }
  // Everyone has read the counter (workgroupUniformLoad above): the next step's dispatches see k + 1.
  if (lid == 0u) { seq[u.streams * u.seqLen + stream] = k + 1u; }
}

// A token's weight in the draw: exp((z - max) / temperature), 0 when the filters dropped it.
fn weightOf(y: f32, maxLogit: f32, temp: f32, cut: u32) -> f32 {
  return select(0.0, exp((y - maxLogit) / temp), orderKey(y) >= cut);
}
