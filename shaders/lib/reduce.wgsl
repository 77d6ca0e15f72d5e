// Tree reductions over one workgroup of WG invocations (WG a power of two; the including shader
// declares `override WG`, its workgroup size). Every invocation must call them (they hold
// barriers), and each returns the result to all of them. Used by softmax_xent.wgsl, loss_sum.wgsl
// and sample.wgsl, which also reuses `scratch` for its own argmax and CDF scans.

var<workgroup> scratch: array<f32, WG>;

fn reduceSum(lid: u32, v: f32) -> f32 {
  scratch[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { scratch[lid] += scratch[lid + s]; }
    workgroupBarrier();
  }
  let r = scratch[0];
  // Nobody may overwrite scratch[0] (the next reduction) before everyone has read it.
  workgroupBarrier();
  return r;
}

fn reduceMax(lid: u32, v: f32) -> f32 {
  scratch[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { scratch[lid] = max(scratch[lid], scratch[lid + s]); }
    workgroupBarrier();
  }
  let r = scratch[0];
  workgroupBarrier();
  return r;
}
