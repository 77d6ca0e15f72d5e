/** dawn.node candidates for acquireGpu: Vulkan first, then Dawn's OpenGL backend in compatibility mode. */
import { tmpdir } from 'node:os';
import { acquireGpu, type GpuCandidate, type GpuContext } from '../gpu/device.ts';

export const NODE_GPU_HINT =
  'install a Vulkan driver (Debian 12: mesa-vulkan-drivers from bookworm-backports, see README) or run with --backend cpu';

let dawn: Promise<typeof import('webgpu')> | undefined;

export async function nodeGpuCandidates(): Promise<GpuCandidate[]> {
  // Mesa warns on stderr without a runtime dir; the OpenGL path needs EGL without a display.
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  process.env.EGL_PLATFORM ??= 'surfaceless';
  dawn ??= import('webgpu');
  const { create, globals } = await dawn;
  Object.assign(globalThis, globals);
  return [
    { label: 'Vulkan', gpu: () => create([]) },
    { label: 'OpenGL (compatibility)', gpu: () => create(['backend=opengl']), options: { featureLevel: 'compatibility' } },
  ];
}

export async function acquireNodeGpu(): Promise<GpuContext> {
  return acquireGpu(await nodeGpuCandidates(), NODE_GPU_HINT);
}

/**
 * Destroys the device and drops our hold on dawn.node, whose background thread otherwise keeps
 * Node from exiting.
 */
export function releaseNodeGpu(ctx: GpuContext): void {
  ctx.device.destroy();
  (ctx as { gpu?: GPU }).gpu = undefined;
}
