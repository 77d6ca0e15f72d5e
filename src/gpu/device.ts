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
  /**
   * Runs the synchronous part of creating the GPU object and requesting an adapter, handing back
   * what native code printed meanwhile (dawn.node writes its warnings straight to stderr).
   */
  capture?: <T>(call: () => T) => { value: T; printed: string };
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
  /** One line each: why an earlier candidate gave no adapter, and what native code printed that a user may act on. */
  notes: string[];
  /**
   * Who the adapter is, for the kernel tuner's cache (src/gpu/tuner.ts): every identifying field of
   * its GPUAdapterInfo (vendor, architecture, device, description: the driver's version where the
   * implementation tells it) and the backend it came through.
   */
  adapterKey: string;
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
    device, adapterName: describeAdapter(info, 'WebGPU'), limits: device.limits, notes: [], adapterKey: adapterKeyOf(info, 'WebGPU'),
    isFallback: SOFTWARE_ADAPTER.test(`${info?.description} ${info?.device} ${info?.architecture}`),
  };
}

/**
 * Native messages as one line each, without those that say nothing a user can act on: Dawn lowers
 * two limits on every Vulkan driver that reports huge ones (lavapipe, NVIDIA), and our kernels
 * use neither. A message's indented continuation lines ("at ...", "- While ...") are dropped.
 */
export function nativeMessages(printed: string): string[] {
  return printed
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s/.test(l) && !/artificially reduced/.test(l))
    .map((l) => l.replace(/^Warning: /, '').trim());
}

/** The adapter's identity as one string: its GPUAdapterInfo fields and our backend label. */
export function adapterKeyOf(info: GPUAdapterInfo | undefined, label: string): string {
  const i = (info ?? {}) as Partial<Record<string, unknown>>;
  const fields = ['vendor', 'architecture', 'device', 'description', 'driver', 'subgroupMinSize', 'subgroupMaxSize']
    .filter((f) => i[f] !== undefined && i[f] !== '').map((f) => `${f}=${String(i[f])}`);
  return [...fields, `via=${label}`].join('; ');
}

export async function acquireGpu(candidates: GpuCandidate[], hint: string): Promise<GpuContext> {
  const tried: string[] = [];
  const notes: string[] = [];
  for (const c of candidates) {
    let adapter: GPUAdapter | null = null;
    let gpu: GPU | undefined;
    const messages: string[] = [];
    const run = <T>(call: () => T): T => {
      if (!c.capture) return call();
      const { value, printed } = c.capture(call);
      messages.push(...nativeMessages(printed));
      return value;
    };
    try {
      gpu = run(() => c.gpu());
      adapter = await run(() => gpu!.requestAdapter(c.options as GPURequestAdapterOptions));
    } catch {
      adapter = null;
    }
    if (!adapter) {
      // The driver's own words are the reason; the most telling line is the one that failed.
      const reason = [/no drivers|not found|couldn't load/i, /failed with/i, /fail|cannot/i]
        .map((re) => messages.find((m) => re.test(m)))
        .find((m) => m !== undefined) ?? messages[0];
      tried.push(reason ? `${c.label}: ${reason}` : c.label);
      continue;
    }
    if (tried.length > 0) notes.push(`no adapter from ${tried.join('; ')}; using ${c.label}`);
    notes.push(...messages);
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
    return {
      gpu: gpu!, device, adapterName: describeAdapter(info, c.label), isFallback: fallback, limits: device.limits, notes,
      adapterKey: adapterKeyOf(info, c.label),
    };
  }
  throw new NoAdapterError(`no WebGPU adapter found (tried ${tried.join('; ') || 'nothing'}); ${hint}`);
}

/**
 * The context with a smaller storage-binding limit than the device's (never a larger one): the
 * plan then takes the split path (src/gpu/plan.ts) as on an adapter with that limit. For tests and
 * for trying that path on a roomy adapter (the CLI's --max-binding).
 */
export function withBindingLimit(ctx: GpuContext, bytes: number): GpuContext {
  const limits: Record<string, number> = {};
  // WebIDL attributes live on the prototype: for..in sees them where a spread would not.
  for (const k in ctx.limits) limits[k] = (ctx.limits as unknown as Record<string, number>)[k];
  limits.maxStorageBufferBindingSize = Math.min(bytes, ctx.limits.maxStorageBufferBindingSize);
  return { ...ctx, limits: limits as unknown as GPUSupportedLimits };
}
