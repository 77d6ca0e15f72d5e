#!/usr/bin/env python3
"""PyTorch -> webgpu-rnn: train a character model in PyTorch, or convert one, and write our checkpoint.

Our model is a one-hot input (so rnn.weight_ih_l0 is [G*H, V], there is no embedding table), an
nn.RNN (tanh) / nn.LSTM / nn.GRU called `rnn`, dropout between layers and before the decoder
(training only), and an nn.Linear called `decoder`; the loss is the mean cross-entropy in nats.
The file is safetensors with our metadata (format, model, train, tokenizer, progress), so
`npm run rnn -- sample --checkpoint FILE` and the web page's "load" read it, and `--resume`
continues training it (from train: with PyTorch's Adam moments, which are ours).

  # train on a text file (a GPU if torch sees one), write f16 to halve the file:
  python3 examples/pytorch_to_checkpoint.py train --text input.txt --cell lstm --hidden 512 \\
      --layers 2 --steps 20000 --out model.safetensors --dtype f16
  # convert a state_dict (torch.save(model.state_dict(), ...)) with the vocabulary of its text:
  python3 examples/pytorch_to_checkpoint.py convert --state-dict model.pt --text input.txt \\
      --out model.safetensors [--embedding embed.weight]

Convert takes tensors named like ours (rnn.weight_ih_l0 ... decoder.bias; `--prefix old=new` renames,
missing biases are zeros). A model with an nn.Embedding in front is folded into the one-hot form
with --embedding NAME: W_ih @ E^T is what the embedding and the first layer compute together. The
vocabulary is the text's characters sorted by code point, as our CLI builds it (UTF-8, CRLF -> LF,
--lowercase to lowercase), or --vocab FILE (a JSON list of characters in id order).
torch.load unpickles: convert only files you trust. Character level only (our word tokenizer's
Unicode rules are not reproduced here).

--check-text STRING prints, as one JSON line, PyTorch's loss and final state on that string from a
zero state, with the parameters as our loader holds them (rounded to the file's dtype, then to
float32), computed in float64: what our CPU reference must reproduce.

Standard library and torch only.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

FORMAT = 'webgpu-rnn/1'
CELLS = {'rnn': nn.RNN, 'lstm': nn.LSTM, 'gru': nn.GRU}
GATES = {'rnn': 1, 'lstm': 4, 'gru': 3}
DTYPES = {'f32': (torch.float32, 'F32'), 'f16': (torch.float16, 'F16'),
          'bf16': (torch.bfloat16, 'BF16'), 'f64': (torch.float64, 'F64')}
# The largest value each --dtype can store for us: our loader computes in float32, so even F64
# files must hold float32-sized values (it refuses larger ones).
LARGEST = {'f16': 65504.0, 'bf16': torch.finfo(torch.bfloat16).max,
           'f32': torch.finfo(torch.float32).max, 'f64': torch.finfo(torch.float32).max}
# Our CLI's defaults (src/cli/options.ts), for what a converted model did not record.
TRAIN_DEFAULTS = dict(seqLength=64, batchSize=32, optimizer='adam', learningRate=0.003, clip=5, stateReset=16)
VAL_FRACTION = 0.05


class Fail(Exception):
    """One line for the user, exit status 1."""


class CharModel(nn.Module):
    def __init__(self, cell, vocab, hidden, layers, dropout=0.0):
        super().__init__()
        self.vocab = vocab
        self.rnn = CELLS[cell](vocab, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)  # before the decoder, as ours; no parameters, not in the state_dict
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, ids, state=None):
        """ids [T, B] -> logits [T, B, V], final state."""
        x = F.one_hot(ids, self.vocab).to(self.decoder.weight.dtype)
        out, state = self.rnn(x, state)
        return self.decoder(self.drop(out)), state


# -------------------------------------------------------------------------------------------------
# Text and vocabulary, as src/node/corpora.ts and src/data/tokenizer.ts build them.

def read_text(path, lowercase):
    try:
        raw = open(path, 'rb').read()
    except OSError as e:
        raise Fail(f'{path}: cannot read it ({e.strerror})')
    try:
        text = raw.decode('utf-8-sig')  # strict; a leading BOM is dropped, as our loader does
    except UnicodeDecodeError as e:
        raise Fail(f'{path}: not valid UTF-8 at byte {e.start}')
    text = text.replace('\r\n', '\n').replace('\r', '\n')
    if not text.strip():
        raise Fail(f'{path}: is empty')
    return text.lower() if lowercase else text


def char_vocab(text):
    return sorted(set(text))  # code-point order, like CharTokenizer.fromText


def load_vocab(args):
    if args.vocab:
        try:
            vocab = json.load(open(args.vocab, encoding='utf-8'))
        except (OSError, ValueError) as e:
            raise Fail(f'{args.vocab}: cannot read it as JSON ({getattr(e, "strerror", None) or e})')
        if not (isinstance(vocab, list) and vocab and all(isinstance(c, str) and len(c) == 1 for c in vocab)
                and len(set(vocab)) == len(vocab)):
            raise Fail(f'{args.vocab}: expected a JSON list of distinct single characters')
        return vocab, None
    if args.text:
        text = read_text(args.text, args.lowercase)
        return char_vocab(text), text
    raise Fail('give --text (the training text, for its vocabulary) or --vocab (a JSON list of characters)')


# -------------------------------------------------------------------------------------------------
# Writing our checkpoint.

def tensor_bytes(name, t, dtype):
    torch_dtype, _ = DTYPES[dtype]
    t = t.detach().cpu()
    big = t.abs().max().item() if t.numel() else 0.0
    if big > LARGEST[dtype]:
        if dtype == 'f16':
            raise Fail(f'tensor {name} holds {big:.6g}, beyond f16\'s range (largest 65504); use --dtype bf16 or f32')
        what = 'bf16' if dtype == 'bf16' else 'float32 (our model computes in it)'
        raise Fail(f'tensor {name} holds {big:.6g}, beyond the range of {what}: largest {LARGEST[dtype]:.6g}')
    t = t.to(torch_dtype).contiguous()
    if dtype == 'bf16':
        t = t.view(torch.int16)  # numpy has no bfloat16; the bits are what is written
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata, dtype):
    """The layout our encoder (and the reference writer) produce: metadata first, names sorted,
    header padded with spaces to a multiple of 8, tensors contiguous in name order."""
    if sys.byteorder != 'little':
        raise Fail('this script writes safetensors from a little-endian host only')
    _, tag = DTYPES[dtype]
    header = {'__metadata__': metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        data = tensor_bytes(name, tensors[name], dtype)
        header[name] = {'dtype': tag, 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    js = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    js += b' ' * (-len(js) % 8)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)  # atomic, like our CLI's saves


def checkpoint_tensors(state_dict, cell, layers, batch, hidden, opt_m=None, opt_v=None):
    """Parameters, optimizer moments (zeros for a fresh optimizer) and the carried state (zeros)."""
    tensors = {}
    for name, t in state_dict.items():
        tensors[name] = t
        tensors[f'optimizer.m.{name}'] = opt_m[name] if opt_m else torch.zeros_like(t)
        tensors[f'optimizer.v.{name}'] = opt_v[name] if opt_v else torch.zeros_like(t)
    tensors['state.hidden'] = torch.zeros(layers, batch, hidden)
    if cell == 'lstm':
        tensors['state.cell'] = torch.zeros(layers, batch, hidden)
    return tensors


def metadata(model, train, vocab, progress):
    dumps = lambda o: json.dumps(o, separators=(',', ':'), ensure_ascii=False)
    return {'format': FORMAT, 'model': dumps(model), 'train': dumps(train),
            'tokenizer': dumps({'level': 'char', 'vocab': vocab}), 'progress': dumps(progress)}


def our_names(layers):
    names = []
    for l in range(layers):
        names += [f'rnn.weight_ih_l{l}', f'rnn.weight_hh_l{l}', f'rnn.bias_ih_l{l}', f'rnn.bias_hh_l{l}']
    return names + ['decoder.weight', 'decoder.bias']


# -------------------------------------------------------------------------------------------------
# The check the test compares with our CPU reference.

def check(model_cfg, params, vocab, text):
    """PyTorch's loss on `text` (nats/char, the mean over its len-1 predictions) from a zero state, in
    float64 with the parameters as stored; the state and the logits after the last prediction's input."""
    ids = []
    for ch in text:
        if ch not in vocab:
            raise Fail(f'--check-text: character {ch!r} is not in the vocabulary')
        ids.append(vocab.index(ch))
    if len(ids) < 2:
        raise Fail('--check-text needs at least two characters')
    m = CharModel(model_cfg['cell'], len(vocab), model_cfg['hiddenSize'], model_cfg['layers']).double().eval()
    m.load_state_dict({k: v.double() for k, v in params.items()})
    x = torch.tensor(ids, dtype=torch.long).view(-1, 1)
    with torch.no_grad():
        logits, state = m(x[:-1])  # every character but the last predicts the next one
    loss = F.cross_entropy(logits[:, 0], x[1:, 0]).item()
    h, c = state if model_cfg['cell'] == 'lstm' else (state, None)
    out = {'loss': loss, 'steps': len(ids) - 1, 'h_n': h.flatten().tolist(), 'last_logits': logits[-1, 0].tolist()}
    if c is not None:
        out['c_n'] = c.flatten().tolist()
    return out


def stored(params, dtype):
    """The parameters as our loader holds them: rounded to the file's dtype, then to float32."""
    torch_dtype, _ = DTYPES[dtype]
    return {k: v.detach().cpu().to(torch_dtype).to(torch.float32) for k, v in params.items()}


def finish(args, model_cfg, train_cfg, vocab, progress, params, opt_m=None, opt_v=None):
    tensors = checkpoint_tensors(params, model_cfg['cell'], model_cfg['layers'], train_cfg['batchSize'],
                                 model_cfg['hiddenSize'], opt_m, opt_v)
    write_safetensors(args.out, tensors, metadata(model_cfg, train_cfg, vocab, progress), args.dtype)
    size = os.path.getsize(args.out)
    print(f'wrote {args.out} ({size / 1e6:.2f} MB, {DTYPES[args.dtype][1]}): {model_cfg["cell"]} '
          f'{model_cfg["layers"]} x {model_cfg["hiddenSize"]}, vocabulary {len(vocab)}', file=sys.stderr)
    print(f'sample from it with: npm run rnn -- sample --checkpoint {args.out}', file=sys.stderr)
    if args.check_text is not None:
        print(json.dumps(check(model_cfg, stored(params, args.dtype), vocab, args.check_text)))


# -------------------------------------------------------------------------------------------------
# train

class BatchStream:
    """B contiguous streams read T at a time, exactly as src/data/split.ts, so --resume continues."""

    def __init__(self, ids, B, T):
        self.ids, self.B, self.T = ids, B, T
        self.M = len(ids) // B
        if self.M < T + 1:
            raise Fail(f'corpus too short: {len(ids)} tokens give {B} streams of {self.M}, need at least T+1 = {T + 1}')
        self.position, self.epoch = 0, 0

    def next(self):
        wrapped = False
        if self.position + self.T + 1 > self.M:
            self.position, self.epoch, wrapped = 0, self.epoch + 1, True
        starts = torch.arange(self.B) * self.M + self.position
        idx = starts.view(1, -1) + torch.arange(self.T + 1).view(-1, 1)  # [T+1, B]
        block = self.ids[idx]
        self.position += self.T
        return block[:-1], block[1:], wrapped


def streams_to_reset(iteration, B, every):
    """src/engine/trainer.ts: each stream's state zeroed every `every` iterations, staggered."""
    if every <= 0 or iteration == 0:
        return []
    return [b for b in range(B) if (iteration + (b * every) // B) % every == 0]


def run_train(args):
    torch.manual_seed(args.seed)
    text = read_text(args.text, args.lowercase)
    vocab = char_vocab(text)
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    n_val = math.floor(len(ids) * VAL_FRACTION)
    train_ids, val_ids = ids[:len(ids) - n_val], ids[len(ids) - n_val:]
    device = torch.device(args.device)
    B, T = args.batch_size, args.seq_length
    model = CharModel(args.cell, len(vocab), args.hidden, args.layers, args.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    stream = BatchStream(train_ids, B, T)
    state = None
    start = time.time()
    loss = float('nan')
    for it in range(args.steps):
        x, y, wrapped = stream.next()
        x, y = x.to(device), y.to(device)
        if wrapped:
            state = None
        elif state is not None:
            due = streams_to_reset(it, B, args.state_reset)
            if due:
                keep = torch.ones(1, B, 1, device=device)
                keep[0, due] = 0
                state = tuple(s * keep for s in state) if isinstance(state, tuple) else state * keep
        model.train()
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss_t = F.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad()
        loss_t.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), args.clip)  # our per-element clip
        opt.step()
        loss = loss_t.item()
        if not math.isfinite(loss):
            raise Fail(f'the training loss became {loss} at iteration {it + 1}')
        if args.log_every and ((it + 1) % args.log_every == 0 or it + 1 == args.steps):
            print(f'iter {it + 1}/{args.steps} | train {loss:.3f} nats ({loss / math.log(2):.3f} bits/char)', file=sys.stderr)
    val_loss = evaluate(model, val_ids, B, T, len(vocab), device)
    elapsed = time.time() - start
    if val_loss is not None:
        print(f'validation loss {val_loss:.4f} nats ({val_loss / math.log(2):.4f} bits/char)', file=sys.stderr)

    params = {k: v.detach().cpu().float() for k, v in model.state_dict().items()}
    # PyTorch's Adam is ours (same betas, eps, bias correction), so its moments carry over.
    names = dict(model.named_parameters())
    opt_m, opt_v, step = {}, {}, 0
    for name, p in names.items():
        st = opt.state.get(p, {})
        opt_m[name] = st['exp_avg'].detach().cpu().float() if st else torch.zeros_like(params[name])
        opt_v[name] = st['exp_avg_sq'].detach().cpu().float() if st else torch.zeros_like(params[name])
        if st:
            step = int(st['step'].item() if torch.is_tensor(st['step']) else st['step'])
    model_cfg = {'cell': args.cell, 'vocabSize': len(vocab), 'hiddenSize': args.hidden, 'layers': args.layers, 'dropout': args.dropout}
    train_cfg = {'seqLength': T, 'batchSize': B, 'optimizer': 'adam', 'learningRate': args.lr, 'clip': args.clip, 'stateReset': args.state_reset}
    progress = {'iteration': args.steps, 'stream': {'position': stream.position, 'epoch': stream.epoch}, 'seed': args.seed,
                'corpus': os.path.abspath(args.text), 'lowercase': args.lowercase, 'trainLoss': loss,
                **({'valLoss': val_loss} if val_loss is not None else {}), 'elapsed': elapsed,
                'iterations': args.steps, 'tokens': len(ids), 'optimizerStep': step}
    if args.state_dict_out:
        torch.save(params, args.state_dict_out)
    finish(args, model_cfg, train_cfg, vocab, progress, params, opt_m, opt_v)


def evaluate(model, val_ids, B, T, V, device):
    """Mean loss over the held-out split from a zero state, as our validation does (None if too short)."""
    B = min(B, len(val_ids) // (T + 1))
    if B < 1:
        return None
    M = len(val_ids) // B
    steps = (M - 1) // T
    model.eval()
    total, state = 0.0, None
    with torch.no_grad():
        for s in range(steps):
            idx = (torch.arange(B) * M + s * T).view(1, -1) + torch.arange(T + 1).view(-1, 1)
            block = val_ids[idx].to(device)
            logits, state = model(block[:-1], state)
            total += F.cross_entropy(logits.reshape(-1, V), block[1:].reshape(-1)).item()
    return total / steps


# -------------------------------------------------------------------------------------------------
# convert

def run_convert(args):
    vocab, _ = load_vocab(args)
    try:
        sd = torch.load(args.state_dict, map_location='cpu')
    except Exception as e:  # noqa: BLE001 - whatever torch.load says, in one line
        raise Fail(f'{args.state_dict}: cannot load it with torch.load ({str(e).splitlines()[0] if str(e) else type(e).__name__})')
    if isinstance(sd, nn.Module):
        sd = sd.state_dict()
    if isinstance(sd, dict) and 'state_dict' in sd and isinstance(sd['state_dict'], dict):
        sd = sd['state_dict']
    if not isinstance(sd, dict):
        raise Fail(f'{args.state_dict}: expected a state_dict (a dict of tensors), got {type(sd).__name__}')
    sd = {k: v for k, v in sd.items() if torch.is_tensor(v)}
    for rename in args.prefix:
        old, sep, new = rename.partition('=')
        if not sep:
            raise Fail(f'--prefix {rename}: expected OLD=NEW, e.g. lstm.=rnn.')
        sd = {(new + k[len(old):] if k.startswith(old) else k): v for k, v in sd.items()}
    sd = {k: v.detach().to(torch.float64) for k, v in sd.items()}

    if 'rnn.weight_hh_l0' not in sd:
        raise Fail(f'{args.state_dict}: no rnn.weight_hh_l0 (its tensors: {", ".join(sorted(sd)[:8])}); rename with --prefix OLD=rnn.')
    H = sd['rnn.weight_hh_l0'].shape[1]
    G = sd['rnn.weight_hh_l0'].shape[0] // H
    cell = args.cell or {1: 'rnn', 3: 'gru', 4: 'lstm'}.get(G)
    if cell is None or GATES[cell] != G:
        raise Fail(f'rnn.weight_hh_l0 is {list(sd["rnn.weight_hh_l0"].shape)}: {G} gates x {H} fits no cell (rnn 1, gru 3, lstm 4)')
    layers = 0
    while f'rnn.weight_ih_l{layers}' in sd:
        layers += 1
    if args.embedding:
        if args.embedding not in sd:
            raise Fail(f'--embedding {args.embedding}: no such tensor in {args.state_dict}')
        E = sd.pop(args.embedding)  # [V, D]; x = E[token], so W_ih x = (W_ih E^T)[:, token]
        sd['rnn.weight_ih_l0'] = sd['rnn.weight_ih_l0'] @ E.t()
    V = len(vocab)
    params = {}
    for name in our_names(layers):
        l = int(name.rsplit('_l', 1)[1]) if name.startswith('rnn.') else None
        want = {'weight_ih': [G * H, V if l == 0 else H], 'weight_hh': [G * H, H], 'bias_ih': [G * H], 'bias_hh': [G * H]}
        shape = [V, H] if name == 'decoder.weight' else [V] if name == 'decoder.bias' else want[name[4:].rsplit('_l', 1)[0]]
        t = sd.get(name)
        if t is None and 'bias' in name:
            t = torch.zeros(shape, dtype=torch.float64)  # bias=False
        if t is None:
            raise Fail(f'{args.state_dict}: tensor {name} is missing')
        if list(t.shape) != shape:
            raise Fail(f'{args.state_dict}: tensor {name} is {list(t.shape)}, a {cell} of {layers} x {H} with vocabulary {V} needs {shape}')
        if not torch.isfinite(t).all():
            raise Fail(f'{args.state_dict}: tensor {name} holds NaN or infinity')
        params[name] = t
    unused = sorted(set(sd) - set(params))
    if unused:
        print(f'note: not converted (not part of our model): {", ".join(unused)}', file=sys.stderr)
    model_cfg = {'cell': cell, 'vocabSize': V, 'hiddenSize': H, 'layers': layers, 'dropout': 0}
    progress = {'iteration': 0, 'stream': {'position': 0, 'epoch': 0}, 'seed': 1,
                'corpus': os.path.abspath(args.text) if args.text else 'pytorch', 'lowercase': args.lowercase, 'optimizerStep': 0}
    # Still float64: writing rounds once, to --dtype, after checking the values fit it.
    finish(args, model_cfg, dict(TRAIN_DEFAULTS), vocab, progress, params)


# -------------------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='command', required=True)

    def common(q):
        q.add_argument('--out', required=True, help='the checkpoint to write (.safetensors)')
        q.add_argument('--dtype', choices=list(DTYPES), default='f32', help='tensor dtype in the file (default f32; our loader converts the others to f32)')
        q.add_argument('--lowercase', action='store_true', help='lowercase the text, as our --lowercase does')
        q.add_argument('--check-text', help='print PyTorch\'s loss and final state on this string, as JSON')

    t = sub.add_parser('train', help='train a character model on a text file')
    common(t)
    t.add_argument('--text', required=True, help='a UTF-8 text file')
    t.add_argument('--cell', choices=list(CELLS), default='lstm')
    t.add_argument('--hidden', type=int, default=128)
    t.add_argument('--layers', type=int, default=1)
    t.add_argument('--dropout', type=float, default=0.0)
    t.add_argument('--steps', type=int, default=3000)
    t.add_argument('--seq-length', type=int, default=64)
    t.add_argument('--batch-size', type=int, default=32)
    t.add_argument('--lr', type=float, default=0.003)
    t.add_argument('--clip', type=float, default=5.0)
    t.add_argument('--state-reset', type=int, default=16)
    t.add_argument('--seed', type=int, default=1)
    t.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    t.add_argument('--log-every', type=int, default=100)
    t.add_argument('--state-dict-out', help='also torch.save the state_dict here')

    c = sub.add_parser('convert', help='convert a PyTorch state_dict')
    common(c)
    c.add_argument('--state-dict', required=True, help='a file from torch.save(model.state_dict(), ...)')
    c.add_argument('--text', help='the text it was trained on (its characters are the vocabulary)')
    c.add_argument('--vocab', help='or: a JSON list of the characters in id order')
    c.add_argument('--cell', choices=list(CELLS), help='rnn, lstm or gru (default: from the gate count)')
    c.add_argument('--embedding', help='an nn.Embedding weight [V, D] in front of rnn, folded into weight_ih_l0')
    c.add_argument('--prefix', action='append', default=[], help='rename tensors: OLD=NEW (e.g. lstm.=rnn. or fc.=decoder.)')

    args = p.parse_args(argv)
    try:
        (run_train if args.command == 'train' else run_convert)(args)
    except Fail as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
