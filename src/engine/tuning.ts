/**
 * The kernel choice for a model on a device, at backend creation: the cache's picks for this
 * adapter (src/gpu/tuner.ts), matrix products and recurrent steps alike, the missing shapes timed within the mode's budget (src/gpu/tune.ts)
 * and written back, and the line that says what was chosen.
 */
import type { GpuContext } from '../gpu/device.ts';
import { CELL_CANDIDATES, cellCandidatesFor } from '../gpu/kernels/cell.ts';
import { matmulCandidatesFor } from '../gpu/kernels/matmul.ts';
import { planIteration, type KernelChoice } from '../gpu/plan.ts';
import { timeCells, timeMatmuls } from '../gpu/tune.ts';
import {
  describeTuning, emptyTuningCache, planCellTuning, planTuning, TUNE_BUDGET, TuningSession, tuningAdapterKey, withTuned,
  type TuneMode, type TuningOutcome, type TuningPlan, type TuningStore,
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
  /** "kernels: matmul registers-8x8 for 4 shapes; cell_forward rows8; cell_backward rows8 (6 cached)". */
  line: string;
}

export async function tuneKernels(ctx: GpuContext, model: ModelConfig, train: TrainConfig, o: TuneOptions): Promise<KernelTuning> {
  const { matmuls, cells } = planIteration(model, train, ctx.limits);
  const mode = o.mode === 'auto' && !o.store ? 'off' : o.mode;
  const outcome: TuningOutcome = { mode, choice: {}, cached: 0, timed: 0, untimed: 0, ms: 0 };
  const maxPerDim = ctx.limits.maxComputeWorkgroupsPerDimension;
  // The cell candidates every step shape of this model can run.
  const cellCandidates = Object.keys(CELL_CANDIDATES).filter((c) => cells.every((s) => cellCandidatesFor(s.kernel, s.cell, s.B, s.H, maxPerDim).includes(c)));
  if (o.fixed && o.mode === 'auto') {
    // Each key keeps a name of its own kind that this device can run.
    const runnable = new Map<string, string[]>([
      ...matmuls.map((m) => [m.key, matmulCandidatesFor(ctx.limits)] as const),
      ...cells.map((c) => [c.key, cellCandidatesFor(c.kernel, c.cell, c.B, c.H, maxPerDim, false)] as const),
    ]);
    const kept = Object.entries(o.fixed).filter(([key, name]) => runnable.get(key)?.includes(name));
    outcome.mode = 'auto';
    outcome.choice = Object.fromEntries(kept) as KernelChoice;
    return { ...outcome, line: `${describeTuning(matmuls, outcome, cells)} (the checkpoint's choice)` };
  }
  if (mode !== 'off') {
    const adapter = tuningAdapterKey(ctx.adapterKey);
    let cache = o.store ? await o.store.load(o.note) : emptyTuningCache();
    const choice: Record<string, string> = {};
    const now = o.now ?? (() => performance.now());
    const budget = TUNE_BUDGET[mode];
    let fresh = false;
    /** One kind of shape: the cache's picks, then the missing shapes timed on what is left of the one budget. */
    const tune = async <S extends { key: string }>(
      plan: TuningPlan<S>, candidates: string[], time: (d: GPUDevice, s: TuningSession<S>, repeats: number, now: () => number) => Promise<void>,
    ) => {
      Object.assign(choice, plan.choice);
      outcome.cached += plan.cached.length;
      if (plan.missing.length === 0) return;
      const session = new TuningSession(plan.missing, candidates, Math.max(0, budget.budgetMs - outcome.ms), budget.prune, plan.partial, plan.pruned);
      const t0 = now();
      await time(ctx.device, session, budget.repeats, now);
      outcome.ms += now() - t0;
      const results = session.results();
      for (const [key, r] of Object.entries(results)) if (r.pick) choice[key] = r.pick;
      const timed = Object.values(results).filter((r) => r.pick).length;
      outcome.timed += timed;
      outcome.untimed += plan.missing.length - timed;
      if (Object.keys(results).length > 0) {
        cache = withTuned(cache, adapter, results);
        fresh = true;
      }
    };
    const matmulCandidates = matmulCandidatesFor(ctx.limits);
    // The timing binds each operand whole: products of the split plan whose strided operands span
    // more than one binding (src/gpu/plan.ts) keep the default kernel. (Its steps, which run
    // differently, are not among the cells: the plan lists none there.)
    const maxWords = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize) / 4;
    const tunable = matmuls.filter((m) => Math.max((m.transA ? m.K : m.M) * m.lda, (m.transB ? m.N : m.K) * m.ldb, m.M * m.ldc) + 4 <= maxWords);
    await tune(planTuning(tunable, cache, adapter, mode, matmulCandidates), matmulCandidates, timeMatmuls);
    await tune(planCellTuning(cells, cache, adapter, mode, cellCandidates), cellCandidates, timeCells);
    if (o.store && fresh) {
      try {
        await o.store.save(cache);
      } catch (e) {
        o.note(`could not save the kernel tuning cache (${(e as Error).message}); the choice holds for this run only`);
      }
    }
    outcome.choice = choice as KernelChoice;
  }
  return { ...outcome, line: describeTuning(matmuls, outcome, cells) };
}
