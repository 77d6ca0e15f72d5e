/**
 * GPU access for tests. Without an adapter a GPU test skips with a loud reason on a user's
 * machine; with REQUIRE_GPU=1 (CI sets it) a missing adapter fails the run instead, so CI can
 * never pass with the GPU tests silently skipped.
 *
 * WEBGPU_BACKEND=vulkan or WEBGPU_BACKEND=opengl (read by src/node/webgpu.ts) restricts the
 * adapter to that dawn.node backend; CI runs the parity suite a second time with opengl. A test
 * file then fails at once if the device it got is not that backend's, or if the value is misspelt.
 */
import { afterAll, expect } from 'vitest';
import { acquireNodeGpu, forcedNodeBackend, releaseNodeGpu, type NodeBackend } from '../src/node/webgpu.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import type { TensorSlot } from '../src/model/layout.ts';

let shared: Promise<GpuContext | undefined> | undefined;
let reason = '';

export const gpuRequired = process.env.REQUIRE_GPU === '1';
/** The backend WEBGPU_BACKEND asks for; undefined when unset (any adapter will do). */
export const forcedBackend: NodeBackend | undefined = forcedNodeBackend();

/**
 * Whether `ctx` is the backend that was asked for, from two independent signs: the adapter's name
 * (the driver's description and our label, e.g. "OpenGL version 4.5 (Core Profile) Mesa ... via
 * OpenGL (compatibility)") and the device's feature level (a compatibility-mode device, which is
 * all Dawn's OpenGL backend offers, lacks the 'core-features-and-limits' feature).
 */
export function backendMismatch(ctx: GpuContext, backend: NodeBackend | undefined): string | undefined {
  if (!backend) return undefined;
  const core = ctx.device.features.has('core-features-and-limits' as GPUFeatureName);
  const named = backend === 'opengl' ? /OpenGL/.test(ctx.adapterName) : /Vulkan/.test(ctx.adapterName);
  const levelOk = backend === 'opengl' ? !core : core;
  if (named && levelOk) return undefined;
  return `WEBGPU_BACKEND=${backend} but the device is "${ctx.adapterName}" (${core ? 'core' : 'compatibility'} feature level)`;
}

/** One device per test file; undefined (after a loud warning) when none exists and none is required. */
export function getGpu(): Promise<GpuContext | undefined> {
  shared ??= acquireNodeGpu().then(
    (ctx) => {
      // Thrown here, outside the "no adapter" handler below: the wrong adapter never skips.
      const wrong = backendMismatch(ctx, forcedBackend);
      if (wrong) throw new Error(wrong);
      return ctx;
    },
    (e: Error) => {
      reason = e.message;
      if (gpuRequired) throw new Error(`REQUIRE_GPU=1 but ${e.message}`);
      console.warn(`\n!!! SKIPPING GPU TESTS: ${e.message}\n`);
      return undefined;
    },
  );
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

/** A named stretch of a flat array: a parameter tensor (paramLayout's slots) or one layer's state. */
export type Part = Pick<TensorSlot, 'name' | 'offset' | 'size'>;

/** The per-layer blocks of a state array [L*B*H] (h, c, dh0, dc0), named "layer l". */
export function layerParts(layers: number, blockSize: number): Part[] {
  return Array.from({ length: layers }, (_, l) => ({ name: `layer ${l}`, offset: l * blockSize, size: blockSize }));
}

/**
 * relError of each part on its own, so that a small tensor (a bias, the bottom layer's dh0) is
 * held to its own scale instead of hiding behind the largest tensor of the array. Every element of
 * the arrays must belong to a part or be padding; padding must be equal on both sides.
 */
export function relErrorPerPart(a: ArrayLike<number>, b: ArrayLike<number>, parts: Part[]): { name: string; error: number }[] {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  const covered = new Uint8Array(a.length);
  const out = parts.map((p) => {
    if (p.offset + p.size > a.length) throw new Error(`${p.name} ends at ${p.offset + p.size}, past the array's ${a.length}`);
    covered.fill(1, p.offset, p.offset + p.size);
    const view = (x: ArrayLike<number>) => Array.prototype.slice.call(x, p.offset, p.offset + p.size) as number[];
    return { name: p.name, error: relError(view(a), view(b)) };
  });
  let padding = 0;
  for (let i = 0; i < a.length; i++) if (!covered[i] && !Object.is(a[i], b[i])) padding = Infinity;
  if (covered.includes(0)) out.push({ name: '(padding between tensors)', error: padding });
  return out;
}

/** One expectation per part, each at `tol` and named after its part, so a failure says which tensor. */
export function expectPerPart(a: ArrayLike<number>, b: ArrayLike<number>, parts: Part[], tol: number, what: string): void {
  for (const { name, error } of relErrorPerPart(a, b, parts)) expect(error, `${what}: ${name}`).toBeLessThan(tol);
}
