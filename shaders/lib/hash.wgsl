// The counter-based generator both backends draw from (src/util/random.ts: pcgHash, uniformAt):
// sample_draw.wgsl's draws and dropout.wgsl's masks, so the GPU regenerates the CPU's numbers exactly.

// O'Neill's PCG output permutation.
fn pcgHash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// The 24 random bits j behind uniformAt(seed, a, b) = j / 2^24: integers, so that dropout can
// compare them with an integer threshold and keep exactly the CPU's elements.
fn uniformBits(seed: u32, a: u32, b: u32) -> u32 {
  return pcgHash(pcgHash(pcgHash(seed) ^ a) ^ b) >> 8u;
}

// In [0, 1), exact in f32 (24 bits).
fn uniformAt(seed: u32, a: u32, b: u32) -> f32 {
  return f32(uniformBits(seed, a, b)) / 16777216.0;
}
