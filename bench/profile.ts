/**
 * Where a training iteration of our GPU backend spends its time: every dispatch timed alone
 * (GpuBackend.profileIteration), grouped by what it does (the T steps of a cell as one line), with
 * the products' GFLOP/s; beside it the pipelined iteration as training runs it.
 */
import { GpuBackend, type DispatchTiming } from '../src/gpu/backend.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { GATES } from '../src/model/cells.ts';
import { tuneKernels, type TuneOptions } from '../src/engine/tuning.ts';
import { configs, randomChunk, type Job } from './training.ts';
import { PIPELINE_DEPTH } from './timing.ts';

export interface ProfileGroup {
  /** The dispatch label without its timestep or range, e.g. "forward layer 0 cell_forward". */
  what: string;
  entryPoint: string;
  count: number;
  ms: number;
  gflops?: number;
}

export interface IterationProfile {
  job: Job;
  /** The pipelined iteration, as training runs it (fastest of 3 rounds). */
  iterationMs: number;
  /** The parts' sum: more than the iteration by the submits they each paid. */
  partsMs: number;
  groups: ProfileGroup[];
  kernels: string;
}

const group = (label: string) => label.replace(/ (t|rows|positions|words)[= ]\d+(\.\.)?/g, '').replace(/ dh0$/, ' (dh0 tail)');

export function groupTimings(job: Job, timings: DispatchTiming[]): ProfileGroup[] {
  const GH = GATES[job.cell ?? 'rnn'] * job.H;
  const groups = new Map<string, ProfileGroup & { flops: number }>();
  for (const t of timings) {
    const what = group(t.label);
    const g = groups.get(what) ?? { what, entryPoint: t.entryPoint, count: 0, ms: 0, flops: 0 };
    g.count += 1;
    g.ms += t.ms;
    // A recurrent step's work is its W_hh product (the tail step forms dh0 only).
    g.flops += t.flops ?? (/^cell_/.test(t.kernel) && !/dh0/.test(t.label) ? 2 * job.B * job.H * GH : 0);
    groups.set(what, g);
  }
  return [...groups.values()].map(({ flops, ...g }) => ({ ...g, ...(flops > 0 && g.ms > 0 && { gflops: flops / g.ms / 1e6 }) }));
}

export async function profileJob(ctx: GpuContext, job: Job, tune: TuneOptions): Promise<IterationProfile> {
  const { model, train } = configs(job);
  const tuned = await tuneKernels(ctx, model, train, tune);
  const g = await GpuBackend.create(ctx, model, train, 1, undefined, tuned.choice);
  try {
    const chunk = randomChunk(job, 1);
    await (await g.trainStep(chunk)).loss;
    let iterationMs = Infinity;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      const losses = [];
      for (let i = 0; i < PIPELINE_DEPTH; i++) losses.push((await g.trainStep(chunk)).loss);
      await Promise.all(losses);
      iterationMs = Math.min(iterationMs, (performance.now() - t0) / PIPELINE_DEPTH);
    }
    const groups = groupTimings(job, await g.profileIteration());
    return { job, iterationMs, partsMs: groups.reduce((s, x) => s + x.ms, 0), groups, kernels: tuned.line };
  } finally {
    g.destroy();
  }
}
