/**
 * dawn.node candidates for acquireGpu: Vulkan first, then Dawn's OpenGL backend in compatibility
 * mode. WEBGPU_BACKEND=vulkan or WEBGPU_BACKEND=opengl keeps only that candidate (CI runs the
 * parity suite a second time on the OpenGL adapter this way); unset or empty tries both.
 * WEBGPU_MAX_BINDING=<bytes> (suffix K, M or G for KiB, MiB, GiB) lowers the storage-binding limit,
 * so that the split plan of an adapter with that limit (src/gpu/plan.ts) can be tried on this one.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireGpu, withBindingLimit, type GpuCandidate, type GpuContext } from '../gpu/device.ts';
import { formatBytes } from '../gpu/memory.ts';

export const NODE_GPU_HINT =
  'install a Vulkan driver (Debian 12: mesa-vulkan-drivers from bookworm-backports, see README) or run with --backend cpu';

/** A WEBGPU_BACKEND or WEBGPU_MAX_BINDING value that means nothing: worded for the user. */
export class GpuEnvError extends Error {}

/** The values WEBGPU_BACKEND accepts, each naming one dawn.node backend. */
export const NODE_BACKENDS = ['vulkan', 'opengl'] as const;
export type NodeBackend = (typeof NODE_BACKENDS)[number];

/** WEBGPU_BACKEND, checked: undefined when unset or empty, an error naming the choices otherwise. */
export function forcedNodeBackend(value = process.env.WEBGPU_BACKEND): NodeBackend | undefined {
  const v = value?.trim().toLowerCase();
  if (!v) return undefined;
  if ((NODE_BACKENDS as readonly string[]).includes(v)) return v as NodeBackend;
  throw new GpuEnvError(`WEBGPU_BACKEND=${value} is not one of ${NODE_BACKENDS.join(', ')} (unset it to try both)`);
}

/** WEBGPU_MAX_BINDING in bytes, checked: undefined when unset or empty. */
export function forcedBindingLimit(value = process.env.WEBGPU_MAX_BINDING): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(v);
  const bytes = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (!(bytes >= 256)) throw new GpuEnvError(`WEBGPU_MAX_BINDING=${value} is not a size in bytes of at least 256 (e.g. 65536, 64K, 16M)`);
  return bytes;
}

let dawn: Promise<typeof import('webgpu')> | undefined;

interface Libc {
  dup(fd: number): number;
  dup2(from: number, to: number): number;
  close(fd: number): number;
}
let libc: Libc | null | undefined;

/**
 * dup/dup2 from the C library through koffi (a prebuilt FFI): Node has no way to point file
 * descriptor 2 elsewhere, and dawn.node prints its warnings there from native code. null where
 * koffi has no build for the platform: the messages then reach the terminal as they are.
 */
function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load(process.platform === 'darwin' ? 'libc.dylib' : 'libc.so.6');
    libc = { dup: lib.func('int dup(int)'), dup2: lib.func('int dup2(int, int)'), close: lib.func('int close(int)') };
  } catch {
    libc = null;
  }
  return libc;
}

/**
 * Runs `call` with stderr (fd 2) pointed at a temporary file, and returns what was written there:
 * the native messages of creating a Dawn instance and requesting an adapter, which Dawn prints
 * synchronously. Node's own writes to stderr in that window are captured too, and there are none.
 */
export function captureStderr<T>(call: () => T): { value: T; printed: string } {
  const c = process.platform === 'win32' ? null : loadLibc();
  if (!c) return { value: call(), printed: '' };
  const dir = mkdtempSync(join(tmpdir(), 'rnn-stderr-'));
  const file = join(dir, 'stderr');
  const fd = openSync(file, 'w+');
  const saved = c.dup(2);
  try {
    if (saved < 0 || c.dup2(fd, 2) < 0) return { value: call(), printed: '' };
    const value = call();
    return { value, printed: readFileSync(file, 'utf8') };
  } finally {
    if (saved >= 0) {
      c.dup2(saved, 2);
      c.close(saved);
    }
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Loads dawn.node and puts WebGPU's globals (GPUBufferUsage, ...) on globalThis, as a browser has them. */
export async function nodeGpuGlobals(): Promise<typeof import('webgpu')> {
  // Mesa warns on stderr without a runtime dir; the OpenGL path needs EGL without a display.
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  process.env.EGL_PLATFORM ??= 'surfaceless';
  dawn ??= import('webgpu');
  const webgpu = await dawn;
  Object.assign(globalThis, webgpu.globals);
  return webgpu;
}

export async function nodeGpuCandidates(): Promise<GpuCandidate[]> {
  const only = forcedNodeBackend();
  const { create } = await nodeGpuGlobals();
  const all: (GpuCandidate & { backend: NodeBackend })[] = [
    // Unforced, Dawn picks its platform's default (Vulkan here, Metal or D3D12 elsewhere).
    { backend: 'vulkan', label: 'Vulkan', gpu: () => create(only === 'vulkan' ? ['backend=vulkan'] : []), capture: captureStderr },
    {
      backend: 'opengl', label: 'OpenGL (compatibility)', gpu: () => create(['backend=opengl']),
      options: { featureLevel: 'compatibility' }, capture: captureStderr,
    },
  ];
  return all.filter((c) => !only || c.backend === only).map(({ backend: _, ...c }) => c);
}

export async function acquireNodeGpu(): Promise<GpuContext> {
  const only = forcedNodeBackend();
  const cap = forcedBindingLimit();
  const ctx = await acquireGpu(await nodeGpuCandidates(), only ? `WEBGPU_BACKEND=${only} allows no other; ${NODE_GPU_HINT}` : NODE_GPU_HINT);
  if (cap === undefined) return ctx;
  const capped = withBindingLimit(ctx, cap);
  capped.notes = [...ctx.notes, `storage bindings limited to ${formatBytes(capped.limits.maxStorageBufferBindingSize)} (WEBGPU_MAX_BINDING)`];
  return capped;
}

/**
 * Destroys the device and drops our hold on dawn.node, whose background thread otherwise keeps
 * Node from exiting.
 */
export function releaseNodeGpu(ctx: GpuContext): void {
  ctx.device.destroy();
  (ctx as { gpu?: GPU }).gpu = undefined;
}
