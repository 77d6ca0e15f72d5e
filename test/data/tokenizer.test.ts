import { describe, expect, it } from 'vitest';
import { DataError, lettersOnly } from '../../src/data/text.ts';
import { CharTokenizer, tokenizerFromJSON, UNK, WordTokenizer, wordTokens } from '../../src/data/tokenizer.ts';

describe('CharTokenizer', () => {
  it('builds a sorted code-point vocabulary and round-trips', () => {
    const text = 'hello world\n';
    const tok = CharTokenizer.fromText(text);
    expect(tok.vocab).toEqual(['\n', ' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(Array.from(tok.encode('hol'))).toEqual([4, 6, 5]);
  });

  it('treats characters beyond the BMP as one token each', () => {
    const text = 'a😀b𝄞c😀！';
    const tok = CharTokenizer.fromText(text);
    // By code point: U+FF01 comes before U+1D11E and U+1F600 (UTF-16 order would put it last).
    expect(tok.vocab).toEqual(['a', 'b', 'c', '！', '𝄞', '😀']);
    const ids = tok.encode(text);
    expect(ids.length).toBe(7);
    expect(tok.decode(ids)).toBe(text);
  });

  it('round-trips combining characters (one code point per token)', () => {
    const text = 'cafe\u0301 ñ n\u0303 क्षि';
    const tok = CharTokenizer.fromText(text);
    expect(tok.vocab).toContain('\u0301');
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('refuses an unseen character, naming it and its code point', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.encode('abé')).toThrow(DataError);
    expect(() => tok.encode('abé')).toThrow("character 'é' (U+00E9) is not in the vocabulary");
    expect(() => tok.encode('a😀')).toThrow('(U+1F600)');
    expect(() => tok.encode('a\u0007')).toThrow('(U+0007)');
  });

  it('survives toJSON / tokenizerFromJSON', () => {
    const tok = CharTokenizer.fromText('xyz😀');
    const back = tokenizerFromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    expect(back.level).toBe('char');
    expect(back.vocab).toEqual(tok.vocab);
    expect(Array.from(back.encode('z😀'))).toEqual(Array.from(tok.encode('z😀')));
  });
});

describe('WordTokenizer', () => {
  const text = "The cat's hat, the bat.\nThe end -- it's   done!\n";

  it('splits into words, single punctuation, spaces and newlines', () => {
    expect(wordTokens("it's 3.5 l’été, naïve\n")).toEqual(["it's", ' ', '3', '.', '5', ' ', 'l’été', ',', ' ', 'naïve', '\n']);
    expect(wordTokens("don't 'quote'")).toEqual(["don't", ' ', "'", 'quote', "'"]);
    expect(wordTokens('cafe\u0301 😀!')).toEqual(['cafe\u0301', ' ', '😀', '!']);
  });

  it('round-trips text whose tokens are all known', () => {
    const tok = WordTokenizer.fromText(text);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('puts <unk> at 0, then tokens by descending count, ties by string', () => {
    const tok = WordTokenizer.fromText('b a b c a b');
    expect(tok.vocab).toEqual([UNK, ' ', 'b', 'a', 'c']);
  });

  it('maps unknown tokens to <unk>', () => {
    const tok = WordTokenizer.fromText('the cat the dog');
    const ids = tok.encode('the bird');
    expect(ids[2]).toBe(0);
    expect(tok.decode(ids)).toBe(`the ${UNK}`);
  });

  it('caps the vocabulary with maxVocab and minCount', () => {
    const tok = WordTokenizer.fromText('a a a b b c d', { maxVocab: 4 });
    expect(tok.vocab).toEqual([UNK, ' ', 'a', 'b']);
    expect(Array.from(tok.encode('c'))).toEqual([0]);
    expect(WordTokenizer.fromText('a a a b b c d', { minCount: 2 }).vocab).toEqual([UNK, ' ', 'a', 'b']);
  });

  it('without <unk>, says how many tokens there are and which flag to raise', () => {
    expect(() => WordTokenizer.fromText('one two three four', { maxVocab: 4, unk: false })).toThrow(
      /has 5 distinct word-level tokens .*raise --max-vocab to at least 5/,
    );
    const tok = WordTokenizer.fromText('one two', { unk: false });
    expect(tok.vocab).not.toContain(UNK);
    expect(tok.decode(tok.encode('two one'))).toBe('two one');
    expect(() => tok.encode('one three')).toThrow('word "three" is not in the vocabulary');
  });

  it('survives toJSON / tokenizerFromJSON', () => {
    const tok = WordTokenizer.fromText(text, { maxVocab: 6 });
    const back = tokenizerFromJSON(JSON.parse(JSON.stringify(tok)));
    expect(back.level).toBe('word');
    expect(Array.from(back.encode(text))).toEqual(Array.from(tok.encode(text)));
    expect(() => tokenizerFromJSON({ level: 'byte', vocab: ['a'] })).toThrow(DataError);
    expect(() => tokenizerFromJSON({ level: 'char', vocab: ['ab'] })).toThrow(DataError);
  });
});

describe('tokenizers on each charset', () => {
  const text = 'Oil prices ROSE 3.5% in Q1, said\nthe Bank\x03 of Canada.\r\n';
  for (const [name, prepared] of [['clean', text], ['raw', text], ['letters', lettersOnly(text)]] as const) {
    it(`${name}: encode then decode gives the text back, at both levels`, () => {
      const char = CharTokenizer.fromText(prepared);
      expect(char.decode(char.encode(prepared))).toBe(prepared);
      const word = WordTokenizer.fromText(prepared);
      expect(word.decode(word.encode(prepared))).toBe(prepared);
      // And through the JSON a checkpoint stores.
      const back = tokenizerFromJSON(JSON.parse(JSON.stringify(char.toJSON())));
      expect(back.decode(char.encode(prepared))).toBe(prepared);
    });
  }

  it('letters: at most 27 characters, a-z and the space', () => {
    const vocab = CharTokenizer.fromText(lettersOnly(text)).vocab;
    expect(vocab.every((c) => /^[a-z ]$/.test(c))).toBe(true);
    expect(vocab[0]).toBe(' ');
  });
});
