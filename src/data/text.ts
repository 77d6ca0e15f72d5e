/**
 * Turning bytes a user hands us into clean text, and cleaning the Reuters bodies.
 * Browser-safe: the web page feeds dropped files through the same checks as the CLI.
 */

/**
 * A problem with the user's data, worded for the user. The CLI prints `message` alone, without a
 * stack, so every message names the file (or the setting) and says what to do.
 */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/**
 * Byte offset of the first invalid UTF-8 sequence, or -1. TextDecoder only says "failed", and a
 * user with a 30 MB file needs to know where to look. Follows the WHATWG decoder's rules, so it
 * agrees with `TextDecoder({fatal: true})`: no overlong forms, no surrogates, nothing past U+10FFFF.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    // The second byte's range is narrower for a few lead bytes; that is how overlong forms,
    // surrogates and code points above U+10FFFF are excluded.
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = i + k < n ? bytes[i + k]! : -1;
      if (c < lo || c > hi) return i;
      lo = 0x80;
      hi = 0xbf;
    }
    i += need + 1;
  }
  return -1;
}

/** C0 controls and DEL that never occur in ordinary text files. */
function isStrayControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d && code !== 0x0c) || code === 0x7f;
}

/**
 * Text files sometimes contain a stray control character (Reuters has a few), so one is no proof
 * of a binary file; a NUL, or many of them, is. Counting over bytes rather than decoded text lets
 * us call an image "binary" rather than "invalid UTF-8", which would send the user to iconv.
 * Fed chunk by chunk, so a large file is judged whole without being held whole.
 */
export class BinarySniffer {
  private bytes = 0;
  private controls = 0;
  private nul = false;

  push(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 0) {
        this.nul = true;
        return;
      }
      if (isStrayControl(b)) this.controls++;
    }
  }

  get binary(): boolean {
    return this.nul || this.controls > this.bytes * 0.01;
  }
}

/** One line ending everywhere, so that CRLF files and LF files give the same vocabulary. */
export function normalizeNewlines(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/**
 * Where a piece of text may end so that every tokenizer sees the same tokens as in the whole
 * text: just after a space, tab or newline. No token spans one (words are letters, digits and
 * marks; anything else is a token of its own), lowercasing's one context rule (Greek final sigma)
 * looks no further than the word, and a CR that a LF may follow never ends a piece.
 */
function lastBoundary(text: string): number {
  return Math.max(text.lastIndexOf('\n'), text.lastIndexOf(' '), text.lastIndexOf('\t')) + 1;
}

/**
 * Strict UTF-8 decoding of a user's file that arrives in chunks, handed on in pieces that each end
 * at a token boundary (see lastBoundary), so a corpus of hundreds of MB is tokenized without ever
 * being one string. Guessing an encoding silently would train the model on mojibake, so anything
 * that is not UTF-8 is refused with the byte offset and the fix. Strips a leading BOM, normalises
 * CRLF/CR to LF and, if asked, lowercases.
 */
export class Utf8Pieces {
  /** Bytes of a character that the next chunk completes (at most 3). */
  private held = new Uint8Array(0);
  /** Decoded text after the last boundary, waiting for the rest of its word. */
  private pending = '';
  /** Bytes before `held`: the file offset of the next byte decoded. */
  private offset = 0;
  private nonBlank = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(
    private readonly name: string,
    private readonly visit: (piece: string) => void,
    private readonly lowercase = false,
  ) {}

  push(chunk: Uint8Array): void {
    let bytes = chunk;
    if (this.held.length > 0) {
      bytes = new Uint8Array(this.held.length + chunk.length);
      bytes.set(this.held);
      bytes.set(chunk, this.held.length);
    }
    let start = 0;
    if (this.offset === 0 && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
    const end = completeEnd(bytes);
    this.held = bytes.slice(end);
    const text = this.pending + this.decode(bytes.subarray(start, end), start);
    this.offset += end;
    const cut = lastBoundary(text);
    this.pending = text.slice(cut);
    if (cut > 0) this.emit(text.slice(0, cut));
  }

  end(): void {
    if (this.held.length > 0) this.decode(this.held, 0);
    if (this.pending !== '') this.emit(this.pending);
    this.pending = '';
    if (!this.nonBlank) throw new DataError(`${this.name}: is empty`);
  }

  private decode(bytes: Uint8Array, skipped: number): string {
    try {
      return this.decoder.decode(bytes);
    } catch {
      const at = this.offset + skipped + Math.max(0, firstInvalidUtf8(bytes));
      throw new DataError(`${this.name}: not valid UTF-8 at byte ${at} (try converting it with iconv -f latin1 -t utf-8)`);
    }
  }

  private emit(piece: string): void {
    let s = normalizeNewlines(piece);
    if (this.lowercase) s = s.toLowerCase();
    if (!this.nonBlank && s.trim() !== '') this.nonBlank = true;
    this.visit(s);
  }
}

/**
 * Where the last complete UTF-8 character of `bytes` ends: the bytes of a character cut off by
 * the chunk's end wait for the next chunk. Anything malformed is left for the decoder to report.
 */
function completeEnd(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = n - 1;
  while (i >= 0 && i > n - 4 && (bytes[i]! & 0xc0) === 0x80) i--;
  if (i < 0 || bytes[i]! < 0xc0) return n;
  const need = bytes[i]! >= 0xf0 ? 4 : bytes[i]! >= 0xe0 ? 3 : 2;
  return n - i < need ? i : n;
}

/**
 * A user's file decoded whole (the web page's dropped files; see Utf8Pieces for the rules).
 */
export function decodeUtf8(bytes: Uint8Array, name: string): string {
  if (bytes.length === 0) throw new DataError(`${name}: is empty`);
  const sniffer = new BinarySniffer();
  sniffer.push(bytes);
  if (sniffer.binary) throw new DataError(`${name}: looks like a binary file, not text`);
  const parts: string[] = [];
  const pieces = new Utf8Pieces(name, (p) => parts.push(p));
  pieces.push(bytes);
  pieces.end();
  return parts.join('');
}

/**
 * The wire-service sign-off that closes almost every Reuters body, with the typos and suffixes the
 * collection really contains ("REUTER...", "REUTER^M", "REUTERS", "REUTE", "REUITER",
 * "REUTER11:43/VB", operator initials as in "REUTER TAW"). It must stand on its own line, after a
 * wide gap, or after the end of a sentence or a table figure: "told\nReuters." ends a real
 * sentence and is kept, which is why a single trailing period is not accepted.
 */
const REUTER_TRAILER =
  /(?:^|\n|[ \t]{2,}|(?<=[.\d)] ))[ \t]*(?:reuters?|reute|reuiter|reueter)(?:\.\.\.?|\^M|\d[\d:/A-Z]*)*(?: [A-Z]{1,3})?[ \t]*$/i;

/**
 * A Reuters body as clean prose: no sign-off, no end-of-text byte, no terminal debris.
 * The collection has a few terminal artefacts mid-text: DEL bytes where a character was
 * garbled, an ANSI cursor escape, literal "^M" where a CR was printed, a U+FFFD. Each would
 * otherwise become a vocabulary entry the model can only learn to emit at random.
 * Leading indentation is kept: it marks paragraphs, which is structure worth learning.
 */
export function cleanReuters(body: string): string {
  let s = body
    .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '') // ANSI escapes first, before ESC alone is stripped
    .replace(/\^M(?=\n|$)/g, '')
    .replace(/\r\n?/g, '\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f\ufffd]/g, '');
  // Some bodies were signed off twice ("REUTER\n Reuter"), so strip until none is left.
  for (let prev = ''; prev !== s; ) {
    prev = s;
    s = s.replace(/\s+$/, '').replace(REUTER_TRAILER, '');
  }
  return s
    .replace(/[ \t]+$/gm, '') // trailing blanks on a line are invisible noise to a reader
    .replace(/\n{3,}/g, '\n\n') // one blank line is the paragraph break; more is layout debris
    .replace(/^\n+/, '')
    .replace(/\s+$/, '');
}

/**
 * Which characters a corpus keeps, as in the write-up the project started from:
 * - `clean` (the default): the loader's cleaning. Reuters: cleanReuters above (no sign-off, no
 *   control bytes, ANSI escapes, literal ^M or U+FFFD, no trailing blanks, at most one blank line
 *   in a row); Gutenberg: no DOS end-of-file bytes, trimmed; a user's file: decoded only.
 * - `raw`: the text as it comes (Reuters bodies as stored, sign-offs and control bytes included).
 * - `letters`: the clean text lowercased, a-z and a space only: every run of anything else
 *   (digits, punctuation, newlines) becomes one space. Vocabulary 27.
 * Lowercasing is separate (--lowercase; on by default for Reuters), except that `letters` implies it.
 */
export const CHARSETS = ['clean', 'raw', 'letters'] as const;
export type Charset = (typeof CHARSETS)[number];
export const DEFAULT_CHARSET: Charset = 'clean';

export function isCharset(x: unknown): x is Charset {
  return (CHARSETS as readonly unknown[]).includes(x);
}

/** The `letters` charset: lowercase a-z, and one space for every run of anything else. */
export function lettersOnly(text: string): string {
  return text.toLowerCase().replace(/[^a-z]+/g, ' ');
}

/**
 * What a charset does to text typed by a user (a prime): `letters` maps it into a-z and space,
 * the others leave it alone (the tokenizer names any character the vocabulary lacks).
 */
export function userTextFor(charset: Charset, text: string): string {
  return charset === 'letters' ? lettersOnly(text) : text;
}
