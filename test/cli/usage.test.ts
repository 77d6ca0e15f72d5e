import { describe, expect, it } from 'vitest';
import { cli, oneLineErr } from './helpers.ts';

describe('command line usage', () => {
  it.each(['train', 'sample', 'eval'])('%s --help lists its flags and exits 0', async (cmd) => {
    const r = await cli([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Usage: rnn ${cmd}`);
    expect(r.out).toContain('--backend');
    expect(r.err).toBe('');
  });

  it('train --help shows the defaults', async () => {
    const { out } = await cli(['train', '--help']);
    for (const flag of ['--corpus', '--level', '--lowercase', '--no-lowercase', '--max-vocab', '--min-count', '--cell', '--layers', '--dropout', '--hidden', '--seq-length',
      '--batch-size', '--lr', '--optimizer', '--momentum', '--nesterov', '--rms-decay', '--lr-schedule', '--lr-decay', '--lr-decay-every',
      '--lr-decay-after', '--lr-min', '--clip', '--iterations', '--epochs', '--seed', '--checkpoint', '--checkpoint-every',
      '--eval-every', '--sample-every', '--sample-length', '--temperature', '--prime', '--top-k', '--top-p', '--repetition-penalty',
      '--repetition-window', '--num-samples', '--resume', '--quiet']) {
      expect(out).toContain(flag);
    }
    expect(out).toContain('(default: "reuters")');
    expect(out).toContain('(default: 128)');
  });

  it('no command prints the help on stderr and exits 2', async () => {
    const r = await cli([]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Commands:');
  });

  it.each([
    [['frob'], /unknown command 'frob'/],
    [['train', '--bogus'], /unknown option '--bogus'/],
    [['train', '--hidden', '-5'], /--hidden.*'-5' is invalid\. must be a positive integer/],
    [['train', '--hidden', '0'], /--hidden.*must be a positive integer/],
    [['train', '--hidden', '12.5'], /--hidden.*must be a positive integer/],
    [['train', '--batch-size', 'lots'], /--batch-size.*'lots' is invalid/],
    [['train', '--seq-length', ''], /--seq-length.*must be a positive integer/],
    [['train', '--lr', '0'], /--lr.*greater than 0/],
    [['train', '--lr', '-1e-3'], /--lr.*greater than 0/],
    [['train', '--lr', 'NaN'], /--lr.*greater than 0/],
    [['train', '--clip', 'Infinity'], /--clip.*greater than 0/],
    [['train', '--temperature', '-1'], /--temperature.*0 or more/],
    [['train', '--level', 'byte'], /--level.*'byte' is invalid.*char, word/],
    [['train', '--optimizer', 'lion'], /--optimizer.*adam, adagrad, rmsprop, sgd/],
    [['train', '--momentum', '0.5'], /^error: --momentum applies only to --optimizer sgd$/m],
    [['train', '--optimizer', 'rmsprop', '--nesterov'], /--nesterov applies only to --optimizer sgd/],
    [['train', '--optimizer', 'sgd', '--rms-decay', '0.9'], /--rms-decay applies only to --optimizer rmsprop/],
    [['train', '--optimizer', 'sgd', '--momentum', '1'], /--momentum.*from 0 up to \(not including\) 1/],
    [['train', '--optimizer', 'sgd', '--momentum', '0', '--nesterov'], /--nesterov needs a --momentum above 0/],
    [['train', '--optimizer', 'rmsprop', '--rms-decay', '1'], /--rms-decay.*between 0 and 1/],
    [['train', '--lr-schedule', 'linear'], /--lr-schedule.*none, step, cosine/],
    [['train', '--lr-decay', '0.5'], /--lr-decay applies only to --lr-schedule step/],
    [['train', '--lr-schedule', 'cosine', '--lr-decay-after', '2'], /--lr-decay-after applies only to --lr-schedule step/],
    [['train', '--lr-schedule', 'step', '--lr-min', '0'], /--lr-min applies only to --lr-schedule cosine/],
    [['train', '--lr-schedule', 'step', '--lr-decay', '1.5'], /--lr-decay.*at most 1/],
    [['train', '--lr-schedule', 'step', '--lr-decay-every', '0'], /--lr-decay-every.*greater than 0/],
    [['train', '--lr-schedule', 'cosine', '--lr', '0.01', '--lr-min', '0.1'], /--lr-min 0\.1 is above --lr 0\.01/],
    [['train', '--backend', 'tpu'], /--backend.*gpu, cpu, auto/],
    [['train', '--seed', '-3'], /--seed.*integer from 0/],
    [['train', '--eval-every', '-1'], /--eval-every.*non-negative integer/],
    [['train', '--iterations', '10', '--epochs', '1'], /--iterations or --epochs, not both/],
    [['sample'], /required option '--checkpoint <path>' not specified/],
    [['sample', '--checkpoint', 'x', '--length', '0'], /--length.*positive integer/],
    [['eval'], /give --checkpoint, or --baselines/],
    [['eval', '--baselines', '--corpus', 'reuters', '--level', 'sentence'], /--level.*Allowed choices are char, word/],
    [['sample', '--checkpoint', 'x', '--top-p', '0'], /--top-p.*'0' is invalid\. must be a number in \(0, 1\]/],
    [['sample', '--checkpoint', 'x', '--top-p', '1.01'], /--top-p.*must be a number in \(0, 1\]/],
    [['sample', '--checkpoint', 'x', '--top-k', '0'], /--top-k.*must be a positive integer/],
    [['sample', '--checkpoint', 'x', '--top-k', '3.5'], /--top-k.*must be a positive integer/],
    [['sample', '--checkpoint', 'x', '--repetition-penalty', '0'], /--repetition-penalty.*greater than 0/],
    [['sample', '--checkpoint', 'x', '--repetition-penalty', '-1.2'], /--repetition-penalty.*greater than 0/],
    [['sample', '--checkpoint', 'x', '--repetition-window', '-1'], /--repetition-window.*non-negative integer/],
    [['sample', '--checkpoint', 'x', '--num-samples', '0'], /--num-samples.*integer from 1 to 4096/],
    [['train', '--num-samples', '4097'], /--num-samples.*integer from 1 to 4096/],
    [['train', '--top-p', 'NaN'], /--top-p.*\(0, 1\]/],
  ])('%j is a usage error: one line, exit 2', async (argv, message) => {
    const r = await cli(argv as string[]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(oneLineErr(r.err)).toBe(true);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
