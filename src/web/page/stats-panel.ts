/** The numbers over the chart (iteration, losses, speed, time, size) and the loss chart itself. */
import type { Reply, Status } from '../protocol.ts';
import { LossChart } from './chart.ts';
import { $, fmtInt, fmtLoss, fmtParams, fmtRate, fmtTime } from './dom.ts';

const ui = {
  iteration: $('stat-iteration'), epoch: $('stat-epoch'), train: $('stat-train'), trainBits: $('stat-train-bits'),
  val: $('stat-val'), valBits: $('stat-val-bits'), tps: $('stat-tps'), backend: $('stat-backend'),
  time: $('stat-time'), params: $('stat-params'),
};

let chart: LossChart | undefined;

export function initStatsPanel(): void {
  chart = new LossChart($('chart'));
}

/** The chart's numbers, for the tests. */
export function chartHistory(): ReturnType<LossChart['history']> {
  return chart!.history();
}

/** A new model: an empty chart and no losses. */
export function resetStats(): void {
  chart!.clear();
  ui.train.textContent = '–';
  ui.trainBits.textContent = 'nats/token';
  ui.val.textContent = '–';
  ui.valBits.textContent = 'nats/token';
  ui.tps.textContent = '–';
}

export function renderStatusStats(s: Status): void {
  if (s.backend) ui.backend.textContent = s.backend.kind === 'gpu' ? 'on the GPU' : 'on the CPU';
  ui.iteration.textContent = fmtInt(s.iteration);
  ui.epoch.textContent = `epoch ${s.epoch.toFixed(2)}`;
  ui.time.textContent = fmtTime(s.elapsed);
  ui.params.textContent = s.model ? `${fmtParams(s.model.parameters)} parameters` : '–';
}

export function renderProgress(p: Extract<Reply, { type: 'progress' }>): void {
  const smoothed = chart!.addTrain(p.iterations, p.losses);
  ui.iteration.textContent = fmtInt(p.iteration);
  ui.epoch.textContent = `epoch ${p.epoch.toFixed(2)}`;
  ui.train.textContent = fmtLoss(smoothed);
  ui.trainBits.textContent = `${(smoothed / Math.LN2).toFixed(3)} bits · smoothed`;
  ui.tps.textContent = fmtRate(p.tokensPerSecond);
  ui.time.textContent = fmtTime(p.elapsed);
}

export function renderVal(iteration: number, loss: number): void {
  chart!.addVal(iteration, loss);
  ui.val.textContent = fmtLoss(loss);
  ui.valBits.textContent = `${(loss / Math.LN2).toFixed(3)} bits · at iteration ${fmtInt(iteration)}`;
}
