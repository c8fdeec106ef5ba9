import { type Dim, dimScale } from '../../graph/dim.js';
import { KilnError } from '../../graph/errors.js';
import { userSite } from '../../graph/source.js';
import { type Activation, applyActivation } from './activation.js';
import * as op from './ops.js';
import type { RopeLayout } from './ops.js';
import type { DimArg, NamedDim, Names, Tensor } from './tensor.js';

/**
 * Building blocks, each inside a named scope so dumps read `layers.3.attn.q`. A block creates
 * its own weights from the names it is given (GGUF names, [out, in] matrices), since it knows
 * their shapes; the core ops in ops.ts take explicit tensors instead.
 */

type Last<S extends Names> = S extends readonly [...Names, infer L extends string] ? L : string;
type NameOf<D> = D extends NamedDim<infer N> ? N : string;

function lastDim(x: Tensor): Dim {
  return x.shape.at(-1) ?? 0;
}

/** x[…, in] · W[out, in]ᵀ (+ bias[out]); W named `weight`, created here. */
export function linear<const S extends Names, I extends string, const O extends DimArg>(
  x: Tensor<readonly [...S, I]>,
  weight: string,
  out: O,
  scope?: string,
  bias?: string,
): Tensor<[...S, NameOf<O>]> {
  const body = () => {
    const w = x.m.param(weight, [out, lastDim(x)]);
    const y = x.m.add('matmul', [x, w], { transB: true });
    return (bias === undefined ? y : op.add(y, x.m.param(bias, [out]))) as Tensor<[...S, NameOf<O>]>;
  };
  return scope === undefined ? body() : x.m.scope(scope, body);
}

/** Rows of the table `weight`[vocab, dim] picked by token ids: ids[…] → […, dim]. */
export function embedding<I extends Names, const V extends DimArg, const D extends DimArg>(
  ids: Tensor<I>,
  weight: string,
  vocab: V,
  dim: D,
  scope = 'embed',
): Tensor<[...I, NameOf<D>]> {
  return ids.m.scope(scope, () => op.gather(ids.m.param(weight, [vocab, dim]), ids)) as Tensor<[...I, NameOf<D>]>;
}

/** x / √(mean(x²) + eps) · w over the last axis (the core rmsnorm op). */
export function rmsNorm<S extends Names>(x: Tensor<S>, weight: string, eps: number, scope = 'norm'): Tensor<S> {
  return x.m.scope(scope, () => x.m.add<S>('rmsnorm', [x, x.m.param(weight, [lastDim(x)])], { eps }));
}

/** (x − mean) / √(var + eps) · w (+ b) over the last axis, from core ops. */
export function layerNorm<S extends Names>(x: Tensor<S>, weight: string, bias: string | undefined, eps: number, scope = 'norm'): Tensor<S> {
  return x.m.scope(scope, () => {
    const d = lastDim(x);
    const t: Tensor = x;
    const centred = op.sub(t, op.mean(t, -1)); // x − mean, same shape as x
    const variance = op.mean(op.mul(centred, centred), -1); // […, 1]
    const normed = op.mul(centred, op.rsqrt(op.add(variance, eps)));
    const scaled = op.mul(normed, x.m.param(weight, [d]));
    return (bias === undefined ? scaled : op.add(scaled, x.m.param(bias, [d]))) as Tensor<S>;
  });
}

export interface RopeOptions {
  readonly base: number;
  readonly layout: RopeLayout;
  /** Position of the first token (a dim such as `pos` once a KV cache exists). */
  readonly offset?: Dim;
}

/** Rotary embedding of x[seq, heads, headDim]. */
export function rope<S extends string, H extends string, D extends string>(x: Tensor<readonly [S, H, D]>, opts: RopeOptions, scope = 'rope'): Tensor<[S, H, D]> {
  return x.m.scope(scope, () => op.rope(x, opts));
}

export interface AttentionWeights {
  readonly q: string;
  readonly k: string;
  readonly v: string;
  readonly o: string;
}

export interface AttentionOptions {
  readonly nHeads: number;
  /** nKvHeads = nHeads is MHA, 1 is MQA, anything between is GQA. */
  readonly nKvHeads: number;
  readonly headDim: number;
  /** Rotary embedding on q and k, or none (models with learned positions). */
  readonly rope?: RopeOptions | false;
  readonly causal?: boolean;
}

/**
 * Causal self-attention from core ops, for MHA, GQA and MQA alike. With g = nHeads / nKvHeads,
 * query heads h = kv·g + j share kv head kv = ⌊h / g⌋: q[H, S, hd] read as [Hkv, g·S, hd] puts
 * the g query heads of one kv head in one matmul against k[Hkv, S, hd].
 */
export function attention<S extends string, D extends string>(
  x: Tensor<readonly [S, D]>,
  w: AttentionWeights,
  opts: AttentionOptions,
  scope = 'attn',
): Tensor<[S, D]> {
  const m = x.m;
  const { nHeads: H, nKvHeads: Hkv, headDim: hd } = opts;
  const site = userSite();
  for (const [k, v] of [['nHeads', H], ['nKvHeads', Hkv], ['headDim', hd]] as const)
    if (!Number.isInteger(v) || v < 1) throw new KilnError('K1010', `attention: ${k} must be a positive integer, got ${v}`, site);
  if (H % Hkv !== 0) throw new KilnError('K1010', `attention: nHeads (${H}) must be divisible by nKvHeads (${Hkv})`, site);
  const g = H / Hkv;
  const [S, D] = x.shape as [Dim, Dim];
  const gS = dimScale(S, g);
  return m.scope(scope, () => {
    const q0 = op.reshape(linear(x, w.q, H * hd, 'q'), [S, H, hd]); // [seq, heads, headDim]
    const k0 = op.reshape(linear(x, w.k, Hkv * hd, 'k'), [S, Hkv, hd]); // [seq, kvHeads, headDim]
    const v0 = op.reshape(linear(x, w.v, Hkv * hd, 'v'), [S, Hkv, hd]); // [seq, kvHeads, headDim]
    const q1 = opts.rope ? rope(q0, opts.rope, 'q_rope') : q0;
    const k1 = opts.rope ? rope(k0, opts.rope, 'k_rope') : k0;
    const ctx = m.scope('scores', () => {
      const q = op.transpose(q1, [1, 0, 2]); // [heads, seq, headDim]
      const qg = g === 1 ? q : op.reshape(q, [Hkv, gS, hd]); // [kvHeads, g·seq, headDim]
      const k = op.transpose(k1, [1, 0, 2]); // [kvHeads, seq, headDim]
      const v = op.transpose(v0, [1, 0, 2]); // [kvHeads, seq, headDim]
      const s0 = op.matmulT(qg, k); // [kvHeads, g·seq, seq]
      const s1 = g === 1 ? s0 : op.reshape(s0, [H, S, S]); // [heads, seq, seq]
      const s2 = op.mul(s1, 1 / Math.sqrt(hd));
      const s3 = opts.causal === false ? s2 : op.causalMask(s2);
      const p = op.softmax(s3, -1); // [heads, seq, seq]
      const pg = g === 1 ? p : op.reshape(p, [Hkv, gS, S]); // [kvHeads, g·seq, seq]
      const o = op.matmul(pg, v); // [kvHeads, g·seq, headDim]
      const oh = g === 1 ? o : op.reshape(o, [H, S, hd]); // [heads, seq, headDim]
      return op.reshape(op.transpose(oh, [1, 0, 2]), [S, H * hd]); // [seq, heads·headDim]
    });
    return linear(ctx, w.o, D, 'o') as Tensor<[S, D]>;
  });
}

export type FfnActivation = 'swiglu' | 'geglu' | 'gelu' | 'relu' | 'relu2' | Activation;
/** The activations feedForward (and llama()) know by name. */
export const NAMED_ACTIVATIONS: readonly string[] = ['swiglu', 'geglu', 'gelu', 'relu', 'relu2'];

export interface FfnWeights {
  /** Only the gated forms (swiglu, geglu, custom) have a gate. */
  readonly gate?: string;
  readonly up: string;
  readonly down: string;
}

/** Whether an activation uses a gate projection: down(act(gate·x) ⊙ up·x). */
export function isGated(a: FfnActivation): boolean {
  return typeof a !== 'string' || a === 'swiglu' || a === 'geglu';
}

/**
 * The feed-forward block: gated (SwiGLU `down(silu(gate x) ⊙ up x)`, GeGLU, or a custom arrow in
 * the gate's place) or plain (`down(act(up x))` with GELU, ReLU or squared ReLU).
 */
export function feedForward<S extends string, D extends string>(
  x: Tensor<readonly [S, D]>,
  w: FfnWeights,
  hidden: DimArg,
  activation: FfnActivation,
  scope = 'ffn',
): Tensor<[S, D]> {
  const D = lastDim(x);
  // a name it does not know would otherwise fall through to ReLU, dropping the gate in silence
  const named = NAMED_ACTIVATIONS;
  const parsed = typeof activation === 'object' && activation !== null && typeof (activation as Activation).expr === 'object';
  if (typeof activation === 'string' ? !named.includes(activation) : !parsed)
    throw new KilnError(
      'K1010',
      `feedForward: activation must be one of ${named.join(', ')} or parseActivation(x => …), got ${typeof activation === 'function' ? 'a plain function (give parseActivation(x => …))' : JSON.stringify(activation)}`,
      userSite(),
    );
  if (isGated(activation) && w.gate === undefined) throw new KilnError('K1010', 'feedForward: a gated activation needs a gate weight', userSite());
  return x.m.scope(scope, () => {
    const up = linear(x, w.up, hidden, 'up'); // [seq, hidden]
    let h: Tensor;
    if (isGated(activation)) {
      const gate = linear(x, w.gate!, hidden, 'gate'); // [seq, hidden]
      const act = x.m.scope('act', () =>
        activation === 'swiglu' ? op.silu(gate) : activation === 'geglu' ? op.gelu(gate) : applyActivation(activation as Activation, gate),
      );
      h = op.mul(act, up); // [seq, hidden]
    } else {
      h = x.m.scope('act', () => {
        if (activation === 'gelu') return op.gelu(up);
        const r = op.relu(up);
        return activation === 'relu2' ? op.mul(r, r) : r;
      });
    }
    return linear(h as Tensor<[S, string]>, w.down, D, 'down') as Tensor<[S, D]>;
  });
}

/** x + f(x): the residual connection around a block. */
export function residual<S extends Names>(x: Tensor<S>, f: (x: Tensor<S>) => Tensor): Tensor<S> {
  return op.add(x, f(x)) as Tensor<S>;
}

