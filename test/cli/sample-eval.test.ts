import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir, tinyCorpus, TINY } from './helpers.ts';
import { readCheckpoint } from '../../src/cli/checkpoint-files.ts';
import { prepareCorpus } from '../../src/cli/corpus.ts';
import { EXIT_USAGE } from '../../src/cli/errors.ts';
import { countBaselines } from '../../src/data/ngram.ts';

let dir: string;
let ckpt: string;
let finalVal: string;

beforeAll(async () => {
  dir = tempDir();
  const corpus = tinyCorpus(dir);
  ckpt = join(dir, 'm.safetensors');
  const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '60', '--checkpoint', ckpt]);
  expect(r.code).toBe(0);
  finalVal = /validation loss ([\d.]+) nats/.exec(r.out)![1];
});

const sample = (...more: string[]) => cli(['sample', '--checkpoint', ckpt, '--backend', 'cpu', ...more]);

describe('sample', () => {
  it('prints the prime and then exactly --length generated characters', async () => {
    const r = await sample('--prime', 'the ', '--length', '50', '--seed', '3');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out.startsWith('the ')).toBe(true);
    expect([...r.out].length).toBe(4 + 50 + 1);
  });

  it('is reproducible with --seed and varies without it', async () => {
    const a = await sample('--seed', '5', '--length', '80');
    const b = await sample('--seed', '5', '--length', '80');
    const c = await sample('--seed', '6', '--length', '80');
    expect(a.out).toBe(b.out);
    expect(c.out).not.toBe(a.out);
  });

  it('--argmax does not depend on the seed, and equals --temperature 0', async () => {
    const a = await sample('--argmax', '--seed', '1', '--length', '40');
    const b = await sample('--argmax', '--seed', '2', '--length', '40');
    const c = await sample('--temperature', '0', '--seed', '3', '--length', '40');
    expect(a.out).toBe(b.out);
    expect(c.out).toBe(a.out);
  });
});

describe('sample with the sampling controls', () => {
  it('--num-samples prints that many samples, each under a header, sample 1 being the single sample of the same seed', async () => {
    const one = await sample('--seed', '4', '--length', '40', '--prime', 'the ');
    const r = await sample('--seed', '4', '--length', '40', '--prime', 'the ', '--num-samples', '3');
    expect(r.code).toBe(0);
    const parts = r.out.split(/^----- sample (\d) of 3 \(seed 4, temperature 0\.8\) -----\n/m);
    // ['', '1', text, '2', text, '3', text]
    expect(parts.length).toBe(7);
    expect(parts.filter((_, i) => i % 2 === 1)).toEqual(['1', '2', '3']);
    const texts = [parts[2], parts[4], parts[6]].map((t) => t.replace(/\n$/, ''));
    expect(`${texts[0]}\n`).toBe(one.out);
    for (const t of texts) expect([...t].length).toBe(4 + 40);
    expect(new Set(texts).size).toBe(3);
  });

  it('--top-k 1 and a tiny --top-p give the argmax text; --top-p 1 and --repetition-penalty 1 change nothing', async () => {
    const argmax = (await sample('--argmax', '--length', '60')).out;
    expect((await sample('--top-k', '1', '--seed', '8', '--length', '60')).out).toBe(argmax);
    expect((await sample('--top-p', '1e-9', '--seed', '8', '--length', '60')).out).toBe(argmax);
    const plain = (await sample('--seed', '8', '--length', '60')).out;
    expect(plain).not.toBe(argmax);
    expect((await sample('--top-p', '1', '--repetition-penalty', '1', '--seed', '8', '--length', '60')).out).toBe(plain);
  });

  it('the header names the controls; a penalty changes the text', async () => {
    const r = await sample('--seed', '8', '--length', '60', '--num-samples', '2', '--top-k', '5', '--top-p', '0.9', '--repetition-penalty', '1.5', '--repetition-window', '10');
    expect(r.code).toBe(0);
    expect(r.out).toContain('----- sample 2 of 2 (seed 8, temperature 0.8, top-k 5, top-p 0.9, repetition penalty 1.5 over the last 10 tokens) -----');
    const penalised = await sample('--argmax', '--length', '60', '--repetition-penalty', '1.5');
    expect(penalised.out).not.toBe((await sample('--argmax', '--length', '60')).out);
  });
});

describe('eval', () => {
  it('scores the held-out split: the validation loss training ended with', async () => {
    const r = await cli(['eval', '--checkpoint', ckpt, '--backend', 'cpu']);
    expect(r.code).toBe(0);
    const m = /^loss ([\d.]+) nats\/char = ([\d.]+) bits\/char over [\d,]+ chars of the held-out 5% of .*tiny\.txt \(CPU backend\)$/m.exec(r.out);
    expect(m).not.toBeNull();
    expect(Number(m![1]).toFixed(3)).toBe(finalVal);
    expect(Number(m![2])).toBeCloseTo(Number(m![1]) / Math.LN2, 3);
  });

  it('scores all of another file, even one shorter than a batch', async () => {
    const p = join(dir, 'short.txt');
    writeFileSync(p, 'the lazy dog runs away\n');
    const r = await cli(['eval', '--checkpoint', ckpt, '--corpus', p, '--backend', 'cpu']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^loss [\d.]+ nats\/char = [\d.]+ bits\/char over \d+ chars of .*short\.txt/);
  });
});

describe('eval --baselines', () => {
  /** name -> nats, from the table's rows. */
  const rows = (out: string) =>
    new Map([...out.matchAll(/^ {2}(.+?) +([\d.]+) nats\/(?:char|word) = ([\d.]+) bits/gm)].map((m) => [m[1]!, Number(m[2])]));

  it('counts on the checkpoint\'s own split and prints the model beside the count models', async () => {
    const r = await cli(['eval', '--checkpoint', ckpt, '--backend', 'cpu', '--baselines']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^count baselines on the held-out 5% of .*tiny\.txt, vocabulary \d+: [\d,]+ chars scored/m);
    const got = rows(r.out);
    expect([...got.keys()]).toEqual(['unigram (add-one)', 'bigram (modified KN)', 'trigram (modified KN)', 'model (RNN, hidden 16)']);
    // The same numbers as the library's, on the same ids and split.
    const data = prepareCorpus({ spec: join(dir, 'tiny.txt') }, readCheckpoint(ckpt).tokenizerObject);
    const lib = countBaselines(data.ids, data.train.length, data.tokenizer.vocab.length).results;
    expect(got.get('trigram (modified KN)')).toBeCloseTo(lib[2]!.nats, 4);
    expect(got.get('unigram (add-one)')).toBeCloseTo(lib[0]!.nats, 4);
    expect(got.get('model (RNN, hidden 16)')!.toFixed(3)).toBe(finalVal);
  });

  it('works without a checkpoint, given a corpus and a level', async () => {
    const r = await cli(['eval', '--baselines', '--corpus', join(dir, 'tiny.txt'), '--level', 'word']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/words scored/);
    expect(r.out).toMatch(/trigram \(modified KN\) +[\d.]+ nats\/word = [\d.]+ bits\/word, perplexity [\d.]+$/m);
    const letters = await cli(['eval', '--baselines', '--corpus', join(dir, 'tiny.txt'), '--charset', 'letters']);
    expect(letters.out).toMatch(/\(charset letters\), vocabulary (\d+)/);
  });

  it('refuses what it cannot do, in one line', async () => {
    const none = await cli(['eval']);
    expect(none.code).toBe(EXIT_USAGE);
    expect(none.err).toMatch(/give --checkpoint, or --baselines/);
    const clash = await cli(['eval', '--checkpoint', ckpt, '--baselines', '--level', 'word']);
    expect(clash.code).toBe(EXIT_USAGE);
    expect(clash.err).toMatch(/--level comes from the checkpoint/);
    const other = await cli(['eval', '--checkpoint', ckpt, '--baselines', '--corpus', tinyCorpus(dir, 'other.txt', 8)]);
    expect(other.code).toBe(EXIT_USAGE);
    expect(other.err).toMatch(/leave out --corpus/);
  });
});

describe('--charset', () => {
  it('letters: trained, saved, resumed and sampled with the same characters', async () => {
    const corpus = join(dir, 'mixed.txt');
    writeFileSync(corpus, 'The Fox, 3 times: "Jumps!"\nover THE dog.\n'.repeat(40));
    const ck = join(dir, 'letters.safetensors');
    const r = await cli(['train', '--corpus', corpus, '--charset', 'letters', ...TINY, '--iterations', '4', '--checkpoint', ck]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\(charset letters\), [\d,]+ chars, vocabulary 17;/);
    const saved = readCheckpoint(ck);
    expect(saved.progress.charset).toBe('letters');
    expect(saved.tokenizerObject.vocab.join('')).toBe(' defghijmoprstuvx');
    const s = await cli(['sample', '--checkpoint', ck, '--backend', 'cpu', '--prime', 'The FOX!', '--length', '5', '--seed', '1']);
    expect(s.code).toBe(0);
    expect(s.out.startsWith('the fox ')).toBe(true);
    const more = await cli(['train', '--resume', ck, '--iterations', '6', '--backend', 'cpu']);
    expect(more.code).toBe(0);
    const clash = await cli(['train', '--resume', ck, '--charset', 'raw', '--iterations', '8']);
    expect(clash.code).not.toBe(0);
    expect(clash.err).toMatch(/--charset raw does not match the checkpoint .*, which has charset letters/);
    const upper = await cli(['train', '--corpus', corpus, '--charset', 'letters', '--no-lowercase', ...TINY]);
    expect(upper.code).toBe(EXIT_USAGE);
  });
});
