/**
 * PyTorch -> webgpu-rnn: examples/pytorch_to_checkpoint.py trains (or converts) a model in
 * PyTorch and writes our checkpoint in F16, BF16, F64 or F32; our loader reads it, our CPU
 * reference gives PyTorch's loss, final state and logits on a fixed string, and
 * `npm run rnn -- sample` samples from it.
 *
 * Needs a python3 that imports torch (Debian's python3-torch; .ci/install-system installs it).
 * Where there is none the tests are skipped with a loud reason, and CI, which fails on any
 * skipped test, says so.
 *
 * Tolerances, derived rather than tuned. The script evaluates PyTorch in float64 with the
 * parameters exactly as our loader holds them (rounded to the file's dtype, then to float32), so
 * the only difference left is our reference's float32 storage: it sums each gate pre-activation in
 * float64 but rounds every h and c to float32 (relative error u = 2^-24 per step) and every logit.
 * The LSTM's c carries its error forward with a forget gate below 1, so over T steps the state
 * error is at most T u max|state| (the GRU's h likewise, (1-z) h + z n; the tanh RNN contracts);
 * the test allows twice that, with max|state| taken as max(1, the final |h|, |c|). A logit is
 * W_dec h + b: its error is at most (largest row sum of |W_dec|) x the state bound, plus its own
 * rounding, 2u|logit|. The mean loss moves at most 2x the largest logit error (-log softmax is
 * 2-Lipschitz in the max norm). Measured (the log lines): |d loss| ~1e-9, h ~3e-8, c ~1.5e-6 over
 * 93 steps, logits ~2e-8, against bounds of ~1e-5 to 1e-4; a wrong gate order, a transposed
 * matrix or a missing bias moves them by 1e-2 or more.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/cli/checkpoint-files.ts';
import { stackedLoss, zeroState } from '../../src/cpu/stacked.ts';
import { fullModelConfig } from '../../src/model/config.ts';
import { paramLayout, view } from '../../src/model/layout.ts';
import { cli, REPO_ROOT, tinyCorpus } from '../cli/helpers.ts';

const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(REPO_ROOT, 'examples/pytorch_to_checkpoint.py');
const probe = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
const torchVersion = probe.status === 0 ? probe.stdout.trim() : undefined;
if (!torchVersion) {
  const why = probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').at(-1);
  console.warn(
    `\n*** SKIPPED test/checkpoint/pytorch.test.ts: ${PYTHON} cannot import torch (${why}). ` +
      `Install Debian's python3-torch (apt-get install python3-torch, as .ci/install-system does) ` +
      `or set PYTHON to a python with torch. ***\n`,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'rnn-pytorch-'));
const corpus = tinyCorpus(dir);
const CHECK_TEXT = 'the quick brown fox jumps over a lazy dog and runs away from big bad wolves today\nthe lazy dog';

interface TorchCheck {
  loss: number;
  steps: number;
  h_n: number[];
  c_n?: number[];
  last_logits: number[];
}

function python(args: string[]): { out: string; err: string } {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', cwd: dir });
  if (r.status !== 0) throw new Error(`${PYTHON} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { out: r.stdout, err: r.stderr };
}

/** Runs the script with --check-text; returns PyTorch's numbers (the last stdout line, JSON). */
function script(args: string[]): TorchCheck {
  const { out } = python([SCRIPT, ...args, '--check-text', CHECK_TEXT]);
  return JSON.parse(out.trim().split('\n').at(-1)!) as TorchCheck;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** Our CPU reference on CHECK_TEXT from the loaded checkpoint, compared with PyTorch's numbers. */
function compare(path: string, torch: TorchCheck, label: string, notes: string[]): void {
  const ck = readCheckpoint(path, (line) => notes.push(line));
  const model = fullModelConfig(ck.model);
  const ids = ck.tokenizerObject.encode(CHECK_TEXT);
  const T = ids.length - 1;
  const { loss, hLast, cLast } = stackedLoss(model, ck.state.params, zeroState(model, 1), {
    inputs: ids.slice(0, T), targets: ids.slice(1), seqLength: T, batchSize: 1,
  });
  const H = model.hiddenSize, V = model.vocabSize;
  const layout = paramLayout(model);
  const w = view(ck.state.params, layout.decoderWeight), b = view(ck.state.params, layout.decoderBias);
  const top = hLast.subarray((model.layers - 1) * H);
  const logits = Array.from({ length: V }, (_, v) => {
    let s = b[v];
    for (let k = 0; k < H; k++) s += w[v * H + k] * top[k];
    return s;
  });
  const u = 2 ** -24;
  const largest = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  let rowSum = 0;
  for (let v = 0; v < V; v++) rowSum = Math.max(rowSum, w.subarray(v * H, (v + 1) * H).reduce((a, x) => a + Math.abs(x), 0));
  const state = 2 * T * u * Math.max(1, largest(torch.h_n), largest(torch.c_n ?? []));
  const tol = { state, logits: rowSum * state + 2 * u * largest(torch.last_logits) };
  const lossTol = 2 * tol.logits;
  const d = {
    loss: Math.abs(loss - torch.loss),
    h: maxAbs(hLast, torch.h_n),
    c: cLast ? maxAbs(cLast, torch.c_n!) : 0,
    logits: maxAbs(logits, torch.last_logits),
  };
  console.log(
    `pytorch vs ours, ${label}: loss ${torch.loss.toFixed(6)} vs ${loss.toFixed(6)} (|d| ${d.loss.toExponential(1)}), ` +
      `max |d| h ${d.h.toExponential(1)}, c ${d.c.toExponential(1)}, logits ${d.logits.toExponential(1)} over ${T} steps ` +
      `(bounds: loss ${lossTol.toExponential(1)}, states ${tol.state.toExponential(1)}, logits ${tol.logits.toExponential(1)})`,
  );
  expect(torch.steps).toBe(T);
  expect(d.loss).toBeLessThan(lossTol);
  expect(d.h).toBeLessThan(tol.state);
  expect(d.c).toBeLessThan(tol.state);
  expect(d.logits).toBeLessThan(tol.logits);
}

describe.skipIf(!torchVersion)(`PyTorch (${torchVersion ?? 'not importable'}) -> our checkpoint`, () => {
  const trained = join(dir, 'lstm-f16.safetensors');
  const stateDict = join(dir, 'lstm.pt');

  it('train: a 2-layer LSTM saved as F16 loads (one note line), gives PyTorch\'s loss, state and logits, and samples in the CLI', () => {
    const torch = script(['train', '--text', corpus, '--cell', 'lstm', '--hidden', '24', '--layers', '2', '--dropout', '0.1',
      '--steps', '60', '--lr', '0.01', '--seq-length', '16', '--batch-size', '8', '--log-every', '0', '--device', 'cpu',
      '--out', trained, '--dtype', 'f16', '--state-dict-out', stateDict]);
    const notes: string[] = [];
    compare(trained, torch, 'lstm 2 x 24, F16', notes);
    expect(notes).toEqual([`${trained}: converted 32 F16 tensors to F32`]);
    // Trained, not just initialised: the loss is well below uniform guessing over the vocabulary.
    const ck = readCheckpoint(trained);
    expect(torch.loss).toBeLessThan(Math.log(ck.model.vocabSize) - 0.5);
    expect(ck.progress.iteration).toBe(60);
    expect(ck.state.optStep).toBe(60); // PyTorch's Adam moments came along

    // What a user types, as a user types it.
    const r = spawnSync('npm', ['run', '--silent', 'rnn', '--', 'sample', '--checkpoint', trained, '--backend', 'cpu',
      '--length', '60', '--seed', '1', '--prime', 'the '], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe(`note: ${trained}: converted 32 F16 tensors to F32\n`);
    expect(Array.from(r.stdout.trimEnd()).length).toBeGreaterThanOrEqual(4 + 60 - 1);
    expect(r.stdout.startsWith('the ')).toBe(true);
  });

  it('convert: the same state_dict as BF16 and as F64, and a GRU as F32', async () => {
    for (const dtype of ['bf16', 'f64'] as const) {
      const out = join(dir, `lstm-${dtype}.safetensors`);
      const torch = script(['convert', '--state-dict', stateDict, '--text', corpus, '--out', out, '--dtype', dtype]);
      const notes: string[] = [];
      compare(out, torch, `converted lstm, ${dtype.toUpperCase()}`, notes);
      expect(notes).toEqual([`${out}: converted 32 ${dtype.toUpperCase()} tensors to F32`]);
      const s = await cli(['sample', '--checkpoint', out, '--backend', 'cpu', '--length', '40', '--seed', '2']);
      expect(s.code, s.err).toBe(0);
      expect(s.out.trim().length).toBeGreaterThan(0);
    }
    const gru = join(dir, 'gru.safetensors');
    const torch = script(['train', '--text', corpus, '--cell', 'gru', '--hidden', '20', '--steps', '10', '--seq-length', '16',
      '--batch-size', '4', '--log-every', '0', '--device', 'cpu', '--out', gru]);
    const notes: string[] = [];
    compare(gru, torch, 'gru 1 x 20, F32', notes);
    expect(notes).toEqual([]);
  });

  it('convert: an nn.Embedding + nn.RNN under other names folds into our one-hot layer with the embedding model\'s loss', () => {
    // A user's model: embedding, 2-layer tanh RNN and a linear head, called embed / net / head.
    const sd = join(dir, 'embedded.pt');
    const made = python(['-c', `
import json, sys, torch
from torch import nn
import torch.nn.functional as F
torch.manual_seed(3)
text = open(sys.argv[1], encoding='utf-8').read()
vocab = sorted(set(text)); V = len(vocab)
embed, net, head = nn.Embedding(V, 7), nn.RNN(7, 12, num_layers=2), nn.Linear(12, V)
sd = {**{'embed.' + k: v for k, v in embed.state_dict().items()}, **{'net.' + k: v for k, v in net.state_dict().items()},
      **{'head.' + k: v for k, v in head.state_dict().items()}}
torch.save(sd, sys.argv[2])
ids = torch.tensor([vocab.index(c) for c in sys.argv[3]])
with torch.no_grad():
    out, _ = net.double()(embed.double()(ids[:-1]).unsqueeze(1))
    print(json.dumps({'loss': F.cross_entropy(head.double()(out[:, 0]), ids[1:]).item()}))
`, corpus, sd, CHECK_TEXT]);
    const embeddingLoss = JSON.parse(made.out.trim()).loss as number;
    const out = join(dir, 'embedded.safetensors');
    const torch = script(['convert', '--state-dict', sd, '--text', corpus, '--out', out, '--dtype', 'f64',
      '--embedding', 'embed.weight', '--prefix', 'net.=rnn.', '--prefix', 'head.=decoder.']);
    compare(out, torch, 'embedding + rnn 2 x 12 folded, F64', []);
    // The folded one-hot model is the embedding model: only the float32 rounding of the folded
    // W_ih E^T (u = 6e-8 relative per pre-activation, through the same bounds) separates them.
    console.log(`embedding model ${embeddingLoss.toFixed(6)} vs folded one-hot ${torch.loss.toFixed(6)} (|d| ${Math.abs(embeddingLoss - torch.loss).toExponential(1)})`);
    expect(Math.abs(embeddingLoss - torch.loss)).toBeLessThan(1e-6);
  });

  it('convert refuses in one line a model that does not fit the vocabulary', () => {
    const vocab = join(dir, 'abc.json');
    writeFileSync(vocab, '["a", "b", "c"]');
    const wrong = spawnSync(PYTHON, [SCRIPT, 'convert', '--state-dict', stateDict, '--vocab', vocab, '--out', join(dir, 'x.safetensors')], { encoding: 'utf8' });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/^error: .*lstm\.pt: tensor rnn\.weight_ih_l0 is \[96, \d+\], a lstm of 2 x 24 with vocabulary 3 needs \[96, 3\]\n$/);
  });
});
