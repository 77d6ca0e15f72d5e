// A minimal page over the package: train on the text in the box, show the progress, sample.
import { createModel, createTokenizer, type RNNModel } from 'webgpu-rnn';

const el = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const textBox = el<HTMLTextAreaElement>('text');
const status = el<HTMLParagraphElement>('status');
const sampleOut = el<HTMLPreElement>('sample');
const trainButton = el<HTMLButtonElement>('train');
const stopButton = el<HTMLButtonElement>('stop');

textBox.value = 'The quick brown fox jumps over the lazy dog. A lazy dog sleeps in the sun. '.repeat(100);
const iterations = Number(new URLSearchParams(location.search).get('iterations') ?? 150);
let stop: AbortController | undefined;
stopButton.onclick = () => stop?.abort();

trainButton.onclick = async () => {
  trainButton.disabled = true;
  stopButton.disabled = false;
  document.body.dataset.state = 'training';
  let model: RNNModel | undefined;
  try {
    // #region readme-browser
    const text = textBox.value;
    const tokenizer = createTokenizer(text);
    model = await createModel({ tokenizer, cell: 'lstm', hiddenSize: 64, seqLength: 32, batchSize: 8, lr: 0.01 });
    stop = new AbortController();
    const result = await model.fit(text, {
      iterations,
      signal: stop.signal,
      onProgress: ({ iteration, loss, tokensPerSecond }) => {
        status.textContent = `${model!.device.toUpperCase()} (${model!.deviceName}): iteration ${iteration}, ` +
          `loss ${loss.toFixed(3)}, ${Math.round(tokensPerSecond)} chars/s`;
      },
    });
    sampleOut.textContent = await model.sample({ prime: 'The ', length: 300, temperature: 0.6, seed: 7 });
    // #endregion readme-browser
    status.textContent += ` - done, validation loss ${result.valLoss?.toFixed(3)}`;
    document.body.dataset.device = model.device;
    document.body.dataset.loss = String(result.loss);
    document.body.dataset.state = 'done';
  } catch (e) {
    status.textContent = `error: ${(e as Error).message}`;
    document.body.dataset.state = 'error';
  } finally {
    model?.dispose();
    trainButton.disabled = false;
    stopButton.disabled = true;
  }
};
