/**
 * The shaders as text, with no device: shared code (shaders/lib, composed by src/gpu/wgsl.ts) is
 * defined once and every include resolves.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { composeWgsl, WGSL_LIB } from '../src/gpu/wgsl.ts';
import { CELL_CODE } from '../src/gpu/kernels.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SHADERS = join(ROOT, 'shaders');
const kernelFiles = readdirSync(SHADERS).filter((f) => f.endsWith('.wgsl')).sort();
const libFiles = readdirSync(join(SHADERS, 'lib')).filter((f) => f.endsWith('.wgsl')).map((f) => `lib/${f}`).sort();
const read = (path: string) => readFileSync(join(SHADERS, path), 'utf8');
const uncommented = (code: string) => code.replace(/\/\/.*$/gm, '');

/** Each `fn` of a shader's text: its name and its whole definition, whitespace collapsed. */
function functions(code: string): { name: string; text: string }[] {
  const text = uncommented(code);
  const out = [];
  for (const m of text.matchAll(/\bfn\s+(\w+)\s*\(/g)) {
    let i = text.indexOf('{', m.index);
    let depth = 0;
    const start = m.index;
    for (; i < text.length; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}' && --depth === 0) break;
    }
    out.push({ name: m[1], text: text.slice(start, i + 1).replace(/\s+/g, ' ') });
  }
  return out;
}

function constants(code: string): Record<string, number> {
  return Object.fromEntries([...uncommented(code).matchAll(/\bconst\s+(\w+)\s*:\s*\w+\s*=\s*(\d+)u?\s*;/g)].map((m) => [m[1], Number(m[2])]));
}

describe('shared WGSL (shaders/lib) and its composition', () => {
  it('every lib file is known to composeWgsl, and every include line resolves', () => {
    expect(Object.keys(WGSL_LIB).sort()).toEqual(libFiles);
    for (const f of [...kernelFiles, ...libFiles]) {
      const composed = composeWgsl(read(f));
      expect(composed, f).not.toMatch(/^\/\/#include/m);
    }
    expect(() => composeWgsl('//#include "lib/none.wgsl"\n')).toThrow(/names no file/);
  });

  it('no composed shader defines a function twice (a lib included twice is pasted once)', () => {
    for (const f of kernelFiles) {
      const names = functions(composeWgsl(read(f))).map((fn) => fn.name);
      expect(names.filter((n, i) => names.indexOf(n) !== i), f).toEqual([]);
    }
    const twice = composeWgsl('//#include "lib/hash.wgsl"\n//#include "lib/cell_step.wgsl"\n//#include "lib/hash.wgsl"\n//#include "lib/cell.wgsl"\n');
    expect(functions(twice).filter((fn) => fn.name === 'pcgHash')).toHaveLength(1);
    expect(functions(twice).filter((fn) => fn.name === 'sigmoid')).toHaveLength(1);
  });

  it('a function of shaders/lib is defined nowhere else, and no function is copied between shader files', () => {
    const defs = [...kernelFiles, ...libFiles].flatMap((f) => functions(read(f)).map((fn) => ({ ...fn, file: f })));
    const libNames = new Set(defs.filter((d) => d.file.startsWith('lib/')).map((d) => d.name));
    expect(defs.filter((d) => libNames.has(d.name) && !d.file.startsWith('lib/')).map((d) => `${d.file}: fn ${d.name}`)).toEqual([]);
    const byText = new Map<string, string[]>();
    for (const d of defs) byText.set(d.text, [...(byText.get(d.text) ?? []), d.file]);
    expect([...byText.entries()].filter(([, files]) => files.length > 1).map(([text, files]) => `${files.join(', ')}: ${text.slice(0, 60)}`)).toEqual([]);
  });

  it("the sampler and the training cells share lib/cell.wgsl's math, and the CELL codes are the host's", () => {
    for (const f of ['cell_forward.wgsl', 'cell_backward.wgsl', 'sample.wgsl']) {
      const names = functions(composeWgsl(read(f))).map((fn) => fn.name);
      expect(names, f).toContain('lstmForward');
      expect(names, f).toContain('gruForward');
    }
    const c = constants(read('lib/cell.wgsl'));
    expect({ rnn: c.CELL_RNN, lstm: c.CELL_LSTM, gru: c.CELL_GRU }).toEqual(CELL_CODE);
  });
});
