/**
 * What every kernel module (src/gpu/kernels/<name>.ts, one per shaders/<name>.wgsl) is made of, and
 * the two things that run them: the pipeline cache (Kernels) and, for tests and benchmarks, a
 * runner that launches one kernel alone on buffers it owns (KernelRunner). GpuBackend runs the
 * same launches from its iteration plan (src/gpu/plan.ts), so a test of a kernel module tests the
 * host code training runs.
 *
 * A kernel module's launch function takes the kernel's operands (buffers, or the plan's named
 * buffers: anything with a byte `size`) and offsets, and returns a Launch: entry point, override
 * constants, the bindings in @binding order (each storage binding with the words the kernel
 * touches, each uniform struct packed), and the grid.
 */

export type KernelName =
  | 'matmul' | 'softmax_xent' | 'loss_sum' | 'column_sum' | 'embedding_grad' | 'optimizer' | 'sample' | 'sample_decode' | 'sample_draw'
  | 'cell_forward' | 'cell_backward' | 'input_gather' | 'dropout';

/** A buffer as a launch sees it: a GPUBuffer, or a buffer of the plan (its size in bytes). */
export interface Sized { readonly size: number }

// ---------------------------------------------------------------------------------------------
// Uniform structs, written once per kernel in WGSL's field order.

export type FieldSpec = 'u32' | 'f32' | { readonly vec4u32: number };
type Padding = `pad${string}`;
type FieldValue = number | ArrayLike<number>;
/** Every field but the padding must be given (a forgotten field would silently be 0). */
export type UniformValues<F extends string> =
  { [K in Exclude<F, Padding>]: FieldValue } & { [K in Extract<F, Padding>]?: FieldValue };

/**
 * A WGSL uniform struct: field names and types in declaration order. u32 and f32 take 4 bytes;
 * { vec4u32: n } is array<vec4<u32>, n>, 16-byte aligned. test/wgsl.test.ts holds each layout to
 * the struct its shader declares, so the two cannot drift.
 */
export class UniformLayout<const Fs extends Readonly<Record<string, FieldSpec>> = Readonly<Record<string, FieldSpec>>, F extends string = keyof Fs & string> {
  readonly offsets: Record<F, number>;
  /** The struct's size rounded up to 16 bytes. */
  readonly bytes: number;

  constructor(readonly fields: Fs) {
    let at = 0;
    const offsets = {} as Record<F, number>;
    for (const [name, spec] of Object.entries(fields) as [F, FieldSpec][]) {
      if (typeof spec === 'object') at = Math.ceil(at / 16) * 16;
      offsets[name] = at;
      at += typeof spec === 'object' ? 16 * spec.vec4u32 : 4;
    }
    this.offsets = offsets;
    this.bytes = Math.max(16, Math.ceil(at / 16) * 16);
  }

  pack(values: UniformValues<F>): ArrayBuffer {
    const data = new ArrayBuffer(this.bytes);
    const given = values as Partial<Record<F, FieldValue>>;
    for (const [name, spec] of Object.entries(this.fields) as [F, FieldSpec][]) {
      const v = given[name];
      if (v === undefined) continue;
      const at = this.offsets[name];
      if (typeof spec === 'object') new Uint32Array(data, at, 4 * spec.vec4u32).set(v as ArrayLike<number>);
      else if (spec === 'f32') new Float32Array(data, at, 1)[0] = v as number;
      else new Uint32Array(data, at, 1)[0] = v as number;
    }
    return data;
  }

  /** The fields of a packed struct (plan tests read the offsets a dispatch was given). */
  unpack(data: ArrayBuffer): Record<F, number | number[]> {
    const out = {} as Record<F, number | number[]>;
    for (const [name, spec] of Object.entries(this.fields) as [F, FieldSpec][]) {
      const at = this.offsets[name];
      if (typeof spec === 'object') out[name] = Array.from(new Uint32Array(data, at, 4 * spec.vec4u32));
      else out[name] = spec === 'f32' ? new Float32Array(data, at, 1)[0] : new Uint32Array(data, at, 1)[0];
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels, launches, bindings.

export interface KernelDef<S extends string = string> {
  readonly name: KernelName;
  /** The shader, its includes resolved (src/gpu/wgsl.ts). */
  readonly wgsl: string;
  /** The CPU function (or test twin) the kernel is held to, as 'file: function'. */
  readonly cpuTwin: string;
  /** The shader's bindings in @binding order, by their WGSL names. */
  readonly bindings: readonly S[];
  /** The uniform struct of each var<uniform> binding. */
  readonly uniforms: Readonly<Partial<Record<S, UniformLayout>>>;
  /** Every entry point the module's variant choice can select (test/wgsl.test.ts: no other exists). */
  readonly entryPoints: readonly string[];
}

export function defineKernel<const S extends string>(k: KernelDef<S>): KernelDef<S> {
  return k;
}

/** Words (4 bytes) of a buffer that a dispatch reads, or writes when `write`. */
export interface Region { offset: number; count: number; write?: boolean }

export const reads = (offset: number, count: number): Region => ({ offset, count });
export const writes = (offset: number, count: number): Region => ({ offset, count, write: true });

/**
 * One binding of a launch: a storage buffer bound whole (the kernel adds the offsets from its
 * uniforms, as binding offsets must be 256-byte aligned and offsets like t*B*H need not be),
 * with the words it touches; a uniform struct packed now; or a uniform buffer the caller
 * rewrites between submits (the optimizer's step, the dropout mask's iteration).
 */
export type Bound<T> = { buffer: T; touches: readonly Region[] } | { uniforms: ArrayBuffer };

/** A per-iteration uniform: packed now (a test), or a buffer written before each submit (training). */
export type UniformSource<T> = ArrayBuffer | { buffer: T };

export function uniformBinding<T>(u: UniformSource<T>): Bound<T> {
  return u instanceof ArrayBuffer ? { uniforms: u } : { buffer: u.buffer, touches: [] };
}

export interface Launch<T> {
  kernel: KernelDef;
  entryPoint: string;
  constants: Record<string, number>;
  /** In @binding order. */
  bindings: Bound<T>[];
  x: number;
  y: number;
}

/** The bindings named by the kernel's WGSL names, in its @binding order. */
export function bindAll<S extends string, T>(kernel: KernelDef<S>, named: Record<S, Bound<T>>): Bound<T>[] {
  return kernel.bindings.map((name) => named[name]);
}

/** Workgroup counts for n invocations of size wg, spilling into y past the per-dimension limit. */
export function grid1D(n: number, wg: number, maxPerDim = 65535): { x: number; y: number; perRow: number } {
  const groups = Math.max(1, Math.ceil(n / wg));
  const x = Math.min(groups, maxPerDim);
  const y = Math.ceil(groups / x);
  return { x, y, perRow: x * wg };
}

// ---------------------------------------------------------------------------------------------
// Pipelines.

/** Shader modules and pipelines, created once per kernel and set of override constants (creation costs milliseconds). */
export class Kernels {
  private modules = new Map<KernelName, GPUShaderModule>();
  private pipelines = new Map<string, GPUComputePipeline>();

  constructor(readonly device: GPUDevice) {}

  pipeline(kernel: KernelDef, constants: Record<string, number>, entryPoint: string): GPUComputePipeline {
    const key = `${kernel.name}:${entryPoint} ${JSON.stringify(constants)}`;
    let p = this.pipelines.get(key);
    if (!p) {
      let module = this.modules.get(kernel.name);
      if (!module) {
        module = this.device.createShaderModule({ label: kernel.name, code: kernel.wgsl });
        this.modules.set(kernel.name, module);
      }
      p = this.device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint, constants } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  bindGroup(pipeline: GPUComputePipeline, resources: GPUBufferBinding[], label?: string): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: resources.map((resource, binding) => ({ binding, resource })),
    });
  }
}

const perDevice = new WeakMap<GPUDevice, Kernels>();

/** One pipeline cache per device, shared by the tuner (src/gpu/tune.ts) and the backend, so a pipeline the tuner compiled is not compiled again. */
export function kernelsFor(device: GPUDevice): Kernels {
  let k = perDevice.get(device);
  if (!k) {
    k = new Kernels(device);
    perDevice.set(device, k);
  }
  return k;
}

// ---------------------------------------------------------------------------------------------
// Running one kernel alone (test/kernels.test.ts, test/cell-kernels.test.ts, bench/kernels.ts).

/** A bound dispatch, ready to encode. */
export interface KernelDispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  x: number;
  y: number;
}

/** Creates (and owns) buffers, launches kernels on them, waits for them, reads results back. */
export class KernelRunner {
  readonly kernels: Kernels;
  private owned: GPUBuffer[] = [];

  constructor(readonly device: GPUDevice, kernels?: Kernels) {
    this.kernels = kernels ?? new Kernels(device);
  }

  get maxPerDim(): number {
    return this.device.limits.maxComputeWorkgroupsPerDimension;
  }

  /** A storage buffer holding `data`, or `data` zeroed 4-byte words. */
  storage(data: Float32Array | Uint32Array | number, label = 'data'): GPUBuffer {
    const bytes = typeof data === 'number' ? data * 4 : data.byteLength;
    const buffer = this.device.createBuffer({
      label, size: Math.max(16, Math.ceil(bytes / 4) * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    if (typeof data !== 'number' && data.length > 0) this.device.queue.writeBuffer(buffer, 0, data);
    this.owned.push(buffer);
    return buffer;
  }

  uniform(data: ArrayBuffer, label = 'uniforms'): GPUBuffer {
    const buffer = this.device.createBuffer({ label, size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(buffer, 0, data);
    this.owned.push(buffer);
    return buffer;
  }

  /** The launch bound to its buffers, each packed uniform struct in a buffer of its own. */
  launch(l: Launch<GPUBuffer>): KernelDispatch {
    const pipeline = this.kernels.pipeline(l.kernel, l.constants, l.entryPoint);
    const resources = l.bindings.map((b) => ({ buffer: 'uniforms' in b ? this.uniform(b.uniforms, `${l.kernel.name} uniforms`) : b.buffer }));
    return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, resources, l.kernel.name), x: l.x, y: l.y };
  }

  encode(pass: GPUComputePassEncoder, list: KernelDispatch[]): void {
    for (const d of list) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.x, d.y);
    }
  }

  /** Encodes `list` `repeat` times in one compute pass, submits, and waits until the GPU is done. */
  async run(list: KernelDispatch[], repeat = 1): Promise<void> {
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let r = 0; r < repeat; r++) this.encode(pass, list);
    pass.end();
    this.device.queue.submit([enc.finish()]);
    await this.device.queue.onSubmittedWorkDone();
  }

  write(buffer: GPUBuffer, data: Float32Array | Uint32Array, offsetWords = 0): void {
    this.device.queue.writeBuffer(buffer, offsetWords * 4, data);
  }

  /** Copies `count` words from `offset` (in words) of a buffer back to the CPU. */
  async read(buffer: GPUBuffer, offset = 0, count?: number): Promise<Float32Array> {
    const n = count ?? buffer.size / 4 - offset;
    const staging = this.device.createBuffer({ size: Math.max(4, n * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, offset * 4, staging, 0, n * 4);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    return out;
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned = [];
  }
}
