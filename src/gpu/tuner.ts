/**
 * Per-adapter kernel tuning, the pure half: which kernel candidate each of a model's matrix
 * products and recurrent steps runs, what is already known from the cache, the order and budget in which the missing
 * ones are timed, and the one-line summary. No device here (src/gpu/tune.ts times on one; the
 * engine, src/engine/tuning.ts, ties the two to a cache store), so all of it is unit-tested
 * without a GPU (test/tuner.test.ts).
 *
 * The choice is plain data, shape key -> candidate name (src/gpu/plan.ts: KernelChoice), and the
 * plan is a pure function of model, train, limits and that choice: the same cache gives the same
 * plan, hence bit-identical training on the same adapter.
 */
import { CELL_CANDIDATES, DEFAULT_CELL_CANDIDATE } from './kernels/cell.ts';
import { CELL_BACKWARD } from './kernels/cell_backward.ts';
import { CELL_FORWARD } from './kernels/cell_forward.ts';
import { MATMUL } from './kernels/matmul.ts';
import { DEFAULT_MATMUL_CANDIDATE, MATMUL_CANDIDATES } from './kernels/matmul.ts';
import type { KernelChoice, PlannedCell, PlannedMatmul } from './plan.ts';

/** auto: the cache, timing only what it lacks; off: the default kernels, nothing timed; full: retime everything. */
export const TUNE_MODES = ['auto', 'off', 'full'] as const;
export type TuneMode = (typeof TUNE_MODES)[number];

/** Milliseconds of timing at backend creation (a cold start), and repeats per candidate (their median counts). */
export const TUNE_BUDGET = {
  auto: { budgetMs: 2000, repeats: 3, prune: true },
  full: { budgetMs: 8000, repeats: 5, prune: false },
} as const;

/** A candidate that is this many times slower than the fastest on one shape is not timed on larger ones (auto). */
export const PRUNE_RATIO = 3;

/**
 * What was measured for one shape: the median ms of each candidate timed, and the winner once
 * every candidate is timed or ruled out (until then the shape runs the default, and the next start
 * goes on timing the candidates it lacks).
 */
export interface TunedShape {
  pick?: string;
  ms: Record<string, number>;
}

/** The cache: per adapter (tuningAdapterKey), per shape (matmulShapeKey, cellShapeKey). */
export interface TuningCache {
  version: 1;
  adapters: Record<string, Record<string, TunedShape>>;
}

export const emptyTuningCache = (): TuningCache => ({ version: 1, adapters: {} });

/** Where a cache lives: a JSON file in Node (src/node/tuning-store.ts), IndexedDB on the page. */
export interface TuningStore {
  /** The cache, or an empty one when there is none; a corrupt one is reported through `note` and treated as empty. */
  load(note: (line: string) => void): Promise<TuningCache>;
  save(cache: TuningCache): Promise<void>;
}

/** An in-memory store (tests, and a page without IndexedDB). */
export function memoryTuningStore(initial: TuningCache = emptyTuningCache()): TuningStore & { cache: TuningCache; saves: number } {
  const store = {
    cache: initial,
    saves: 0,
    load: async () => structuredClone(store.cache),
    save: async (c: TuningCache) => {
      store.cache = structuredClone(c);
      store.saves += 1;
    },
  };
  return store;
}

/** FNV-1a, for a short fingerprint of the kernel source. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** The tuned kernels' sources, as the adapter key fingerprints them. */
const TUNED_WGSL = MATMUL.wgsl + CELL_FORWARD.wgsl + CELL_BACKWARD.wgsl;

/** The cache's adapter key: the adapter (GpuContext.adapterKey) and the tuned shaders' fingerprint, so an edited kernel is retimed. */
export function tuningAdapterKey(adapterKey: string, wgsl = TUNED_WGSL): string {
  return `${adapterKey}; kernels=${fnv1a(wgsl)}`;
}

/** Whether a name is a candidate of this version (matmul or cell step). */
const knownCandidate = (c: string) => Object.hasOwn(MATMUL_CANDIDATES, c) || Object.hasOwn(CELL_CANDIDATES, c);

/** The cache in `text`, or undefined when it is not one (a torn or hand-edited file). Unknown candidates are dropped. */
export function parseTuningCache(text: string): TuningCache | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObj(v) || v.version !== 1 || !isObj(v.adapters)) return undefined;
  const out = emptyTuningCache();
  for (const [adapter, shapes] of Object.entries(v.adapters)) {
    if (!isObj(shapes)) return undefined;
    const kept: Record<string, TunedShape> = {};
    for (const [key, e] of Object.entries(shapes)) {
      if (!isObj(e) || (e.pick !== undefined && typeof e.pick !== 'string') || !isObj(e.ms)) return undefined;
      const ms = Object.entries(e.ms);
      if (!ms.every(([, t]) => typeof t === 'number' && Number.isFinite(t) && t >= 0)) return undefined;
      const known = Object.fromEntries(ms.filter(([c]) => knownCandidate(c))) as Record<string, number>;
      if (e.pick === undefined) kept[key] = { ms: known };
      else if (knownCandidate(e.pick)) kept[key] = { pick: e.pick, ms: known };
    }
    out.adapters[adapter] = kept;
  }
  return out;
}

/** The products of a plan, one per shape key, cheapest first (so pruning learns on small ones). */
export function uniqueProducts(matmuls: readonly PlannedMatmul[]): PlannedMatmul[] {
  const seen = new Map<string, PlannedMatmul>();
  for (const m of matmuls) if (!seen.has(m.key)) seen.set(m.key, m);
  return [...seen.values()].sort((a, b) => a.M * a.N * a.K - b.M * b.N * b.K);
}

export interface TuningPlan<S extends { key: string } = PlannedMatmul> {
  /** What the cache already decides (auto), by shape key. */
  choice: Record<string, string>;
  cached: string[];
  /** What must be timed, cheapest first. */
  missing: S[];
  /** What an earlier start already timed of the missing shapes (auto), by shape key. */
  partial: Record<string, Record<string, number>>;
  /** Candidates PRUNE_RATIO times slower than the fastest on some shape this adapter timed before (auto): not timed again. */
  pruned: string[];
}

/** What the cache settles for this adapter and what is left to time, given the candidates this device can run. */
export function planTuning(
  matmuls: readonly PlannedMatmul[], cache: TuningCache, adapter: string, mode: TuneMode, candidates: readonly string[],
): TuningPlan {
  return planShapes(uniqueProducts(matmuls), cache, adapter, mode, candidates);
}

/** planTuning for the recurrent steps (PlannedCell, one per key already). */
export function planCellTuning(
  cells: readonly PlannedCell[], cache: TuningCache, adapter: string, mode: TuneMode, candidates: readonly string[],
): TuningPlan<PlannedCell> {
  return planShapes(cells, cache, adapter, mode, candidates);
}

function planShapes<S extends { key: string }>(
  shapes: readonly S[], cache: TuningCache, adapter: string, mode: TuneMode, candidates: readonly string[],
): TuningPlan<S> {
  const plan: TuningPlan<S> = { choice: {}, cached: [], missing: [], partial: {}, pruned: [] };
  if (mode === 'off') return plan;
  const known = cache.adapters[adapter] ?? {};
  if (mode === 'auto') {
    const slow = new Set<string>();
    for (const { ms } of Object.values(known)) {
      const best = Math.min(...Object.values(ms));
      for (const [c, t] of Object.entries(ms)) if (t >= PRUNE_RATIO * best) slow.add(c);
    }
    plan.pruned = candidates.filter((c) => slow.has(c));
  }
  for (const m of shapes) {
    const hit = known[m.key];
    if (mode === 'auto' && hit?.pick && candidates.includes(hit.pick)) {
      plan.choice[m.key] = hit.pick;
      plan.cached.push(m.key);
    } else {
      plan.missing.push(m);
      if (mode === 'auto' && hit && !hit.pick) plan.partial[m.key] = { ...hit.ms };
    }
  }
  return plan;
}

/** The fastest candidate by median ms; a tie goes to the earlier candidate in `order` (the default first, the fallback). */
export function pickFastest(ms: Readonly<Record<string, number>>, order: readonly string[]): string {
  let best = order[0] ?? DEFAULT_MATMUL_CANDIDATE;
  let bestMs = Infinity;
  for (const c of order) {
    const t = ms[c];
    if (t !== undefined && t < bestMs) {
      best = c;
      bestMs = t;
    }
  }
  return best;
}

/**
 * The order and budget of timing, without a clock or a device: the driver asks next() for what to
 * time (given the milliseconds spent so far), says whether a first run's time is worth repeating,
 * and records each median (or that the candidate's output was wrong). Shapes go cheapest first,
 * the default candidate first in each. A shape counts as tuned once every candidate is timed,
 * pruned or refused; shapes the budget cut short keep the default and are not cached, so the next
 * start times them.
 */
export class TuningSession<S extends { key: string } = PlannedMatmul> {
  private readonly ms = new Map<string, Record<string, number>>();
  private readonly done = new Map<string, Set<string>>();
  private readonly pruned = new Set<string>();
  private readonly invalid = new Set<string>();
  private timeUp = false;

  /**
   * `known`: timings an earlier start made (TuningPlan.partial), taken as if made now; `pruned`:
   * candidates an earlier start found far slower (TuningPlan.pruned), not timed (with pruning on).
   */
  constructor(
    readonly shapes: readonly S[], readonly candidates: readonly string[],
    readonly budgetMs: number, readonly prune: boolean, known: Readonly<Record<string, Readonly<Record<string, number>>>> = {},
    pruned: readonly string[] = [],
  ) {
    if (prune) for (const c of pruned) this.pruned.add(c);
    for (const s of shapes) {
      this.ms.set(s.key, {});
      this.done.set(s.key, new Set());
    }
    for (const s of shapes) {
      for (const c of candidates) if (known[s.key]?.[c] !== undefined) this.record(s.key, c, known[s.key][c]);
    }
  }

  /** The next (shape, candidate) to time, or undefined when all are done or `elapsedMs` reached the budget. */
  next(elapsedMs: number): { shape: S; candidate: string } | undefined {
    if (elapsedMs >= this.budgetMs) this.timeUp = true;
    if (this.timeUp) return undefined;
    for (const shape of this.shapes) {
      const done = this.done.get(shape.key)!;
      for (const candidate of this.candidates) {
        if (done.has(candidate)) continue;
        if (this.pruned.has(candidate) || this.invalid.has(candidate) || this.cannotAfford(shape.key, candidate)) {
          done.add(candidate);
          continue;
        }
        return { shape, candidate };
      }
    }
    return undefined;
  }

  private best(key: string): number {
    return Math.min(Infinity, ...Object.values(this.ms.get(key)!));
  }

  /**
   * With pruning (auto), whether the shape is too slow here to try the other candidates within the
   * budget: one of them PRUNE_RATIO times slower than the best so far would spend more than the
   * whole budget on its validation run and one timed run, and no GPU work can be cut short. On a
   * CPU driver that is a vocabulary-sized product (a 10 GFLOP logits product takes about a second
   * with the default tiling and ten with workgroup tiles); the shape then keeps the first candidate,
   * timed, and is cached so that later starts do not try again.
   */
  private cannotAfford(key: string, candidate: string): boolean {
    const best = this.best(key);
    return this.prune && candidate !== this.candidates[0] && Number.isFinite(best) && 2 * PRUNE_RATIO * best > this.budgetMs;
  }

  /** Whether a candidate whose first (validated) run took `firstMs` could still win: not when it is PRUNE_RATIO times the best so far. */
  worthRepeating(key: string, firstMs: number): boolean {
    return firstMs < PRUNE_RATIO * this.best(key);
  }

  /** A candidate's median ms on a shape; with pruning, one PRUNE_RATIO times slower than the best is not timed again. */
  record(key: string, candidate: string, ms: number): void {
    this.ms.get(key)![candidate] = ms;
    this.done.get(key)!.add(candidate);
    if (this.prune && ms >= PRUNE_RATIO * this.best(key)) this.pruned.add(candidate);
  }

  /** A candidate whose output disagreed with the reference: never timed or chosen again in this session. */
  refuse(key: string, candidate: string): void {
    this.done.get(key)!.add(candidate);
    this.invalid.add(candidate);
  }

  /** A shape that cannot be timed here (its operands could not be allocated): it keeps the default, uncached. */
  abandon(key: string): void {
    const done = this.done.get(key)!;
    for (const c of this.candidates) done.add(c);
    this.ms.set(key, {});
  }

  /** Every shape with a timing: those tuned to the end with their winner, the others (the budget ran out) without. */
  results(): Record<string, TunedShape> {
    const out: Record<string, TunedShape> = {};
    for (const s of this.shapes) {
      const done = this.done.get(s.key)!;
      const complete = this.candidates.every((c) => done.has(c) || this.pruned.has(c) || this.invalid.has(c));
      const ms = this.ms.get(s.key)!;
      if (Object.keys(ms).length === 0) continue;
      out[s.key] = complete ? { pick: pickFastest(ms, this.candidates), ms: { ...ms } } : { ms: { ...ms } };
    }
    return out;
  }
}

/** `cache` with this adapter's new results merged in (a new object). */
export function withTuned(cache: TuningCache, adapter: string, results: Readonly<Record<string, TunedShape>>): TuningCache {
  return { version: 1, adapters: { ...cache.adapters, [adapter]: { ...cache.adapters[adapter], ...results } } };
}

export interface TuningOutcome {
  mode: TuneMode;
  choice: KernelChoice;
  /** Shapes whose choice came from the cache, and shapes timed now. */
  cached: number;
  timed: number;
  /** Shapes the budget left on the default (not cached). */
  untimed: number;
  /** Milliseconds spent timing. */
  ms: number;
}

/**
 * "kernels: matmul registers-8x8 for 3 shapes, shared-16x16 for 1; cell_forward rows8; cell_backward
 * rows4 (4 cached, 2 timed in 420 ms)": the matmul picks counted, the recurrent steps' picks by kernel.
 */
export function describeTuning(matmuls: readonly PlannedMatmul[], o: TuningOutcome, cells: readonly PlannedCell[] = []): string {
  const shapes = uniqueProducts(matmuls);
  const kernels = [...new Set(cells.map((c) => c.kernel))];
  const steps = (pick: (c: PlannedCell) => string) => kernels.map((k) => `; ${k} ${[...new Set(cells.filter((c) => c.kernel === k).map(pick))].join('/')}`).join('');
  if (o.mode === 'off') return `kernels: matmul ${DEFAULT_MATMUL_CANDIDATE}${steps(() => DEFAULT_CELL_CANDIDATE)} (the default, not tuned)`;
  const counts = new Map<string, number>();
  for (const s of shapes) {
    const c = o.choice[s.key] ?? DEFAULT_MATMUL_CANDIDATE;
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const picks = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([c, n], i) => `${c} for ${n}${i === 0 ? ` shape${n === 1 ? '' : 's'}` : ''}`).join(', ');
  const how = [
    o.cached ? `${o.cached} cached` : '',
    o.timed ? `${o.timed} timed in ${Math.round(o.ms)} ms` : '',
    o.untimed ? `${o.untimed} on the default until a later start finishes timing ${o.untimed === 1 ? 'it' : 'them'}` : '',
  ].filter(Boolean).join(', ');
  return `kernels: matmul ${picks}${steps((c) => o.choice[c.key] ?? DEFAULT_CELL_CANDIDATE)}${how ? ` (${how})` : ''}`;
}
