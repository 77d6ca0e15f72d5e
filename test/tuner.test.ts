/**
 * The kernel tuner without a device (src/gpu/tuner.ts): what the cache settles and what is left
 * to time, the order, budget and pruning of the timing, the winner, the summary line; the plan it
 * feeds (src/gpu/plan.ts: --tune off is today's plan exactly, a choice changes only the products
 * it names); and the Node cache file (src/node/tuning-store.ts: keyed by adapter and shape, a
 * corrupt file ignored with one note and rewritten, written atomically).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MATMUL_CANDIDATE, DEFAULT_MATMUL_TILING, MATMUL_CANDIDATES, matmulCandidatesFor, matmulLaunch } from '../src/gpu/kernels/matmul.ts';
import { planIteration } from '../src/gpu/plan.ts';
import { CELL_CANDIDATES, cellCandidatesFor, cellGrid, DEFAULT_CELL_CANDIDATE } from '../src/gpu/kernels/cell.ts';
import {
  describeTuning, emptyTuningCache, parseTuningCache, pickFastest, planCellTuning, planTuning, PRUNE_RATIO, TuningSession, tuningAdapterKey,
  uniqueProducts, withTuned, type TuningCache,
} from '../src/gpu/tuner.ts';
import { adapterKeyOf } from '../src/gpu/device.ts';
import { fileTuningStore, tuningCachePath } from '../src/node/tuning-store.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';

const model: ModelConfig = { cell: 'lstm', vocabSize: 65, hiddenSize: 36, layers: 2 };
const train: TrainConfig = { seqLength: 4, batchSize: 11, optimizer: 'adam', learningRate: 1e-3, clip: 5 };
const CANDS = Object.keys(MATMUL_CANDIDATES);
const { matmuls } = planIteration(model, train);
const shapes = uniqueProducts(matmuls);
const ADAPTER = tuningAdapterKey('vendor=mesa; device=llvmpipe; via=Vulkan');

describe('the products a plan tunes', () => {
  it('lists every matmul dispatch once, each shape key once in uniqueProducts, cheapest first', () => {
    const plan = planIteration(model, train);
    const dispatches = [...plan.forward, ...plan.backward].filter((d) => d.kernel === 'matmul');
    expect(plan.matmuls.length).toBe(dispatches.length);
    expect(new Set(shapes.map((s) => s.key)).size).toBe(shapes.length);
    expect(new Set(matmuls.map((s) => s.key)).size).toBe(shapes.length);
    const flops = shapes.map((s) => s.M * s.N * s.K);
    expect(flops).toEqual([...flops].sort((a, b) => a - b));
    expect(shapes[0].key).toMatch(/^\d+x\d+x\d+ At?Bt? main(_vb|_vab)?$/);
  });
});

describe('the plan under a kernel choice', () => {
  it('--tune off (no choice) is the plan as it was: the default tiling for every product', () => {
    const untuned = planIteration(model, train);
    expect(planIteration(model, train, undefined, {})).toEqual(untuned);
    const mm = [...untuned.forward, ...untuned.backwardWithDh0].filter((d) => d.kernel === 'matmul');
    for (const d of mm) expect(d.constants).toMatchObject({ WG_X: DEFAULT_MATMUL_TILING.wgX, WG_Y: DEFAULT_MATMUL_TILING.wgY });
    expect(mm.every((d) => d.entryPoint !== 'main_tiled')).toBe(true);
    expect(untuned.matmuls.every((m) => m.candidate === DEFAULT_MATMUL_CANDIDATE)).toBe(true);
    // The default candidate is the default tiling, so naming it changes nothing.
    const named = Object.fromEntries(shapes.map((s) => [s.key, DEFAULT_MATMUL_CANDIDATE]));
    expect(planIteration(model, train, undefined, named)).toEqual(untuned);
  });

  it('a choice changes exactly the products of the shapes it names', () => {
    const key = shapes[1].key;
    const untuned = planIteration(model, train);
    const tuned = planIteration(model, train, undefined, { [key]: 'shared-16x16' });
    const mm = (p: typeof tuned) => [...p.forward, ...p.backwardWithDh0];
    const changed = mm(tuned).filter((d, i) => JSON.stringify(d) !== JSON.stringify(mm(untuned)[i]));
    const named = tuned.matmuls.filter((m) => m.key === key);
    expect(changed.length).toBe(named.length);
    expect(changed.every((d) => d.entryPoint === 'main_tiled' && d.constants.WG_X === 16 && d.constants.WG_Y === 16)).toBe(true);
    expect(tuned.buffers).toEqual(untuned.buffers);
    expect(() => planIteration(model, train, undefined, { [key]: 'nonsense' })).toThrow(/no matmul candidate/);
  });

  it('offers only what the device can run', () => {
    expect(matmulCandidatesFor({ maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 16384 })).toEqual(CANDS);
    expect(matmulCandidatesFor({ maxComputeInvocationsPerWorkgroup: 128, maxComputeWorkgroupStorageSize: 16384 })).not.toContain('shared-16x16');
    expect(matmulCandidatesFor({ maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 1024 })).toEqual(['registers-8x8', 'registers-16x4', 'shared-8x8']);
    expect(() => matmulLaunch({ M: 2, N: 2, K: 2, A: { size: 64 }, lda: 2, B: { size: 64 }, ldb: 2, C: { size: 64 }, ldc: 2 }, { variant: 'main_tiled', wgX: 8, wgY: 4 })).toThrow(/square/);
  });
});

describe('the recurrent steps under a kernel choice', () => {
  const CELL_CANDS = Object.keys(CELL_CANDIDATES);
  const plan = planIteration(model, train);
  const steps = (p: typeof plan) => [...p.forward, ...p.backwardWithDh0].filter((d) => d.kernel.startsWith('cell_'));

  it('lists each step shape once: forward and backward per W_hh alignment, on the default', () => {
    expect(plan.cells.map((c) => c.key)).toEqual(['cell_forward lstm B=11 H=36 main_v4', 'cell_backward lstm B=11 H=36 main_v4']);
    expect(plan.cells.every((c) => c.candidate === DEFAULT_CELL_CANDIDATE)).toBe(true);
    // Without a choice the steps launch as they always did: no UNITS or BU constant.
    expect(steps(plan).every((d) => Object.keys(d.constants).sort().join() === 'CELL,ROWS,WG')).toBe(true);
    const named = Object.fromEntries(plan.cells.map((c) => [c.key, DEFAULT_CELL_CANDIDATE]));
    expect(planIteration(model, train, undefined, named)).toEqual(plan);
  });

  it('a choice reblocks exactly the steps of the shape it names: same dispatches and buffers, more invocations', () => {
    const fwd = plan.cells[0].key;
    const tuned = planIteration(model, train, undefined, { [fwd]: 'rows1-units1' });
    const before = steps(plan), after = steps(tuned);
    expect(after.length).toBe(before.length);
    const changed = after.filter((d, i) => JSON.stringify(d) !== JSON.stringify(before[i]));
    expect(changed.length).toBe(train.seqLength * (model.layers ?? 1));
    expect(changed.every((d) => d.kernel === 'cell_forward' && d.entryPoint === 'main' && d.constants.ROWS === 1 && d.constants.UNITS === 1)).toBe(true);
    expect(changed[0].x).toBe(cellGrid('cell_forward', 'lstm', 11, 36, { rows: 1, units: 1 }).x);
    expect(tuned.buffers).toEqual(plan.buffers);
    expect(tuned.cells.find((c) => c.key === fwd)?.candidate).toBe('rows1-units1');
    expect(() => planIteration(model, train, undefined, { [fwd]: 'registers-8x8' })).toThrow(/no cell candidate/);
  });

  it('rows never exceed what the batch needs; a blocking over the device grid limit is not offered', () => {
    const small = planIteration({ ...model, layers: 1 }, { ...train, batchSize: 2 }, undefined, { 'cell_backward lstm B=2 H=36 main_v4': 'rows4' });
    expect(small.backward.filter((d) => d.kernel === 'cell_backward').every((d) => d.constants.ROWS === 2 && d.constants.BU === 16)).toBe(true);
    expect(cellCandidatesFor('cell_forward', 'rnn', 32, 512, 65535)).toEqual(CELL_CANDS);
    // rows1-units1 at B=32, H=512: 16,384 invocations, 256 workgroups of 64.
    expect(cellCandidatesFor('cell_forward', 'rnn', 32, 512, 255)).not.toContain('rows1-units1');
    // At B = 1 every blocking has one row: rows4 would time the default again.
    expect(cellCandidatesFor('cell_backward', 'rnn', 1, 100, 65535)).toEqual(['rows8', 'rows2-units4', 'rows1-units1']);
  });

  it('the cache keeps cell picks per adapter and shape, like the products', () => {
    const key = plan.cells[1].key;
    const cache = withTuned(emptyTuningCache(), ADAPTER, { [key]: { pick: 'rows4', ms: { rows8: 2, rows4: 1 } } });
    expect(parseTuningCache(JSON.stringify(cache))).toEqual(cache);
    const p = planCellTuning(plan.cells, cache, ADAPTER, 'auto', CELL_CANDS);
    expect(p.choice).toEqual({ [key]: 'rows4' });
    expect(p.missing.map((c) => c.key)).toEqual([plan.cells[0].key]);
    expect(planCellTuning(plan.cells, cache, ADAPTER, 'full', CELL_CANDS).missing.length).toBe(2);
    expect(pickFastest({}, CELL_CANDS)).toBe(DEFAULT_CELL_CANDIDATE);
  });

  it('the summary line names the steps\' picks', () => {
    const choice = { [plan.cells[1].key]: 'rows1-units4' };
    expect(describeTuning(matmuls, { mode: 'auto', choice, cached: 0, timed: 2, untimed: 0, ms: 12 }, plan.cells))
      .toBe(`kernels: matmul registers-8x8 for ${shapes.length} shapes; cell_forward rows8; cell_backward rows1-units4 (2 timed in 12 ms)`);
    expect(describeTuning(matmuls, { mode: 'off', choice: {}, cached: 0, timed: 0, untimed: 0, ms: 0 }, plan.cells))
      .toBe('kernels: matmul registers-8x8; cell_forward rows8; cell_backward rows8 (the default, not tuned)');
  });
});

describe('planTuning: what the cache settles', () => {
  const cache = withTuned(emptyTuningCache(), ADAPTER, { [shapes[0].key]: { pick: 'shared-8x8', ms: { 'registers-8x8': 2, 'shared-8x8': 1 } } });
  it('auto takes the cached pick for this adapter and shape, and times the rest', () => {
    const p = planTuning(matmuls, cache, ADAPTER, 'auto', CANDS);
    expect(p.choice).toEqual({ [shapes[0].key]: 'shared-8x8' });
    expect(p.cached).toEqual([shapes[0].key]);
    expect(p.missing.map((m) => m.key)).toEqual(shapes.slice(1).map((s) => s.key));
  });
  it('the key includes the adapter: another adapter, or another build of the kernel, finds nothing', () => {
    expect(planTuning(matmuls, cache, tuningAdapterKey('vendor=nvidia; via=Vulkan'), 'auto', CANDS).cached).toEqual([]);
    expect(planTuning(matmuls, cache, tuningAdapterKey('vendor=mesa; device=llvmpipe; via=Vulkan', '// edited'), 'auto', CANDS).cached).toEqual([]);
  });
  it('the key includes the shape: another model finds nothing', () => {
    const other = planIteration({ ...model, hiddenSize: 40 }, train).matmuls;
    expect(planTuning(other, cache, ADAPTER, 'auto', CANDS).cached).toEqual([]);
  });
  it('off takes nothing and times nothing; full retimes everything; a pick the device cannot run is retimed', () => {
    expect(planTuning(matmuls, cache, ADAPTER, 'off', CANDS)).toEqual({ choice: {}, cached: [], missing: [], partial: {}, pruned: [] });
    expect(planTuning(matmuls, cache, ADAPTER, 'full', CANDS).missing.length).toBe(shapes.length);
    expect(planTuning(matmuls, cache, ADAPTER, 'auto', ['registers-8x8']).cached).toEqual([]);
  });
  it(`a candidate ${PRUNE_RATIO}x slower than the best on a shape timed before is not timed on new shapes (auto)`, () => {
    const slow = withTuned(emptyTuningCache(), ADAPTER, { [shapes[0].key]: { pick: 'registers-8x8', ms: { 'registers-8x8': 1, 'registers-16x4': 2.9, 'shared-8x8': 3, 'shared-16x16': 30 } } });
    const p = planTuning(matmuls, slow, ADAPTER, 'auto', CANDS);
    expect(p.pruned).toEqual(['shared-8x8', 'shared-16x16']);
    expect(planTuning(matmuls, slow, ADAPTER, 'full', CANDS).pruned).toEqual([]);
    const s = new TuningSession(p.missing, CANDS, 1000, true, p.partial, p.pruned);
    const seen: string[] = [];
    for (let step = s.next(0); step; step = s.next(0)) {
      seen.push(step.candidate);
      s.record(step.shape.key, step.candidate, 1);
    }
    expect(new Set(seen)).toEqual(new Set(['registers-8x8', 'registers-16x4']));
    expect(Object.values(s.results()).every((r) => r.pick === 'registers-8x8')).toBe(true);
  });

  it('a shape an earlier start did not finish is timed on from where it stopped', () => {
    const partial = withTuned(cache, ADAPTER, { [shapes[1].key]: { ms: { 'registers-8x8': 3 } } });
    const p = planTuning(matmuls, partial, ADAPTER, 'auto', CANDS);
    expect(p.partial).toEqual({ [shapes[1].key]: { 'registers-8x8': 3 } });
    const s = new TuningSession(p.missing, CANDS, 1000, true, p.partial);
    expect(s.next(0)).toEqual({ shape: p.missing[0], candidate: 'registers-16x4' });
  });
});

describe('TuningSession: order, validation, budget, pruning', () => {
  const two = shapes.slice(0, 2);
  it('times every candidate of every shape, cheapest shape first, the default first, and picks the fastest', () => {
    const s = new TuningSession(two, CANDS, 1000, false);
    const seen: string[] = [];
    const ms: Record<string, number> = { 'registers-8x8': 4, 'registers-16x4': 3, 'shared-8x8': 5, 'shared-16x16': 2 };
    for (let step = s.next(0); step; step = s.next(0)) {
      seen.push(`${step.shape.key}|${step.candidate}`);
      s.record(step.shape.key, step.candidate, ms[step.candidate]);
    }
    expect(seen).toEqual(two.flatMap((sh) => CANDS.map((c) => `${sh.key}|${c}`)));
    expect(s.results()[two[0].key]).toEqual({ pick: 'shared-16x16', ms });
  });
  it('a refused candidate (wrong output) is never timed again nor picked', () => {
    const s = new TuningSession(two, CANDS, 1000, false);
    for (let step = s.next(0); step; step = s.next(0)) {
      if (step.candidate === 'shared-16x16') s.refuse(step.shape.key, step.candidate);
      else s.record(step.shape.key, step.candidate, step.candidate === 'registers-8x8' ? 2 : 3);
    }
    for (const r of Object.values(s.results())) {
      expect(r.pick).toBe('registers-8x8');
      expect(r.ms['shared-16x16']).toBeUndefined();
    }
  });
  it(`with pruning, a candidate ${PRUNE_RATIO}x slower than the best on one shape is skipped on the next`, () => {
    const s = new TuningSession(two, CANDS, 1000, true);
    const order: string[] = [];
    for (let step = s.next(0); step; step = s.next(0)) {
      order.push(step.candidate);
      s.record(step.shape.key, step.candidate, step.candidate.startsWith('shared') ? 100 : 1);
    }
    expect(order).toEqual([...CANDS, 'registers-8x8', 'registers-16x4']);
    expect(s.results()[two[1].key].pick).toBe('registers-8x8');
    expect(s.worthRepeating(two[1].key, 2.9)).toBe(true);
    expect(s.worthRepeating(two[1].key, 3.1)).toBe(false);
  });
  it(`with pruning, a shape whose best run is over budget / (2 x ${PRUNE_RATIO}) keeps the default, timed and cached; full tries the rest`, () => {
    const run = (prune: boolean, defaultMs: number) => {
      const s = new TuningSession(two.slice(0, 1), CANDS, 600, prune);
      const seen: string[] = [];
      for (let step = s.next(0); step; step = s.next(0)) {
        seen.push(step.candidate);
        s.record(step.shape.key, step.candidate, step.candidate === 'registers-8x8' ? defaultMs : defaultMs / 2);
      }
      return { seen, result: s.results()[two[0].key] };
    };
    // 2 x 3 x 101 ms > 600 ms: a candidate 3x slower could spend more than the budget.
    expect(run(true, 101)).toEqual({ seen: ['registers-8x8'], result: { pick: 'registers-8x8', ms: { 'registers-8x8': 101 } } });
    expect(run(true, 99).seen).toEqual(CANDS);
    expect(run(false, 101).seen).toEqual(CANDS);
    // A default refused for a wrong output leaves nothing to weigh against: the others are timed.
    const s = new TuningSession(two.slice(0, 1), CANDS, 600, true);
    s.refuse(two[0].key, s.next(0)!.candidate);
    expect(s.next(0)?.candidate).toBe('registers-16x4');
  });
  it('stops at the budget; an unfinished shape keeps its timings but no pick', () => {
    const s = new TuningSession(two, CANDS, 10, false);
    let step = s.next(0)!;
    s.record(step.shape.key, step.candidate, 1);
    step = s.next(5)!;
    expect(step.candidate).toBe('registers-16x4');
    expect(s.next(10)).toBeUndefined();
    expect(s.next(0)).toBeUndefined();
    expect(s.results()).toEqual({ [two[0].key]: { ms: { 'registers-8x8': 1 } } });
  });
  it('pickFastest breaks ties toward the earlier candidate and falls back to the default', () => {
    expect(pickFastest({ 'shared-8x8': 1, 'registers-16x4': 1 }, CANDS)).toBe('registers-16x4');
    expect(pickFastest({}, CANDS)).toBe(DEFAULT_MATMUL_CANDIDATE);
  });
});

describe('the summary line', () => {
  it('counts the picks per candidate and says where they came from', () => {
    const choice = Object.fromEntries(shapes.map((s, i) => [s.key, i === 0 ? 'shared-16x16' : 'registers-8x8']));
    const line = describeTuning(matmuls, { mode: 'auto', choice, cached: shapes.length - 1, timed: 1, untimed: 0, ms: 420.4 });
    expect(line).toBe(`kernels: matmul registers-8x8 for ${shapes.length - 1} shapes, shared-16x16 for 1 (${shapes.length - 1} cached, 1 timed in 420 ms)`);
    expect(describeTuning(matmuls, { mode: 'off', choice: {}, cached: 0, timed: 0, untimed: 0, ms: 0 })).toBe('kernels: matmul registers-8x8 (the default, not tuned)');
  });
});

describe('the cache file (Node)', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'rnn-tune-'));
  const sample: TuningCache = withTuned(emptyTuningCache(), ADAPTER, { [shapes[0].key]: { pick: 'registers-16x4', ms: { 'registers-8x8': 2, 'registers-16x4': 1 } } });

  it('lives under XDG_CACHE_HOME, else ~/.cache', () => {
    expect(tuningCachePath({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/u' })).toBe('/x/cache/webgpu-rnn/tuning.json');
    expect(tuningCachePath({ HOME: '/home/u' })).toBe('/home/u/.cache/webgpu-rnn/tuning.json');
    expect(tuningCachePath({ XDG_CACHE_HOME: 'relative', HOME: '/home/u' })).toBe('/home/u/.cache/webgpu-rnn/tuning.json');
  });

  it('round-trips, keyed by adapter and shape; a missing file is an empty cache without a note', async () => {
    const path = join(dir(), 'sub', 'tuning.json');
    const store = fileTuningStore(path);
    const notes: string[] = [];
    expect(await store.load((n) => notes.push(n))).toEqual(emptyTuningCache());
    await store.save(sample);
    expect(await store.load((n) => notes.push(n))).toEqual(sample);
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8')).adapters)).toEqual([ADAPTER]);
    expect(notes).toEqual([]);
  });

  it('a corrupt file is ignored with one note, and the next save rewrites it', async () => {
    for (const bad of ['{"version":1,"adapters":{"a":{"k":{"pick":3', '[]', '{"version":2,"adapters":{}}', '{"version":1,"adapters":{"a":{"k":{"pick":"x","ms":{"y":"fast"}}}}}']) {
      const d = dir();
      const path = join(d, 'tuning.json');
      writeFileSync(path, bad);
      const notes: string[] = [];
      const store = fileTuningStore(path);
      expect(await store.load((n) => notes.push(n))).toEqual(emptyTuningCache());
      expect(notes.length).toBe(1);
      expect(notes[0]).toMatch(/ignoring the kernel tuning cache .*tuning\.json/);
      await store.save(sample);
      expect(parseTuningCache(readFileSync(path, 'utf8'))).toEqual(sample);
      expect(readdirSync(d)).toEqual(['tuning.json']); // atomic: no temporary left behind
    }
  });

  it('an unknown candidate (from another version) is dropped, not fatal', () => {
    const text = JSON.stringify({ version: 1, adapters: { a: { k: { pick: 'gone-4x4', ms: { 'gone-4x4': 1 } }, j: { pick: 'shared-8x8', ms: { 'shared-8x8': 1, 'gone-4x4': 2 } } } } });
    expect(parseTuningCache(text)).toEqual({ version: 1, adapters: { a: { j: { pick: 'shared-8x8', ms: { 'shared-8x8': 1 } } } } });
  });

  it('a save is atomic: the old file stays whole until the new one replaces it', async () => {
    const d = dir();
    const path = join(d, 'tuning.json');
    const store = fileTuningStore(path);
    await store.save(sample);
    const bigger = withTuned(sample, 'other', Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, { pick: 'registers-8x8', ms: { 'registers-8x8': i } }])));
    const reads: (TuningCache | undefined)[] = [];
    const saving = store.save(bigger);
    for (let i = 0; i < 20; i++) {
      reads.push(parseTuningCache(readFileSync(path, 'utf8')));
      await new Promise((r) => setTimeout(r, 0));
    }
    await saving;
    expect(reads.every((r) => r !== undefined)).toBe(true);
    expect(parseTuningCache(readFileSync(path, 'utf8'))).toEqual(bigger);
  });
});

describe('the adapter key', () => {
  it('holds every identifying field of GPUAdapterInfo and the backend', () => {
    const info = { vendor: 'mesa', architecture: '', device: 'llvmpipe', description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)' } as GPUAdapterInfo;
    expect(adapterKeyOf(info, 'Vulkan')).toBe('vendor=mesa; device=llvmpipe; description=llvmpipe: Mesa 25.0.7 (LLVM 15.0.6); via=Vulkan');
    expect(adapterKeyOf(info, 'Vulkan')).not.toBe(adapterKeyOf({ ...info, description: 'llvmpipe: Mesa 25.1.0' } as GPUAdapterInfo, 'Vulkan'));
    expect(adapterKeyOf(undefined, 'OpenGL')).toBe('via=OpenGL');
  });
});


describe('TuningSession.abandon', () => {
  it('a shape whose operands cannot be allocated keeps the default, uncached, and the rest go on', () => {
    const two = shapes.slice(0, 2);
    const s = new TuningSession(two, CANDS, 1000, false);
    const first = s.next(0)!;
    s.abandon(first.shape.key);
    const next = s.next(0)!;
    expect(next.shape.key).toBe(two[1].key);
    expect(next.candidate).toBe(CANDS[0]);
    expect(s.results()[two[0].key]).toBeUndefined();
  });
});
