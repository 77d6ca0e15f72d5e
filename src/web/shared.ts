/** Small helpers both the page and the worker use (kept apart so the page does not bundle the engine). */
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import { optimizerHyper, RMSPROP, SGD, STEP_DECAY } from '../model/optimizer.ts';
import type { AdapterOption, ModelForm } from './protocol.ts';

/** The page's schedule defaults, in iterations (its training has no set end). */
export const PAGE_SCHEDULE = { every: 1000, after: 2000, iterations: 20000 } as const;

/** The optimizer's and the schedule's part of a TrainConfig, from the form's fields (those that apply). */
function optimizerFromForm(f: ModelForm): Partial<TrainConfig> {
  const o: Partial<TrainConfig> = {};
  if (f.optimizer === 'sgd') Object.assign(o, { momentum: f.momentum ?? SGD.momentum, nesterov: f.nesterov ?? false });
  if (f.optimizer === 'rmsprop') o.rmsDecay = f.rmsDecay ?? RMSPROP.alpha;
  if (f.lrSchedule === 'step') {
    o.lrSchedule = { kind: 'step', decay: f.lrDecay ?? STEP_DECAY.decay, every: f.lrDecayEvery ?? PAGE_SCHEDULE.every, after: f.lrDecayAfter ?? PAGE_SCHEDULE.after };
  } else if (f.lrSchedule === 'cosine') {
    o.lrSchedule = { kind: 'cosine', min: f.lrMin ?? 0, iterations: f.lrIterations ?? PAGE_SCHEDULE.iterations };
  }
  return o;
}

/**
 * The form's optimizer and schedule fields of a TrainConfig, only those that apply (the inverse of
 * optimizerFromForm): a model's summary and a read form then compare field by field.
 */
export function optimizerFormFields(t: TrainConfig): Partial<ModelForm> {
  const h = optimizerHyper(t);
  const s = t.lrSchedule;
  return {
    ...(t.optimizer === 'sgd' ? { momentum: h.momentum, nesterov: h.nesterov } : {}),
    ...(t.optimizer === 'rmsprop' ? { rmsDecay: h.alpha } : {}),
    lrSchedule: s?.kind ?? 'none',
    ...(s?.kind === 'step' ? { lrDecay: s.decay, lrDecayEvery: s.every, lrDecayAfter: s.after } : {}),
    ...(s?.kind === 'cosine' ? { lrMin: s.min, lrIterations: s.iterations } : {}),
  };
}

/** The model and training settings of the page's form, for `vocabSize` tokens. */
export function configsFromForm(f: ModelForm, vocabSize: number): { model: ModelConfig; train: TrainConfig } {
  return {
    model: { cell: f.cell, vocabSize, hiddenSize: f.hiddenSize, layers: f.layers ?? 1, dropout: f.dropout ?? 0 },
    train: {
      seqLength: f.seqLength, batchSize: f.batchSize, optimizer: f.optimizer, ...optimizerFromForm(f), learningRate: f.learningRate, clip: f.clip,
      stateReset: f.stateReset ?? 0,
    },
  };
}

export function adapterTitle(a: AdapterOption): string {
  const name = a.name || (a.glRenderer ? `unnamed adapter (WebGL renderer: ${a.glRenderer})` : 'unnamed adapter');
  return `${name} via ${a.label}`;
}
