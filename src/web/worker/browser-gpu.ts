/**
 * WebGPU in the browser (worker side): which adapters exist, and a device on the chosen one
 * through the engine's own acquireGpu (src/gpu/device.ts), the same function the CLI uses.
 *
 * Candidates are navigator.gpu with default options, then with featureLevel 'compatibility'.
 * Both are probed: on a real GPU both requests usually return the same adapter (listed once);
 * on machines without one they can differ (here, Chromium's SwiftShader for the first, ANGLE on
 * OpenGL ES for the second, about four times faster), so the page lists both and picks the
 * hardware one, then the one that does not call itself a fallback.
 */
import { acquireGpu, type GpuCandidate, type GpuContext } from '../../gpu/device.ts';
import type { AdapterOption, LimitsSummary } from '../protocol.ts';
import type { GpuProvider } from './backends.ts';

export const BROWSER_GPU_HINT = 'a recent Chrome, Edge, Safari or Firefox with WebGPU enabled has it';

const CANDIDATES: { label: string; options?: GPURequestAdapterOptions & { featureLevel?: string } }[] = [
  { label: 'WebGPU' },
  { label: 'WebGPU (compatibility)', options: { featureLevel: 'compatibility' } },
];

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render/i;

/**
 * Compute limits the kernels need above the defaults. Compatibility mode defaults to 128
 * invocations per workgroup (core: 256), and the engine's kernels use 256, so on an adapter that
 * offers more we ask for what it offers. acquireGpu (src/gpu/device.ts) does not ask for these
 * yet, so the adapter is wrapped to add them to its requestDevice call.
 */
const COMPUTE_LIMITS = [
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ',
] as const;

function withComputeLimits(adapter: GPUAdapter): GPUAdapter {
  return new Proxy(adapter, {
    get(target, prop) {
      if (prop === 'requestDevice') {
        return (desc?: GPUDeviceDescriptor) => {
          const extra: Record<string, number> = {};
          for (const name of COMPUTE_LIMITS) {
            const v = (target.limits as unknown as Record<string, number>)[name];
            if (typeof v === 'number') extra[name] = v;
          }
          return target.requestDevice({ ...desc, requiredLimits: { ...extra, ...(desc?.requiredLimits ?? {}) } });
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** navigator.gpu, with adapters that ask for the compute limits above. */
function browserGpu(): GPU {
  const gpu = navigator.gpu;
  return {
    requestAdapter: async (options?: GPURequestAdapterOptions) => {
      const a = await gpu.requestAdapter(options);
      return a ? withComputeLimits(a) : null;
    },
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
    get wgslLanguageFeatures() {
      return gpu.wgslLanguageFeatures;
    },
  } as GPU;
}

function candidate(id: number): GpuCandidate {
  const c = CANDIDATES[id]!;
  return { label: c.label, gpu: browserGpu, options: c.options };
}

/** The WebGL renderer, which names the hardware (or llvmpipe) under an adapter that gives no name. */
export function webglRenderer(): string | undefined {
  try {
    if (typeof OffscreenCanvas === 'undefined') return undefined;
    const canvas = new OffscreenCanvas(1, 1);
    const gl = (canvas.getContext('webgl2') ?? canvas.getContext('webgl')) as WebGLRenderingContext | null;
    if (!gl) return undefined;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? '');
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return name || undefined;
  } catch {
    return undefined;
  }
}

function summarize(limits: GPUSupportedLimits): LimitsSummary {
  return {
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
    maxBufferSize: limits.maxBufferSize,
    maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
  };
}

export class BrowserGpu implements GpuProvider {
  private contexts = new Map<number, GpuContext>();
  private lost = new WeakSet<GpuContext>();

  async probe(): Promise<{ adapters: AdapterOption[]; error?: string }> {
    if (typeof navigator === 'undefined' || !navigator.gpu) {
      return { adapters: [], error: `this browser does not offer WebGPU here (navigator.gpu is missing); ${BROWSER_GPU_HINT}` };
    }
    const found: AdapterOption[] = [];
    const keys = new Set<string>();
    let gl: string | undefined | null = null;
    for (let id = 0; id < CANDIDATES.length; id++) {
      const c = CANDIDATES[id]!;
      let adapter: GPUAdapter | null = null;
      try {
        adapter = await navigator.gpu.requestAdapter(c.options as GPURequestAdapterOptions);
      } catch {
        adapter = null;
      }
      if (!adapter) continue;
      const info = adapter.info;
      const reportedFallback = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter);
      // SwiftShader gives only vendor and architecture ("google", "swiftshader"): show both.
      const name = info.description || info.device || [info.vendor, info.architecture].filter((x) => x).join(' ');
      const limits = summarize(adapter.limits);
      const key = JSON.stringify([info.vendor, info.architecture, info.device, info.description, reportedFallback, limits]);
      if (keys.has(key)) continue;
      keys.add(key);
      let glRenderer: string | undefined;
      if (!name && !reportedFallback) {
        if (gl === null) gl = webglRenderer();
        glRenderer = gl;
      }
      const software = reportedFallback || SOFTWARE.test(`${name} ${info.architecture} ${glRenderer ?? ''}`);
      found.push({ id, label: c.label, name, reportedFallback, software, glRenderer, limits });
    }
    found.sort((a, b) => Number(a.software) - Number(b.software) || Number(a.reportedFallback) - Number(b.reportedFallback) || a.id - b.id);
    if (found.length === 0) {
      return { adapters: [], error: `navigator.gpu gave no adapter (WebGPU may be switched off or the GPU blocklisted); ${BROWSER_GPU_HINT}` };
    }
    return { adapters: found };
  }

  async acquire(adapterId: number): Promise<GpuContext> {
    const have = this.contexts.get(adapterId);
    if (have && !this.lost.has(have)) return have;
    if (!CANDIDATES[adapterId]) throw new Error(`no adapter ${adapterId}`);
    const ctx = await acquireGpu([candidate(adapterId)], BROWSER_GPU_HINT);
    void ctx.device.lost.then(() => this.lost.add(ctx));
    this.contexts.set(adapterId, ctx);
    return ctx;
  }
}
