// C = op(A) op(B) (+ bias[col]). CPU twin: a float64 triple loop (test/kernels.test.ts:
// checkMatmul); in training, the output layer and weight-gradient products of
// src/cpu/stacked.ts.
//
// Entry points, all with the same bindings and uniforms:
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
//   main_vab    main_vb, also reading op(A) four rows at a time: for a transposed A (TRANS_A true)
//               with offA and lda multiples of 4, the weight-gradient products dW = dZ^T h. (A
//               row-major A would need k unrolled by 4, which was slower here.)
// A workgroup covers 8 WG_X columns and 8 WG_Y rows (main), 16 WG_X and 8 WG_Y (main_vb, main_vab).
// The host (src/gpu/kernels/matmul.ts: matmulVariantFor) checks a vec4 variant's alignment (and
// that the buffer holds whole vec4s up to the operand's end) before choosing it.
//   main_tiled  the classic workgroup-memory tiling real GPUs want: a WG_X x WG_X workgroup stages a
//               WG_X-square tile of op(A) and of op(B) in var<workgroup> arrays (sized by the override
//               constants), synchronises, and each invocation accumulates one element of C from them.
//               Any layout (scalar loads); WG_Y must equal WG_X. On lavapipe it is ~10x slower than
//               the register-blocked ones (barriers serialise the SIMD lanes), so only the per-adapter
//               tuner (src/gpu/tuner.ts) selects it, where it measures faster.
// Tile shapes are override constants where WGSL allows: the workgroup shape (WG_X, WG_Y) and with
// it main_tiled's tile. The register blocks (BM x BN, VM x 4 VN4) stay `const`: function-scope
// arrays need constant sizes in WGSL.

override WG_X: u32 = 8;
override WG_Y: u32 = 8;
override TRANS_A: bool = false; // A is stored [K, M] instead of [M, K]
override TRANS_B: bool = false; // B is stored [N, K] instead of [K, N]

const BM: u32 = 8u; // main: rows of C per invocation
const BN: u32 = 8u; // main: columns of C per invocation

struct Uniforms {
  M: u32, N: u32, K: u32, hasBias: u32,
  lda: u32, ldb: u32, ldc: u32, offBias: u32,
  offA: u32, offB: u32, offC: u32, pad: u32,
}

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
// vec4 views of the same two bindings (WGSL allows this across entry points; main_vb and main_vab
// use these instead of A and B).
@group(0) @binding(0) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> u: Uniforms;

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

// The bias read through the scalar view (main) or the vec4 view (main_vb, main_vab): an entry
// point that reads B only as vec4s must not touch the scalar view.
fn storeC(row: u32, col: u32, acc: f32) {
  var v = acc;
  if (u.hasBias == 1u) { v += B[u.offBias + col]; }
  C[u.offC + row * u.ldc + col] = v;
}
fn storeC4(row: u32, col: u32, acc: f32) {
  var v = acc;
  if (u.hasBias == 1u) {
    let i = u.offBias + col;
    v += B4[i / 4u][i % 4u];
  }
  C[u.offC + row * u.ldc + col] = v;
}

alias Block = array<array<f32, BN>, BM>;

fn accumulate(acc: ptr<function, Block>, a: array<f32, BM>, b: array<f32, BN>) {
  for (var i = 0u; i < BM; i++) {
    for (var j = 0u; j < BN; j++) { (*acc)[i][j] += a[i] * b[j]; }
  }
}

// Stores a finished block. The loops have run-time bounds on purpose: fully unrolled, the 64
// epilogues made pipeline compilation 5-10x slower on lavapipe for no measurable gain. `out` is a
// copy so that only it, not the accumulators of the hot loop, is indexed dynamically.
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
    for (var i = 0u; i < BM; i++) { a[i] = A[ai[i] + ka]; }
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
    for (var i = 0u; i < VM; i++) { a[i] = A[ai[i] + ka]; }
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

// main_tiled: one element of C per invocation from WG_X-square tiles in workgroup memory. Every
// invocation reaches every barrier (edge invocations load zeros and store nothing), and the tile
// loop's bound comes from the uniforms, so control flow at the barriers is uniform.
var<workgroup> tileA: array<f32, WG_X * WG_Y>; // [row][k] of op(A)
var<workgroup> tileB: array<f32, WG_X * WG_Y>; // [k][col] of op(B)

@compute @workgroup_size(WG_X, WG_Y)
fn main_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.y * WG_Y + lid.y;
  let col = wid.x * WG_X + lid.x;
  let at = lid.y * WG_X + lid.x;
  let tiles = (u.K + WG_X - 1u) / WG_X;
  var acc = 0.0;
  for (var t = 0u; t < tiles; t++) {
    let ka = t * WG_X + lid.x;
    var a = 0.0;
    if (row < u.M && ka < u.K) { a = A[aIndex(row) + ka * aStep()]; }
    tileA[at] = a;
    let kb = t * WG_X + lid.y;
    var b = 0.0;
    if (kb < u.K && col < u.N) { b = B[bIndex(col) + kb * bStep()]; }
    tileB[at] = b;
    workgroupBarrier();
    for (var k = 0u; k < WG_X; k++) { acc += tileA[lid.y * WG_X + k] * tileB[k * WG_X + lid.x]; }
    workgroupBarrier();
  }
  if (row < u.M && col < u.N) { storeC(row, col, acc); }
}
