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

export const SHADERS = {
  matmul: matmulWgsl,
  softmax_xent: softmaxXentWgsl,
  loss_sum: lossSumWgsl,
  column_sum: columnSumWgsl,
  embedding_grad: embeddingGradWgsl,
  optimizer: optimizerWgsl,
  sample: sampleWgsl,
} as const;

export type KernelName = keyof typeof SHADERS;

export const MATMUL_MODE = { plain: 0, rnnForward: 1, rnnBackward: 2 } as const;
/** Outputs per invocation along each axis in matmul.wgsl (its 4x4 register block). */
export const MATMUL_BLOCK = 4;

export class Kernels {
  private modules = new Map<KernelName, GPUShaderModule>();
  private pipelines = new Map<string, GPUComputePipeline>();
  private matmulLayout: GPUBindGroupLayout;

  constructor(readonly device: GPUDevice) {
    // matmul.wgsl's bindings are used or not depending on MODE, so its layout is explicit rather
    // than 'auto' (which would drop the bindings a mode does not touch).
    const entry = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry =>
      ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
    this.matmulLayout = device.createBindGroupLayout({
      label: 'matmul',
      entries: [
        entry(0, 'read-only-storage'), entry(1, 'read-only-storage'), entry(2, 'storage'), entry(3, 'read-only-storage'),
        entry(4, 'read-only-storage'), entry(5, 'read-only-storage'), entry(6, 'uniform'),
      ],
    });
  }

  module(name: KernelName): GPUShaderModule {
    let m = this.modules.get(name);
    if (!m) {
      m = this.device.createShaderModule({ label: name, code: SHADERS[name] });
      this.modules.set(name, m);
    }
    return m;
  }

  pipeline(name: KernelName, constants: Record<string, number> = {}): GPUComputePipeline {
    const key = `${name} ${JSON.stringify(constants)}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const layout = name === 'matmul'
        ? this.device.createPipelineLayout({ bindGroupLayouts: [this.matmulLayout] })
        : 'auto';
      p = this.device.createComputePipeline({
        label: key,
        layout,
        compute: { module: this.module(name), entryPoint: 'main', constants },
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
