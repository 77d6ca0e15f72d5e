/** The optimizers' names and constants, shared by the CPU reference and the GPU kernel. */
export type OptimizerName = 'adam' | 'adagrad';

/** min-char-rnn's Adagrad: mem += g*g; p -= lr * g / sqrt(mem + eps). */
export const ADAGRAD_EPS = 1e-8;

/** PyTorch's Adam defaults. */
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;
