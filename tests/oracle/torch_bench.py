#!/usr/bin/python3
"""PyTorch's training speed for a LLaMA shape: forward + backward + clip + AdamW steps, the same
model and step as torch_train.py (the peer of kiln's training rows in `npm run bench`).

    OPENBLAS_NUM_THREADS=N /usr/bin/python3 tests/oracle/torch_bench.py \
        (--gguf FILE.gguf | --config '{"vocabSize":32000,"dim":288,...}') \
        --batch B --seq T --threads N [--steps 3] [--warmup-steps 1] [--dtype float32] [--seed 0]

--config takes kiln's LlamaConfig JSON (vocabSize, dim, nLayers, nHeads, nKvHeads, hiddenDim,
ropeBase, normEps, tiedEmbeddings) and initialises N(0, 0.02) weights (norm weights 1), so no
GGUF has to be written. Tokens are seeded uniform ids. Prints one JSON object.

Threads: torch.set_num_threads(--threads). OpenBLAS takes its own count from OPENBLAS_NUM_THREADS
when it loads, whatever torch says; the caller should set it (to the count compared at), and unset
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for that command. If it is unset, this script sets it to
--threads before importing torch. Needs libopenblas0-pthread (with Debian's reference BLAS a
stories15M step takes ~40 s).
"""
import argparse
import json
import os
import resource
import sys
import time


def parse(argv):
    ap = argparse.ArgumentParser(description='torch training-step bench')
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--gguf')
    src.add_argument('--config', help="kiln LlamaConfig JSON")
    ap.add_argument('--batch', type=int, required=True)
    ap.add_argument('--seq', type=int, required=True)
    ap.add_argument('--threads', type=int, required=True)
    ap.add_argument('--steps', type=int, default=3, help='timed steps')
    ap.add_argument('--warmup-steps', type=int, default=1, help='untimed steps first')
    ap.add_argument('--dtype', default='float32', choices=['float32', 'float64'])
    ap.add_argument('--seed', type=int, default=0)
    return ap.parse_args(argv)


def config_from_kiln(k):
    H = k['nHeads']
    c = {
        'vocab_size': k['vocabSize'], 'dim': k['dim'], 'n_layers': k['nLayers'], 'n_heads': H,
        'n_kv_heads': k.get('nKvHeads', H), 'head_dim': k['dim'] // H, 'hidden_dim': k['hiddenDim'],
        'rope_base': float(k.get('ropeBase', 10000.0)), 'norm_eps': float(k.get('normEps', 1e-5)),
        'rope_layout': k.get('ropeLayout', 'interleaved'), 'tied': bool(k.get('tiedEmbeddings', False)),
    }
    if k.get('norm', 'rms') != 'rms' or k.get('activation', 'swiglu') != 'swiglu':
        raise ValueError('torch_bench models RMSNorm + SwiGLU only')
    return c


def main(argv):
    a = parse(argv[1:])
    os.environ.setdefault('OPENBLAS_NUM_THREADS', str(a.threads))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    import torch_train as tt

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    dtype = {'float32': torch.float32, 'float64': torch.float64}[a.dtype]
    if a.gguf:
        g = tt.read_gguf(a.gguf)
        c = tt.llama_config(g, {})
        P = tt.load_params(g, c, dtype)
    else:
        c = config_from_kiln(json.loads(a.config))
        D, F, V, hd = c['dim'], c['hidden_dim'], c['vocab_size'], c['head_dim']
        kv = c['n_kv_heads'] * hd
        shapes = {'token_embd.weight': [V, D]}
        for l in range(c['n_layers']):
            shapes.update({f'blk.{l}.attn_norm.weight': [D], f'blk.{l}.attn_q.weight': [D, D], f'blk.{l}.attn_k.weight': [kv, D],
                           f'blk.{l}.attn_v.weight': [kv, D], f'blk.{l}.attn_output.weight': [D, D], f'blk.{l}.ffn_norm.weight': [D],
                           f'blk.{l}.ffn_gate.weight': [F, D], f'blk.{l}.ffn_up.weight': [F, D], f'blk.{l}.ffn_down.weight': [D, F]})
        shapes['output_norm.weight'] = [D]
        if not c['tied']:
            shapes['output.weight'] = [V, D]
        P = {n: (torch.ones(s, dtype=dtype) if len(s) == 1 else torch.randn(s, dtype=dtype) * 0.02).requires_grad_(True) for n, s in shapes.items()}

    spec = {'lr': 3e-4, 'weight_decay': 0.1, 'beta1': 0.9, 'beta2': 0.95, 'eps': 1e-8}
    opt = tt.make_optimizer(P, spec)
    tables = tt.rope_tables(c, a.seq, dtype)
    gen = torch.Generator().manual_seed(a.seed)
    n_total = a.warmup_steps + a.steps
    wins = torch.randint(0, c['vocab_size'], (n_total, a.batch, a.seq + 1), generator=gen)
    times, losses = [], []
    for s in range(n_total):
        t0 = time.perf_counter()
        loss, _ = tt.train_step(P, c, opt, [wins[s]], spec['lr'], 1.0, tables)
        dt = time.perf_counter() - t0
        losses.append(loss)
        if s >= a.warmup_steps:
            times.append(dt)
    tokens = a.batch * a.seq
    total = sum(times)
    json.dump({
        'oracle': 'torch', 'torch_version': torch.__version__, 'dtype': a.dtype,
        'batch': a.batch, 'seq': a.seq, 'torch_threads': torch.get_num_threads(),
        'openblas_threads': os.environ.get('OPENBLAS_NUM_THREADS'),
        'blas': os.path.realpath('/usr/lib/x86_64-linux-gnu/libblas.so.3'),
        'params': sum(p.numel() for p in P.values()),
        'steps_timed': a.steps, 'step_s': times,
        'tokens_per_s': tokens * len(times) / total if total > 0 else None,
        'tokens_per_s_best': tokens / min(times) if times else None,
        'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux reports KiB
        'losses': losses,
    }, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
