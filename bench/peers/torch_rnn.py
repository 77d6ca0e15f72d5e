#!/usr/bin/env python3
"""PyTorch on the CPU as a peer of the training bench (bench/peers.ts starts it; stdlib + torch).

The same job as ours: nn.RNN / nn.LSTM / nn.GRU (time-major, both biases) + nn.Linear decoder,
mean softmax cross-entropy, every gradient clipped to [-5, 5] by value, Adam at 2e-3, the hidden
state carried between iterations (detached: truncated BPTT), fixed random tokens. The input is a
one-hot over V, exactly our model (weight_ih [G*H, V]), up to V = 1024; above that (word level) it
is nn.Embedding(V, H) into nn.RNN(H, H), as a PyTorch user would write it: one gather instead of a
[T*B, V] x [V, G*H] product, at the cost of one extra H x H input product per position.

Protocol, JSON lines: after one warm-up iteration it prints {"ready": true, ...}; then each line
"N" on stdin runs N iterations and prints {"ms": <ms per iteration>, "loss": ...}; EOF ends it.
    python3 bench/peers/torch_rnn.py --cell rnn --V 87 --H 512 --T 64 --B 32 [--threads N]
Threads default to every core (bench/peers.ts sets OPENBLAS_NUM_THREADS to match). On a busy
machine that hurts it most: with the load average at 12 on 2 cores, min-char-rnn's shape took
50-170 ms per iteration on 2 threads and 3.5 ms on 1 (BENCH_TORCH_THREADS=1 in the bench).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def blas_library():
    """Which BLAS the process mapped (Debian switches libblas.so.3 between reference and OpenBLAS)."""
    try:
        with open('/proc/self/maps') as f:
            paths = {line.split()[-1] for line in f if 'blas' in line.lower() and line.split()[-1].startswith('/')}
    except OSError:
        return 'unknown'
    real = {os.path.realpath(p) for p in paths}
    return ', '.join(sorted(os.path.join(os.path.basename(os.path.dirname(r)), os.path.basename(r)) for r in real)) or 'unknown'


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--cell', choices=['rnn', 'lstm', 'gru'], default='rnn')
    for name in ('V', 'H', 'T', 'B'):
        p.add_argument(f'--{name}', type=int, required=True)
    p.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    V, H, T, B = a.V, a.H, a.T, a.B
    onehot = V <= 1024
    cls = {'rnn': nn.RNN, 'lstm': nn.LSTM, 'gru': nn.GRU}[a.cell]
    emb = None if onehot else nn.Embedding(V, H)
    rnn = cls(V if onehot else H, H)
    dec = nn.Linear(H, V)
    params = [*rnn.parameters(), *dec.parameters(), *(emb.parameters() if emb else [])]
    opt = torch.optim.Adam(params, lr=2e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, V, (T, B), generator=g)
    y = torch.randint(0, V, (T, B), generator=g)
    state = None

    def step():
        nonlocal state
        inp = F.one_hot(x, V).float() if onehot else emb(x)
        out, new = rnn(inp, state)
        loss = F.cross_entropy(dec(out).view(-1, V), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_value_(params, 5.0)
        opt.step()
        state = tuple(s.detach() for s in new) if isinstance(new, tuple) else new.detach()
        return loss.item()

    step()
    print(json.dumps({
        'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
        'blas': blas_library(), 'input': 'one-hot' if onehot else f'nn.Embedding({V}, {H})',
    }), flush=True)
    for line in sys.stdin:
        n = max(1, int(line.strip() or 1))
        t0 = time.perf_counter()
        for _ in range(n):
            loss = step()
        ms = (time.perf_counter() - t0) * 1000 / n
        print(json.dumps({'ms': ms, 'loss': loss}), flush=True)


if __name__ == '__main__':
    main()
