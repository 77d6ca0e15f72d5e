/**
 * Inputs read with bounds and outputs that must not be written (issue 15, classes 2 and 3): a FIFO
 * or /dev/zero as corpus or checkpoint fails at once with one line (run in a child process with a
 * timeout, so a hang fails the test instead of freezing it); a corpus over --max-corpus-mb is
 * refused before it is read; --checkpoint equal to the corpus, a device node, a FIFO or an
 * unwritable place is refused before training; empty paths are usage errors.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCorpus } from '../../src/node/corpora.ts';
import { DataError } from '../../src/data/text.ts';
import { cli, oneLineErr, tempDir, tinyCorpus, TINY } from './helpers.ts';

const root = resolve(import.meta.dirname, '../..');
let dir: string;
let corpus: string;
let corpusBytes: Buffer;
let fifo: string;
let ckpt: string;

beforeAll(async () => {
  dir = tempDir();
  corpus = tinyCorpus(dir);
  corpusBytes = readFileSync(corpus);
  fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  ckpt = join(dir, 'good.safetensors');
  expect((await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '2', '--checkpoint', ckpt, '--quiet'])).code).toBe(0);
});

/** The CLI in a child process, killed after `ms`: returns its exit code (null if killed) and stderr. */
function child(args: string[], ms = 30_000): Promise<{ code: number | null; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--import', './src/node/register-raw.mjs', 'src/cli/main.ts', ...args], {
      cwd: root, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('close', (code) => {
      clearTimeout(timer);
      done({ code, err });
    });
  });
}

describe('strange files as inputs: one line, exit 1, no hang', () => {
  it('a FIFO or /dev/zero as the corpus, as the checkpoint to sample, evaluate or resume', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['train', '--corpus', fifo, ...TINY, '--checkpoint', join(dir, 'a.safetensors')], /pipe: is a FIFO/],
      [['train', '--corpus', '/dev/zero', ...TINY, '--checkpoint', join(dir, 'b.safetensors')], /\/dev\/zero: is a character device/],
      [['sample', '--checkpoint', fifo, '--backend', 'cpu'], /pipe: is a FIFO/],
      [['eval', '--checkpoint', '/dev/zero', '--backend', 'cpu'], /\/dev\/zero: is a character device/],
      [['train', '--resume', fifo, '--backend', 'cpu'], /pipe: is a FIFO/],
    ];
    const results = await Promise.all(cases.map(([args]) => child(args)));
    results.forEach((r, i) => {
      expect(r.code, `${cases[i][0].join(' ')}: ${r.err}`).toBe(1);
      expect(r.err).toMatch(cases[i][1]);
      expect(oneLineErr(r.err)).toBe(true);
    });
  }, 60_000);

  it('loadCorpus refuses a file over the limit before reading it, and reads one under it', () => {
    const big = join(dir, 'big.txt');
    writeFileSync(big, 'some text that repeats.\n'.repeat(50_000)); // 1.2 MB
    expect(() => loadCorpus(big, { maxBytes: 1024 * 1024 })).toThrow(DataError);
    expect(() => loadCorpus(big, { maxBytes: 1024 * 1024 })).toThrow(/big\.txt: is 1\.1 MB, over the corpus size limit of 1 MB \(raise it with --max-corpus-mb\)/);
    expect(loadCorpus(big, { maxBytes: 2 * 1024 * 1024 }).text.length).toBe(1_200_000);
  });

  it('reads a large corpus in bounded memory: the token ids (a byte a character here) and a few chunks, never the whole text', () => {
    // Before the corpus was read in pieces, a file cost its bytes, its string, a normalised copy and
    // four bytes of id per character: over five times its size.
    const big = join(dir, 'large.txt');
    const line = 'Shares of Acme rose 3.5 pct to 41-1/2 dlrs in active trading, dealers said.\n';
    writeFileSync(big, line.repeat(Math.ceil(40e6 / line.length)));
    const bytes = lstatSync(big).size;
    const script = `
      import { prepareCorpus } from './src/cli/corpus.ts';
      globalThis.gc?.();
      const before = process.memoryUsage().rss;
      const d = prepareCorpus({ spec: ${JSON.stringify(big)} }, { level: 'char', maxVocab: 10000, minCount: 1, unk: true });
      console.log(JSON.stringify({ before, peak: process.resourceUsage().maxRSS * 1024, tokens: d.ids.length, kind: d.ids.constructor.name }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--expose-gc', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { before: number; peak: number; tokens: number; kind: string };
    expect(r.tokens).toBe(bytes);
    expect(r.kind).toBe('Uint8Array');
    const MB = 1024 * 1024;
    expect((r.peak - r.before) / MB, 'memory grown while reading, MB').toBeLessThan(bytes / MB + 80);
  }, 120_000);

  it('--max-corpus-mb on the command line', async () => {
    const big = join(dir, 'big2.txt');
    writeFileSync(big, 'some text that repeats.\n'.repeat(50_000));
    const r = await cli(['train', '--corpus', big, ...TINY, '--iterations', '1', '--checkpoint', join(dir, 'c.safetensors'), '--max-corpus-mb', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/over the corpus size limit of 1 MB/);
    expect(oneLineErr(r.err)).toBe(true);
  });
});

/** A train command that must be refused before its first iteration, leaving `keep` as it was. */
async function refused(checkpoint: string, message: RegExp, code = 1) {
  const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '2', '--checkpoint', checkpoint]);
  expect(r.err).toMatch(message);
  expect(oneLineErr(r.err)).toBe(true);
  expect(r.code).toBe(code);
  expect(r.losses.size, 'no iteration ran').toBe(0);
  expect(readFileSync(corpus).equals(corpusBytes)).toBe(true);
}

describe('checkpoint targets that must not be written: refused at start', () => {
  it('the corpus itself', () => refused(corpus, /is the corpus .*tiny\.txt/));
  it('the corpus through a symlink', () => {
    const link = join(dir, 'link.safetensors');
    symlinkSync(corpus, link);
    return refused(link, /is the corpus/);
  });
  it('the corpus through another path to it (a hard link)', () => {
    const hard = join(dir, 'hard.safetensors');
    linkSync(corpus, hard);
    return refused(hard, /is the corpus/);
  });
  it('a device node (through a symlink, so a regression replaces the link, not /dev/null itself)', async () => {
    const dev = join(dir, 'null.safetensors');
    symlinkSync('/dev/null', dev);
    await refused(dev, /null\.safetensors: is a character device, not a regular file/);
    expect(lstatSync(dev).isSymbolicLink()).toBe(true);
  });
  it('a FIFO', async () => {
    await refused(fifo, /is a FIFO/);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });
  it('a best-model name that is taken by a directory or a device: one note, not saved, the run and its checkpoint kept', async () => {
    // The best model's name holds its validation loss, known only when it is reached: a first run
    // on the CPU (deterministic) tells the name; the second finds it taken.
    const args = (ck: string) => ['train', '--corpus', corpus, ...TINY, '--iterations', '4', '--eval-every', '2', '--checkpoint', ck];
    const first = await cli(args(join(dir, 'probe.safetensors')));
    expect(first.code).toBe(0);
    const bestName = /best validation loss in (\S+)/.exec(first.out)![1]!.replace(/^.*\/probe-/, 'taken-');
    mkdirSync(join(dir, bestName));
    const second = await cli(args(join(dir, 'taken.safetensors')));
    expect(second.code).toBe(0);
    expect(second.err).toMatch(new RegExp(`^note: best model .*${bestName.replace(/\./g, '\\.')}: is a directory: give a file name; not saved$`, 'm'));
    expect(lstatSync(join(dir, bestName)).isDirectory()).toBe(true);
    expect(existsSync(join(dir, 'taken.safetensors'))).toBe(true);
  });
  it('a directory', () => {
    const d = join(dir, 'adir');
    mkdirSync(d);
    return refused(d, /is a directory/);
  });
  it('a place no file can be created in', async () => {
    await refused(join(corpus, 'x.safetensors'), /tiny\.txt\/x\.safetensors: cannot be written: a part of the path is a file/);
    if (process.getuid?.() !== 0) {
      const ro = join(dir, 'ro');
      mkdirSync(ro, { mode: 0o555 });
      await refused(join(ro, 'x.safetensors'), /cannot be written: creating a file in .*ro fails \(EACCES\)/);
    }
  });
  it('the probe leaves nothing behind', async () => {
    const p = join(dir, 'fresh', 'new.safetensors');
    const r = await cli(['train', '--corpus', join(dir, 'missing.txt'), ...TINY, '--checkpoint', p]);
    expect(r.code).toBe(1);
    const r2 = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '1', '--checkpoint', p, '--quiet']);
    expect(r2.code).toBe(0);
    expect(readFileSync(p).length).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'fresh'))).toBe(true);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(dir, 'fresh')).filter((n) => n.includes('probe'))).toEqual([]);
  });
});

describe('empty paths are usage errors (exit 2), never a silent fresh run', () => {
  const cases: Array<[string, () => string[]]> = [
    ['--resume ""', () => ['train', '--resume', '', ...TINY]],
    ['--checkpoint "" (train)', () => ['train', '--corpus', corpus, ...TINY, '--iterations', '1', '--checkpoint', '']],
    ['--corpus ""', () => ['train', '--corpus', '', ...TINY]],
    ['--checkpoint "" (sample)', () => ['sample', '--checkpoint', '', '--backend', 'cpu']],
    ['--checkpoint "" (eval)', () => ['eval', '--checkpoint', '', '--backend', 'cpu']],
  ];
  for (const [name, argv] of cases) {
    it(name, async () => {
      const before = readFileSync(ckpt);
      const r = await cli(argv());
      expect(r.code).toBe(2);
      expect(oneLineErr(r.err)).toBe(true);
      expect(r.err).toMatch(/empty/);
      expect(r.losses.size).toBe(0);
      expect(readFileSync(ckpt).equals(before)).toBe(true);
    });
  }
});

describe('damaged checkpoints through the CLI: one line naming the file, exit 1, never "unexpected"', () => {
  it('metadata values and poisoned tensors, for sample, eval and --resume', async () => {
    const { decodeSafetensors, encodeSafetensors } = await import('../../src/checkpoint/safetensors.ts');
    const good = readFileSync(ckpt);
    const variants: Array<[string, (t: Record<string, { data: Float32Array }>, m: Record<string, string>) => void]> = [];
    for (const [key, field] of [['model', 'layers'], ['model', 'hiddenSize'], ['model', 'vocabSize'], ['train', 'batchSize'], ['progress', 'optimizerStep'], ['progress', 'iteration']]) {
      for (const v of [1e9, -1, 2.5, null, 'x']) {
        // A step or iteration count of 1e9 is large, not damaged: such a file loads.
        if (key === 'progress' && v === 1e9) continue;
        variants.push([`${key}.${field}=${v}`, (_t, m) => {
          m[key] = JSON.stringify({ ...JSON.parse(m[key]), [field]: v });
        }]);
      }
    }
    for (const key of ['model', 'train', 'progress', 'tokenizer']) variants.push([`${key}=null`, (_t, m) => (m[key] = 'null')]);
    variants.push(['optimizer.v NaN', (t) => (t['optimizer.v.decoder.bias'].data[0] = NaN)]);
    variants.push(['optimizer.v negative', (t) => (t['optimizer.v.decoder.bias'].data[1] = -1)]);
    variants.push(['optimizer.m Inf', (t) => (t['optimizer.m.rnn.weight_hh_l0'].data[2] = Infinity)]);
    variants.push(['state.hidden -Inf', (t) => (t['state.hidden'].data[0] = -Infinity)]);
    let n = 0;
    for (const [label, edit] of variants) {
      const { tensors, metadata } = decodeSafetensors(good);
      edit(tensors, metadata);
      const p = join(dir, `bad-${n++}.safetensors`);
      writeFileSync(p, encodeSafetensors(tensors, metadata));
      const cmd = [['sample', '--checkpoint', p, '--length', '3', '--backend', 'cpu'], ['eval', '--checkpoint', p, '--backend', 'cpu'],
        ['train', '--resume', p, '--iterations', '4', '--backend', 'cpu', '--checkpoint', join(dir, 'out.safetensors')]][n % 3];
      const r = await cli(cmd);
      expect(r.code, `${label}: ${r.err}`).toBe(1);
      expect(oneLineErr(r.err), label).toBe(true);
      expect(r.err, label).toContain(p);
      expect(r.err, label).not.toMatch(/unexpected/);
    }
  });
});
