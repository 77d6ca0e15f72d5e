/**
 * The layers of src/ import one way: util <- {data, model} <- {cpu, gpu, checkpoint} <- {engine,
 * node} <- {cli, web} <- lib (the package's public API and entry points, over the engine, the
 * CLI and the browser's GPU acquisition). A folder may import from its own folder and from folders of a lower rank
 * only, so there is no cycle between folders, gpu/ never imports cpu/ (the engine hands the GPU
 * backend the CPU sampler it falls back to), and model/ imports neither. The bench and the tests
 * sit above everything and may put cpu/ and gpu/ side by side.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');
const RANK: Record<string, number> = {
  util: 0,
  data: 1, model: 1,
  cpu: 2, gpu: 2, checkpoint: 2,
  engine: 3, node: 3,
  cli: 4, web: 4,
  lib: 5,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|mts|mjs)$/.test(name) ? [p] : [];
  });
}

/** Every relative import (static, dynamic, re-export) of a source file, resolved to a path. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => resolve(dirname(file), s.replace(/\?raw$/, '')));
}

const folderOf = (path: string) => relative(SRC, path).split('/')[0];

/** (from folder, to folder, file) for every import that crosses folders inside src/. */
function crossings(): { from: string; to: string; file: string }[] {
  const out = [];
  for (const file of files(SRC)) {
    for (const target of importsOf(file)) {
      if (relative(SRC, target).startsWith('..')) continue; // shaders/, package files
      const from = folderOf(file), to = folderOf(target);
      if (from !== to) out.push({ from, to, file: relative(SRC, file) });
    }
  }
  return out;
}

describe('src/ layering', () => {
  const edges = crossings();

  it('knows every folder of src/', () => {
    const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
    expect(folders.filter((f) => !(f in RANK))).toEqual([]);
    expect(edges.length).toBeGreaterThan(20);
  });

  it('imports only downwards: no cycle between folders, no gpu -> cpu, no model -> cpu', () => {
    const upward = edges.filter((e) => !(RANK[e.to] < RANK[e.from])).map((e) => `${e.file} imports ${e.to}/`);
    expect(upward).toEqual([]);
  });

  it('would catch a violation (the rule is not vacuous)', () => {
    const rule = (from: string, to: string) => RANK[to] < RANK[from];
    expect(rule('gpu', 'cpu')).toBe(false);
    expect(rule('model', 'cpu')).toBe(false);
    expect(rule('cpu', 'engine')).toBe(false);
    expect(rule('engine', 'gpu')).toBe(true);
    expect(rule('cli', 'lib')).toBe(false);
    expect(rule('lib', 'engine')).toBe(true);
  });
});
