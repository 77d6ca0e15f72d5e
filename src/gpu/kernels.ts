/**
 * The WGSL kernels and their pipelines. Each shaders/X.wgsl has a CPU twin (named in its header)
 * and a parity test in test/kernels.test.ts. Pipelines are created once per set of override
 * constants and cached, since creation costs milliseconds.
 */
import matmulWgsl from '../../shaders/matmul.wgsl?raw';
import softmaxXentWgsl from '../../shaders/softmax_xent.wgsl?raw';
import lossSumWgsl from '../../shaders/loss_sum.wgsl?raw';
import columnSumWgsl from '../../shaders/column_sum.wgsl?raw';
import embeddingGradWgsl from '../../shaders/embedding_grad.wgsl?raw';
import optimizerWgsl from '../../shaders/optimizer.wgsl?raw';
import sampleWgsl from '../../shaders/sample.wgsl?raw';
import cellForwardWgsl from '../../shaders/cell_forward.wgsl?raw';
import cellBackwardWgsl from '../../shaders/cell_backward.wgsl?raw';
import inputGatherWgsl from '../../shaders/input_gather.wgsl?raw';
import dropoutWgsl from '../../shaders/dropout.wgsl?raw';
import { composeWgsl } from './wgsl.ts';

/** Each kernel's shader with its includes of shaders/lib resolved (src/gpu/wgsl.ts). */
export const SHADERS = {
  matmul: composeWgsl(matmulWgsl),
  softmax_xent: composeWgsl(softmaxXentWgsl),
  loss_sum: composeWgsl(lossSumWgsl),
  column_sum: composeWgsl(columnSumWgsl),
  embedding_grad: composeWgsl(embeddingGradWgsl),
  optimizer: composeWgsl(optimizerWgsl),
  sample: composeWgsl(sampleWgsl),
  cell_forward: composeWgsl(cellForwardWgsl),
  cell_backward: composeWgsl(cellBackwardWgsl),
  input_gather: composeWgsl(inputGatherWgsl),
  dropout: composeWgsl(dropoutWgsl),
} as const;

/** lib/cell.wgsl's CELL override (its CELL_RNN, CELL_LSTM, CELL_GRU; test/wgsl.test.ts checks), and the sequences x units each invocation owns. */
export const CELL_CODE = { rnn: 0, lstm: 1, gru: 2 } as const;
export const CELL_WG = 64;
const GATE_COUNT = { rnn: 1, lstm: 4, gru: 3 } as const;

/**
 * Sequences each invocation of cell_forward / cell_backward owns: 8 (each weight loaded serves 8;
 * 23-37% faster per step than 4 at B = 32 on lavapipe), or for smaller batches the batch rounded
 * up to 1, 2 or 4, so that no invocation computes clamped copies of the last sequence.
 */
export function cellRows(B: number): number {
  return B >= 5 ? 8 : B >= 3 ? 4 : Math.max(1, B);
}

/**
 * Sequences x units each invocation owns: forward, up to 16 accumulators per sequence spread over
 * the gates in whole vec4s of units (rnn 16 units, lstm 4, gru 4); backward, 16 units.
 */
export function cellBlock(kernel: 'cell_forward' | 'cell_backward', cell: keyof typeof CELL_CODE, B: number): { rows: number; units: number } {
  return { rows: cellRows(B), units: kernel === 'cell_forward' ? Math.floor(16 / GATE_COUNT[cell] / 4) * 4 : 16 };
}

/** The pipeline constants of cell_forward / cell_backward for a cell and batch size. */
export function cellConstants(cell: keyof typeof CELL_CODE, B: number): Record<string, number> {
  return { CELL: CELL_CODE[cell], WG: CELL_WG, ROWS: cellRows(B) };
}

/**
 * main_v4 (W_hh read as vec4s) when H and the offset of W_hh (in params for cell_backward, of W_hh^T
 * in whhT for cell_forward) are multiples of 4 and the buffer holds it plus the 16 floats past it
 * that an edge block may read (and never stores).
 */
export function cellEntryPoint(buffer: GPUBuffer, H: number, offWhh: number, cell: keyof typeof CELL_CODE): 'main' | 'main_v4' {
  const end = offWhh + GATE_COUNT[cell] * H * H + 16;
  return H % 4 === 0 && offWhh % 4 === 0 && buffer.size >= 4 * end ? 'main_v4' : 'main';
}

export type KernelName = keyof typeof SHADERS;

/**
 * matmul.wgsl's entry points and the block of C each invocation computes (rows = columns = block),
 * so a dispatch covers N with ceil(N / (block * wgX)) workgroups and M with ceil(M / (block * wgY)).
 */
export const MATMUL_VARIANTS = {
  /** Register-blocked 8x8, scalar loads: any layout. */
  main: { entryPoint: 'main', rows: 8, cols: 8 },
  /** 8x16 with op(B) read and accumulated as vec4s: row-major B, offB and ldb multiples of 4. */
  main_vb: { entryPoint: 'main_vb', rows: 8, cols: 16 },
  /** main_vb with op(A) read as vec4s too: transposed A, offA and lda multiples of 4. */
  main_vab: { entryPoint: 'main_vab', rows: 8, cols: 16 },
} as const;
export type MatmulVariant = keyof typeof MATMUL_VARIANTS;

/** Launch parameters of one matmul: entry point ('auto': matmulVariantFor) and workgroup shape. */
export interface MatmulTiling {
  variant: MatmulVariant | 'auto';
  wgX: number;
  wgY: number;
}

export const DEFAULT_MATMUL_TILING: MatmulTiling = { variant: 'auto', wgX: 8, wgY: 8 };

/** What matmulVariantFor needs to know about a product (GpuBackend's MatmulSpec and MatmulArgs both fit). */
export interface MatmulLayout {
  M: number; N: number; K: number;
  transA?: boolean; transB?: boolean;
  A?: GPUBuffer; offA?: number; lda: number;
  B: GPUBuffer; offB?: number; ldb: number;
  bias?: number;
}

/**
 * Whether a vec4 view can read an operand: offset and leading dimension multiples of 4, and the
 * buffer holding whole vec4s up to the operand's end (a vec4 array's length rounds the buffer
 * size down, so a tail of 1-3 floats is out of its reach).
 */
function vec4Readable(buffer: GPUBuffer | undefined, off: number, ld: number, rows: number): boolean {
  return buffer !== undefined && off % 4 === 0 && ld % 4 === 0 && buffer.size >= 4 * (off + rows * ld);
}

/**
 * The fastest register-blocked entry point whose vec4 loads this product's layout allows:
 * main_vab for transposed A and row-major B (the weight gradients), main_vb for row-major B,
 * main otherwise.
 */
export function matmulVariantFor(s: MatmulLayout): MatmulVariant {
  if (s.transB) return 'main';
  if (!vec4Readable(s.B, s.offB ?? 0, s.ldb, s.K)) return 'main';
  // main_vb reads the bias through the vec4 view too.
  if (s.bias !== undefined && s.B.size < 4 * (Math.ceil((s.bias + s.N) / 4) * 4)) return 'main';
  if (s.transA && vec4Readable(s.A, s.offA ?? 0, s.lda, s.K)) return 'main_vab';
  return 'main_vb';
}

export class Kernels {
  private modules = new Map<KernelName, GPUShaderModule>();
  private pipelines = new Map<string, GPUComputePipeline>();
  constructor(readonly device: GPUDevice) {}

  module(name: KernelName): GPUShaderModule {
    let m = this.modules.get(name);
    if (!m) {
      m = this.device.createShaderModule({ label: name, code: SHADERS[name] });
      this.modules.set(name, m);
    }
    return m;
  }

  pipeline(name: KernelName, constants: Record<string, number> = {}, entryPoint = 'main'): GPUComputePipeline {
    const key = `${name}:${entryPoint} ${JSON.stringify(constants)}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.device.createComputePipeline({
        label: key,
        layout: 'auto',
        compute: { module: this.module(name), entryPoint, constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  bindGroup(pipeline: GPUComputePipeline, buffers: (GPUBuffer | GPUBufferBinding)[], label?: string): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((b, binding) => ({ binding, resource: 'buffer' in b ? b : { buffer: b } })),
    });
  }
}

/** Workgroup counts for n invocations of size wg, spilling into y past the per-dimension limit. */
export function grid1D(n: number, wg: number, maxPerDim = 65535): { x: number; y: number; perRow: number } {
  const groups = Math.max(1, Math.ceil(n / wg));
  const x = Math.min(groups, maxPerDim);
  const y = Math.ceil(groups / x);
  return { x, y, perRow: x * wg };
}

// ---------------------------------------------------------------------------------------------
// Running one kernel alone (parity tests in test/kernels.test.ts, bench/kernels.ts): buffers in,
// one dispatch, read back. Each builder packs the kernel's uniforms exactly as GpuBackend does.
// ---------------------------------------------------------------------------------------------

/** A bound dispatch, ready to encode. */
export interface KernelDispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  x: number;
  y: number;
}

/** Creates (and owns) buffers, encodes dispatches, waits for them, reads results back. */
export class KernelRunner {
  readonly kernels: Kernels;
  private owned: GPUBuffer[] = [];
  private spareBuffer: GPUBuffer | undefined;

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

  uniform(data: ArrayBuffer | Uint32Array, label = 'uniforms'): GPUBuffer {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const buffer = this.device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes.byteLength / 16) * 16), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(buffer, 0, bytes);
    this.owned.push(buffer);
    return buffer;
  }

  /** A small read-only buffer for bindings a kernel variant does not read. */
  spare(): GPUBuffer {
    this.spareBuffer ??= this.storage(4, 'spare');
    return this.spareBuffer;
  }

  dispatch(pipeline: GPUComputePipeline, buffers: GPUBuffer[], x: number, y = 1): KernelDispatch {
    return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, buffers), x, y };
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

  async readU32(buffer: GPUBuffer, offset = 0, count?: number): Promise<Uint32Array> {
    const f = await this.read(buffer, offset, count);
    return new Uint32Array(f.buffer);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned = [];
    this.spareBuffer = undefined;
  }
}

/** One matmul.wgsl product; offsets and leading dimensions in floats, as in GpuBackend. */
export interface MatmulArgs {
  M: number; N: number; K: number;
  transA?: boolean; transB?: boolean;
  A: GPUBuffer; offA?: number; lda: number;
  B: GPUBuffer; offB?: number; ldb: number;
  C: GPUBuffer; offC?: number; ldc: number;
  /** Offset of the bias in B, added to every row of C. */
  bias?: number;
}

/** matmul.wgsl's Uniforms, in its field order. */
export function matmulUniforms(s: MatmulArgs): Uint32Array {
  return Uint32Array.from([
    s.M, s.N, s.K, s.bias === undefined ? 0 : 1,
    s.lda, s.ldb, s.ldc, s.bias ?? 0,
    s.offA ?? 0, s.offB ?? 0, s.offC ?? 0, 0,
  ]);
}

export function matmulConstants(t: MatmulTiling, transA: boolean, transB: boolean): Record<string, number> {
  return { WG_X: t.wgX, WG_Y: t.wgY, TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0 };
}

/** Workgroups covering an M x N result. */
export function matmulGrid(M: number, N: number, variant: MatmulVariant, wgX: number, wgY: number): { x: number; y: number } {
  const block = MATMUL_VARIANTS[variant];
  return { x: Math.max(1, Math.ceil(N / (block.cols * wgX))), y: Math.max(1, Math.ceil(M / (block.rows * wgY))) };
}

/** The entry point a tiling selects for this product; throws if a forced vec4 variant does not fit its layout. */
export function resolveMatmulVariant(s: MatmulLayout, t: MatmulTiling): MatmulVariant {
  const best = matmulVariantFor(s);
  if (t.variant === 'auto') return best;
  const rank = { main: 0, main_vb: 1, main_vab: 2 } as const;
  if (rank[t.variant] > rank[best]) {
    throw new Error(`matmul variant ${t.variant} cannot read this layout (the best that can is ${best})`);
  }
  return t.variant;
}

export function matmulDispatch(r: KernelRunner, s: MatmulArgs, t: MatmulTiling = DEFAULT_MATMUL_TILING): KernelDispatch {
  const variant = resolveMatmulVariant(s, t);
  const pipeline = r.kernels.pipeline('matmul', matmulConstants(t, !!s.transA, !!s.transB), MATMUL_VARIANTS[variant].entryPoint);
  const g = matmulGrid(s.M, s.N, variant, t.wgX, t.wgY);
  return r.dispatch(pipeline, [s.A, s.B, s.C, r.uniform(matmulUniforms(s), 'matmul uniforms')], g.x, g.y);
}

/** softmax_xent.wgsl: one workgroup per row; logits become dL/dlogits in place. */
export type SoftmaxVariant = 'rows' | 'workgroup';
export const SOFTMAX_WG = 64;

/**
 * A row per invocation up to 1024 columns (char-level vocabularies): 8-16x faster than a workgroup
 * tree reduction on lavapipe at 2048 x 64-87, where each barrier costs tens of microseconds. Wider
 * rows (word vocabularies) get a workgroup each, which keeps a real GPU busy when rows are few.
 */
export function softmaxVariantFor(cols: number): SoftmaxVariant {
  return cols <= 1024 ? 'rows' : 'workgroup';
}

/** softmax_xent.wgsl's uniforms and grid for a variant (GpuBackend packs the same). */
export function softmaxXentLaunch(rows: number, cols: number, scale: number, variant: SoftmaxVariant, maxPerDim: number) {
  const g = grid1D(rows, variant === 'rows' ? SOFTMAX_WG : 1, maxPerDim);
  const data = new ArrayBuffer(16);
  new Uint32Array(data).set([rows, cols, 0, g.perRow]);
  new Float32Array(data, 8, 1)[0] = scale;
  return { uniforms: data, x: g.x, y: g.y, entryPoint: variant === 'rows' ? 'main_rows' : 'main' };
}

export function softmaxXentDispatch(r: KernelRunner, a: { logits: GPUBuffer; targets: GPUBuffer; rowLoss: GPUBuffer; rows: number; cols: number; scale: number; variant?: SoftmaxVariant }): KernelDispatch {
  const l = softmaxXentLaunch(a.rows, a.cols, a.scale, a.variant ?? softmaxVariantFor(a.cols), r.maxPerDim);
  return r.dispatch(r.kernels.pipeline('softmax_xent', {}, l.entryPoint), [a.logits, a.targets, a.rowLoss, r.uniform(l.uniforms)], l.x, l.y);
}

/** loss_sum.wgsl: out[0] = scale * sum of rowLoss[0..n). */
export function lossSumDispatch(r: KernelRunner, a: { rowLoss: GPUBuffer; out: GPUBuffer; n: number; scale: number }): KernelDispatch {
  const data = new ArrayBuffer(16);
  new Uint32Array(data, 0, 1)[0] = a.n;
  new Float32Array(data, 4, 1)[0] = a.scale;
  return r.dispatch(r.kernels.pipeline('loss_sum'), [a.rowLoss, a.out, r.uniform(data)], 1, 1);
}

/** column_sum.wgsl: out[offOut + j] = sum over rows of X[offX + r * cols + j]. */
export function columnSumDispatch(r: KernelRunner, a: { X: GPUBuffer; out: GPUBuffer; rows: number; cols: number; offX?: number; offOut?: number }): KernelDispatch {
  const u = Uint32Array.from([a.rows, a.cols, a.offX ?? 0, a.offOut ?? 0]);
  return r.dispatch(r.kernels.pipeline('column_sum'), [a.X, a.out, r.uniform(u)], Math.ceil(a.cols / 64), 1);
}

/**
 * The positions 0..n-1 grouped by their token (a counting sort), as embedding_grad.wgsl reads
 * them: the positions holding token v are positions[start[v] .. start[v + 1]).
 */
export function positionsByToken(tokens: ArrayLike<number>, V: number): { start: Uint32Array; positions: Uint32Array } {
  const start = new Uint32Array(V + 1);
  for (let p = 0; p < tokens.length; p++) start[tokens[p] + 1]++;
  for (let v = 0; v < V; v++) start[v + 1] += start[v];
  const fill = start.slice(0, V);
  const positions = new Uint32Array(tokens.length);
  for (let p = 0; p < tokens.length; p++) positions[fill[tokens[p]]++] = p;
  return { start, positions };
}

/** embedding_grad.wgsl: out[offOut + i * V + v] = sum of dZ[p * H + i] over positions p of token v. */
export function embeddingGradDispatch(r: KernelRunner, a: { dZ: GPUBuffer; start: GPUBuffer; positions: GPUBuffer; out: GPUBuffer; H: number; V: number; offOut?: number }): KernelDispatch {
  const g = grid1D(a.H * a.V, 64, r.maxPerDim);
  const u = Uint32Array.from([a.H, a.V, a.offOut ?? 0, g.perRow]);
  return r.dispatch(r.kernels.pipeline('embedding_grad'), [a.dZ, a.start, a.positions, a.out, r.uniform(u)], g.x, g.y);
}

/** One optimizer step's settings (optimizer.wgsl's uniforms). */
export interface OptimizerSettings {
  n: number;
  kind: 'adagrad' | 'adam';
  lr: number; clip: number;
  /** This update's 1-based step number (Adam's bias correction). */
  step: number;
  eps: number; beta1: number; beta2: number;
  /** The W_hh blocks mirrored transposed into whhT: one per layer, each [rows, cols]. */
  whh?: { layers: number; rows: number; cols: number };
}

export interface OptimizerArgs extends OptimizerSettings {
  params: GPUBuffer; grads: GPUBuffer; m: GPUBuffer; v: GPUBuffer;
  /** With `whh`: the transposed copies, and each layer's W_hh offset in params (u32). */
  whhT?: GPUBuffer; whhAt?: GPUBuffer;
}

/**
 * optimizer.wgsl's uniforms for one step, as GpuBackend packs them: the bias corrections
 * 1 - beta^step and 1 - beta itself computed in f64 on the host.
 */
export function optimizerUniforms(a: OptimizerSettings, perRow: number): ArrayBuffer {
  const data = new ArrayBuffer(64);
  new Uint32Array(data, 0, 2).set([a.n, perRow]);
  new Float32Array(data, 8, 9).set([
    a.lr, a.clip, 1 - Math.pow(a.beta1, a.step), 1 - Math.pow(a.beta2, a.step), a.beta1, a.beta2, a.eps,
    1 - a.beta1, 1 - a.beta2,
  ]);
  new Uint32Array(data, 44, 3).set([a.whh?.layers ?? 0, a.whh?.rows ?? 0, a.whh?.cols ?? 0]);
  return data;
}

export function optimizerDispatch(r: KernelRunner, a: OptimizerArgs): KernelDispatch {
  const g = grid1D(a.n, 256, r.maxPerDim);
  const pipeline = r.kernels.pipeline('optimizer', { OPTIMIZER: a.kind === 'adagrad' ? 0 : 1 });
  // Without a mirror the two bindings still need buffers: distinct ones, as whhT is writable.
  return r.dispatch(pipeline, [
    a.params, a.grads, a.m, a.v, r.uniform(optimizerUniforms(a, g.perRow)), a.whhT ?? r.storage(4, 'no whhT'), a.whhAt ?? r.spare(),
  ], g.x, g.y);
}

/** W_hh^T of every layer, as optimizer.wgsl keeps it in whhT (for writing it from the host). */
export function transposedWhh(params: Float32Array, offsets: readonly number[], rows: number, cols: number): Float32Array {
  const size = rows * cols;
  // 16 spare floats: cell_forward's vec4 loads for units past H read into them (never stored).
  const out = new Float32Array(offsets.length * size + 16);
  offsets.forEach((off, l) => {
    for (let e = 0; e < size; e++) out[l * size + (e % cols) * rows + Math.floor(e / cols)] = params[off + e];
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The recurrent layers' kernels: uniforms packed here for both GpuBackend and the kernel tests.
// ---------------------------------------------------------------------------------------------

/** Invocations of cell_forward / cell_backward: one per block (cellBlock), in x only. */
export function cellGrid(kernel: 'cell_forward' | 'cell_backward', cell: keyof typeof CELL_CODE, B: number, H: number): { x: number; unitBlocks: number } {
  const { rows, units } = cellBlock(kernel, cell, B);
  const unitBlocks = Math.ceil(H / units);
  const blocks = unitBlocks * Math.ceil(B / rows);
  return { x: Math.ceil(blocks / CELL_WG), unitBlocks };
}

/** Offsets (in floats) of one forward step; see cell_forward.wgsl. offWhhT: in whhT (layer x G*H*H). */
export interface CellForwardStep {
  B: number; H: number;
  offWhhT: number; offBhh: number; offGi: number;
  offHin: number; offHout: number; offSaved: number; offCin: number; offCout: number;
}

export function cellForwardUniforms(cell: keyof typeof CELL_CODE, s: CellForwardStep): Uint32Array {
  return Uint32Array.from([
    s.B, s.H, s.offWhhT, s.offBhh, s.offGi, s.offHin, s.offHout, s.offSaved,
    s.offCin, s.offCout, cellGrid('cell_forward', cell, s.B, s.H).unitBlocks, 0,
  ]);
}

/** Offsets (in floats) of one backward step; see cell_backward.wgsl. */
export interface CellBackwardStep {
  B: number; H: number; offWhh: number;
  /** dgh of step t+1, or undefined at t = T-1 (nothing comes back from the future). */
  offDGhNext?: number;
  offDG: number; offDAbove: number; offSaved: number;
  offHin: number; offHout: number; offCin: number; offCout: number;
  offDState: number;
  /** Write dh0 = W_hh^T dgh_0 + direct_0 instead of a step (offDGhNext = step 0's dgh). */
  tail?: boolean;
}

export function cellBackwardUniforms(cell: keyof typeof CELL_CODE, s: CellBackwardStep): Uint32Array {
  return Uint32Array.from([
    s.B, s.H, s.offWhh, s.offDGhNext === undefined ? 0 : 1,
    s.offDGhNext ?? 0, s.offDG, s.offDAbove, s.offSaved,
    s.offHin, s.offHout, s.offCin, s.offCout,
    s.offDState, s.tail ? 1 : 0, cellGrid('cell_backward', cell, s.B, s.H).unitBlocks, 0,
  ]);
}

export function inputGatherUniforms(a: { N: number; GH: number; V: number; offWih: number; offBih: number }, perRow: number): Uint32Array {
  return Uint32Array.from([a.N, a.GH, a.V, a.offWih, a.offBih, perRow, 0, 0]);
}

export function dropoutUniforms(a: { n: number; offSrc: number; offDst: number; maskBase: number }, perRow: number): Uint32Array {
  return Uint32Array.from([a.n, a.offSrc, a.offDst, a.maskBase, perRow, 0, 0, 0]);
}

/**
 * dropout.wgsl's per-iteration mask: keep element m iff its 24-bit hash j >= ceil(p * 2^24), which
 * is uniformAt(seed, iteration, m) >= p exactly (src/cpu/stacked.ts: dropoutMask). p = 0 keeps all.
 */
export function dropoutMaskUniform(seed: number, iteration: number, p: number): ArrayBuffer {
  const data = new ArrayBuffer(16);
  new Uint32Array(data, 0, 3).set([seed >>> 0, iteration >>> 0, Math.ceil(p * 2 ** 24)]);
  new Float32Array(data, 12, 1)[0] = 1 / (1 - p);
  return data;
}

export function cellForwardDispatch(
  r: KernelRunner, cell: keyof typeof CELL_CODE, s: CellForwardStep,
  b: { params: GPUBuffer; gi: GPUBuffer; h: GPUBuffer; c: GPUBuffer; saved: GPUBuffer; whhT: GPUBuffer },
): KernelDispatch {
  const pipeline = r.kernels.pipeline('cell_forward', cellConstants(cell, s.B), cellEntryPoint(b.whhT, s.H, s.offWhhT, cell));
  return r.dispatch(pipeline, [b.params, b.gi, b.h, b.c, b.saved, r.uniform(cellForwardUniforms(cell, s)), b.whhT], cellGrid('cell_forward', cell, s.B, s.H).x);
}

export function cellBackwardDispatch(
  r: KernelRunner, cell: keyof typeof CELL_CODE, s: CellBackwardStep,
  b: { params: GPUBuffer; dGh: GPUBuffer; dGi: GPUBuffer; dAbove: GPUBuffer; h: GPUBuffer; c: GPUBuffer; saved: GPUBuffer; dState: GPUBuffer },
): KernelDispatch {
  const pipeline = r.kernels.pipeline('cell_backward', cellConstants(cell, s.B), cellEntryPoint(b.params, s.H, s.offWhh, cell));
  return r.dispatch(pipeline, [b.params, b.dGh, b.dGi, b.dAbove, b.h, b.c, b.saved, b.dState, r.uniform(cellBackwardUniforms(cell, s))], cellGrid('cell_backward', cell, s.B, s.H).x);
}

export function inputGatherDispatch(
  r: KernelRunner, a: { params: GPUBuffer; tokens: GPUBuffer; gi: GPUBuffer; N: number; GH: number; V: number; offWih: number; offBih: number },
): KernelDispatch {
  const g = grid1D(a.N * a.GH, 64, r.maxPerDim);
  return r.dispatch(r.kernels.pipeline('input_gather'), [a.params, a.tokens, a.gi, r.uniform(inputGatherUniforms(a, g.perRow))], g.x, g.y);
}

export function dropoutDispatch(
  r: KernelRunner, a: { src: GPUBuffer; dst: GPUBuffer; n: number; offSrc: number; offDst: number; maskBase: number; seed: number; iteration: number; p: number },
): KernelDispatch {
  const g = grid1D(a.n, 64, r.maxPerDim);
  return r.dispatch(r.kernels.pipeline('dropout'), [
    a.src, a.dst, r.uniform(dropoutUniforms(a, g.perRow)), r.uniform(dropoutMaskUniform(a.seed, a.iteration, a.p)),
  ], g.x, g.y);
}
