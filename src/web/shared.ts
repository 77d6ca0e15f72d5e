/** Small helpers both the page and the worker use (kept apart so the page does not bundle the engine). */
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import type { AdapterOption, ModelForm } from './protocol.ts';

/** The model and training settings of the page's form, for `vocabSize` tokens. */
export function configsFromForm(f: ModelForm, vocabSize: number): { model: ModelConfig; train: TrainConfig } {
  return {
    model: { cell: f.cell, vocabSize, hiddenSize: f.hiddenSize, layers: f.layers ?? 1, dropout: f.dropout ?? 0 },
    train: {
      seqLength: f.seqLength, batchSize: f.batchSize, optimizer: f.optimizer, learningRate: f.learningRate, clip: f.clip,
      stateReset: f.stateReset ?? 0,
    },
  };
}

export function adapterTitle(a: AdapterOption): string {
  const name = a.name || (a.glRenderer ? `unnamed adapter (WebGL renderer: ${a.glRenderer})` : 'unnamed adapter');
  return `${name} via ${a.label}`;
}
