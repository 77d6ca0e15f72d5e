/** `--cell`, `--layers` and `--dropout`: train picks them, sample and eval read them from the checkpoint, --resume holds to them. */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/cli/checkpoint-files.ts';
import { cli, oneLineErr, tempDir, tinyCorpus, TINY } from './helpers.ts';

let dir: string;
let corpus: string;
let lstm: string;
let trainOut: string;

beforeAll(async () => {
  dir = tempDir();
  corpus = tinyCorpus(dir);
  lstm = join(dir, 'lstm.safetensors');
  const r = await cli(['train', '--corpus', corpus, ...TINY, '--cell', 'lstm', '--layers', '2', '--dropout', '0.2', '--iterations', '30', '--checkpoint', lstm]);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  trainOut = r.out;
});

describe('--cell, --layers, --dropout', () => {
  it('train builds the model they describe and stores it in the checkpoint', () => {
    expect(trainOut).toMatch(/^model: LSTM, 2 layers of 16, dropout 0\.2, [\d,]+ parameters/m);
    const ck = readCheckpoint(lstm);
    expect(ck.model).toMatchObject({ cell: 'lstm', layers: 2, dropout: 0.2, hiddenSize: 16 });
    expect(ck.state.cellState?.length).toBe(2 * 4 * 16);
  });

  it('the loss falls for gru too', async () => {
    const p = join(dir, 'gru.safetensors');
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--cell', 'gru', '--iterations', '60', '--checkpoint', p, '--lr', '0.01']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^model: GRU, hidden 16, /m);
    const losses = [...r.losses.values()];
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 5)) - 0.3);
  });

  it('sample and eval read the cell from the checkpoint', async () => {
    const s = await cli(['sample', '--checkpoint', lstm, '--backend', 'cpu', '--length', '30', '--seed', '2']);
    expect(s.err).toBe('');
    expect(s.code).toBe(0);
    expect([...s.out.trimEnd()].length).toBeGreaterThanOrEqual(30);
    const e = await cli(['eval', '--checkpoint', lstm, '--backend', 'cpu']);
    expect(e.err).toBe('');
    expect(e.code).toBe(0);
    expect(e.out).toMatch(/^loss [\d.]+ nats\/char/m);
  });

  it('--resume continues an lstm and refuses a conflicting --cell, --layers or --dropout in one line', async () => {
    const ok = await cli(['train', '--resume', lstm, '--iterations', '33', '--backend', 'cpu', '--sample-every', '0', '--cell', 'lstm']);
    expect(ok.code).toBe(0);
    expect(readCheckpoint(lstm).progress.iteration).toBe(33);
    for (const [flags, re] of [
      [['--cell', 'gru'], /^--cell gru does not match the checkpoint .*lstm\.safetensors, which has cell lstm: leave --cell out/],
      [['--layers', '3'], /^--layers 3 does not match the checkpoint .*, which has layers 2/],
      [['--dropout', '0'], /^--dropout 0 does not match the checkpoint .*, which has dropout 0\.2/],
    ] as const) {
      const r = await cli(['train', '--resume', lstm, '--iterations', '40', '--backend', 'cpu', ...flags]);
      expect(r.code).not.toBe(0);
      expect(oneLineErr(r.err)).toBe(true);
      expect(r.err.replace(/^error: /, '')).toMatch(re);
    }
  });

  it.each([
    [['--cell', 'transformer'], /--cell.*'transformer' is invalid.*rnn, lstm, gru/],
    [['--layers', '0'], /--layers.*must be a positive integer/],
    [['--dropout', '1'], /--dropout.*from 0 up to \(not including\) 1/],
    [['--dropout', '-0.1'], /--dropout.*from 0 up to/],
  ])('rejects %j', async (flags, re) => {
    const r = await cli(['train', '--corpus', corpus, ...TINY, ...flags]);
    expect(r.code).toBe(2);
    expect(oneLineErr(r.err)).toBe(true);
    expect(r.err).toMatch(re);
  });
});
