import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFileAtomicSync } from '../../src/node/atomic-write.ts';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atomic-write-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every file name under `root`, recursively, so a leftover temporary file anywhere shows up. */
function listAll(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true }) as string[]).map((p) => p.split(path.sep).join('/')).sort();
}

const noTempFiles = (root: string) => expect(listAll(root).filter((p) => p.endsWith('.tmp'))).toEqual([]);

// The async and sync writers make the same promises; run the same checks against both.
const writers = {
  writeFileAtomic: (p: string, d: Uint8Array | string) => writeFileAtomic(p, d),
  writeFileAtomicSync: async (p: string, d: Uint8Array | string) => writeFileAtomicSync(p, d),
};

for (const [label, write] of Object.entries(writers)) {
  describe(label, () => {
    it('writes bytes and strings, creating missing parent directories', async () => {
      const bin = path.join(dir, 'a', 'b', 'c', 'ckpt.safetensors');
      const bytes = new Uint8Array([0, 1, 2, 255, 128]);
      await write(bin, bytes);
      expect(new Uint8Array(fs.readFileSync(bin))).toEqual(bytes);

      const text = path.join(dir, 'notes', 'état.json');
      await write(text, '{"ünï":"cødé 🎉"}\n');
      expect(fs.readFileSync(text, 'utf8')).toBe('{"ünï":"cødé 🎉"}\n');

      expect(listAll(dir)).toEqual(['a', 'a/b', 'a/b/c', 'a/b/c/ckpt.safetensors', 'notes', 'notes/état.json']);
    });

    it('writes a view into a larger buffer, not the whole buffer', async () => {
      const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
      const target = path.join(dir, 'view.bin');
      await write(target, backing.subarray(2, 5));
      expect(Array.from(fs.readFileSync(target))).toEqual([1, 2, 3]);
    });

    it('replaces an existing file completely, also with something shorter', async () => {
      const target = path.join(dir, 'ckpt.bin');
      fs.writeFileSync(target, 'x'.repeat(10_000));
      await write(target, 'short');
      expect(fs.readFileSync(target, 'utf8')).toBe('short');
      await write(target, new Uint8Array(0));
      expect(fs.statSync(target).size).toBe(0);
      expect(listAll(dir)).toEqual(['ckpt.bin']);
    });

    it('accepts a relative path', async () => {
      const cwd = process.cwd();
      // Relative to the working directory, without changing it (other tests share the process).
      const rel = path.relative(cwd, path.join(dir, 'sub', 'rel.txt'));
      await write(rel, 'relative');
      expect(fs.readFileSync(path.join(dir, 'sub', 'rel.txt'), 'utf8')).toBe('relative');
      noTempFiles(dir);
    });

    it('fails without touching the target when the rename fails (target is a directory)', async () => {
      const target = path.join(dir, 'ckpt.safetensors');
      fs.mkdirSync(target);
      fs.writeFileSync(path.join(target, 'inside.txt'), 'keep me');
      await expect(write(target, new Uint8Array(1024).fill(7))).rejects.toThrow();
      expect(fs.statSync(target).isDirectory()).toBe(true);
      expect(fs.readFileSync(path.join(target, 'inside.txt'), 'utf8')).toBe('keep me');
      expect(listAll(dir)).toEqual(['ckpt.safetensors', 'ckpt.safetensors/inside.txt']);
    });

    it('fails without touching the old file when writing the data fails', async () => {
      const target = path.join(dir, 'ckpt.bin');
      fs.writeFileSync(target, 'previous checkpoint');
      // Not writable data: the temporary file already exists when the write throws.
      await expect(write(target, 42 as unknown as string)).rejects.toThrow();
      expect(fs.readFileSync(target, 'utf8')).toBe('previous checkpoint');
      expect(listAll(dir)).toEqual(['ckpt.bin']);
    });

    it('fails cleanly when the parent "directory" is a file', async () => {
      const blocker = path.join(dir, 'file');
      fs.writeFileSync(blocker, 'not a directory');
      await expect(write(path.join(blocker, 'ckpt.bin'), 'data')).rejects.toThrow();
      expect(fs.readFileSync(blocker, 'utf8')).toBe('not a directory');
      expect(listAll(dir)).toEqual(['file']);
    });
  });
}

describe('writeFileAtomic specifics', () => {
  it('leaves the old file intact when the data source fails part-way through', async () => {
    const target = path.join(dir, 'ckpt.bin');
    fs.writeFileSync(target, 'previous checkpoint');
    // FileHandle.writeFile accepts iterables: the first chunk reaches the temporary file, then
    // the source dies, which is what a crash in the middle of serialising looks like.
    function* failing(): Generator<Uint8Array> {
      yield new Uint8Array(64 * 1024).fill(1);
      throw new Error('serialiser crashed');
    }
    await expect(writeFileAtomic(target, failing() as unknown as Uint8Array)).rejects.toThrow('serialiser crashed');
    expect(fs.readFileSync(target, 'utf8')).toBe('previous checkpoint');
    expect(listAll(dir)).toEqual(['ckpt.bin']);
  });

  it('concurrent writers to one target leave exactly one complete version', async () => {
    const target = path.join(dir, 'ckpt.bin');
    const payloads = Array.from({ length: 12 }, (_, i) => new Uint8Array(32 * 1024 + i).fill(i + 1));
    await Promise.all(payloads.map((p) => writeFileAtomic(target, p)));
    const final = new Uint8Array(fs.readFileSync(target));
    const match = payloads.find((p) => p.length === final.length);
    expect(match).toBeDefined();
    expect(final).toEqual(match);
    expect(listAll(dir)).toEqual(['ckpt.bin']);
  });
});
