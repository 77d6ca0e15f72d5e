// C = op(A) * op(B), register-blocked: each invocation computes a 4x4 block of C in registers,
// with no workgroup memory and no barriers (10x faster than shared-memory tiling on CPU drivers,
// see GUIDE.md section 2). The workgroup shape is an override so it can be tuned per adapter.
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

const MODE_PLAIN: u32 = 0u;
const MODE_RNN_FWD: u32 = 1u;
const MODE_RNN_BWD: u32 = 2u;

struct Uniforms {
  M: u32, N: u32, K: u32, hasBias: u32,
  lda: u32, ldb: u32, ldc: u32, offBias: u32,
  offA: u32, offB: u32, offC: u32, offTok: u32,
  offGather: u32, gatherStride: u32, offD: u32, offE: u32,
}

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> D: array<f32>;
@group(0) @binding(4) var<storage, read> E: array<f32>;
@group(0) @binding(5) var<storage, read> tok: array<u32>;
@group(0) @binding(6) var<uniform> u: Uniforms;

fn loadA(m: u32, k: u32) -> f32 {
  if (MODE != MODE_PLAIN) { return C[u.offA + m * u.lda + k]; }
  if (TRANS_A) { return A[u.offA + k * u.lda + m]; }
  return A[u.offA + m * u.lda + k];
}

fn loadB(k: u32, n: u32) -> f32 {
  if (TRANS_B) { return B[u.offB + n * u.ldb + k]; }
  return B[u.offB + k * u.ldb + n];
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= u.M || col0 >= u.N) { return; }
  // Rows and columns past the edge read a clamped (valid) index; their results are never stored.
  let r = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(u.M - 1u));
  let c = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(u.N - 1u));
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < u.K; k++) {
    let b = vec4<f32>(loadB(k, c.x), loadB(k, c.y), loadB(k, c.z), loadB(k, c.w));
    acc0 += loadA(r.x, k) * b;
    acc1 += loadA(r.y, k) * b;
    acc2 += loadA(r.z, k) * b;
    acc3 += loadA(r.w, k) * b;
  }
  var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + i;
    if (row >= u.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + j;
      if (col >= u.N) { break; }
      var v = acc[i][j];
      if (MODE == MODE_RNN_FWD) {
        // Clamped because some drivers compute tanh from exp and overflow to NaN for large inputs;
        // tanh(15) already rounds to 1.0 in f32, so the result is unchanged.
        v = tanh(clamp(v + B[u.offBias + col] + B[u.offGather + col * u.gatherStride + tok[u.offTok + row]], -15.0, 15.0));
      } else if (MODE == MODE_RNN_BWD) {
        let h = E[u.offE + row * u.ldc + col];
        v = (v + D[u.offD + row * u.ldc + col]) * (1.0 - h * h);
      } else if (u.hasBias == 1u) {
        v += B[u.offBias + col];
      }
      C[u.offC + row * u.ldc + col] = v;
    }
  }
}
