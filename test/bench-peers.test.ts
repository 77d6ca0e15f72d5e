/**
 * The training bench's peers and rounds (bench/training.ts, bench/peers.ts) on a tiny job, CPU
 * only: every runner gives finite rows with its rounds counted, a slow runner sits out once its
 * budget is spent, and PyTorch either runs (where /usr/bin/python3 imports torch) or is left out
 * with one line saying why, never silently.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { benchTraining, jobLabel, type Job } from '../bench/training.ts';
import { torchUnavailable } from '../bench/peers.ts';
import { pasteBetweenMarkers, README_MARKERS } from '../bench/report.ts';
import { gpu, noGpu } from './gpu.ts';

const job: Job = { V: 20, H: 8, T: 4, B: 2 };

describe('training bench rounds', () => {
  it('times every runner the same number of rounds, with finite rates', async () => {
    const notes: string[] = [];
    const rows = await benchTraining(undefined, job, {
      backends: ['ours-cpu', 'brainjs', 'pytorch-cpu'], budgetMs: 0, minReps: 3, maxReps: 3, peerBudgetMs: Infinity, note: (l) => notes.push(l),
    });
    const why = torchUnavailable();
    const expected = why ? ['ours-cpu', 'brainjs'] : ['ours-cpu', 'brainjs', 'pytorch-cpu'];
    expect(rows.map((r) => r.backend)).toEqual(expected);
    for (const r of rows) {
      expect(r.reps).toBe(3);
      expect(r.timing).toBe('sync');
      expect(r.tokensPerSecond).toBeGreaterThan(0);
      expect(Number.isFinite(r.tokensPerSecond)).toBe(true);
    }
    if (why) expect(notes).toEqual([`${jobLabel(job)}: pytorch-cpu left out: ${why}`]);
    else {
      expect(notes).toEqual([]);
      expect(rows[2].about).toMatch(/^torch \S+, \d+ of \d+ cores, /);
    }
    expect(rows[1].about).toMatch(/^brain\.js 2\./);
  }, 120_000);

  it('a CPU runner that has spent its budget sits out the later rounds; the row ends when none is left', async () => {
    const rows = await benchTraining(undefined, job, { backends: ['ours-cpu', 'brainjs'], budgetMs: 0, minReps: 4, maxReps: 4, peerBudgetMs: 0 });
    expect(rows.map((r) => r.reps)).toEqual([1, 1]);
  });

  it.skipIf(noGpu)('the GPU runners are timed both ways and always get their minimum rounds', async () => {
    const rows = await benchTraining(gpu, job, { backends: ['ours-gpu', 'tfjs-webgpu', 'ours-cpu'], budgetMs: 0, minReps: 2, maxReps: 2, peerBudgetMs: 0 });
    expect(rows.map((r) => `${r.backend} ${r.timing} ${r.reps}`)).toEqual([
      'ours-gpu pipelined 2', 'ours-gpu sync 2', 'tfjs-webgpu pipelined 2', 'tfjs-webgpu sync 2', 'ours-cpu sync 1',
    ]);
    for (const r of rows) expect(r.tokensPerSecond).toBeGreaterThan(0);
  }, 120_000);

  it('a peer that dies in the middle is left out with a note; the other runners keep their rows', async () => {
    // A stand-in for python3: "imports torch", says it is ready, then dies at the first round.
    const fake = join(mkdtempSync(join(tmpdir(), 'bench-peers-')), 'python3');
    writeFileSync(fake, `#!/bin/sh\n[ "$1" = -c ] && exit 0\necho '{"ready": true, "torch": "0", "threads": 1, "blas": "none", "input": "one-hot"}'\nread line\nexit 3\n`);
    chmodSync(fake, 0o755);
    vi.stubEnv('BENCH_PYTHON', fake);
    vi.resetModules();
    try {
      const fresh = await import('../bench/training.ts');
      const notes: string[] = [];
      const rows = await fresh.benchTraining(undefined, job, { backends: ['ours-cpu', 'pytorch-cpu'], budgetMs: 0, minReps: 2, maxReps: 2, peerBudgetMs: Infinity, note: (l) => notes.push(l) });
      expect(rows.map((r) => `${r.backend} ${r.reps}`)).toEqual(['ours-cpu 2']);
      expect(notes).toEqual([`${jobLabel(job)}: pytorch-cpu left out: the PyTorch peer exited (3) in the middle of its run`]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('word-level rows name their vocabulary', () => {
    expect(jobLabel({ V: 10_000, H: 256, T: 64, B: 32 })).toBe('word V=10,000 H=256 T=64 B=32');
    expect(jobLabel({ V: 87, H: 512, T: 64, B: 32, cell: 'lstm' })).toBe('lstm H=512 T=64 B=32');
  });
  it('--readme replaces only what lies between the markers, and the README has them', () => {
    const [open, close] = README_MARKERS;
    const text = `before\n${open}\nold table\n${close}\nafter\n`;
    const once = pasteBetweenMarkers(text, '| new |\n');
    expect(once).toBe(`before\n${open}\n| new |\n${close}\nafter\n`);
    expect(pasteBetweenMarkers(once, '| new |\n')).toBe(once);
    expect(() => pasteBetweenMarkers('no markers', 'x')).toThrow(/no <!-- bench:start/);
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(() => pasteBetweenMarkers(readme, 'x')).not.toThrow();
  });
});
