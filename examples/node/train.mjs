// Train a character-level GRU on a text file, sample from it, save it, and load it back.
// Ctrl-C stops training after the iteration in flight; the script then samples and saves as usual.
// #region readme-node
import { readFile, writeFile } from 'node:fs/promises';
import { createModel, createTokenizer, loadModel } from 'webgpu-rnn';

// node train.mjs <file.txt> [gpu|cpu|auto] [iterations] [out.safetensors]
const [file, backend = 'auto', iterations = '200', out = 'model.safetensors'] = process.argv.slice(2);
if (!file || !(backend === 'gpu' || backend === 'cpu' || backend === 'auto')) {
  throw new Error('usage: node train.mjs <file.txt> [gpu|cpu|auto] [iterations] [out.safetensors]');
}

const text = await readFile(file, 'utf8');
const tokenizer = createTokenizer(text); // characters; { level: 'word' } for words
const model = await createModel({ tokenizer, backend, cell: 'gru', hiddenSize: 64, seqLength: 32, batchSize: 16, lr: 0.01 });
console.log(`${model.device}: ${model.deviceName}, ${model.numParameters} parameters`);

const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
const result = await model.fit(text, {
  iterations: Number(iterations),
  signal: stop.signal,
  onProgress: ({ iteration, loss }) => {
    if (iteration % 50 === 0) console.log(`iteration ${iteration}: loss ${loss.toFixed(3)} nats/char`);
  },
});
console.log(`trained to iteration ${result.iteration}, validation loss ${result.valLoss?.toFixed(3)} nats/char`);
console.log(await model.sample({ prime: 'The ', length: 200, temperature: 0.7, seed: 1 }));

await writeFile(out, await model.save()); // the CLI's checkpoint format
model.dispose();

const loaded = await loadModel(await readFile(out), { backend: 'cpu' });
console.log(`loaded ${out}: ${loaded.config.cell}, iteration ${loaded.iteration}`);
console.log(await loaded.sample({ prime: 'The ', length: 60, argmax: true }));
loaded.dispose();
// #endregion readme-node
