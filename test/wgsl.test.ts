/**
 * The shaders as text, with no device: shared code (shaders/lib, composed by src/gpu/wgsl.ts) is
 * defined once and every include resolves; each shaders/X.wgsl has its kernel module
 * (src/gpu/kernels/X.ts) whose bindings, uniform structs and entry points are the shader's own;
 * and every entry point is one that some plan or the sampler selects (no dead variants).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { composeWgsl, WGSL_LIB } from '../src/gpu/wgsl.ts';
import { KERNELS } from '../src/gpu/kernels/index.ts';
import { CELL_CODE } from '../src/gpu/kernels/cell.ts';
import type { FieldSpec, KernelName } from '../src/gpu/kernels/common.ts';
import { sampleLaunches } from '../src/gpu/kernels/sample.ts';
import { planIteration } from '../src/gpu/plan.ts';
import { MATMUL_CANDIDATES } from '../src/gpu/kernels/matmul.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../src/model/config.ts';
import { paramLayout } from '../src/model/layout.ts';

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

const entryPoints = (code: string) => [...uncommented(code).matchAll(/@compute\b[\s\S]*?\bfn\s+(\w+)/g)].map((m) => m[1]);

function bindings(code: string): { index: number; name: string; space: string; type: string }[] {
  return [...uncommented(code).matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var(?:<([^>]+)>)?\s+(\w+)\s*:\s*([^;]+);/g)]
    .map((m) => ({ index: Number(m[1]), space: m[2] ?? '', name: m[3], type: m[4].trim() }));
}

function constants(code: string): Record<string, number> {
  return Object.fromEntries([...uncommented(code).matchAll(/\bconst\s+(\w+)\s*:\s*\w+\s*=\s*(\d+)u?\s*;/g)].map((m) => [m[1], Number(m[2])]));
}

function struct(code: string, name: string): { name: string; type: string }[] {
  const body = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(uncommented(code));
  if (!body) throw new Error(`no struct ${name}`);
  return [...body[1].matchAll(/(\w+)\s*:\s*(array<vec4<u32>,\s*\w+>|\w+)/g)].map((m) => ({ name: m[1], type: m[2].replace(/\s+/g, '') }));
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

describe('each shader and its kernel module agree', () => {
  it('one module per shader file', () => {
    expect(Object.keys(KERNELS).sort()).toEqual(kernelFiles.map((f) => basename(f, '.wgsl')));
  });

  for (const f of kernelFiles) {
    const name = basename(f, '.wgsl') as KernelName;
    it(`${name}: entry points, bindings in @binding order, uniform structs field by field, CPU twin`, () => {
      const k = KERNELS[name];
      expect(k.wgsl).toBe(composeWgsl(read(f)));
      expect([...entryPoints(k.wgsl)].sort()).toEqual([...k.entryPoints].sort());

      // Aliased views (A and A4 at one binding) count once, by the first name declared.
      const declared = bindings(k.wgsl);
      const first = new Map<number, (typeof declared)[number]>();
      for (const b of declared) if (!first.has(b.index)) first.set(b.index, b);
      expect([...first.keys()].sort((a, b) => a - b)).toEqual(k.bindings.map((_, i) => i));
      expect(k.bindings.map((_, i) => first.get(i)!.name)).toEqual([...k.bindings]);

      const consts = constants(k.wgsl);
      const uniformBindings = declared.filter((b) => b.space === 'uniform');
      expect(uniformBindings.map((b) => b.name).sort()).toEqual(Object.keys(k.uniforms).sort());
      for (const b of uniformBindings) {
        const layout = (k.uniforms as Record<string, { fields: Record<string, FieldSpec> } | undefined>)[b.name]!;
        const want = Object.entries(layout.fields).map(([field, spec]) => ({
          name: field, type: typeof spec === 'string' ? spec : `array<vec4<u32>,${spec.vec4u32}>`,
        }));
        const got = struct(k.wgsl, b.type).map((fd) => ({ ...fd, type: fd.type.replace(/,(\w+)>$/, (_, n: string) => `,${consts[n] ?? n}>`) }));
        expect(got, `${name}: struct ${b.type}`).toEqual(want);
      }

      const [file, fn] = k.cpuTwin.split(/:\s*/);
      expect(existsSync(join(ROOT, file)), k.cpuTwin).toBe(true);
      const firstName = /\w+/.exec(fn)![0];
      expect(readFileSync(join(ROOT, file), 'utf8'), k.cpuTwin).toContain(firstName);
    });
  }
});

describe('every entry point is reachable', () => {
  const train = (seqLength: number, batchSize: number): TrainConfig => ({ seqLength, batchSize, optimizer: 'adam', learningRate: 1e-3, clip: 5 });
  // H a multiple of 4 and not (the vec4 cell and matmul variants), a char-level and a word-level vocabulary.
  const configs: [ModelConfig, TrainConfig][] = [
    [{ cell: 'rnn', vocabSize: 87, hiddenSize: 64, layers: 2, dropout: 0.2 }, train(3, 8)],
    [{ cell: 'lstm', vocabSize: 2000, hiddenSize: 7 }, train(2, 3)],
    [{ cell: 'gru', vocabSize: 30, hiddenSize: 12 }, train(2, 1)],
    // G*H not a multiple of 4 (embedding_grad's scalar variant).
    [{ cell: 'rnn', vocabSize: 11, hiddenSize: 7 }, train(2, 2)],
  ];

  it('by some plan (under any tuner choice) or by the sampler: an entry point nothing can select is dead code', () => {
    const selected = new Set<string>();
    for (const [model, t] of configs) {
      const keys = planIteration(model, t).matmuls.map((m) => m.key);
      for (const candidate of Object.keys(MATMUL_CANDIDATES)) {
        const plan = planIteration(model, t, undefined, Object.fromEntries(keys.map((k) => [k, candidate])));
        for (const d of [...plan.forward, ...plan.backwardWithDh0, ...plan.update]) selected.add(`${d.kernel}:${d.entryPoint}`);
      }

      const full = fullModelConfig(model);
      for (const l of sampleLaunches(full, paramLayout(model), { primeLength: 1, seqLen: 3, seed: 1, temperature: 1, recordProbs: false, streams: 1 }, { params: 0, seq: 0, hState: 0, logits: 0, probs: 0 })) {
        selected.add(`${l.kernel.name}:${l.entryPoint}`);
      }
    }
    // The split plan, under a binding limit (2 KB) smaller than the parameters.
    const split = planIteration({ cell: 'lstm', vocabSize: 12, hiddenSize: 16 }, train(3, 2), {
      maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 2048, maxBufferSize: 2 ** 32, minStorageBufferOffsetAlignment: 256,
    });
    for (const d of [...split.forward, ...split.backwardWithDh0, ...split.update]) selected.add(`${d.kernel}:${d.entryPoint}`);
    const all = kernelFiles.flatMap((f) => entryPoints(read(f)).map((e) => `${basename(f, '.wgsl')}:${e}`));
    expect(all.filter((e) => !selected.has(e))).toEqual([]);
    expect([...selected].filter((e) => !all.includes(e))).toEqual([]);
  });
});
