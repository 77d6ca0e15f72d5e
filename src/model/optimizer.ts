/**
 * The optimizers' names, constants and hyperparameters, and the learning-rate schedule: shared by
 * the CPU reference (src/cpu/optim.ts), the GPU kernel (src/gpu/kernels/optimizer.ts), the
 * engine, the checkpoint, the CLI and the page.
 *
 * Where each optimizer keeps its state, in the two moment arrays m and v (parameters' layout):
 *   adam     m: first moment (any sign)            v: second moment (>= 0)
 *   adagrad  m: sum of squared gradients (>= 0)    v: unused (zeros)
 *   rmsprop  m: unused (zeros)                     v: running mean of squared gradients (>= 0)
 *   sgd      m: momentum buffer (any sign)         v: unused (zeros)
 * so that v is always non-negative, and m is for adagrad.
 */
export const OPTIMIZERS = ['adam', 'adagrad', 'rmsprop', 'sgd'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** min-char-rnn's Adagrad: mem += g*g; p -= lr * g / sqrt(mem + eps). */
export const ADAGRAD_EPS = 1e-8;

/** PyTorch's Adam defaults. */
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/**
 * RMSprop as torch.optim.RMSprop (no momentum, not centered): s = alpha*s + (1-alpha)*g*g;
 * p -= lr * g / (sqrt(s) + eps), eps outside the square root. The decay alpha defaults to
 * char-rnn's 0.95 (PyTorch's own default is 0.99); eps 1e-8 is both PyTorch's and char-rnn's.
 */
export const RMSPROP = { alpha: 0.95, eps: 1e-8 } as const;

/**
 * SGD as torch.optim.SGD (dampening 0): buf = mu*buf + g (buf starts at 0, so the first is g, as
 * PyTorch's clone); step = nesterov ? g + mu*buf : buf; p -= lr * step. mu = 0 is plain SGD.
 */
export const SGD = { momentum: 0.9 } as const;

/** The optimizer's part of a TrainConfig (see there). */
export interface OptimizerOptions {
  optimizer: OptimizerName;
  /** sgd: the momentum mu in [0, 1); absent means SGD.momentum. */
  momentum?: number;
  /** sgd: Nesterov momentum (needs mu > 0); absent means false. */
  nesterov?: boolean;
  /** rmsprop: the decay alpha of the running mean of squared gradients, in (0, 1); absent means RMSPROP.alpha. */
  rmsDecay?: number;
}

/** The hyperparameters with their defaults filled in. */
export function optimizerHyper(o: OptimizerOptions): { momentum: number; nesterov: boolean; alpha: number } {
  return { momentum: o.momentum ?? SGD.momentum, nesterov: o.nesterov ?? false, alpha: o.rmsDecay ?? RMSPROP.alpha };
}

/**
 * The learning-rate schedule, counted in updates (the CLI and the page convert epochs with the
 * corpus's batches per epoch when they build the run, so the backends need no corpus):
 * - none: the base rate throughout.
 * - step: char-rnn's decay. The rate is multiplied by `decay` after update `after`, and again after
 *   every further `every` updates (after, after + every, ...; with after = 0 the first is at
 *   `every`). char-rnn's learning_rate_decay 0.97 with learning_rate_decay_after 10 is
 *   { decay: 0.97, every: one epoch, after: 10 epochs }.
 * - cosine: from the base rate down to `min` along half a cosine over `iterations` updates, then `min`.
 */
export type LrSchedule =
  | { kind: 'none' }
  | { kind: 'step'; decay: number; every: number; after: number }
  | { kind: 'cosine'; min: number; iterations: number };

export const LR_SCHEDULES = ['none', 'step', 'cosine'] as const;

/** char-rnn's defaults for the step schedule, in epochs. */
export const STEP_DECAY = { decay: 0.97, everyEpochs: 1, afterEpochs: 10 } as const;

/**
 * The learning rate of update number `step` (1-based: the first update is 1), from the base rate
 * and the schedule: what both backends use, computed on the host in f64 (the GPU receives it as a
 * uniform). Pure, so a resumed run (which knows its step count) continues the schedule exactly.
 */
export function learningRateAt(base: number, schedule: LrSchedule | undefined, step: number): number {
  const done = Math.max(0, step - 1);
  if (!schedule || schedule.kind === 'none') return base;
  if (schedule.kind === 'step') {
    const { decay, every, after } = schedule;
    const first = after > 0 ? after : every;
    const decays = done >= first ? Math.floor((done - first) / every) + 1 : 0;
    return base * Math.pow(decay, decays);
  }
  const t = Math.min(done, schedule.iterations) / schedule.iterations;
  return schedule.min + (base - schedule.min) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/**
 * What is wrong with an optimizer's settings and schedule (a checkpoint's, the page's form, the
 * CLI's), in a few words; undefined when they are fine.
 */
export function optimizerProblem(t: OptimizerOptions & { learningRate: number; lrSchedule?: LrSchedule }): string | undefined {
  if (!OPTIMIZERS.includes(t.optimizer)) return `optimizer ${JSON.stringify(t.optimizer)?.slice(0, 40)} (known: ${OPTIMIZERS.join(', ')})`;
  if (t.momentum !== undefined && !(typeof t.momentum === 'number' && t.momentum >= 0 && t.momentum < 1)) return `momentum ${JSON.stringify(t.momentum)?.slice(0, 40)} is not in [0, 1)`;
  if (t.nesterov !== undefined && typeof t.nesterov !== 'boolean') return `nesterov ${JSON.stringify(t.nesterov)?.slice(0, 40)} is not true or false`;
  if (t.nesterov && !(optimizerHyper(t).momentum > 0)) return 'Nesterov momentum needs a momentum above 0';
  if (t.rmsDecay !== undefined && !(typeof t.rmsDecay === 'number' && t.rmsDecay > 0 && t.rmsDecay < 1)) return `RMSprop decay ${JSON.stringify(t.rmsDecay)?.slice(0, 40)} is not in (0, 1)`;
  const s = t.lrSchedule as Record<string, unknown> | undefined;
  if (s === undefined) return undefined;
  const bad = `learning-rate schedule ${JSON.stringify(s)?.slice(0, 80)}`;
  if (typeof s !== 'object' || s === null) return bad;
  const count = (n: unknown, min: number) => Number.isSafeInteger(n) && (n as number) >= min;
  if (s.kind === 'none') return undefined;
  if (s.kind === 'step') {
    if (!(typeof s.decay === 'number' && s.decay > 0 && s.decay <= 1)) return `${bad}: the decay must be in (0, 1]`;
    if (!count(s.every, 1) || !count(s.after, 0)) return `${bad}: every must be a whole number of updates >= 1, after >= 0`;
    return undefined;
  }
  if (s.kind === 'cosine') {
    if (!(typeof s.min === 'number' && s.min >= 0 && s.min <= t.learningRate)) return `${bad}: the floor must be from 0 to the learning rate ${t.learningRate}`;
    if (!count(s.iterations, 1)) return `${bad}: its length must be a whole number of updates >= 1`;
    return undefined;
  }
  return bad;
}

/** "RMSprop (alpha 0.95) lr 0.002, step decay x0.97 every 120 updates after 1200": what the CLI and the page print. */
export function describeOptimizer(t: OptimizerOptions & { learningRate: number; lrSchedule?: LrSchedule }): string {
  const h = optimizerHyper(t);
  const name = {
    adam: 'Adam',
    adagrad: 'Adagrad',
    rmsprop: `RMSprop (alpha ${h.alpha})`,
    sgd: h.momentum === 0 ? 'SGD' : `SGD (${h.nesterov ? 'Nesterov ' : ''}momentum ${h.momentum})`,
  }[t.optimizer];
  const s = t.lrSchedule;
  const schedule = !s || s.kind === 'none' ? ''
    : s.kind === 'step' ? `, step decay x${s.decay} every ${s.every} updates after ${s.after}`
      : `, cosine to ${s.min} over ${s.iterations} updates`;
  return `${name} lr ${t.learningRate}${schedule}`;
}
