/**
 * The bench for a machine with a real GPU (bench/real-gpu/run.sh runs it from the packed folder;
 * here: npx tsx --import ./src/node/register-raw.mjs bench/real-gpu/main.ts [--quick]).
 * Prints the adapter and its limits, matmul GFLOP/s of every candidate on square products (each
 * validated against float64 dot products before it is timed, src/gpu/tune.ts), the tuner's picks
 * and training throughput of our GPU backend at H 512-4096 (pipelined and with a readback each
 * iteration), and writes the same as JSON to --out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { acquireNodeGpu, releaseNodeGpu } from '../../src/node/webgpu.ts';
import { matmulCandidatesFor, matmulShapeKey, matmulVariantFor } from '../../src/gpu/kernels/matmul.ts';
import { TuningSession, memoryTuningStore } from '../../src/gpu/tuner.ts';
import { timeMatmuls } from '../../src/gpu/tune.ts';
import type { PlannedMatmul } from '../../src/gpu/plan.ts';
import { benchTraining, jobLabel, type Job, type TrainRow } from '../training.ts';
import { table } from '../report.ts';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, out: { type: 'string', default: 'results' } } });
const quick = !!args.quick;
const fmt = (n: number, d = 0) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });

/** A square product as the tuner plans one: A·B (vec4 B) or Aᵀ·B (vec4 A and B). */
function square(n: number, transA: boolean): PlannedMatmul {
  const layout = { M: n, N: n, K: n, transA, transB: false, lda: n, ldb: n, ldc: n, A: { size: 4 * n * n }, B: { size: 4 * n * n } };
  const variant = matmulVariantFor(layout as never);
  return { label: `${n}^3 ${transA ? 'A^T B' : 'A B'}`, key: matmulShapeKey(layout as never), ...layout, variant, candidate: '' } as PlannedMatmul;
}

async function main() {
  const ctx = await acquireNodeGpu();
  const l = ctx.limits;
  console.log(`adapter: ${ctx.adapterName}${ctx.isFallback ? ' (software)' : ''}`);
  console.log(`limits: maxStorageBufferBindingSize ${fmt(l.maxStorageBufferBindingSize / 2 ** 20)} MiB, maxBufferSize ${fmt(l.maxBufferSize / 2 ** 20)} MiB, ` +
    `workgroup storage ${l.maxComputeWorkgroupStorageSize} B, invocations ${l.maxComputeInvocationsPerWorkgroup}, features: ${[...ctx.device.features].join(' ')}\n`);

  // Matmul: every candidate on each shape, validated, then the median of 5 runs (one dispatch, submit and wait each).
  const sizes = quick ? [256, 512] : [1024, 2048, 4096];
  const shapes = sizes.flatMap((n) => [square(n, false), square(n, true)]);
  const candidates = matmulCandidatesFor(l);
  const session = new TuningSession(shapes, candidates, quick ? 60_000 : 180_000, false);
  await timeMatmuls(ctx.device, session, 5);
  const results = session.results();
  const matmul = shapes.flatMap((s) => Object.entries(results[s.key]?.ms ?? {}).map(([c, ms]) => ({
    shape: s.label, candidate: c, ms, gflops: (2 * s.M * s.N * s.K) / ms / 1e6, pick: results[s.key]?.pick === c,
  })));
  console.log(`Matmul (median of 5 dispatches, each submitted and waited for; candidates refused by validation are absent)\n${table(
    ['shape', 'candidate', 'ms', 'GFLOP/s'],
    matmul.map((m) => [m.shape, `${m.candidate}${m.pick ? ' *' : ''}`, fmt(m.ms, 3), fmt(m.gflops, 1)]),
  )}\n`);

  // Training: our GPU backend, the tuner in full mode with an in-memory cache (nothing written on that machine).
  const tune = { mode: 'full' as const, store: memoryTuningStore(), note: (line: string) => console.log(`note: ${line}`) };
  const jobs: Job[] = quick
    ? [{ V: 87, H: 64, T: 16, B: 8 }, { V: 87, H: 64, T: 16, B: 8, cell: 'lstm' }]
    : [
      ...[512, 1024, 2048, 4096].map((H) => ({ V: 87, H, T: 64, B: 32 })),
      ...[512, 1024, 2048, 4096].map((H) => ({ V: 87, H, T: 64, B: 32, cell: 'lstm' as const })),
      { V: 87, H: 1024, T: 64, B: 128 },
      { V: 10_000, H: 1024, T: 64, B: 32 },
    ];
  const training: TrainRow[] = [];
  const failed: string[] = [];
  for (const j of jobs) {
    try {
      const rows = await benchTraining(ctx, j, { backends: ['ours-gpu'], budgetMs: quick ? 0 : 3000, minReps: quick ? 1 : 3, maxReps: quick ? 1 : 20, peerBudgetMs: Infinity, tune });
      training.push(...rows);
      for (const r of rows) console.log(`  ${jobLabel(r)} ${r.timing.padEnd(9)} ${fmt(r.msMedian, 2).padStart(9)} ms/iter  ${fmt(r.tokensPerSecond).padStart(10)} tok/s  ${r.kernels ?? ''}`);
    } catch (e) {
      failed.push(`${jobLabel(j)}: ${(e as Error).message.split('\n')[0]}`);
      console.log(`  ${jobLabel(j)}: failed: ${failed.at(-1)}`);
    }
  }
  const jobsRun = [...new Set(training.map(jobLabel))];
  const tok = (label: string, timing: string) => training.find((r) => jobLabel(r) === label && r.timing === timing);
  console.log(`\nTraining throughput, our GPU backend (tokens/s)\n${table(
    ['job', 'pipelined', 'readback each iter', 'ms/iter', 'dispatches', "tuner's picks"],
    jobsRun.map((label) => {
      const p = tok(label, 'pipelined'), s = tok(label, 'sync');
      return [label, p ? fmt(p.tokensPerSecond) : '-', s ? fmt(s.tokensPerSecond) : '-', p ? fmt(p.msMedian, 2) : '-', p?.dispatches ?? '-', (p?.kernels ?? '').replace(/^kernels: /, '')];
    }),
  )}`);
  if (failed.length) console.log(`\nFailed rows:\n  ${failed.join('\n  ')}`);
  const picks = Object.values(tune.store.cache.adapters)[0] ?? {};
  console.log(`\nTuner's picks by product shape:\n  ${Object.entries(picks).map(([k, v]) => `${k}: ${v.pick ?? '(unfinished)'} (${Object.entries(v.ms).map(([c, ms]) => `${c} ${fmt(ms, 3)} ms`).join(', ')})`).join('\n  ')}`);

  mkdirSync(args.out!, { recursive: true });
  const file = `${args.out}/real-gpu${quick ? '-quick' : ''}.json`;
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), adapter: ctx.adapterName, limits: l, matmul, training, failed, picks }, null, 2));
  console.log(`\nwrote ${file}`);
  releaseNodeGpu(ctx);
}

await main();
