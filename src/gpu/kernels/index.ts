/** Every kernel module, by the name a plan's dispatch gives (src/gpu/plan.ts) and its shader's file name. */
import { CELL_BACKWARD } from './cell_backward.ts';
import { CELL_FORWARD } from './cell_forward.ts';
import { COLUMN_SUM } from './column_sum.ts';
import type { KernelDef, KernelName } from './common.ts';
import { DROPOUT } from './dropout.ts';
import { EMBEDDING_GRAD } from './embedding_grad.ts';
import { INPUT_GATHER } from './input_gather.ts';
import { LOSS_SUM } from './loss_sum.ts';
import { MATMUL } from './matmul.ts';
import { OPTIMIZER } from './optimizer.ts';
import { SAMPLE, SAMPLE_DECODE, SAMPLE_DRAW } from './sample.ts';
import { SOFTMAX_XENT } from './softmax_xent.ts';

export const KERNELS: Readonly<Record<KernelName, KernelDef>> = {
  matmul: MATMUL,
  softmax_xent: SOFTMAX_XENT,
  loss_sum: LOSS_SUM,
  column_sum: COLUMN_SUM,
  embedding_grad: EMBEDDING_GRAD,
  optimizer: OPTIMIZER,
  sample: SAMPLE,
  sample_decode: SAMPLE_DECODE,
  sample_draw: SAMPLE_DRAW,
  cell_forward: CELL_FORWARD,
  cell_backward: CELL_BACKWARD,
  input_gather: INPUT_GATHER,
  dropout: DROPOUT,
};
