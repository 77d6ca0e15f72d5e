/**
 * Reading a corpus in pieces (issue 15, bounded memory): whatever the chunk boundaries, the
 * pieces join to the text a whole-file decode gives, each ends at a token boundary so both
 * tokenizers see the same tokens, errors name the same byte offset, and the ids come in the
 * narrowest array that holds the vocabulary.
 */
import { describe, expect, it } from 'vitest';
import { DataError, decodeUtf8, Utf8Pieces } from '../../src/data/text.ts';
import { CharTokenizer, encodePieces, wholeText, WordTokenizer, wordTokens, type TextPieces } from '../../src/data/tokenizer.ts';
import { Rng } from '../../src/util/random.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Bytes cut into chunks of random sizes (1 to maxChunk), fed through Utf8Pieces. */
function chunked(bytes: Uint8Array, rng: Rng, maxChunk: number, lowercase = false): string[] {
  const pieces: string[] = [];
  const d = new Utf8Pieces('f.txt', (p) => pieces.push(p), lowercase);
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + Math.floor(rng.next() * maxChunk);
    d.push(bytes.subarray(i, i + n));
    i += n;
  }
  d.end();
  return pieces;
}

const piecesOf = (parts: string[]): TextPieces => (visit) => parts.forEach(visit);

/** Text with everything a boundary can split: multi-byte and astral characters, CRLF, lone CR, apostrophes, Greek capitals. */
function awkwardText(rng: Rng, words: number): string {
  const vocab = ['ΟΔΟΣ', 'don\u2019t', "l'homme", 'café', '日本語', '😀x', 'Straße', 'ΣΑΣ', 'a', 'IBM', '42.5'];
  const seps = [' ', '\r\n', '\r', '\n', '\t', ', ', '. ', '\n\n', '  '];
  let s = '';
  for (let i = 0; i < words; i++) s += vocab[Math.floor(rng.next() * vocab.length)]! + seps[Math.floor(rng.next() * seps.length)]!;
  return s;
}

describe('Utf8Pieces', () => {
  it('joins to the whole-file decode for any chunking, each piece ending at a token boundary', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rng = new Rng(seed);
      const text = awkwardText(rng, 300);
      const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(text)]);
      for (const lowercase of [false, true]) {
        const whole = lowercase ? decodeUtf8(bytes, 'f.txt').toLowerCase() : decodeUtf8(bytes, 'f.txt');
        const parts = chunked(bytes, rng, 1 + seed * 7, lowercase);
        expect(parts.join('')).toBe(whole);
        expect(parts.flatMap((p) => wordTokens(p))).toEqual(wordTokens(whole));
        for (const p of parts.slice(0, -1)) expect(p).toMatch(/[ \t\n]$/);
      }
    }
  });

  it('lowercases a final sigma as the whole text would', () => {
    const text = 'ΟΔΟΣ ΣΑΣ ΟΔΟΣ. ';
    const parts = chunked(utf8(text), new Rng(3), 2, true);
    expect(parts.join('')).toBe(text.toLowerCase());
    expect(parts.join('')).toContain('οδος');
  });

  it('names the byte offset of invalid UTF-8 in a later chunk, and a character cut off at the end', () => {
    const bytes = new Uint8Array([...utf8('日本語 ok\n'.repeat(50)), 0xe9, ...utf8(' au lait\n')]);
    const at = utf8('日本語 ok\n'.repeat(50)).length;
    for (const maxChunk of [1, 3, 7, 64, 4096]) {
      expect(() => chunked(bytes, new Rng(maxChunk), maxChunk)).toThrow(`f.txt: not valid UTF-8 at byte ${at} (`);
    }
    const cut = utf8('abc 😀').subarray(0, 6);
    expect(() => chunked(cut, new Rng(1), 2)).toThrow('f.txt: not valid UTF-8 at byte 4 (');
  });

  it('calls a file of blanks empty', () => {
    expect(() => chunked(utf8(' \n\r\n\t '), new Rng(1), 2)).toThrow(new DataError('f.txt: is empty'));
    expect(() => chunked(new Uint8Array([0xef, 0xbb, 0xbf]), new Rng(1), 5)).toThrow(new DataError('f.txt: is empty'));
  });
});

describe('encodePieces', () => {
  it('gives the ids of encoding the whole text, in pieces of any size', () => {
    const rng = new Rng(7);
    const text = decodeUtf8(utf8(awkwardText(rng, 2000)), 't');
    const parts = chunked(utf8(text), rng, 97);
    for (const tok of [CharTokenizer.fromText(text), WordTokenizer.fromText(text, { maxVocab: 8 })]) {
      const ids = encodePieces(tok, piecesOf(parts));
      expect(Array.from(ids)).toEqual(Array.from(tok.encode(text)));
      expect(ids.length).toBe(tok.count(text));
    }
    expect(CharTokenizer.fromPieces(piecesOf(parts)).vocab).toEqual(CharTokenizer.fromText(text).vocab);
    expect(WordTokenizer.fromPieces(piecesOf(parts), { maxVocab: 8 }).vocab).toEqual(WordTokenizer.fromText(text, { maxVocab: 8 }).vocab);
  });

  it('stores ids in a byte each up to 256 tokens, two bytes up to 65,536, four beyond', () => {
    const chars = (n: number) => Array.from({ length: n }, (_, i) => String.fromCodePoint(0x4e00 + i)).join('');
    const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
    expect(encodePieces(CharTokenizer.fromText(chars(256)), wholeText(chars(256)))).toBeInstanceOf(Uint8Array);
    expect(encodePieces(CharTokenizer.fromText(chars(257)), wholeText(chars(257)))).toBeInstanceOf(Uint16Array);
    const w = words(40_000); // 40,000 words and one space: 40,001 tokens
    const many = WordTokenizer.fromText(w, { maxVocab: 70_000 });
    expect(encodePieces(many, wholeText(w))).toBeInstanceOf(Uint16Array);
    const w2 = words(70_000);
    const more = WordTokenizer.fromText(w2, { maxVocab: 80_000 });
    const ids = encodePieces(more, wholeText(w2));
    expect(ids).toBeInstanceOf(Uint32Array);
    expect(Array.from(ids.subarray(-3))).toEqual(Array.from(more.encode(w2).subarray(-3)));
  });

  it('refuses a text that changes between the counting and the encoding pass', () => {
    let calls = 0;
    const growing: TextPieces = (visit) => visit(calls++ === 0 ? 'abc' : 'abcabc');
    expect(() => encodePieces(CharTokenizer.fromText('abc'), growing)).toThrow(/changed while it was being read/);
  });
});
