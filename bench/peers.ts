/**
 * Peers of the training bench that are not TensorFlow.js (bench/tfjs-rnn.ts): PyTorch on the CPU,
 * in a child process (bench/peers/torch_rnn.py), and brain.js, in this process. Each is a session
 * that bench/training.ts times in rounds interleaved with the others.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import brain from 'brain.js';
import { Rng } from '../src/util/random.ts';
import type { Job } from './training.ts';
import { PIPELINE_DEPTH } from './timing.ts';

/** One peer on one job, warmed up; `round()` times training iterations of T*B tokens. */
export interface PeerSession {
  /** Milliseconds per iteration of T*B tokens. */
  round(): Promise<number>;
  dispose(): void;
  /** What ran: "torch 1.13.0a0, 2 threads, openblas-pthread/libblas.so.3, one-hot input". */
  about: string;
}

// ------------------------------------------------------------------ PyTorch

/** The interpreter: BENCH_PYTHON, else Debian's /usr/bin/python3 (where `python3-torch` installs). */
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
/** PyTorch's threads (and OpenBLAS's): BENCH_TORCH_THREADS, else every core. */
const TORCH_THREADS = Number(process.env.BENCH_TORCH_THREADS) || cpus().length;
let torchCheck: string | undefined;

/**
 * The child's environment: OpenBLAS picks its kernels by itself. This machine's image exports
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for other tools; they stay out of PyTorch's process only.
 */
function torchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: `${TORCH_THREADS}` };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** Why PyTorch cannot run here (one line), or '' when it can. Checked once per process. */
export function torchUnavailable(): string {
  if (torchCheck === undefined) {
    const r = spawnSync(PYTHON, ['-c', 'import torch'], { env: torchEnv(), encoding: 'utf8', timeout: 60_000 });
    const last = (r.stderr ?? '').trim().split('\n').pop() ?? '';
    torchCheck = r.error ? `${PYTHON} not found` : r.status === 0 ? '' : `${PYTHON} cannot import torch (${last})`;
  }
  return torchCheck;
}

export async function startTorch(j: Job): Promise<PeerSession> {
  const script = fileURLToPath(new URL('./peers/torch_rnn.py', import.meta.url));
  const args = [script, '--cell', j.cell ?? 'rnn', '--V', `${j.V}`, '--H', `${j.H}`, '--T', `${j.T}`, '--B', `${j.B}`, '--threads', `${TORCH_THREADS}`];
  const child = spawn(PYTHON, args, { env: torchEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.on('error', () => {}); // a child that has died: its exit is reported by next()
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.next();
    if (done) {
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
      throw new Error(`the PyTorch peer exited (${child.exitCode ?? child.signalCode}) in the middle of its run`);
    }
    return JSON.parse(value);
  };
  const ready = await next();
  return {
    about: `torch ${ready.torch}, ${ready.threads} of ${cpus().length} cores, ${ready.blas}, ${ready.input} input`,
    // As many iterations a round as our pipelined GPU round: a round that follows another runner's
    // pays a stall now and then on these shared machines (10-30x one iteration for PyTorch's two
    // threads right after our CPU or GPU backend, measured alone it was 10-13 ms at H=128), which
    // one-iteration rounds took whole and three share.
    async round() {
      child.stdin.write(`${PIPELINE_DEPTH}\n`);
      return (await next()).ms as number;
    },
    dispose() {
      child.stdin.end();
    },
  };
}

// ------------------------------------------------------------------ brain.js

const BRAIN_VERSION: string = createRequire(import.meta.url)('brain.js/package.json').version;

/**
 * brain.js's recurrent nets (`brain.recurrent.RNN | LSTM | GRU`, plain JavaScript matrices; its
 * gpu.js only serves the feed-forward nets) train one sequence at a time: `trainPattern(tokens)`
 * runs forward, backward and its update (RMSprop with gradients clipped to [-5, 5], as in
 * Karpathy's recurrentjs) on one sequence from a zero state. There is no batch dimension, so an
 * iteration of B sequences costs B times one sequence: a round times one sequence of T tokens and
 * counts B of them. Its vanilla RNN is a ReLU RNN; its input is an embedding of size V.
 */
export function startBrain(j: Job): PeerSession {
  const classes = { rnn: brain.recurrent.RNN, lstm: brain.recurrent.LSTM, gru: brain.recurrent.GRU };
  const net = new classes[j.cell ?? 'rnn']({ inputSize: j.V, inputRange: j.V, outputSize: j.V, hiddenLayers: [j.H] });
  net.initialize();
  net.trainOpts.learningRate = 2e-3;
  const rng = new Rng(1);
  const seq = Array.from({ length: j.T }, () => Math.floor(rng.next() * j.V));
  net.trainPattern(seq);
  return {
    about: `brain.js ${BRAIN_VERSION} (brain.recurrent.RNN/LSTM/GRU), one sequence at a time`,
    async round() {
      const t0 = performance.now();
      net.trainPattern(seq);
      return (performance.now() - t0) * j.B;
    },
    dispose() {},
  };
}
