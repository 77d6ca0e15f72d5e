/**
 * The model form as the worker receives it: every number checked before anything is built, as
 * the page could be scripted into sending anything. (The page's own checks only guide the user.)
 */
import { CELL_TYPES } from '../../model/cells.ts';
import { optimizerProblem } from '../../model/optimizer.ts';
import type { ModelForm } from '../protocol.ts';
import { configsFromForm } from '../shared.ts';
import { UserError } from './errors.ts';

export function checkForm(f: ModelForm): void {
  const int = (v: number, lo: number, hi: number, what: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new UserError('model', `${what} must be a whole number from ${lo} to ${hi}, got ${v}`);
  };
  if (!CELL_TYPES.includes(f.cell)) throw new UserError('model', `unknown cell type ${f.cell}`);
  int(f.layers ?? 1, 1, 8, 'the number of layers');
  if (!((f.dropout ?? 0) >= 0 && (f.dropout ?? 0) < 1)) throw new UserError('model', `the dropout must be from 0 up to (not including) 1, got ${f.dropout}`);
  int(f.hiddenSize, 1, 4096, 'the hidden size');
  int(f.seqLength, 1, 4096, 'the sequence length');
  int(f.batchSize, 1, 65535, 'the batch size');
  int(f.seed, 0, 2 ** 32 - 1, 'the seed');
  if (!(f.learningRate > 0 && f.learningRate < 10)) throw new UserError('model', `the learning rate must be above 0 and below 10, got ${f.learningRate}`);
  if (!(f.clip > 0)) throw new UserError('model', `the gradient clip must be above 0, got ${f.clip}`);
  int(f.stateReset ?? 0, 0, 2 ** 31 - 1, 'the state reset (iterations, 0 for never)');
  const problem = optimizerProblem(configsFromForm(f, 1).train);
  if (problem) throw new UserError('model', `bad optimizer settings: ${problem}`);
}
