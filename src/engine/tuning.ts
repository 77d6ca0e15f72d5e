/**
 * The kernel choice for a model on a device, at backend creation: the cache's picks for this
 * adapter (src/gpu/tuner.ts), the missing shapes timed within the mode's budget (src/gpu/tune.ts)
 * and written back, and the line that says what was chosen.
 */
import type { GpuContext } from '../gpu/device.ts';
import { matmulCandidatesFor } from '../gpu/kernels/matmul.ts';
import { planIteration, type KernelChoice } from '../gpu/plan.ts';
import { timeMatmuls } from '../gpu/tune.ts';
import {
  describeTuning, emptyTuningCache, planTuning, TUNE_BUDGET, TuningSession, tuningAdapterKey, withTuned,
  type TuneMode, type TuningOutcome, type TuningStore,
} from '../gpu/tuner.ts';
import type { ModelConfig, TrainConfig } from '../model/config.ts';

export interface TuneOptions {
  mode: TuneMode;
  /**
   * Where choices are kept between runs. Without one (in-process test harnesses) auto keeps the
   * default kernels, as there is nowhere to remember a timing, and full times without keeping.
   */
  store?: TuningStore;
  /**
   * The choice a checkpoint was trained with: a resumed run keeps it (unless the mode is full),
   * so that it continues bit for bit even if the cache has learnt more since. Names this device
   * cannot run fall back to the default kernel.
   */
  fixed?: KernelChoice;
  /** One line each: a corrupt cache, a cache that could not be written. */
  note: (line: string) => void;
  now?: () => number;
}

export interface KernelTuning extends TuningOutcome {
  /** "kernels: matmul registers-8x8 for 4 shapes (4 cached)". */
  line: string;
}

export async function tuneKernels(ctx: GpuContext, model: ModelConfig, train: TrainConfig, o: TuneOptions): Promise<KernelTuning> {
  const { matmuls } = planIteration(model, train, ctx.limits);
  const mode = o.mode === 'auto' && !o.store ? 'off' : o.mode;
  const outcome: TuningOutcome = { mode, choice: {}, cached: 0, timed: 0, untimed: 0, ms: 0 };
  if (o.fixed && o.mode === 'auto') {
    const runnable = new Set(matmulCandidatesFor(ctx.limits));
    const keys = new Set(matmuls.map((m) => m.key));
    const kept = Object.entries(o.fixed).filter(([key, name]) => keys.has(key) && runnable.has(name));
    outcome.mode = 'auto';
    outcome.choice = Object.fromEntries(kept) as KernelChoice;
    return { ...outcome, line: `${describeTuning(matmuls, outcome)} (the checkpoint's choice)` };
  }
  if (mode !== 'off') {
    const adapter = tuningAdapterKey(ctx.adapterKey);
    const cache = o.store ? await o.store.load(o.note) : emptyTuningCache();
    const candidates = matmulCandidatesFor(ctx.limits);
    // The timing binds each operand whole: products of the split plan whose strided operands span
    // more than one binding (src/gpu/plan.ts) keep the default kernel.
    const maxWords = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize) / 4;
    const tunable = matmuls.filter((m) => Math.max((m.transA ? m.K : m.M) * m.lda, (m.transB ? m.N : m.K) * m.ldb, m.M * m.ldc) + 4 <= maxWords);
    const plan = planTuning(tunable, cache, adapter, mode, candidates);
    const choice: Record<string, string> = { ...plan.choice };
    outcome.cached = plan.cached.length;
    if (plan.missing.length > 0) {
      const now = o.now ?? (() => performance.now());
      const budget = TUNE_BUDGET[mode];
      const session = new TuningSession(plan.missing, candidates, budget.budgetMs, budget.prune, plan.partial, plan.pruned);
      const t0 = now();
      await timeMatmuls(ctx.device, session, budget.repeats, now);
      outcome.ms = now() - t0;
      const results = session.results();
      for (const [key, r] of Object.entries(results)) if (r.pick) choice[key] = r.pick;
      outcome.timed = Object.values(results).filter((r) => r.pick).length;
      outcome.untimed = plan.missing.length - outcome.timed;
      if (o.store && Object.keys(results).length > 0) {
        try {
          await o.store.save(withTuned(cache, adapter, results));
        } catch (e) {
          o.note(`could not save the kernel tuning cache (${(e as Error).message}); the choice holds for this run only`);
        }
      }
    }
    outcome.choice = choice as KernelChoice;
  }
  return { ...outcome, line: describeTuning(matmuls, outcome) };
}
