/** The CLI on the GPU at tiny sizes: portability of checkpoints, exact resume, device limits and loss. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/cli/checkpoint-files.ts';
import { acquireNodeGpu, releaseNodeGpu } from '../../src/node/webgpu.ts';
import { gpu, noGpu } from '../gpu.ts';
import { cli, oneLineErr, tempDir, tinyCorpus } from './helpers.ts';
import { fileTuningStore } from '../../src/node/tuning-store.ts';
import { decodeSafetensors, encodeSafetensors } from '../../src/checkpoint/safetensors.ts';
import { planIteration } from '../../src/gpu/plan.ts';

const SMALL = ['--hidden', '16', '--seq-length', '8', '--batch-size', '4', '--sample-every', '0', '--eval-every', '0'];

describe.skipIf(noGpu)('CLI on the GPU', () => {
  let dir: string;
  let corpus: string;
  let gpuCkpt: string;
  let cpuCkpt: string;

  beforeAll(async () => {
    dir = tempDir();
    corpus = tinyCorpus(dir, 'tiny.txt', 16);
    gpuCkpt = join(dir, 'gpu.safetensors');
    cpuCkpt = join(dir, 'cpu.safetensors');
    const g = await cli(['train', '--corpus', corpus, ...SMALL, '--iterations', '40', '--backend', 'gpu', '--checkpoint', gpuCkpt], { gpu });
    expect(g.err).toBe('');
    expect(g.code).toBe(0);
    expect(g.out).toContain(`backend: GPU, ${gpu!.adapterName}`);
    expect(g.out).toMatch(/model: RNN, hidden 16, [\d,]+ parameters, GPU memory [\d.]+ KiB/);
    const c = await cli(['train', '--corpus', corpus, ...SMALL, '--iterations', '40', '--backend', 'cpu', '--checkpoint', cpuCkpt]);
    expect(c.code).toBe(0);
  });

  it('a checkpoint saved from the GPU samples on the CPU, and the reverse, with the same text', async () => {
    for (const ck of [gpuCkpt, cpuCkpt]) {
      const args = ['sample', '--checkpoint', ck, '--prime', 'the ', '--length', '60', '--argmax'];
      const onGpu = await cli([...args, '--backend', 'gpu'], { gpu });
      const onCpu = await cli([...args, '--backend', 'cpu']);
      expect(onGpu.code).toBe(0);
      expect(onCpu.code).toBe(0);
      expect(onGpu.out).toMatch(/^the .{20}/s);
      expect(onGpu.out).toBe(onCpu.out);
    }
  });

  it('with top-k, top-p, a repetition penalty and --num-samples, the same seed gives the same text on both backends', async () => {
    const args = ['sample', '--checkpoint', gpuCkpt, '--prime', 'the ', '--length', '80', '--seed', '11', '--num-samples', '3',
      '--top-k', '8', '--top-p', '0.9', '--repetition-penalty', '1.3', '--repetition-window', '12'];
    const onGpu = await cli([...args, '--backend', 'gpu'], { gpu });
    const onCpu = await cli([...args, '--backend', 'cpu']);
    expect(onGpu.code).toBe(0);
    expect(onCpu.code).toBe(0);
    expect(onGpu.out.match(/^----- sample \d of 3 /gm)?.length).toBe(3);
    // Float32 against float64 can move a draw at a CDF boundary (test/kernels.test.ts bounds how
    // rarely); on this small model and seed the texts agree exactly.
    expect(onGpu.out).toBe(onCpu.out);
  });

  it('eval agrees across backends', async () => {
    const g = await cli(['eval', '--checkpoint', gpuCkpt, '--backend', 'gpu'], { gpu });
    const c = await cli(['eval', '--checkpoint', gpuCkpt, '--backend', 'cpu']);
    const loss = (s: string) => Number(/^loss ([\d.]+)/.exec(s)![1]);
    expect(loss(g.out)).toBeCloseTo(loss(c.out), 3);
  });

  // Adam, and SGD and RMSprop under schedules whose rate changes on both sides of the interruption.
  it.each([
    [[]],
    [['--optimizer', 'rmsprop', '--lr-schedule', 'cosine', '--lr-min', '1e-4']],
    [['--optimizer', 'sgd', '--lr', '0.05', '--lr-schedule', 'step', '--lr-decay', '0.5', '--lr-decay-every', '0.25', '--lr-decay-after', '0']],
  ])('an interrupted and resumed GPU run has exactly the losses of an uninterrupted one: %j', async (extra: string[]) => {
    const tag = extra[1] ?? 'adam';
    const flags = ['train', '--corpus', corpus, ...SMALL, ...extra, '--iterations', '30', '--backend', 'gpu'];
    const a = await cli([...flags, '--checkpoint', join(dir, `a-${tag}.safetensors`)], { gpu });
    const part = join(dir, `b-${tag}.safetensors`);
    const b = await cli([...flags, '--checkpoint', part], {
      gpu,
      onStep: (i, t) => {
        if (i === 11) t.interrupt();
      },
    });
    expect(b.code).toBe(130);
    const c = await cli(['train', '--resume', part, '--backend', 'gpu'], { gpu });
    expect(c.code).toBe(0);
    const resumed = new Map([...b.losses, ...c.losses]);
    expect([...resumed.keys()]).toEqual([...a.losses.keys()]);
    expect([...resumed.values()]).toEqual([...a.losses.values()]);
    for (const k of ['params', 'optM', 'optV'] as const) expect(readCheckpoint(part).state[k], k).toEqual(readCheckpoint(join(dir, `a-${tag}.safetensors`)).state[k]);
  });

  it('--resume without --backend continues on the backend that wrote the checkpoint, bit for bit', async () => {
    // An adapter is available, so 'auto' alone would move this CPU run onto the GPU, where it
    // would match the uninterrupted run only to float32 rounding.
    const flags = ['train', '--corpus', corpus, ...SMALL, '--iterations', '20'];
    const full = join(dir, 'cpu-full.safetensors');
    const a = await cli([...flags, '--backend', 'cpu', '--checkpoint', full], { gpu });
    expect(a.code).toBe(0);
    const part = join(dir, 'cpu-part.safetensors');
    const b = await cli([...flags, '--backend', 'cpu', '--checkpoint', part], {
      gpu,
      onStep: (i, t) => {
        if (i === 7) t.interrupt();
      },
    });
    expect(b.code).toBe(130);
    const c = await cli(['train', '--resume', part], { gpu });
    expect(c.code).toBe(0);
    expect(c.out).toContain('backend: CPU');
    const [x, y] = [readCheckpoint(part).state, readCheckpoint(full).state];
    expect(x.optStep).toBe(y.optStep);
    for (const k of ['params', 'optM', 'optV', 'hidden'] as const) expect(x[k], k).toEqual(y[k]);
    // Asked for, the other backend is used, with a note that exactness is to rounding only.
    const d = await cli(['train', '--resume', part, '--iterations', '22', '--backend', 'gpu'], { gpu });
    expect(d.code).toBe(0);
    expect(d.err).toMatch(/^note: .*cpu-part\.safetensors was trained on the CPU and continues on the GPU: .*float32 rounding/m);
  });

  it('a size the device cannot hold fails with one line, before allocating', async () => {
    const r = await cli(['train', '--corpus', corpus, ...SMALL, '--hidden', '100000', '--backend', 'gpu', '--checkpoint', join(dir, 'huge.safetensors')], { gpu });
    expect(r.code).toBe(1);
    expect(oneLineErr(r.err)).toBe(true);
    expect(r.err).toMatch(/^error: the parameters buffer needs [\d.]+ GiB but this adapter allows [\d.]+ (MiB|GiB) per buffer \(hidden 100000, .*\): lower one of them$/m);
  });

  it('a lost device stops training and keeps the last checkpoint', async () => {
    const own = await acquireNodeGpu();
    const p = join(dir, 'lost.safetensors');
    try {
      const r = await cli(['train', '--corpus', corpus, ...SMALL, '--iterations', '100', '--checkpoint-every', '5', '--backend', 'gpu', '--checkpoint', p], {
        gpu: own,
        onStep: (i, t) => {
          if (i === 12) t.gpu!.device.destroy();
        },
      });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^error: the GPU device was lost \(.*\) at iteration \d+; the last good checkpoint is kept: .*lost\.safetensors \(iteration 10\)$/m);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(readCheckpoint(p).progress.iteration).toBe(10);
      expect(readFileSync(p).length).toBeGreaterThan(0);
    } finally {
      releaseNodeGpu(own);
    }
  });
});

describe.skipIf(noGpu)('CLI --tune on the GPU', () => {
  it('prints the kernel choice; a second run reads it from the cache file and trains bit-identically; --tune off is the default kernels', async () => {
    // A device of its own: the file's shared one is destroyed by the size-limit test above.
    const gpu = await acquireNodeGpu();
    try {
      await tuneRuns(gpu);
    } finally {
      releaseNodeGpu(gpu);
    }
  }, 120_000);

  async function tuneRuns(gpu: Awaited<ReturnType<typeof acquireNodeGpu>>) {
    const dir = tempDir();
    const corpus = tinyCorpus(dir, 'tiny.txt', 16);
    const store = fileTuningStore(join(dir, 'cache', 'tuning.json'));
    const args = ['train', '--corpus', corpus, ...SMALL, '--iterations', '6', '--backend', 'gpu', '--checkpoint', join(dir, 'ck.safetensors')];
    // A busy machine may need more than one start's budget to time every shape; each start goes on where the last stopped.
    let first = await cli([...args, '--tune', 'full'], { gpu, tuningStore: store });
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/^kernels: matmul [\w-]+ for \d+ shapes?.* \(\d+ timed in \d+ ms\)$/m);
    const second = await cli([...args, '--tune', 'auto'], { gpu, tuningStore: store });
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/^kernels: matmul [\w-]+ for \d+ shapes?.* \(\d+ cached\)$/m);
    const third = await cli([...args, '--tune', 'auto'], { gpu, tuningStore: store });
    expect([...third.losses.values()]).toEqual([...second.losses.values()]);
    expect(third.losses.size).toBe(6);
    const off = await cli([...args, '--tune', 'off'], { gpu, tuningStore: store });
    expect(off.out).toContain('kernels: matmul registers-8x8; cell_forward rows8; cell_backward rows8 (the default, not tuned)');
    expect(readFileSync(join(dir, 'cache', 'tuning.json'), 'utf8')).toContain(gpu.adapterKey);
  }

  it('a resumed run keeps the kernels its checkpoint was trained with, whatever the cache says now', async () => {
    const gpu = await acquireNodeGpu();
    try {
      const dir = tempDir();
      const corpus = tinyCorpus(dir, 'tiny.txt', 16);
      const ck = join(dir, 'ck.safetensors');
      const store = fileTuningStore(join(dir, 'cache', 'tuning.json'));
      const args = ['train', '--corpus', corpus, ...SMALL, '--backend', 'gpu', '--checkpoint', ck];
      expect((await cli([...args, '--iterations', '2', '--tune', 'off'], { gpu })).code).toBe(0);
      // As if the first run had picked registers-16x4 for every product and rows4 for the backward steps: the checkpoint says so.
      const loaded = readCheckpoint(ck);
      const plan = planIteration(loaded.model, loaded.train, gpu.limits);
      const picks = Object.fromEntries([
        ...plan.matmuls.map((m) => [m.key, 'registers-16x4']), ...plan.cells.filter((c) => c.kernel === 'cell_backward').map((c) => [c.key, 'rows4']),
      ]);
      const { tensors, metadata } = decodeSafetensors(readFileSync(ck));
      const progress = JSON.parse(metadata.progress!) as Record<string, unknown>;
      metadata.progress = JSON.stringify({ ...progress, kernels: picks });
      writeFileSync(ck, encodeSafetensors(tensors, metadata));
      const resumed = await cli(['train', '--resume', ck, '--iterations', '4'], { gpu, tuningStore: store });
      expect(resumed.code).toBe(0);
      expect(resumed.out).toMatch(/^kernels: matmul registers-16x4 for \d+ shapes; cell_forward rows8; cell_backward rows4 \(the checkpoint's choice\)$/m);
      expect(readCheckpoint(ck).progress.kernels).toEqual(picks);
      const off = await cli(['train', '--resume', ck, '--iterations', '5', '--tune', 'off'], { gpu, tuningStore: store });
      expect(off.out).toContain('kernels: matmul registers-8x8; cell_forward rows8; cell_backward rows8 (the default, not tuned)');
    } finally {
      releaseNodeGpu(gpu);
    }
  }, 120_000);

  it('refuses an unknown --tune mode in one line', async () => {
    const r = await cli(['train', '--tune', 'fast']);
    expect(r.code).not.toBe(0);
    expect(oneLineErr(r.err)).toBe(true);
    expect(r.err).toMatch(/--tune.*fast.*auto, off, full/);
  });
});
