// What cell_forward.wgsl and cell_backward.wgsl share: one invocation owns ROWS sequences x a
// block of hidden units of one timestep (src/gpu/kernels/cell.ts: cellRows, cellGrid).

//#include "lib/cell.wgsl"

override WG: u32 = 64;
// Sequences per invocation: MAX_ROWS, or 1, 2 or 4 for batches that small (the host picks:
// src/gpu/kernels/cell.ts, cellRows). Arrays are sized MAX_ROWS; loops run to ROWS, a constant
// once the pipeline is specialized, so the unused rows compile away.
override ROWS: u32 = 8u;
const MAX_ROWS: u32 = 8u;

struct Block { b0: u32, k0: u32, ok: bool }

// Invocation `i`'s block: sequences b0 .. b0 + ROWS - 1 of B and units k0 .. k0 + units - 1, the
// units split into `unitBlocks` blocks; ok is false past the last block.
fn cellBlock(i: u32, B: u32, unitBlocks: u32, units: u32) -> Block {
  let rowBlocks = (B + ROWS - 1u) / ROWS;
  return Block((i / unitBlocks) * ROWS, (i % unitBlocks) * units, i < unitBlocks * rowBlocks);
}

// A hot loop's trip count: `n`, or none for an invocation past the last block. Such invocations
// skip the loop instead of returning before it: on SIMD CPU drivers a lane that returns early
// masks every write of the loop for the lanes that stay.
fn tripCount(n: u32, ok: bool) -> u32 {
  return select(0u, n, ok);
}

// Where rows b0 .. b0 + ROWS - 1 of a [B, stride] matrix at `base` start; rows past B are clamped
// to the last one (computed, never stored).
fn rowStarts(base: u32, b0: u32, B: u32, stride: u32) -> array<u32, MAX_ROWS> {
  var r: array<u32, MAX_ROWS>;
  for (var i = 0u; i < ROWS; i++) { r[i] = base + min(b0 + i, B - 1u) * stride; }
  return r;
}
