/** Chooses and builds a backend: the GPU when asked for (or on 'auto' when an adapter exists), else the CPU reference. */
import type { Backend } from '../model/backend.ts';
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import { CpuBackend } from '../cpu/backend.ts';
import { sampleTokens } from '../cpu/sample.ts';
import { GpuBackend } from '../gpu/backend.ts';
import { NoAdapterError, type GpuContext } from '../gpu/device.ts';
import { checkFits } from '../gpu/memory.ts';
import { tuneKernels, type KernelTuning, type TuneOptions } from './tuning.ts';

export type BackendChoice = 'gpu' | 'cpu' | 'auto';

export interface CreateBackendOptions {
  choice: BackendChoice;
  model: ModelConfig;
  train: TrainConfig;
  seed: number;
  acquireGpu: () => Promise<GpuContext>;
  /** Told, in one line, when 'auto' falls back to the CPU. */
  warn: (line: string) => void;
  /**
   * Gives back a device acquired for a model that then did not fit (default: destroys it). A
   * library caller's own GPUDevice is not ours to destroy.
   */
  releaseGpu?: (ctx: GpuContext) => void;
  /** Kernel tuning on the GPU (src/engine/tuning.ts); absent: the default kernels, nothing timed. */
  tune?: TuneOptions;
}

export async function createBackend(o: CreateBackendOptions): Promise<{ backend: Backend; gpu?: GpuContext; kernels?: KernelTuning }> {
  if (o.choice === 'cpu') return { backend: new CpuBackend(o.model, o.train, o.seed) };
  let ctx: GpuContext;
  try {
    ctx = await o.acquireGpu();
  } catch (e) {
    if (o.choice === 'auto' && e instanceof NoAdapterError) {
      o.warn(`${e.message}; continuing on the CPU backend`);
      return { backend: new CpuBackend(o.model, o.train, o.seed) };
    }
    throw e;
  }
  try {
    // Sizes first: a model that cannot fit is refused before any timing allocates its products.
    checkFits(o.model, o.train, ctx.limits);
    const kernels = await tuneKernels(ctx, o.model, o.train, o.tune ?? { mode: 'off', note: o.warn });
    return { backend: await GpuBackend.create(ctx, o.model, o.train, o.seed, sampleTokens, kernels.choice), gpu: ctx, kernels };
  } catch (e) {
    // A model that does not fit must not leave a device (and dawn's threads) behind.
    (o.releaseGpu ?? ((c: GpuContext) => c.device.destroy()))(ctx);
    throw e;
  }
}
