#!/usr/bin/python3
"""PyTorch oracle for `kiln train`: the LLaMA kiln builds (src/dsl/llama.ts), in plain torch ops.

    /usr/bin/python3 tests/oracle/torch_train.py SPEC.json      (SPEC '-' reads stdin)

Debian's python3-torch (1.13) is what this is written for; it runs as /usr/bin/python3 (the
python3 first on PATH may be another interpreter without torch). See tests/oracle/torch-train.md
for the spec and output formats. Everything it prints on stdout is one JSON object.

The model, exactly as kiln's graph defines it (src/dsl/llama.ts, src/dsl/nn.ts, graph/interpret.ts):
  x = token_embd[ids]
  per layer: x += o(attn(rmsnorm(x, attn_norm)));  x += down(silu(gate h) * up h), h = rmsnorm(x, ffn_norm)
  logits = rmsnorm(x, output_norm) @ W_outᵀ, W_out = output.weight or token_embd.weight (tied)
  rmsnorm(x, w) = x / sqrt(mean(x²) + eps) * w over the last axis
  q, k: [T, heads, hd]; RoPE at position p = index in the window, angle p·base^(−2i/hd) on the pair
    (x[2i], x[2i+1]) ('interleaved', GGUF/Meta layout) or (x[i], x[i+hd/2]) ('half')
  scores = (q·kᵀ)·(1/√hd), causal mask (key j > query i is −inf), softmax, ·v; query head h reads
    kv head ⌊h/g⌋, g = nHeads/nKvHeads (repeat_interleave)
Training: mean next-token cross-entropy over the B·T targets of a micro-batch; the step's gradient is
the mean over its grad_accum micro-batches (each loss / grad_accum, backward, summed); then
clip_grad_norm_(params, clip) (its returned norm, before clipping, is reported); then torch.optim.AdamW
(foreach=False) with two groups: weight decay on params of rank ≥ 2, none on rank-1 params.
"""
import json
import math
import os
import struct
import sys

# OpenBLAS reads this when the library loads (at `import torch`); one thread keeps the summation
# order (and the float32 results) the same from run to run. A caller may set it otherwise.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ---------------------------------------------------------------------------------------------
# GGUF v2/v3 (little-endian): magic, u32 version, u64 n_tensors, u64 n_kv, key/value pairs, tensor
# infos (name, u32 n_dims, u64 dims fastest-first, u32 ggml type, u64 offset), padding to
# general.alignment (default 32), data.

GGUF_MAGIC = 0x46554747
_SCALAR = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30


class _Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take('<Q')
        s = bytes(self.buf[self.pos:self.pos + n]).decode('utf-8')
        self.pos += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take('<I'), self.take('<Q')
            return [self.value(et) for _ in range(n)]
        if t not in _SCALAR:
            raise ValueError(f'GGUF: unknown metadata value type {t}')
        return self.take(_SCALAR[t])


def read_gguf(path):
    """{'metadata', 'tensors': [(name, shape row-major, float32 ndarray)], 'kv_bytes', 'n_kv', 'alignment', 'version'}."""
    with open(path, 'rb') as f:
        buf = f.read()
    r = _Reader(memoryview(buf))
    if r.take('<I') != GGUF_MAGIC:
        raise ValueError(f'{path}: not a GGUF file')
    version = r.take('<I')
    if version not in (2, 3):
        raise ValueError(f'{path}: GGUF version {version} (reads 2 and 3)')
    n_tensors, n_kv = r.take('<Q'), r.take('<Q')
    kv_start = r.pos
    md = {}
    for _ in range(n_kv):
        k = r.string()
        md[k] = r.value(r.take('<I'))
    kv_bytes = bytes(buf[kv_start:r.pos])
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take('<I')
        ne = [r.take('<Q') for _ in range(nd)]
        typ, off = r.take('<I'), r.take('<Q')
        infos.append((name, list(reversed(ne)), typ, off))
    align = md.get('general.alignment', 32)
    data_start = (r.pos + align - 1) // align * align
    tensors = []
    for name, shape, typ, off in infos:
        n = int(np.prod(shape))
        at = data_start + off
        if typ == GGML_F32:
            a = np.frombuffer(buf, dtype='<f4', count=n, offset=at)
        elif typ == GGML_F16:
            a = np.frombuffer(buf, dtype='<f2', count=n, offset=at).astype(np.float32)
        elif typ == GGML_BF16:
            a = (np.frombuffer(buf, dtype='<u2', count=n, offset=at).astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f'{path}: tensor {name} has ggml type {typ}; this oracle reads f32, f16 and bf16')
        tensors.append((name, shape, a.reshape(shape).astype(np.float32)))
    return {'metadata': md, 'tensors': tensors, 'kv_bytes': kv_bytes, 'n_kv': n_kv, 'alignment': align, 'version': version}


def write_gguf_like(path, src, tensors):
    """A GGUF v3 with src's metadata (copied byte for byte) and `tensors` [(name, shape, array)] as f32."""
    align = src['alignment']
    pad = lambda n: (n + align - 1) // align * align  # noqa: E731
    head = bytearray(struct.pack('<IIQQ', GGUF_MAGIC, 3, len(tensors), src['n_kv']))
    head += src['kv_bytes']
    blobs, off = [], 0
    for name, shape, a in tensors:
        b = np.ascontiguousarray(a, dtype='<f4').tobytes()
        nb = name.encode('utf-8')
        head += struct.pack('<Q', len(nb)) + nb + struct.pack('<I', len(shape))
        for d in reversed(shape):
            head += struct.pack('<Q', d)
        head += struct.pack('<IQ', GGML_F32, off)
        blobs.append(b)
        off += pad(len(b))
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(head + bytes(pad(len(head)) - len(head)))
        for b in blobs:
            f.write(b + bytes(pad(len(b)) - len(b)))
    os.replace(tmp, path)


def llama_config(g, spec):
    md = g['metadata']
    if md.get('general.architecture') != 'llama':
        raise ValueError(f"general.architecture is {md.get('general.architecture')!r}, expected 'llama'")
    shapes = {name: shape for name, shape, _ in g['tensors']}
    dim, n_heads = md['llama.embedding_length'], md['llama.attention.head_count']
    tokens = md.get('tokenizer.ggml.tokens')
    vocab = len(tokens) if isinstance(tokens, list) else md.get('llama.vocab_size', shapes['token_embd.weight'][0])
    c = {
        'vocab_size': vocab,
        'dim': dim,
        'n_layers': md['llama.block_count'],
        'n_heads': n_heads,
        'n_kv_heads': md.get('llama.attention.head_count_kv', n_heads),
        'head_dim': dim // n_heads,
        'hidden_dim': md['llama.feed_forward_length'],
        # GGUF stores these as f32; the f32 value, widened exactly, is what kiln's reader uses too.
        'rope_base': float(md.get('llama.rope.freq_base', 10000.0)),
        'norm_eps': float(md.get('llama.attention.layer_norm_rms_epsilon', 1e-5)),
        # kiln's GGUF reader always says 'interleaved'; 'half' only by the spec.
        'rope_layout': spec.get('rope_layout', 'interleaved'),
        'tied': bool(spec['tied']) if 'tied' in spec else 'output.weight' not in shapes,
    }
    if c['rope_layout'] not in ('interleaved', 'half'):
        raise ValueError(f"rope_layout must be 'interleaved' or 'half', got {c['rope_layout']!r}")
    rot = md.get('llama.rope.dimension_count')
    if rot is not None and rot != c['head_dim']:
        raise ValueError(f"llama.rope.dimension_count {rot} is not the head dim {c['head_dim']}")
    if c['n_heads'] % c['n_kv_heads'] or c['head_dim'] % 2:
        raise ValueError(f'bad head counts: {c}')
    return c


# ---------------------------------------------------------------------------------------------
# The model.

def param_names(c):
    names = ['token_embd.weight']
    for l in range(c['n_layers']):
        names += [f'blk.{l}.{t}.weight' for t in ('attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down')]
    names.append('output_norm.weight')
    if not c['tied']:
        names.append('output.weight')
    return names


def load_params(g, c, dtype):
    """name → leaf tensor (requires_grad), in GGUF tensor order (the order kiln lists them in)."""
    have = {name: a for name, _, a in g['tensors']}
    want = param_names(c)
    missing = [n for n in want if n not in have]
    if missing:
        raise ValueError(f'GGUF lacks {missing}')
    order = [name for name, _, _ in g['tensors'] if name in set(want)]
    return {n: torch.tensor(have[n], dtype=dtype).requires_grad_(True) for n in order}


def rope_tables(c, T, dtype):
    """cos, sin [T, hd/2]: angle p·base^(−2i/hd), computed in float64 then rounded to dtype."""
    hd = c['head_dim']
    i = np.arange(hd // 2, dtype=np.float64)
    inv = np.power(c['rope_base'], -2.0 * i / hd)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    return torch.tensor(np.cos(ang), dtype=dtype), torch.tensor(np.sin(ang), dtype=dtype)


def rope(x, cos, sin, layout):
    """x [B, T, H, hd]; cos/sin [T, hd/2]."""
    B, T, H, hd = x.shape
    cs, sn = cos[None, :, None, :], sin[None, :, None, :]
    if layout == 'interleaved':
        p = x.reshape(B, T, H, hd // 2, 2)
        a, b = p[..., 0], p[..., 1]
        return torch.stack((a * cs - b * sn, a * sn + b * cs), dim=-1).reshape(B, T, H, hd)
    a, b = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat((a * cs - b * sn, a * sn + b * cs), dim=-1)


def rmsnorm(x, w, eps):
    return x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps) * w


def forward(P, c, ids, tables=None):
    """ids [B, T] (int64) → logits [B, T, vocab]."""
    B, T = ids.shape
    H, Hkv, hd, eps = c['n_heads'], c['n_kv_heads'], c['head_dim'], c['norm_eps']
    g = H // Hkv
    cos, sin = tables if tables is not None else rope_tables(c, T, P['token_embd.weight'].dtype)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)  # key j > query i
    scale = 1.0 / math.sqrt(hd)
    x = F.embedding(ids, P['token_embd.weight'])
    for l in range(c['n_layers']):
        w = lambda t: P[f'blk.{l}.{t}.weight']  # noqa: E731
        h = rmsnorm(x, w('attn_norm'), eps)
        q = rope(F.linear(h, w('attn_q')).view(B, T, H, hd), cos, sin, c['rope_layout']).transpose(1, 2)
        k = rope(F.linear(h, w('attn_k')).view(B, T, Hkv, hd), cos, sin, c['rope_layout']).transpose(1, 2)
        v = F.linear(h, w('attn_v')).view(B, T, Hkv, hd).transpose(1, 2)
        if g > 1:  # query head h reads kv head ⌊h/g⌋
            k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        s = torch.matmul(q, k.transpose(-1, -2)) * scale
        p = torch.softmax(s.masked_fill(mask, float('-inf')), dim=-1)
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + F.linear(o, w('attn_output'))
        h = rmsnorm(x, w('ffn_norm'), eps)
        x = x + F.linear(F.silu(F.linear(h, w('ffn_gate'))) * F.linear(h, w('ffn_up')), w('ffn_down'))
    h = rmsnorm(x, P['output_norm.weight'], eps)
    return F.linear(h, P['token_embd.weight'] if c['tied'] else P['output.weight'])


def window_loss(P, c, win, tables=None):
    """win [B, T+1] (int64): mean cross-entropy of row[1:] given row[:-1], over B·T targets."""
    logits = forward(P, c, win[:, :-1], tables)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), win[:, 1:].reshape(-1))


def lr_at(s, spec):
    """Linear warmup for W steps, then cosine from lr to min_lr over the remaining N − W."""
    lr, min_lr, W, N = spec['lr'], spec.get('min_lr', 0.0), spec.get('warmup', 0), spec['steps']
    if s < W:
        return lr * (s + 1) / W
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * (s - W) / (N - W)))


def make_optimizer(P, spec):
    decay = [p for p in P.values() if p.dim() >= 2]
    plain = [p for p in P.values() if p.dim() < 2]
    return torch.optim.AdamW(
        [{'params': decay, 'weight_decay': spec.get('weight_decay', 0.0)}, {'params': plain, 'weight_decay': 0.0}],
        lr=spec['lr'],
        betas=(spec.get('beta1', 0.9), spec.get('beta2', 0.999)),
        eps=spec.get('eps', 1e-8),
        foreach=False,
    )


def train_step(P, c, opt, wins, lr, clip, tables=None):
    """One step over micro-batches `wins`; returns (mean loss, grad norm before clipping)."""
    for group in opt.param_groups:
        group['lr'] = lr
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for win in wins:
        loss = window_loss(P, c, win, tables)
        (loss / len(wins)).backward()
        total += loss.item()
    norm = torch.nn.utils.clip_grad_norm_(list(P.values()), float('inf') if clip is None or clip <= 0 else clip)
    opt.step()
    return total / len(wins), norm.item()


# ---------------------------------------------------------------------------------------------
# The spec and the outputs.

def load_windows(spec, spec_dir):
    """int64 tensor [n, B, T+1]: `windows` (nested lists) or `windows_i32` (raw little-endian int32
    file) with `windows_shape` [n, B, T+1]."""
    if 'windows_i32' in spec:
        path = os.path.join(spec_dir, spec['windows_i32'])
        a = np.fromfile(path, dtype='<i4').reshape(spec['windows_shape'])
        return torch.tensor(a.astype(np.int64))
    return torch.tensor(spec['windows'], dtype=torch.int64)


def write_raw(dirpath, P, extra=None):
    """<dir>/<name>.bin raw little-endian values in the run's dtype, and <dir>/manifest.json."""
    os.makedirs(dirpath, exist_ok=True)
    items = []
    for name, t in P.items():
        a = t.detach().numpy()
        fn = name + '.bin'
        a.astype(a.dtype.newbyteorder('<')).tofile(os.path.join(dirpath, fn))
        items.append({'name': name, 'shape': list(a.shape), 'file': fn})
    dt = 'float64' if next(iter(P.values())).dtype == torch.float64 else 'float32'
    with open(os.path.join(dirpath, 'manifest.json'), 'w') as f:
        json.dump({'dtype': dt, 'tensors': items, **(extra or {})}, f, indent=1)


def run(spec, spec_dir='.'):
    torch.set_num_threads(int(spec.get('threads', 1)))
    dtype = {'float32': torch.float32, 'float64': torch.float64}[spec.get('dtype', 'float64')]
    g = read_gguf(os.path.join(spec_dir, spec['gguf']))
    c = llama_config(g, spec)
    P = load_params(g, c, dtype)
    out = {'oracle': 'torch', 'torch_version': torch.__version__, 'dtype': spec.get('dtype', 'float64'), 'config': c}

    if spec.get('logits_only'):
        with torch.no_grad():
            if 'tokens' in spec:
                logits = forward(P, c, torch.tensor([spec['tokens']], dtype=torch.int64))
            else:
                win = load_windows(spec, spec_dir)[0]
                logits = forward(P, c, win[:, :-1])
                out['loss'] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), win[:, 1:].reshape(-1)).item()
        if 'out_logits' in spec:  # raw little-endian float64 [B, T, vocab]
            logits.to(torch.float64).numpy().astype('<f8').tofile(os.path.join(spec_dir, spec['out_logits']))
            out['logits_shape'] = list(logits.shape)
        else:
            out['logits'] = logits.to(torch.float64).tolist()
        return out

    wins = load_windows(spec, spec_dir)
    N, A = int(spec['steps']), int(spec.get('grad_accum', 1))
    if wins.shape[0] < N * A:
        raise ValueError(f'{N} steps × grad_accum {A} need {N * A} windows; the spec has {wins.shape[0]}')
    tables = rope_tables(c, wins.shape[2] - 1, dtype)
    opt = make_optimizer(P, spec)
    clip = spec.get('clip')
    steps = []
    for s in range(N):
        lr = lr_at(s, spec)
        micro = [wins[s * A + k] for k in range(A)]
        if s == 0 and 'out_grads' in spec:  # the step-0 gradient (mean over micro-batches), before clipping
            opt.zero_grad(set_to_none=True)
            for win in micro:
                (window_loss(P, c, win, tables) / A).backward()
            write_raw(os.path.join(spec_dir, spec['out_grads']), {n: p.grad for n, p in P.items()}, {'what': 'step-0 gradient before clipping'})
        loss, norm = train_step(P, c, opt, micro, lr, clip, tables)
        steps.append({'step': s, 'lr': lr, 'loss': loss, 'grad_norm': norm})
    out['steps'] = steps
    if 'eval_windows' in spec:  # loss of the final weights on other windows (mean over them)
        with torch.no_grad():
            ev = torch.tensor(spec['eval_windows'], dtype=torch.int64)
            out['eval_loss'] = sum(window_loss(P, c, w).item() for w in ev) / ev.shape[0]
    if 'out_weights' in spec:
        write_raw(os.path.join(spec_dir, spec['out_weights']), P)
    if 'out_gguf' in spec:
        write_gguf_like(os.path.join(spec_dir, spec['out_gguf']), g, [(n, list(t.shape), t.detach().to(torch.float32).numpy()) for n, t in P.items()])
    return out


def _finite(v):
    """Non-finite floats as the strings 'NaN', 'Infinity', '-Infinity' (JSON has no such numbers)."""
    if isinstance(v, float) and not math.isfinite(v):
        return 'NaN' if v != v else ('Infinity' if v > 0 else '-Infinity')
    if isinstance(v, dict):
        return {k: (x if k == 'logits' else _finite(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


def main(argv):
    if len(argv) != 2:
        print(__doc__.split('\n\n')[1] if '\n\n' in __doc__ else __doc__, file=sys.stderr)
        print('usage: /usr/bin/python3 tests/oracle/torch_train.py SPEC.json', file=sys.stderr)
        return 2
    if argv[1] == '-':
        spec, spec_dir = json.load(sys.stdin), '.'
    else:
        with open(argv[1]) as f:
            spec = json.load(f)
        spec_dir = os.path.dirname(os.path.abspath(argv[1]))
    # A list of specs runs each in turn (one interpreter start for many checks) and prints a list.
    out = [run(s, spec_dir) for s in spec] if isinstance(spec, list) else run(spec, spec_dir)
    json.dump(_finite(out), sys.stdout, allow_nan=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
