/**
 * npm run bench [-- --quick | --full] [--readme] [--only 'lstm H=512' ...] [--tune auto|off|full] [--profile]
 * Training throughput of the same job on our GPU and CPU backends and on the peers: TensorFlow.js
 * (WebGPU on the same Dawn device, and CPU), PyTorch on the CPU where python3 imports torch, and
 * brain.js; sampling throughput, and the kernels against their
 * CPU twins. Ratios are computed from runs made side by side in this one process: the machines
 * are shared and noisy, so only same-run ratios mean much. Results go to bench/results/.
 */
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { acquireNodeGpu, releaseNodeGpu } from '../src/node/webgpu.ts';
import { fileTuningStore, tuningCachePath } from '../src/node/tuning-store.ts';
import { TUNE_MODES, type TuneMode } from '../src/gpu/tuner.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { benchSampling, benchTraining, GPU_BACKENDS, SAMPLE_ROUNDS, jobLabel, type BenchBackend, type Job, type SampleRow, type Timing, type TrainRow } from './training.ts';
import { BATCHES, gflopsText, runKernelBench } from './kernels.ts';
import { stopOnMismatch } from './validate.ts';
import { profileJob, type IterationProfile } from './profile.ts';
import { markdownTable, pasteBetweenMarkers, svgChart, table } from './report.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' }, full: { type: 'boolean' }, out: { type: 'string', default: 'bench/results' }, tune: { type: 'string', default: 'auto' },
    // Also paste the tables into README.md, between its bench markers (README_MARKERS in report.ts).
    readme: { type: 'boolean' },
    // Only the training rows whose label contains one of these ("lstm H=512", "word"): no sampling or kernels; results in only.*.
    only: { type: 'string', multiple: true },
    // Only where an iteration's time goes, kernel by kernel (bench/profile.ts), for PROFILED or the --only rows.
    profile: { type: 'boolean' },
  },
});
if (!(TUNE_MODES as readonly string[]).includes(args.tune!)) throw new Error(`--tune ${args.tune}: one of ${TUNE_MODES.join(', ')}`);
// Our GPU rows tune their kernels as training does, with the user's cache (src/node/tuning-store.ts).
const tune = { mode: args.tune as TuneMode, store: fileTuningStore(tuningCachePath()), note: (line: string) => console.log(`note: ${line}`) };
const mode = args.quick ? 'quick' : args.full ? 'full' : 'default';
if (args.readme && (mode === 'quick' || args.only)) throw new Error('--readme pastes a whole measurement: not with --quick or --only');
const only = args.only ?? [];
const V = 87; // the seed project's Reuters vocabulary
const CHAR_PEERS: BenchBackend[] = ['ours-gpu', 'ours-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'pytorch-cpu', 'brainjs'];
const OURS: BenchBackend[] = ['ours-gpu', 'ours-cpu'];

interface Plan { job: Job; backends: BenchBackend[] }

/**
 * The rows and who runs each. Every row is timed within the same budget (`budget` in main); what
 * would cost minutes per iteration on 2 cores is left to --full: our CPU backend on an LSTM at
 * H=512 and at word level, tfjs at word level, the 30,000-word vocabulary, H above 512.
 */
function plan(): Plan[] {
  if (mode === 'quick') {
    return [
      { job: { V, H: 64, T: 16, B: 8 }, backends: CHAR_PEERS },
      { job: { V, H: 64, T: 16, B: 8, cell: 'lstm' }, backends: [...OURS, 'pytorch-cpu', 'brainjs'] },
      { job: { V: 2000, H: 64, T: 16, B: 8 }, backends: [...OURS, 'pytorch-cpu'] },
    ];
  }
  const full = mode === 'full';
  const p: Plan[] = [];
  for (const cell of ['lstm', 'gru'] as const) p.push({ job: { V, H: 256, T: 64, B: 32, cell }, backends: [...OURS, 'pytorch-cpu', 'brainjs'] });
  p.push({ job: { V, H: 512, T: 64, B: 32, cell: 'lstm' }, backends: [...(full ? OURS : ['ours-gpu' as const]), 'pytorch-cpu', 'brainjs'] });
  for (const H of full ? [64, 128, 256, 512, 1024, 2048] : [64, 128, 256, 512]) {
    p.push({ job: { V, H, T: 64, B: 32 }, backends: H > 1024 ? ['ours-gpu', 'tfjs-webgpu', 'pytorch-cpu'] : CHAR_PEERS });
  }
  // min-char-rnn's shape: one sequence of 25, H=100.
  p.push({ job: { V, H: 100, T: 25, B: 1 }, backends: CHAR_PEERS });
  for (const B of [1, 8, 128]) p.push({ job: { V, H: 256, T: 64, B }, backends: [...OURS, 'pytorch-cpu'] });
  // Word level: the vocabulary-sized products dominate.
  const word: BenchBackend[] = full ? ['ours-gpu', 'ours-cpu', 'tfjs-webgpu', 'pytorch-cpu'] : ['ours-gpu', 'pytorch-cpu'];
  p.push({ job: { V: 10_000, H: 256, T: 64, B: 32 }, backends: word });
  if (full) {
    p.push({ job: { V: 10_000, H: 256, T: 64, B: 32, cell: 'lstm' }, backends: ['ours-gpu', 'pytorch-cpu'] });
    p.push({ job: { V: 30_000, H: 256, T: 64, B: 32 }, backends: ['ours-gpu', 'pytorch-cpu'] });
    for (const T of [25, 150]) p.push({ job: { V, H: 256, T, B: 32 }, backends: OURS });
    for (const B of [1, 8, 128]) p.push({ job: { V, H: 1024, T: 64, B }, backends: ['ours-gpu', 'pytorch-cpu'] });
  }
  return p;
}

/** The rows whose iteration the default bench breaks down by kernel: the issue's targets. */
const PROFILED = ['H=512 T=64 B=32', 'lstm H=512 T=64 B=32', 'word V=10,000 H=256 T=64 B=32'];

async function profiles(ctx: GpuContext, labels: string[]): Promise<IterationProfile[]> {
  const out: IterationProfile[] = [];
  for (const p of plan().filter((x) => labels.some((o) => jobLabel(x.job) === o || (args.profile && jobLabel(x.job).includes(o))))) {
    out.push(await profileJob(ctx, p.job, tune));
  }
  return out;
}

/** One table per profiled row, its groups largest first. */
function profileTables(list: IterationProfile[], render: (headers: string[], rows: string[][]) => string): string[] {
  return list.flatMap((p) => {
    const rows = [...p.groups].sort((a, b) => b.ms - a.ms).map((g) => [
      g.what, g.entryPoint, String(g.count), fmt(g.ms, 2), `${((100 * g.ms) / p.partsMs).toFixed(1)}%`, g.gflops === undefined ? '-' : fmt(g.gflops, 1),
    ]);
    return [
      `${jobLabel(p.job)}: iteration ${fmt(p.iterationMs, 1)} ms pipelined; its ${p.groups.reduce((s, g) => s + g.count, 0)} dispatches timed alone add up to ${fmt(p.partsMs, 1)} ms (each alone pays a submit); ${p.kernels}`,
      '', render(['dispatches', 'entry point', 'count', 'ms/iter', 'share', 'GFLOP/s'], rows), '',
    ];
  });
}

/** os.cpus() reports speed 0 on some VMs; /proc/cpuinfo still has the clock. */
function cpuMHz(): number {
  const speed = cpus()[0]?.speed ?? 0;
  if (speed > 0) return speed;
  try {
    return Number(/cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function stamp(ctx: GpuContext | undefined) {
  const pkg = (name: string) => JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
  return {
    date: new Date().toISOString(),
    mode,
    adapter: ctx ? `${ctx.adapterName}${ctx.isFallback ? ' (software)' : ''}` : 'none',
    machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    // A CPU adapter's ceiling: cores x clock x 8 float lanes (llvmpipe's 256-bit vectors) x 2 FMA
    // units x 2 flops. Only meaningful for software adapters; a real GPU's peak is not visible here.
    cpuPeakGflops: Math.round((cpus().length * cpuMHz() * 32) / 1000),
    versions: { node: process.version, webgpu: pkg('webgpu'), tfjs: pkg('@tensorflow/tfjs-core') },
  };
}

const fmt = (n: number, d = 0) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main() {
  let ctx: GpuContext | undefined;
  try {
    ctx = await acquireNodeGpu();
  } catch (e) {
    console.log(`${(e as Error).message}: GPU rows are left out`);
  }
  const info = stamp(ctx);
  // Other work on the machine slows every runner, but multi-threaded ones most (PyTorch's threads
  // wait for each other: bench/peers/torch_rnn.py); say so where the ratios will be skewed.
  const busy = () => (loadavg()[0] > cpus().length ? `the load average was ${loadavg()[0].toFixed(1)} on ${cpus().length} cores: other work competes, multi-threaded peers (PyTorch) lose most; ratios are unreliable` : '');
  // Measured before the first row: during the run the bench's own threads (lavapipe's, PyTorch's)
  // keep the load average near the core count by themselves.
  const busyAtStart = busy();
  if (busyAtStart) console.log(`note: ${busyAtStart}`);
  console.log(`bench (${mode}) on ${info.adapter}; ${info.machine}; node ${info.versions.node}, webgpu ${info.versions.webgpu}, tfjs ${info.versions.tfjs}\n`);
  // Rounds until the row has spent budgetMs; a CPU runner that has spent peerBudgetMs in a row's
  // rounds sits out the rest (tfjs and ours on the CPU at H=512: seconds per iteration).
  const budget = mode === 'quick'
    ? { budgetMs: 0, minReps: 2, maxReps: 2, peerBudgetMs: Infinity }
    : { budgetMs: 4000, minReps: 3, maxReps: 10, peerBudgetMs: 6000 };
  if (args.profile) {
    if (!ctx) throw new Error('--profile times our GPU backend: no GPU adapter');
    const list = await profiles(ctx, only.length ? only : PROFILED);
    console.log(profileTables(list, table).join('\n'));
    mkdirSync(args.out!, { recursive: true });
    writeFileSync(`${args.out}/profile.json`, JSON.stringify({ ...info, profiles: list }, null, 2));
    writeFileSync(`${args.out}/profile.md`, profileTables(list, markdownTable).join('\n'));
    releaseNodeGpu(ctx);
    return;
  }
  const about = new Set<string>();
  const training: TrainRow[] = [];
  for (const p of plan().filter((x) => only.length === 0 || only.some((o) => jobLabel(x.job).includes(o)))) {
    const rows = await benchTraining(ctx, p.job, { backends: p.backends, ...budget, tune, note: (line) => console.log(`  note: ${line}`) });
    training.push(...rows);
    for (const r of rows) {
      if (r.about) about.add(`${r.backend}: ${r.about}`);
      const who = `${r.backend}${GPU_BACKENDS.includes(r.backend) ? ` ${r.timing}` : ''}`;
      console.log(`  ${jobLabel(r)} ${who.padEnd(21)} ${fmt(r.msMedian, 1).padStart(9)} ms/iter (${fmt(r.msMin, 1)}-${fmt(r.msMax, 1)}, n=${r.reps})  ${fmt(r.tokensPerSecond).padStart(8)} tokens/s${r.kernels ? `; ${r.kernels}` : ''}`);
    }
  }

  const sampling: SampleRow[] = [];
  for (const H of only.length ? [] : mode === 'quick' ? [64] : mode === 'full' ? [128, 512, 2048] : [128, 512]) {
    sampling.push(...(await benchSampling(ctx, H, V, mode === 'quick' ? 64 : 400, H > 512 ? 1 : 8)));
  }

  // Where the issue's target rows spend an iteration (not in quick runs: they train other shapes).
  const profiled = ctx && mode !== 'quick' && !only.length ? await profiles(ctx, PROFILED) : [];

  const kernels = ctx && !only.length ? await runKernelBench(ctx, { quick: mode === 'quick', allTilings: mode === 'full' }) : [];

  // Side-by-side ratios for each job, ours and tfjs-webgpu pipelined (as training runs).
  const jobs = [...new Map(training.map((r) => [jobLabel(r), r])).values()];
  const get = (j: TrainRow, b: BenchBackend, t: Timing = GPU_BACKENDS.includes(b) ? 'pipelined' : 'sync') =>
    training.find((r) => jobLabel(r) === jobLabel(j) && r.backend === b && r.timing === t);
  const ratio = (a?: TrainRow, b?: TrainRow) => (a && b ? b.msMedian / a.msMedian : NaN);
  const trainHeaders = [
    'job (V=87 unless named)', 'ours GPU tok/s', 'ours GPU, readback each iter', 'tfjs WebGPU tok/s', 'tfjs WebGPU, readback each iter',
    'ours CPU tok/s', 'tfjs CPU tok/s', 'PyTorch CPU tok/s', 'brain.js tok/s', 'GPU/CPU', 'ours/PyTorch', 'ours/tfjs-webgpu', 'dispatches/iter',
  ];
  const cell = (r?: TrainRow) => (r ? fmt(r.tokensPerSecond) : '-');
  const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : '-');
  const trainRows = jobs.map((j) => {
    const g = get(j, 'ours-gpu'), tw = get(j, 'tfjs-webgpu'), pt = get(j, 'pytorch-cpu');
    return [
      jobLabel(j), cell(g), cell(get(j, 'ours-gpu', 'sync')), cell(tw), cell(get(j, 'tfjs-webgpu', 'sync')),
      cell(get(j, 'ours-cpu')), cell(get(j, 'tfjs-cpu')), cell(pt), cell(get(j, 'brainjs')),
      x(ratio(g, get(j, 'ours-cpu'))), x(ratio(g, pt)), x(ratio(g, tw)), g?.dispatches ?? '-',
    ];
  });
  const peerLines = [...about];
  const sampleHeaders = [`sampling (V=${V}, fastest of ${SAMPLE_ROUNDS} alternating rounds)`, 'ours GPU tok/s', 'ours CPU tok/s', 'GPU/CPU'];
  const sampleRows = [...new Map(sampling.map((s) => [`${s.H} ${s.streams}`, s])).values()].map(({ H, streams }) => {
    const g = sampling.find((s) => s.H === H && s.streams === streams && s.backend === 'ours-gpu');
    const c = sampling.find((s) => s.H === H && s.streams === streams && s.backend === 'ours-cpu');
    return [
      `H=${H}${streams > 1 ? `, ${streams} samples side by side` : ''}`, g ? fmt(g.tokensPerSecond) : '-', c ? fmt(c.tokensPerSecond) : '-',
      g && c ? `${(g.tokensPerSecond / c.tokensPerSecond).toFixed(2)}x` : '-',
    ];
  });
  const kernelHeaders = ['kernel', 'shape', 'variant', `GPU ms (fastest of ${BATCHES} batches)`, 'CPU ms', 'GFLOP/s fastest (median)', 'GB/s'];
  const kernelRows = kernels.map((k) => [k.kernel, k.shape, k.variant, fmt(k.gpuMs, 3), k.cpuMs === undefined ? '-' : fmt(k.cpuMs, 3), gflopsText(k), k.gbps === undefined ? '-' : fmt(k.gbps, 2)]);

  console.log(`\nTraining throughput (tokens/s, median; ratios from this run)\n${table(trainHeaders, trainRows)}`);
  if (peerLines.length) console.log(`\nPeers as they ran:\n  ${peerLines.join('\n  ')}`);
  if (sampleRows.length) console.log(`\nSampling throughput\n${table(sampleHeaders, sampleRows)}`);
  const peakNote = `CPU peak (theoretical, ${cpus().length} cores x 256-bit FMA): ~${info.cpuPeakGflops} GFLOP/s`;
  if (profiled.length) console.log(`\nWhere an iteration's time goes (each dispatch timed alone)\n${profileTables(profiled, table).join('\n')}`);
  if (kernelRows.length) console.log(`\nKernels vs their CPU twins; ${peakNote}\n${table(kernelHeaders, kernelRows)}`);
  const g0 = training.find((r) => r.backend === 'ours-gpu');
  const picks = training.filter((r) => r.kernels && r.timing === 'pipelined').map((r) => `${jobLabel(r)}: ${r.kernels}`);
  if (picks.length) console.log(`\nKernel choice of our GPU rows (--tune ${args.tune})\n  ${picks.join('\n  ')}`);
  if (g0) console.log(`\nPer training iteration: ${g0.dispatches} dispatches (L(2T + 6) + 2dL + 6 for L layers, d = 1 with dropout; T=${g0.T}), ${g0.readbacks} readback (the loss, asynchronous), 1 submit`);

  mkdirSync(args.out!, { recursive: true });
  const base = only.length ? 'only' : mode === 'default' ? 'latest' : mode;
  writeFileSync(`${args.out}/${base}.json`, JSON.stringify({ ...info, training, sampling, profiles: profiled, kernels }, null, 2));

  const md = [
    ...(busyAtStart ? [`**Measured on a busy machine: when the bench began ${busyAtStart}.**`, ''] : []),
    `Measured ${info.date.slice(0, 10)} on ${info.adapter}; ${info.machine}; node ${info.versions.node}, webgpu (Dawn) ${info.versions.webgpu}, tfjs ${info.versions.tfjs}. Mode: ${mode}.`,
    '', markdownTable(trainHeaders, trainRows),
    ...(peerLines.length ? ['', 'Peers as they ran:', '', ...peerLines.map((l) => `- ${l}`)] : []),
    ...(sampleRows.length ? ['', markdownTable(sampleHeaders, sampleRows)] : []),
    ...(picks.length ? ['', `Kernel choice of our GPU rows (--tune ${args.tune}):`, '', ...picks.map((p) => `- ${p}`)] : []),
    ...(profiled.length ? ['', "Where an iteration's time goes: each dispatch of one iteration timed alone, steps of a cell summed:", '', ...profileTables(profiled, markdownTable)] : []),
    ...(kernelRows.length ? ['', `Kernels against their CPU twins; ${peakNote}.`, '', markdownTable(kernelHeaders, kernelRows)] : []),
  ].join('\n');
  writeFileSync(`${args.out}/${base}.md`, md + '\n');
  if (args.readme) pasteIntoReadme(md);
  const colors: Record<BenchBackend, string> = { 'ours-gpu': '#d62728', 'ours-cpu': '#1f77b4', 'tfjs-webgpu': '#ff7f0e', 'tfjs-cpu': '#7f7f7f', 'pytorch-cpu': '#9467bd', brainjs: '#2ca02c' };
  const sweep = training.filter((r) => r.V === V && r.T === 64 && r.B === 32 && (r.cell ?? 'rnn') === 'rnn' && (r.timing === 'pipelined' || !GPU_BACKENDS.includes(r.backend)));
  const svg = svgChart(
    'Training throughput vs hidden size (T=64, B=32, V=87)',
    `${info.adapter}; ${info.machine}; ${info.date.slice(0, 10)}`,
    'hidden size H', 'tokens per second',
    CHAR_PEERS.map((b) => ({ name: b, color: colors[b], points: sweep.filter((r) => r.backend === b).map((r) => ({ x: r.H, y: r.tokensPerSecond })) })),
  );
  if (svg) writeFileSync(`${args.out}/${base}.svg`, svg);
  console.log(`\nwrote ${args.out}/${base}.json, ${base}.md${svg ? `, ${base}.svg` : ''}`);
  if (ctx) releaseNodeGpu(ctx);
}

function pasteIntoReadme(md: string): void {
  const path = new URL('../README.md', import.meta.url);
  writeFileSync(path, pasteBetweenMarkers(readFileSync(path, 'utf8'), md));
  console.log('pasted the tables into README.md');
}

await stopOnMismatch(main);
