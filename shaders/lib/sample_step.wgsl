// What the sampler's step kernels share (sample.wgsl: every layer's cell, sample_decode.wgsl: the
// decoder): where each stream's step counter and state live, and the blocks of streams x rows one
// invocation owns. The including shader declares `override WG`, `override ROWS` (streams per
// invocation, at most MAX_ROWS), the bindings params, weightsT, seq, hState and the uniforms u (fields H,
// streams, layers, seqLen, blocks). Buffers (src/gpu/kernels/sample.ts):
//   seq    [streams * seqLen] tokens, then [streams] counters: each stream's current step
//   hState h [2][layers][streams][H] (step k reads copy k % 2, writes the other), then the lstm's c
//          [layers][streams][H] (read and written by the unit's own invocation only)

const MAX_ROWS: u32 = 8u;
const SLOTS: u32 = 16u;  // rows per invocation: accumulators per stream

// The step stream n is at.
fn stepOf(n: u32) -> u32 { return seq[u.streams * u.seqLen + n]; }

// Where copy p of layer l's h of stream n starts.
fn hAt(p: u32, l: u32, n: u32) -> u32 { return ((p * u.layers + l) * u.streams + n) * u.H; }

// Where layer l's c of stream n starts.
fn cAt(l: u32, n: u32) -> u32 { return ((2u * u.layers + l) * u.streams + n) * u.H; }

alias Acc = array<array<f32, SLOTS>, MAX_ROWS>;

// acc[r][s] += the dot of row rows[s] (length len, at params[w + rows[s] * len]) with the vector
// at hState[x[r]], for the block's `slots` rows and ROWS streams: each weight loaded serves every
// stream, each h value every row.
fn rowsTimes(acc: ptr<function, Acc>, w: u32, len: u32, rows: array<u32, SLOTS>, slots: u32, x: array<u32, MAX_ROWS>) {
  var at: array<u32, SLOTS>;
  for (var s = 0u; s < slots; s++) { at[s] = w + rows[s] * len; }
  for (var j = 0u; j < len; j++) {
    var a: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) { a[r] = hState[x[r] + j]; }
    for (var s = 0u; s < slots; s++) {
      let wv = params[at[s] + j];
      for (var r = 0u; r < ROWS; r++) { (*acc)[r][s] += a[r] * wv; }
    }
  }
}

// rowsTimes from a transposed copy in weightsT (the optimizer's W_hh^T and decoder copies, leading
// dimension ld, wT and ld multiples of 4): row rows[s] of the matrix is column rows[s] of the copy,
// and the slots come in runs of four adjacent rows from a multiple of 4 (a run past the matrix's
// last row reads whatever vec4 is there, never stored). An invocation reads a vec4 per run, and
// adjacent invocations adjacent vec4s, not words a row apart: 2x faster at one stream, H=1024.
fn columnsTimes(acc: ptr<function, Acc>, wT: u32, ld: u32, len: u32, rows: array<u32, SLOTS>, slots: u32, x: array<u32, MAX_ROWS>) {
  var at: array<u32, SLOTS / 4u>;
  for (var g = 0u; g < slots / 4u; g++) { at[g] = (wT + rows[4u * g]) / 4u; }
  let ld4 = ld / 4u;
  // Accumulated as vec4s (one multiply-add each on CPU drivers), added to acc at the end.
  var sum: array<array<vec4<f32>, SLOTS / 4u>, MAX_ROWS>;
  for (var j = 0u; j < len; j++) {
    var a: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) { a[r] = hState[x[r] + j]; }
    var wv: array<vec4<f32>, SLOTS / 4u>;
    for (var g = 0u; g < slots / 4u; g++) { wv[g] = weightsT[at[g] + j * ld4]; }
    for (var r = 0u; r < ROWS; r++) {
      for (var g = 0u; g < slots / 4u; g++) { sum[r][g] += a[r] * wv[g]; }
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    for (var g = 0u; g < slots / 4u; g++) {
      for (var e = 0u; e < 4u; e++) { (*acc)[r][4u * g + e] += sum[r][g][e]; }
    }
  }
}

// The block of the invocation at x = i of workgroup row y (the dispatch's y is the block of
// streams): streams n0 .. n0 + ROWS - 1 and items i0 .. i0 + per - 1, u.blocks blocks of items;
// ok is false past the last block. Streams past the last are clamped to it (computed, never
// stored). The streams depend on the workgroup alone, so every lane of a SIMD group reads the same
// h: one load, not one per lane, on CPU drivers.
struct Block { n0: u32, i0: u32, ok: bool, n: array<u32, MAX_ROWS> }

fn blockOf(i: u32, y: u32, per: u32) -> Block {
  var b: Block;
  b.n0 = y * ROWS;
  b.i0 = i * per;
  b.ok = i < u.blocks;
  for (var r = 0u; r < ROWS; r++) { b.n[r] = min(b.n0 + r, u.streams - 1u); }
  return b;
}
