/**
 * GPU access for tests. Without an adapter a GPU test skips with a loud reason on a user's
 * machine; with REQUIRE_GPU=1 (CI sets it) a missing adapter fails the run instead, so CI can
 * never pass with the GPU tests silently skipped.
 */
import { afterAll } from 'vitest';
import { acquireNodeGpu, releaseNodeGpu } from '../src/node/webgpu.ts';
import type { GpuContext } from '../src/gpu/device.ts';

let shared: Promise<GpuContext | undefined> | undefined;
let reason = '';

export const gpuRequired = process.env.REQUIRE_GPU === '1';

/** One device per test file; undefined (after a loud warning) when none exists and none is required. */
export function getGpu(): Promise<GpuContext | undefined> {
  shared ??= acquireNodeGpu().catch((e: Error) => {
    reason = e.message;
    if (gpuRequired) throw new Error(`REQUIRE_GPU=1 but ${e.message}`);
    console.warn(`\n!!! SKIPPING GPU TESTS: ${e.message}\n`);
    return undefined;
  });
  return shared;
}

export const gpu = await getGpu();
export const noGpu = gpu === undefined;
export const skipReason = () => reason;

afterAll(() => {
  if (gpu) releaseNodeGpu(gpu);
});

/** Largest |a - b| divided by the largest |b|: the error relative to the tensor's scale. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (!Number.isFinite(diff)) return Infinity;
  return scale === 0 ? diff : diff / scale;
}
