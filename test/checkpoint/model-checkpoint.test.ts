/**
 * Model checkpoints for every cell: PyTorch's names and shapes (nn.LSTM i,f,g,o and nn.GRU r,z,n
 * stacked in weight_*_l{k}), the state as [layers, batch, hidden], cell/layers/dropout in the
 * metadata; a GPU-trained model continues on the CPU from its checkpoint; checkpoints written
 * before gated cells existed still load.
 */
import { describe, expect, it } from 'vitest';
import { expectPerPart, gpu, layerParts, noGpu } from '../gpu.ts';
import { decodeCheckpoint, encodeCheckpoint, CHECKPOINT_FORMAT, type CheckpointData } from '../../src/checkpoint/model-checkpoint.ts';
import { decodeSafetensors, encodeSafetensors, type Tensor } from '../../src/checkpoint/safetensors.ts';
import { CpuBackend } from '../../src/cpu/backend.ts';
import { GpuBackend } from '../../src/gpu/backend.ts';
import { CharTokenizer } from '../../src/data/tokenizer.ts';
import { CHARSETS } from '../../src/data/text.ts';
import { BatchStream } from '../../src/data/split.ts';
import { paramLayout } from '../../src/model/layout.ts';
import type { ModelConfig, TrainConfig } from '../../src/model/config.ts';
import type { ModelState } from '../../src/model/backend.ts';

const text = 'the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. '.repeat(6);
const tokenizer = CharTokenizer.fromText(text);
const ids = tokenizer.encode(text);
const train: TrainConfig = { seqLength: 6, batchSize: 3, optimizer: 'adam', learningRate: 0.01, clip: 5 };

function checkpoint(model: ModelConfig, state: ModelState, stream: BatchStream): CheckpointData {
  return {
    model, train, tokenizer: tokenizer.toJSON(), state,
    progress: { iteration: state.optStep, stream: stream.state(), seed: 3, corpus: 'test', lowercase: false },
  };
}

describe('model checkpoints: names, shapes and metadata for every cell', () => {
  for (const model of [
    { cell: 'lstm', vocabSize: tokenizer.vocab.length, hiddenSize: 5, layers: 2, dropout: 0.25 },
    { cell: 'gru', vocabSize: tokenizer.vocab.length, hiddenSize: 7, layers: 1, dropout: 0 },
  ] satisfies ModelConfig[]) {
    it(`${model.cell} x ${model.layers}: the file's names and shapes, and the CPU backend's state round-trips`, async () => {
      const cpu = new CpuBackend(model, train, 3);
      const stream = new BatchStream(ids, train.batchSize, train.seqLength);
      for (let i = 0; i < 2; i++) await (await cpu.trainStep(stream.next())).loss;
      const state = await cpu.exportState();
      const bytes = encodeCheckpoint(checkpoint(model, state, stream));
      const back = decodeCheckpoint(bytes, 'ck');
      expect(back.model).toEqual(model);
      expect(back.state).toEqual(state);
      // What the file itself holds: PyTorch's names and shapes, the state as [layers, batch, hidden].
      const G = model.cell === 'lstm' ? 4 : 3, H = model.hiddenSize, V = model.vocabSize, L = model.layers;
      const { tensors, metadata } = decodeSafetensors(bytes, 'raw');
      const shapes = Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, t.shape]));
      for (let l = 0; l < L; l++) {
        expect(shapes[`rnn.weight_ih_l${l}`]).toEqual([G * H, l === 0 ? V : H]);
        expect(shapes[`rnn.weight_hh_l${l}`]).toEqual([G * H, H]);
        expect(shapes[`rnn.bias_ih_l${l}`]).toEqual([G * H]);
        expect(shapes[`rnn.bias_hh_l${l}`]).toEqual([G * H]);
      }
      expect(shapes['decoder.weight']).toEqual([V, H]);
      expect(shapes['decoder.bias']).toEqual([V]);
      expect(shapes['state.hidden']).toEqual([L, train.batchSize, H]);
      expect(shapes['state.cell']).toEqual(model.cell === 'lstm' ? [L, train.batchSize, H] : undefined);
      expect(JSON.parse(metadata.model)).toMatchObject({ cell: model.cell, layers: L, dropout: model.dropout });
    });
  }

  it('rejects tensors that do not fit the stated cell, in one line', async () => {
    const model: ModelConfig = { cell: 'gru', vocabSize: tokenizer.vocab.length, hiddenSize: 4, layers: 2, dropout: 0 };
    const state = await new CpuBackend(model, train, 1).exportState();
    const bytes = encodeCheckpoint(checkpoint(model, state, new BatchStream(ids, train.batchSize, train.seqLength)));
    // The same tensors under metadata that says lstm: gru's 3H rows are not lstm's 4H.
    const { tensors, metadata } = decodeSafetensors(bytes, 'raw');
    const forged = encodeSafetensors(tensors, { ...metadata, model: JSON.stringify({ ...model, cell: 'lstm' }) });
    let message = '';
    try {
      decodeCheckpoint(forged, 'forged.safetensors');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^forged\.safetensors: tensor rnn\.weight_ih_l0 has shape \[12,\d+\] but the model needs \[16,\d+\]$/);
  });

  it('loads a checkpoint from before gated cells and stacking (one rnn layer, bias_hh_l0 stored as zeros)', () => {
    const V = tokenizer.vocab.length, H = 6;
    const model: ModelConfig = { cell: 'rnn', vocabSize: V, hiddenSize: H };
    const layout = paramLayout(model);
    const tensors: Record<string, Tensor> = {};
    let x = 0;
    const fill = (n: number) => Float32Array.from({ length: n }, () => (x++ % 17) / 17 - 0.5);
    for (const s of layout.slots) {
      const zero = s.name === 'rnn.bias_hh_l0';
      tensors[s.name] = { shape: s.shape, data: zero ? new Float32Array(s.size) : fill(s.size) };
      if (zero) continue; // the old format kept no optimizer moments for it
      tensors[`optimizer.m.${s.name}`] = { shape: s.shape, data: fill(s.size) };
      tensors[`optimizer.v.${s.name}`] = { shape: s.shape, data: fill(s.size).map(Math.abs) };
    }
    tensors['state.hidden'] = { shape: [train.batchSize, H], data: fill(train.batchSize * H) };
    const stream = new BatchStream(ids, train.batchSize, train.seqLength);
    const bytes = encodeSafetensors(tensors, {
      format: CHECKPOINT_FORMAT, model: JSON.stringify(model), train: JSON.stringify(train), tokenizer: JSON.stringify(tokenizer.toJSON()),
      progress: JSON.stringify({ iteration: 4, stream: stream.state(), seed: 1, corpus: 'test', lowercase: false, optimizerStep: 4 }),
    });
    const ck = decodeCheckpoint(bytes, 'old.safetensors');
    expect(ck.model).toEqual({ ...model, layers: 1, dropout: 0 });
    expect(ck.state.optStep).toBe(4);
    expect(ck.state.hidden).toEqual(tensors['state.hidden'].data);
    for (const s of layout.slots) expect(ck.state.params.subarray(s.offset, s.offset + s.size)).toEqual(tensors[s.name].data);
    const bhh = layout.byName['rnn.bias_hh_l0'];
    expect(ck.state.optM.subarray(bhh.offset, bhh.offset + H).every((v) => v === 0)).toBe(true);
    const cpu = new CpuBackend(ck.model, ck.train, 1);
    cpu.importState(ck.state); // the shapes fit the new engine
    // Before charsets there was only the cleaning that is now the default.
    expect(ck.progress.charset).toBe('clean');
  });

  it('keeps the charset the text was prepared with, and refuses one it does not know', async () => {
    const model: ModelConfig = { cell: 'rnn', vocabSize: tokenizer.vocab.length, hiddenSize: 3, layers: 1, dropout: 0 };
    const state = await new CpuBackend(model, train, 1).exportState();
    const base = checkpoint(model, state, new BatchStream(ids, train.batchSize, train.seqLength));
    for (const charset of CHARSETS) {
      const back = decodeCheckpoint(encodeCheckpoint({ ...base, progress: { ...base.progress, charset } }), 'ck');
      expect(back.progress.charset).toBe(charset);
    }
    const bad = encodeCheckpoint({ ...base, progress: { ...base.progress, charset: 'ascii' as never } });
    expect(() => decodeCheckpoint(bad, 'bad.safetensors')).toThrow(
      'bad.safetensors: damaged checkpoint (charset "ascii" is not one of clean, raw, letters)',
    );
  });
});

describe.skipIf(noGpu)('a GPU-trained lstm and gru continue on the CPU from their checkpoint', () => {
  // Tolerance 1e-4 relative, as in test/parity.test.ts (f32 on both sides, different summation orders).
  for (const model of [
    { cell: 'lstm', vocabSize: tokenizer.vocab.length, hiddenSize: 9, layers: 2, dropout: 0.2 },
    { cell: 'gru', vocabSize: tokenizer.vocab.length, hiddenSize: 11, layers: 1, dropout: 0 },
  ] satisfies ModelConfig[]) {
    it(`${model.cell} x ${model.layers}: the next gradients and step agree on both backends`, async () => {
      const g = await GpuBackend.create(gpu!, model, train, 5);
      try {
        const stream = new BatchStream(ids, train.batchSize, train.seqLength);
        for (let i = 0; i < 3; i++) await (await g.trainStep(stream.next())).loss;
        const bytes = encodeCheckpoint(checkpoint(model, await g.exportState(), stream));
        const ck = decodeCheckpoint(bytes, 'gpu.safetensors');
        const cpu = new CpuBackend(ck.model, ck.train, 5);
        cpu.importState(ck.state);
        const next = stream.next();
        const [gr, cr] = [await g.gradients(next), await cpu.gradients(next)];
        expect(Math.abs(gr.loss - cr.loss) / cr.loss).toBeLessThan(1e-4);
        expectPerPart(gr.grads, cr.grads, paramLayout(model).slots, 1e-4, 'gradient');
        expectPerPart(gr.hLast, cr.hLast, layerParts(model.layers, train.batchSize * model.hiddenSize), 1e-4, 'hLast');
        const gl = await (await g.trainStep(next)).loss;
        const cl = await (await cpu.trainStep(next)).loss;
        expect(Math.abs(gl - cl) / cl).toBeLessThan(1e-4);
      } finally {
        g.destroy();
      }
    });
  }
});
