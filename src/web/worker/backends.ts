/**
 * Backends in the worker: the adapters the browser offers, a backend built on one of them (or on
 * the CPU), sizes checked against the adapter's limits first, and lost devices reported.
 */
import { createBackend } from '../../engine/create-backend.ts';
import type { GpuContext } from '../../gpu/device.ts';
import type { TuningStore } from '../../gpu/tuner.ts';
import { checkFits } from '../../gpu/memory.ts';
import type { Backend } from '../../model/backend.ts';
import type { ModelConfig, TrainConfig } from '../../model/config.ts';
import type { AdapterOption, Placement } from '../protocol.ts';
import { adapterTitle } from '../shared.ts';
import { UserError } from './errors.ts';

export interface GpuProvider {
  /** The adapters this browser offers, best first; an error line when there are none. */
  probe(): Promise<{ adapters: AdapterOption[]; error?: string }>;
  /** A device on the given adapter (kept and reused until lost or another adapter is asked for). */
  acquire(adapterId: number): Promise<GpuContext>;
}

export class Backends {
  adapters: AdapterOption[] = [];
  gpuError: string | undefined;
  private lostContexts = new WeakSet<GpuContext>();
  private watchedContexts = new WeakSet<GpuContext>();

  constructor(
    private readonly gpu: GpuProvider,
    /** A device this worker uses was lost (a driver reset, or loseDevice). */
    private readonly onLost: (reason: string) => void,
    private readonly notice: (line: string) => void,
    /** The kernel tuner's cache (IndexedDB on the page); without one, auto keeps the default kernels. */
    private readonly tuning?: TuningStore,
  ) {}

  private readonly kernelLines = new WeakMap<Backend, string>();

  /** The kernel tuner's one-line choice for a GPU backend this made. */
  kernels(backend: Backend): string | undefined {
    return this.kernelLines.get(backend);
  }

  async probe(): Promise<void> {
    const probe = await this.gpu.probe();
    this.adapters = probe.adapters;
    this.gpuError = probe.error;
  }

  adapter(id: number): AdapterOption | undefined {
    return this.adapters.find((a) => a.id === id);
  }

  /** What the page shows for a backend: the adapter's name on the GPU. */
  describe(backend: Backend, placement: Placement): string {
    const adapter = this.adapter(placement.adapter);
    return backend.kind === 'gpu' && adapter ? adapterTitle(adapter) : backend.description;
  }

  async make(model: ModelConfig, train: TrainConfig, seed: number, placement: Placement): Promise<Backend> {
    if (placement.backend === 'gpu') {
      const adapter = this.adapter(placement.adapter);
      if (!adapter) throw new UserError('gpu', this.gpuError ?? 'no WebGPU adapter: choose the CPU backend');
      // Sizes first, against the adapter's limits, so an impossible model is a sentence, not a lost device.
      checkFits(model, train, adapter.limits as unknown as GPUSupportedLimits);
    }
    const { backend, gpu, kernels } = await createBackend({
      choice: placement.backend, model, train, seed,
      acquireGpu: () => this.acquire(placement.adapter),
      warn: this.notice,
      tune: { mode: placement.tune ?? 'auto', store: this.tuning, note: this.notice },
    });
    if (kernels) this.kernelLines.set(backend, kernels.line);
    if (gpu && this.lostContexts.has(gpu)) {
      backend.destroy();
      throw new UserError('gpu', 'the GPU device was lost while the model was being set up');
    }
    return backend;
  }

  /** Destroys the adapter's device as a driver reset would (a test hook). */
  async loseDevice(adapterId: number): Promise<void> {
    (await this.gpu.acquire(adapterId)).device.destroy();
  }

  private async acquire(adapterId: number): Promise<GpuContext> {
    const ctx = await this.gpu.acquire(adapterId);
    if (!this.watchedContexts.has(ctx)) {
      this.watchedContexts.add(ctx);
      void ctx.device.lost.then((info) => {
        this.lostContexts.add(ctx);
        this.onLost(info.message || String(info.reason));
      });
    }
    return ctx;
  }
}
