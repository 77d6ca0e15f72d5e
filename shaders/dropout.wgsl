// Inverted dropout with the mask regenerated from a counter-based hash, so nothing is stored and
// the CPU reference draws the identical mask: dropoutMask in src/model/dropout.ts (its CPU twin).
//   dst[offDst + i] = src[offSrc + i] * mask(maskBase + i),   i < n
//   mask(m) = uniformBits(seed, iteration, m) >= threshold ? scale : 0       (lib/hash.wgsl)
// uniformAt(seed, iteration, m) >= p  <=>  j >= ceil(p * 2^24) for the 24-bit j, so the host
// hands over that integer threshold (src/model/dropout.ts: dropoutKeepThreshold) and the
// kept/dropped decision is exact. Forward it drops the layer's output on its way up; backward the
// same mask multiplies dL/d(that output).
// Evaluation passes threshold 0 and scale 1 (keep everything).

//#include "lib/hash.wgsl"

override WG: u32 = 64;

struct Uniforms { n: u32, offSrc: u32, offDst: u32, maskBase: u32, perRow: u32, pad0: u32, pad1: u32, pad2: u32 }
struct Mask { seed: u32, iteration: u32, threshold: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> u: Uniforms;
@group(0) @binding(3) var<uniform> mask: Mask;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * u.perRow + gid.x;
  if (i >= u.n) { return; }
  let j = uniformBits(mask.seed, mask.iteration, u.maskBase + i);
  dst[u.offDst + i] = select(0.0, src[u.offSrc + i] * mask.scale, j >= mask.threshold);
}
