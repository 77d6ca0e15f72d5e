import { describe, expect, it } from 'vitest';
import { CHARSETS, cleanReuters, DataError, decodeUtf8, DEFAULT_CHARSET, firstInvalidUtf8, isCharset, lettersOnly, userTextFor } from '../../src/data/text.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('decodeUtf8', () => {
  it('decodes UTF-8, strips a BOM and normalises CRLF and CR to LF', () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8('a\r\nb\rc\nd – é 😀')]);
    expect(decodeUtf8(bytes, 'x.txt')).toBe('a\nb\nc\nd – é 😀');
  });

  it('names the file and the byte offset of the first invalid sequence', () => {
    // "café" in Latin-1: the é is a lone 0xE9 at byte 3.
    const latin1 = new Uint8Array([...utf8('caf'), 0xe9, ...utf8(' au lait\n')]);
    expect(() => decodeUtf8(latin1, 'corpus.txt')).toThrow(DataError);
    expect(() => decodeUtf8(latin1, 'corpus.txt')).toThrow(
      'corpus.txt: not valid UTF-8 at byte 3 (try converting it with iconv -f latin1 -t utf-8)',
    );
  });

  it('finds the offset after valid multi-byte text, and rejects what TextDecoder rejects', () => {
    const prefix = utf8('日本語 😀 ok '); // 3+3+3+1+4+4 bytes
    expect(firstInvalidUtf8(new Uint8Array([...prefix, 0xc0, 0x80]))).toBe(prefix.length); // overlong
    expect(firstInvalidUtf8(new Uint8Array([0x61, 0xed, 0xa0, 0x80]))).toBe(1); // surrogate
    expect(firstInvalidUtf8(new Uint8Array([0x61, 0x62, 0xf4, 0x90, 0x80, 0x80]))).toBe(2); // > U+10FFFF
    expect(firstInvalidUtf8(new Uint8Array([0x61, 0xe2, 0x82]))).toBe(1); // truncated at the end
    expect(firstInvalidUtf8(prefix)).toBe(-1);
  });

  it('calls a file with a NUL byte, or many control characters, binary', () => {
    expect(() => decodeUtf8(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00, 0x61]), 'x.zip')).toThrow(
      'x.zip: looks like a binary file, not text',
    );
    const controls = new Uint8Array(200).fill(0x61);
    controls[10] = 0x01;
    controls[20] = 0x02;
    controls[30] = 0x1b;
    expect(() => decodeUtf8(controls, 'x.bin')).toThrow('x.bin: looks like a binary file, not text');
    // One stray control character in ordinary text is not enough, and form feeds are text.
    const text = utf8('hello\fworld\x07 '.padEnd(300, 'z'));
    expect(decodeUtf8(text, 'ok.txt')).toMatch(/^hello\fworld\x07/);
  });

  it('rejects empty and whitespace-only files', () => {
    expect(() => decodeUtf8(new Uint8Array(0), 'e.txt')).toThrow('e.txt: is empty');
    expect(() => decodeUtf8(utf8(' \n\t\r\n'), 'w.txt')).toThrow('w.txt: is empty');
    expect(() => decodeUtf8(new Uint8Array([0xef, 0xbb, 0xbf]), 'bom.txt')).toThrow('bom.txt: is empty');
  });
});

describe('cleanReuters', () => {
  it('removes the sign-off line and the end-of-text byte', () => {
    expect(cleanReuters('Shares rose.\n    More text here.\n Reuter\n\x03')).toBe('Shares rose.\n    More text here.');
    expect(cleanReuters('Shares rose.\n REUTER\n\x03')).toBe('Shares rose.');
  });

  it('handles the variants the collection contains', () => {
    for (const tail of [' REUTER...', 'REUTER^M', ' REUTERS', ' REUTE', ' reuter', ' REUTER TAW', 'REUTER\n Reuter']) {
      expect(cleanReuters(`Prices fell.\n${tail}\n\x03`)).toBe('Prices fell.');
    }
    expect(cleanReuters('total 55.8 (33.7).        REUTER\n\x03')).toBe('total 55.8 (33.7).');
    expect(cleanReuters('Noranda said. Reuter\n Reuter\n\x03')).toBe('Noranda said.');
  });

  it('keeps Reuters when it is part of a sentence', () => {
    expect(cleanReuters('the official\ntold Reuters.\n\x03')).toBe('the official\ntold Reuters.');
  });

  it('strips control characters and terminal debris but keeps newlines, tabs and indentation', () => {
    const body = "Semiconducto\x1b[Br Division\n\tcountry's\x7f rate\x05\x1e\ufffd^M\n    Next para.   \n\n\n\nEnd.\n Reuter\n\x03";
    expect(cleanReuters(body)).toBe("Semiconductor Division\n\tcountry's rate\n    Next para.\n\nEnd.");
  });
});

describe('charsets', () => {
  it('letters: lowercase a-z, every other run of characters one space', () => {
    expect(lettersOnly('Oil, Prices -- ROSE 3.5%\n\nin Q1.')).toBe('oil prices rose in q ');
    expect(lettersOnly('  Déjà vu!')).toBe(' d j vu ');
    expect(userTextFor('letters', 'The Bank')).toBe('the bank');
    expect(userTextFor('clean', 'The Bank')).toBe('The Bank');
    expect(userTextFor('raw', 'The Bank')).toBe('The Bank');
  });

  it('names exactly three, clean the default', () => {
    expect([...CHARSETS]).toEqual(['clean', 'raw', 'letters']);
    expect(DEFAULT_CHARSET).toBe('clean');
    expect(isCharset('letters')).toBe(true);
    expect(isCharset('ascii')).toBe(false);
  });
});
