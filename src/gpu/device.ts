/**
 * Finding a WebGPU device, in Node (dawn.node, see src/node/webgpu.ts) and in the browser
 * (navigator.gpu), from one function: try each candidate in order, ask for the largest limits the
 * adapter offers (our buffers and the sampler's workgroup array can be big), and report what we got.
 */

export interface GpuCandidate {
  /** Which API/backend this is, for messages: "Vulkan", "OpenGL (compatibility)". */
  label: string;
  /** Created only when tried (each dawn.node instance starts its own backend). */
  gpu: () => GPU;
  options?: GPURequestAdapterOptions & { featureLevel?: string };
}

export interface GpuContext {
  /**
   * Held so the implementation stays alive: dawn.node stops serving promises once its GPU object
   * is collected. Absent for a device a library caller handed in (the caller holds its own).
   */
  gpu?: GPU;
  device: GPUDevice;
  /** e.g. "llvmpipe (LLVM 19.1.7, 256 bits) via Vulkan". */
  adapterName: string;
  /** A software rasteriser (lavapipe, SwiftShader) or otherwise a fallback adapter. */
  isFallback: boolean;
  limits: GPUSupportedLimits;
}

export class NoAdapterError extends Error {}

/** Limits worth raising above WebGPU's defaults when the adapter allows. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
  // Compatibility-mode adapters (Dawn on OpenGL) default these to 128; our kernels use 256.
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
] as const;

/** The driver's description or device name; else vendor and architecture ("google swiftshader": Chromium's SwiftShader names nothing else). */
export function describeAdapter(info: GPUAdapterInfo | undefined, label: string): string {
  const name = info?.description || info?.device || [info?.vendor, info?.architecture].filter((s) => s).join(' ');
  return `${name || 'unknown adapter'} via ${label}`;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software/i;

/** A context around a device someone else acquired (a library caller's): described from its adapter info. */
export function wrapDevice(device: GPUDevice): GpuContext {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return {
    device, adapterName: describeAdapter(info, 'WebGPU'), limits: device.limits,
    isFallback: SOFTWARE_ADAPTER.test(`${info?.description} ${info?.device} ${info?.architecture}`),
  };
}

export async function acquireGpu(candidates: GpuCandidate[], hint: string): Promise<GpuContext> {
  const tried: string[] = [];
  for (const c of candidates) {
    let adapter: GPUAdapter | null = null;
    let gpu: GPU | undefined;
    try {
      gpu = c.gpu();
      adapter = await gpu.requestAdapter(c.options as GPURequestAdapterOptions);
    } catch {
      adapter = null;
    }
    if (!adapter) {
      tried.push(c.label);
      continue;
    }
    const requiredLimits: Record<string, number> = {};
    for (const name of WANTED_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[name];
      if (typeof v === 'number') requiredLimits[name] = v;
    }
    const device = await adapter.requestDevice({ requiredLimits });
    const info = adapter.info;
    const fallback = Boolean((info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
      SOFTWARE_ADAPTER.test(`${info?.description} ${info?.device} ${info?.architecture}`);
    return { gpu: gpu!, device, adapterName: describeAdapter(info, c.label), isFallback: fallback, limits: device.limits };
  }
  throw new NoAdapterError(`no WebGPU adapter found (tried ${tried.join(', ') || 'nothing'}); ${hint}`);
}
