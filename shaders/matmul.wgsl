// C = op(A) * op(B). CPU twin: a plain triple loop (test/kernels.test.ts); the RNN modes' twins are
// the one-gate cell of src/cpu/cells.ts (with a single bias) and the formula in the test. GpuBackend
// no longer uses the RNN modes (every cell runs on cell_forward / cell_backward.wgsl); they stay,
// tested, for bench/kernels.ts.
//
// Entry points, all with the same bindings, uniforms and MODE semantics:
//   main        register-blocked: each invocation computes an 8x8 block of C in registers, with no
//               workgroup memory and no barriers. On CPU drivers (lavapipe) every storage load of a
//               lane-varying address costs one scalar load per lane, so loads, not multiply-adds,
//               set the speed: an 8x8 block needs 16 loads per k for 64 multiply-adds (4x4: 8 for 16).
//   main_vb     an 8x16 block per invocation, op(B) read four columns at a time through a vec4 view of B
//               and accumulated as vec4s: for a row-major B (TRANS_B false) with offB and ldb multiples
//               of 4. A vec4 load costs about 1.75 scalar loads here and a vec4 multiply-add one
//               instruction, so per k this block does 128 multiply-adds for about 15 scalar loads'
//               worth (an 8x8 block with scalar accumulators: 64 for 11.5). Measured at 1024^3: 8x16
//               and 16x16 beat 8x8 by 20-30%; 16x16 with both operands as vec4s fell to 3 GFLOP/s.
//   main_vab    main_vb, also reading op(A) four rows at a time: for a transposed A (TRANS_A true,
//               MODE_PLAIN) with offA and lda multiples of 4, the weight-gradient products
//               dW = dZ^T h. (A row-major A would need k unrolled by 4, which was slower here.)
//   main_tiled  the classic GPU design: the workgroup stages a (4 WG_Y) x TILE_K slice of op(A) and a
//               TILE_K x (4 WG_X) slice of op(B) in workgroup memory, barriers, and each invocation
//               computes a 4x4 block from it. For real GPUs; on lavapipe the barriers turn the
//               shader into a coroutine whose registers live in memory, and it is ~5x slower.
// A workgroup covers 8 WG_X columns and 8 WG_Y rows (main), 16 WG_X and 8 WG_Y (main_vb, main_vab),
// 4 WG_X and 4 WG_Y (main_tiled). The host (src/gpu/kernels.ts: matmulVariantFor, MATMUL_VARIANTS)
// checks a vec4 variant's alignment (and that the buffer holds whole vec4s up to the operand's end)
// before choosing it.
//
// MODE selects a fused epilogue, so the recurrent steps of the RNN are this same product:
//   MODE_PLAIN:    C = op(A) op(B) (+ bias[col] when u.hasBias = 1)
//   MODE_RNN_FWD:  C = tanh(acc + bias[col] + B[gather + col * gatherStride + tok[row]])
//                  (A = h_{t-1} [B,H], B = params with Whh^T, gather = Wxh's column for the input token)
//   MODE_RNN_BWD:  C = (acc + D[row, col]) * (1 - E[row, col]^2)
//                  (A = dz_{t+1}, B = Whh, D = dL/dh_t from the output layer, E = h_t)
// The recurrent steps read their A operand from C (h_{t-1} -> h_t and dz_{t+1} -> dz_t live in one
// buffer at disjoint offsets): WebGPU forbids binding one buffer's overlapping ranges twice when one
// binding is writable, and binding offsets must be 256-byte aligned, which B*H floats need not be.

override WG_X: u32 = 8;
override WG_Y: u32 = 8;
override TRANS_A: bool = false; // A is stored [K, M] instead of [M, K]
override TRANS_B: bool = false; // B is stored [N, K] instead of [K, N]
override MODE: u32 = 0;
override TILE_K: u32 = 16;      // main_tiled only: depth of the staged slices

const MODE_PLAIN: u32 = 0u;
const MODE_RNN_FWD: u32 = 1u;
const MODE_RNN_BWD: u32 = 2u;

const BM: u32 = 8u; // main: rows of C per invocation
const BN: u32 = 8u; // main: columns of C per invocation
const TM: u32 = 4u; // main_tiled: rows of C per invocation
const TN: u32 = 4u; // main_tiled: columns of C per invocation

struct Uniforms {
  M: u32, N: u32, K: u32, hasBias: u32,
  lda: u32, ldb: u32, ldc: u32, offBias: u32,
  offA: u32, offB: u32, offC: u32, offTok: u32,
  offGather: u32, gatherStride: u32, offD: u32, offE: u32,
}

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
// vec4 views of the same two bindings (WGSL allows this across entry points; main_vb and main_vab
// use these instead of A and B).
@group(0) @binding(0) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> D: array<f32>;
@group(0) @binding(4) var<storage, read> E: array<f32>;
@group(0) @binding(5) var<storage, read> tok: array<u32>;
@group(0) @binding(6) var<uniform> u: Uniforms;

// Element i of the A operand's buffer (the recurrent modes keep A inside C).
fn loadA(i: u32) -> f32 {
  if (MODE != MODE_PLAIN) { return C[i]; }
  return A[i];
}

// Index of op(A)[row, 0] in its buffer, and the step from k to k + 1.
fn aIndex(row: u32) -> u32 {
  if (TRANS_A) { return u.offA + row; }
  return u.offA + row * u.lda;
}
fn aStep() -> u32 {
  if (TRANS_A) { return u.lda; }
  return 1u;
}
// Index of op(B)[0, col] in its buffer, and the step from k to k + 1.
fn bIndex(col: u32) -> u32 {
  if (TRANS_B) { return u.offB + col * u.ldb; }
  return u.offB + col;
}
fn bStep() -> u32 {
  if (TRANS_B) { return 1u; }
  return u.ldb;
}

// MODE's epilogue on the finished dot product, stored at (row < M, col < N). `bias` and `x` are the
// values of B the caller fetched for this mode (bias[col]; the gathered input column).
fn finish(row: u32, col: u32, acc: f32, bias: f32, x: f32) {
  var v = acc;
  if (MODE == MODE_RNN_FWD) {
    // Clamped because some drivers compute tanh from exp and overflow to NaN for large inputs;
    // tanh(15) already rounds to 1.0 in f32, so the result is unchanged.
    v = tanh(clamp(v + bias + x, -15.0, 15.0));
  } else if (MODE == MODE_RNN_BWD) {
    let h = E[u.offE + row * u.ldc + col];
    v = (v + D[u.offD + row * u.ldc + col]) * (1.0 - h * h);
  } else if (u.hasBias == 1u) {
    v += bias;
  }
  C[u.offC + row * u.ldc + col] = v;
}

// The epilogue reading B through the scalar view (main, main_tiled) ...
fn storeC(row: u32, col: u32, acc: f32) {
  var bias = 0.0;
  var x = 0.0;
  if (MODE == MODE_RNN_FWD) {
    bias = B[u.offBias + col];
    x = B[u.offGather + col * u.gatherStride + tok[u.offTok + row]];
  } else if (MODE == MODE_PLAIN && u.hasBias == 1u) {
    bias = B[u.offBias + col];
  }
  finish(row, col, acc, bias, x);
}

// ... and through the vec4 view (main_vb, main_vab).
fn b4At(i: u32) -> f32 { return B4[i / 4u][i % 4u]; }
fn storeC4(row: u32, col: u32, acc: f32) {
  var bias = 0.0;
  var x = 0.0;
  if (MODE == MODE_RNN_FWD) {
    bias = b4At(u.offBias + col);
    x = b4At(u.offGather + col * u.gatherStride + tok[u.offTok + row]);
  } else if (MODE == MODE_PLAIN && u.hasBias == 1u) {
    bias = b4At(u.offBias + col);
  }
  finish(row, col, acc, bias, x);
}

alias Block = array<array<f32, BN>, BM>;

fn accumulate(acc: ptr<function, Block>, a: array<f32, BM>, b: array<f32, BN>) {
  for (var i = 0u; i < BM; i++) {
    for (var j = 0u; j < BN; j++) { (*acc)[i][j] += a[i] * b[j]; }
  }
}

// Stores a finished block through MODE's epilogue. The loops have run-time bounds on purpose: fully
// unrolled, the 64 epilogues (each a few lane-by-lane loads on CPU drivers) made pipeline
// compilation 5-10x slower on lavapipe (10 s for MODE_RNN_FWD) for no measurable gain. `out` is a copy so that only it,
// not the accumulators of the hot loop, is indexed dynamically.
fn storeBlock(row0: u32, col0: u32, acc: Block) {
  var out = acc;
  let rows = min(BM, u.M - row0);
  let cols = min(BN, u.N - col0);
  for (var i = 0u; i < rows; i++) {
    for (var j = 0u; j < cols; j++) { storeC(row0 + i, col0 + j, out[i][j]); }
  }
}

// Where op(A)'s rows row0 .. row0 + 7 start, rows past M clamped to the last one (never stored).
fn aIndices(row0: u32) -> array<u32, BM> {
  var ai: array<u32, BM>;
  for (var i = 0u; i < BM; i++) { ai[i] = aIndex(min(row0 + i, u.M - 1u)); }
  return ai;
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * BM;
  let col0 = gid.x * BN;
  if (row0 >= u.M || col0 >= u.N) { return; }
  let ai = aIndices(row0);
  var bi: array<u32, BN>;
  for (var j = 0u; j < BN; j++) { bi[j] = bIndex(min(col0 + j, u.N - 1u)); }
  let sa = aStep();
  let sb = bStep();
  var acc: Block;
  for (var k = 0u; k < u.K; k++) {
    let ka = k * sa;
    let kb = k * sb;
    var a: array<f32, BM>;
    var b: array<f32, BN>;
    for (var j = 0u; j < BN; j++) { b[j] = B[bi[j] + kb]; }
    for (var i = 0u; i < BM; i++) { a[i] = loadA(ai[i] + ka); }
    accumulate(&acc, a, b);
  }
  storeBlock(row0, col0, acc);
}

// main_vb and main_vab: each invocation owns VM rows and 4 VN4 columns of C, accumulated as vec4s
// (one multiply-add per vec4 on CPU drivers, against four for scalar accumulators).
const VM: u32 = 8u;
const VN4: u32 = 4u;
alias BlockV = array<array<vec4<f32>, VN4>, VM>;

// Columns col0 .. col0 + 15 of op(B) row k as four vec4s (col0 is a multiple of 16, offB and ldb of
// 4; columns past N come from the next row or, clamped, the buffer's end, and are never stored).
fn loadBV(b4: u32, ldb4: u32, k: u32) -> array<vec4<f32>, VN4> {
  var b: array<vec4<f32>, VN4>;
  for (var j = 0u; j < VN4; j++) { b[j] = B4[b4 + k * ldb4 + j]; }
  return b;
}

fn accumulateV(acc: ptr<function, BlockV>, a: array<f32, VM>, b: array<vec4<f32>, VN4>) {
  for (var i = 0u; i < VM; i++) {
    for (var j = 0u; j < VN4; j++) { (*acc)[i][j] += a[i] * b[j]; }
  }
}

// Invocations whose block starts past M or N store nothing; the min() keeps the count from wrapping.
fn storeBlockV(row0: u32, col0: u32, acc: BlockV) {
  var out = acc;
  let rows = min(VM, u.M - min(row0, u.M));
  let cols = min(4u * VN4, u.N - min(col0, u.N));
  for (var i = 0u; i < rows; i++) {
    for (var j = 0u; j < cols; j++) { storeC4(row0 + i, col0 + j, out[i][j / 4u][j % 4u]); }
  }
}

// Invocations whose block lies past M or N (ragged edges) skip the loop instead of returning, so no
// lane leaves before the hot loop: on SIMD CPU drivers a returned lane masks the loop's every write.
// (3-5% faster at 1024^3 here, within the noise; not slower in any run.)
fn kEnd(row0: u32, col0: u32) -> u32 {
  return select(0u, u.K, row0 < u.M && col0 < u.N);
}

@compute @workgroup_size(WG_X, WG_Y)
fn main_vb(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * VM;
  let col0 = gid.x * VN4 * 4u;
  let ai = aIndices(row0);
  let sa = aStep();
  let b4 = (u.offB + col0) / 4u;
  let ldb4 = u.ldb / 4u;
  let kn = kEnd(row0, col0);
  var acc: BlockV;
  for (var k = 0u; k < kn; k++) {
    let ka = k * sa;
    var a: array<f32, VM>;
    for (var i = 0u; i < VM; i++) { a[i] = loadA(ai[i] + ka); }
    accumulateV(&acc, a, loadBV(b4, ldb4, k));
  }
  storeBlockV(row0, col0, acc);
}

@compute @workgroup_size(WG_X, WG_Y)
fn main_vab(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * VM;
  let col0 = gid.x * VN4 * 4u;
  // op(A)[row0 .. row0 + 7, k] = A[k, row0 .. row0 + 7]: two vec4s, as for B.
  let a4 = (u.offA + row0) / 4u;
  let lda4 = u.lda / 4u;
  let b4 = (u.offB + col0) / 4u;
  let ldb4 = u.ldb / 4u;
  let kn = kEnd(row0, col0);
  var acc: BlockV;
  for (var k = 0u; k < kn; k++) {
    let v0 = A4[a4 + k * lda4];
    let v1 = A4[a4 + k * lda4 + 1u];
    accumulateV(&acc, array<f32, VM>(v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w), loadBV(b4, ldb4, k));
  }
  storeBlockV(row0, col0, acc);
}

// main_tiled's staging area: [TILE_K][4 WG_Y] of op(A) and [TILE_K][4 WG_X] of op(B).
// 4 * TILE_K * 4 * (WG_X + WG_Y) bytes: 8 KiB for 16x16 invocations and TILE_K = 16, within
// WebGPU's default 16 KiB of workgroup storage.
var<workgroup> tileA: array<f32, TILE_K * TM * WG_Y>;
var<workgroup> tileB: array<f32, TILE_K * TN * WG_X>;

@compute @workgroup_size(WG_X, WG_Y)
fn main_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
  let M = u.M;
  let N = u.N;
  let K = u.K;
  let rowsT = TM * WG_Y;
  let colsT = TN * WG_X;
  let threads = WG_X * WG_Y;
  let tileRow = wid.y * rowsT;
  let tileCol = wid.x * colsT;
  let sa = aStep();
  let sb = bStep();
  var acc: array<array<f32, TN>, TM>;
  // Every invocation runs every iteration (no early return): the barriers must stay uniform.
  for (var k0 = 0u; k0 < K; k0 += TILE_K) {
    // Consecutive invocations load consecutive addresses of the stored layout.
    for (var e = li; e < rowsT * TILE_K; e += threads) {
      var r: u32;
      var kk: u32;
      if (TRANS_A) { kk = e / rowsT; r = e % rowsT; } else { r = e / TILE_K; kk = e % TILE_K; }
      let k = k0 + kk;
      let v = loadA(aIndex(min(tileRow + r, M - 1u)) + min(k, K - 1u) * sa);
      tileA[kk * rowsT + r] = select(0.0, v, k < K);
    }
    for (var e = li; e < colsT * TILE_K; e += threads) {
      var c: u32;
      var kk: u32;
      if (TRANS_B) { c = e / TILE_K; kk = e % TILE_K; } else { kk = e / colsT; c = e % colsT; }
      let k = k0 + kk;
      let v = B[bIndex(min(tileCol + c, N - 1u)) + min(k, K - 1u) * sb];
      tileB[kk * colsT + c] = select(0.0, v, k < K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      var a: array<f32, TM>;
      var b: array<f32, TN>;
      for (var i = 0u; i < TM; i++) { a[i] = tileA[kk * rowsT + lid.y * TM + i]; }
      for (var j = 0u; j < TN; j++) { b[j] = tileB[kk * colsT + lid.x * TN + j]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i][j] += a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  let row0 = tileRow + lid.y * TM;
  let col0 = tileCol + lid.x * TN;
  for (var i = 0u; i < TM; i++) {
    let row = row0 + i;
    if (row >= M) { break; }
    for (var j = 0u; j < TN; j++) {
      let col = col0 + j;
      if (col >= N) { break; }
      storeC(row, col, acc[i][j]);
    }
  }
}
