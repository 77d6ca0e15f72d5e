/** Bad input of every kind: one line on stderr, no stack, exit 1, and nothing overwritten. */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, oneLineErr, tempDir, tinyCorpus, TINY } from './helpers.ts';

let dir: string;
let corpus: string;
let ckpt: string;
let ckptBytes: Buffer;

beforeAll(async () => {
  dir = tempDir();
  corpus = tinyCorpus(dir);
  ckpt = join(dir, 'good.safetensors');
  const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '5', '--checkpoint', ckpt, '--quiet']);
  expect(r.code).toBe(0);
  ckptBytes = readFileSync(ckpt);
});

/** Runs a command that must fail with one clean line and leave `ckpt` exactly as it was. */
async function fails(argv: string[], message: RegExp, code = 1) {
  const r = await cli(argv);
  expect(r.err).toMatch(message);
  expect(oneLineErr(r.err)).toBe(true);
  expect(r.err).not.toMatch(/unexpected|\n\s+at /);
  expect(r.code).toBe(code);
  expect(readFileSync(ckpt).equals(ckptBytes)).toBe(true);
  return r;
}

const train = (...more: string[]) => ['train', ...TINY, '--iterations', '3', '--checkpoint', ckpt, ...more];

describe('bad corpus files', () => {
  it('missing file', () => fails(train('--corpus', join(dir, 'nope.txt')), /nope\.txt: no such file/));
  it('a directory', () => fails(train('--corpus', dir), /is a directory/));
  it('an empty file', () => {
    const p = join(dir, 'empty.txt');
    writeFileSync(p, '');
    return fails(train('--corpus', p), /empty\.txt: is empty/);
  });
  it('a file of blanks', () => {
    const p = join(dir, 'blank.txt');
    writeFileSync(p, '  \n\n ');
    return fails(train('--corpus', p), /blank\.txt: is empty/);
  });
  it('a binary file', () => {
    const p = join(dir, 'image.png');
    writeFileSync(p, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]));
    return fails(train('--corpus', p), /image\.png: looks like a binary file/);
  });
  it('invalid UTF-8 says where', () => {
    const p = join(dir, 'latin1.txt');
    writeFileSync(p, Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(' au lait\n'.repeat(20))]));
    return fails(train('--corpus', p), /latin1\.txt: not valid UTF-8 at byte 3/);
  });
  it('a corpus shorter than one sequence', () => {
    const p = join(dir, 'short.txt');
    writeFileSync(p, 'hello there\n');
    return fails(train('--corpus', p), /short\.txt: corpus too short.*lower --batch-size or --seq-length/);
  });
  it('a word vocabulary over the cap without <unk>', () =>
    fails(train('--corpus', corpus, '--level', 'word', '--max-vocab', '5', '--no-unk'), /distinct word-level tokens but --max-vocab is 5.*raise --max-vocab/));
});

describe('bad checkpoints', () => {
  it('missing', () => fails(['sample', '--checkpoint', join(dir, 'none.safetensors'), '--backend', 'cpu'], /none\.safetensors: no such checkpoint file/));
  it('a directory', () => fails(['eval', '--checkpoint', dir, '--backend', 'cpu'], /is a directory/));
  it('corrupt (not safetensors at all)', () => {
    const p = join(dir, 'corrupt.safetensors');
    writeFileSync(p, 'this is not a checkpoint, just some text that is long enough');
    return fails(['sample', '--checkpoint', p, '--backend', 'cpu'], /corrupt\.safetensors/);
  });
  it('truncated', () => {
    const p = join(dir, 'truncated.safetensors');
    writeFileSync(p, ckptBytes.subarray(0, ckptBytes.length - 100));
    return fails(['sample', '--checkpoint', p, '--backend', 'cpu'], /truncated\.safetensors/);
  });
  it('--resume of a truncated checkpoint overwrites nothing', () => {
    const p = join(dir, 'cut.safetensors');
    writeFileSync(p, ckptBytes.subarray(0, 1000));
    return fails(['train', '--resume', p, '--checkpoint', ckpt, '--backend', 'cpu'], /cut\.safetensors/);
  });
  it('--resume with a different --hidden', () =>
    fails(['train', '--resume', ckpt, '--hidden', '32', '--backend', 'cpu'], /--hidden 32 does not match the checkpoint .*hidden size 16/));
  it('--resume with a different --batch-size', () =>
    fails(['train', '--resume', ckpt, '--batch-size', '8', '--backend', 'cpu'], /--batch-size 8 does not match .*batch size 4/));
  it('--resume with a different --level', () =>
    fails(['train', '--resume', ckpt, '--level', 'word', '--backend', 'cpu'], /--level word does not match .*level char/));
  it('--resume on other text than it was trained on', () => {
    const other = join(dir, 'other.txt');
    writeFileSync(other, 'Completely different text, with Capitals and digits 0123.\n'.repeat(10));
    return fails(['train', '--resume', ckpt, '--corpus', other, '--backend', 'cpu', '--iterations', '10'], /other\.txt: character 'C' \(U\+0043\) is not in the vocabulary.*does not match the checkpoint's vocabulary/);
  });
  it('eval on text with characters outside the vocabulary', () => {
    const other = join(dir, 'accents.txt');
    writeFileSync(other, 'the fox ate crème brûlée\n'.repeat(10));
    return fails(['eval', '--checkpoint', ckpt, '--corpus', other, '--backend', 'cpu'], /character 'è' \(U\+00E8\) is not in the vocabulary/);
  });
  it('a prime with a character outside the vocabulary names it', () =>
    fails(['sample', '--checkpoint', ckpt, '--prime', 'the Zebra', '--backend', 'cpu'], /--prime: character 'Z' \(U\+005A\) is not in the vocabulary/));
  it('an uppercase prime for a lowercased model says so', async () => {
    const lower = join(dir, 'lower.safetensors');
    expect((await cli(['train', '--corpus', corpus, ...TINY, '--lowercase', '--iterations', '2', '--checkpoint', lower, '--quiet'])).code).toBe(0);
    const r = await cli(['sample', '--checkpoint', lower, '--prime', 'The', '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.err).toBe("error: --prime: character 'T' (U+0054) is not in the vocabulary (this model was trained on lowercased text: write the prime in lowercase)\n");
  });
  it('--resume past the requested iterations', () =>
    fails(['train', '--resume', ckpt, '--iterations', '5', '--backend', 'cpu'], /already at iteration 5 of 5: pass a larger --iterations/));
});

describe('sizes that cannot fit', () => {
  it('an absurd --hidden on the CPU is refused before allocating', () =>
    fails(train('--corpus', corpus, '--hidden', '400000'), /needs about .* GiB of memory on the CPU .*hidden 400000.*lower one of them/));
  it('a --checkpoint path that is a directory is refused before training', async () => {
    const d = join(dir, 'adir');
    mkdirSync(d);
    await fails(['train', '--corpus', corpus, ...TINY, '--iterations', '3', '--checkpoint', d], /is a directory: give a file name/);
  });
  it('a failed run leaves no checkpoint behind', async () => {
    const p = join(dir, 'never.safetensors');
    await cli(['train', '--corpus', join(dir, 'nope.txt'), ...TINY, '--checkpoint', p]);
    expect(existsSync(p)).toBe(false);
  });
});
