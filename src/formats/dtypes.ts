/**
 * The element codecs of checkpoint files: f16 and bf16 (IEEE-style halves) and ggml's q8_0
 * (blocks of 32 values: an f16 scale, then 32 int8). Encoders round to nearest, ties to even,
 * as the F16C instruction ggml uses does; q8_0 follows ggml's reference quantiser (below).
 */
import type { TensorDType } from './checkpoint.js';

/** Bytes per element, or per block for q8_0 (see `blockSize`). */
export const DTYPE_BYTES: Record<TensorDType, number> = { f32: 4, f16: 2, bf16: 2, q8_0: 34 };
export const Q8_0_BLOCK = 32;

/** Bytes `n` elements of `dtype` take; undefined when q8_0's blocks do not tile `n`. */
export function byteLength(dtype: TensorDType, n: number): number | undefined {
  if (dtype !== 'q8_0') return n * DTYPE_BYTES[dtype];
  return n % Q8_0_BLOCK === 0 ? (n / Q8_0_BLOCK) * 34 : undefined;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

function f32Bits(x: number): number {
  F32[0] = x;
  return U32[0]!;
}

function f32FromBits(b: number): number {
  U32[0] = b >>> 0;
  return F32[0]!;
}

/** The f16 bit pattern nearest to `x` (first rounded to f32), ties to even; overflow gives ±inf. */
export function f32ToF16Bits(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // the f16 exponent field
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // An f16 subnormal counts units of 2^-24: keep the top bits of the 24-bit significand.
    const shift = 126 - exp;
    if (shift > 24) return sign;
    const full = mant | 0x800000;
    let q = full >>> shift;
    const r = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (r > half || (r === half && (q & 1) === 1)) q++;
    return sign | q; // q may reach 0x400, which is exactly the smallest normal
  }
  let h = (e << 10) | (mant >>> 13);
  const r = mant & 0x1fff;
  if (r > 0x1000 || (r === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is right, up to inf
  return sign | h;
}

let F16_TABLE: Float32Array | undefined;

/** The value of an f16 bit pattern (a table of all 65536, built on first use). */
export function f16BitsToF32(h: number): number {
  if (!F16_TABLE) {
    F16_TABLE = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      const s = i & 0x8000 ? -1 : 1;
      const e = (i >>> 10) & 0x1f;
      const m = i & 0x3ff;
      F16_TABLE[i] = e === 0 ? s * m * 2 ** -24 : e === 0x1f ? (m ? NaN : s * Infinity) : s * (1024 + m) * 2 ** (e - 25);
    }
  }
  return F16_TABLE[h & 0xffff]!;
}

/** The bf16 bit pattern nearest to `x` (first rounded to f32), ties to even; NaN stays NaN. */
export function f32ToBf16Bits(x: number): number {
  const b = f32Bits(x);
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** C's roundf: to nearest, halves away from zero. */
function roundAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

/**
 * ggml's reference q8_0 quantiser (`quantize_row_q8_0_ref`), step for step in f32:
 * d = amax / 127, id = d ? 1 / d : 0, q = roundf(x · id) — halves away from zero — and the
 * scale is stored as f16(d). (llama.cpp's SIMD path for activations rounds halves to even
 * instead; for weights written to a file the reference rule is the one gguf tools use.)
 */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % Q8_0_BLOCK !== 0) throw new RangeError(`q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${x.length}`);
  const nb = x.length / Q8_0_BLOCK;
  const out = new Uint8Array(nb * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    dv.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) dv.setInt8(b * 34 + 2 + j, roundAway(Math.fround(x[b * 32 + j]! * id)));
  }
  return out;
}

/** Encode f32 values as the stored bytes of `dtype` (little-endian). */
export function encode(dtype: TensorDType, x: Float32Array): Uint8Array {
  if (dtype === 'q8_0') return quantizeQ8_0(x);
  const out = new Uint8Array(x.length * DTYPE_BYTES[dtype]);
  const dv = new DataView(out.buffer);
  if (dtype === 'f32') for (let i = 0; i < x.length; i++) dv.setFloat32(i * 4, x[i]!, true);
  else if (dtype === 'f16') for (let i = 0; i < x.length; i++) dv.setUint16(i * 2, f32ToF16Bits(x[i]!), true);
  else for (let i = 0; i < x.length; i++) dv.setUint16(i * 2, f32ToBf16Bits(x[i]!), true);
  return out;
}

/** Decode stored bytes of `dtype` into a fresh Float32Array (`bytes` must hold whole elements/blocks). */
export function decode(dtype: TensorDType, bytes: Uint8Array): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'q8_0') {
    const nb = Math.floor(bytes.byteLength / 34);
    const out = new Float32Array(nb * Q8_0_BLOCK);
    for (let b = 0; b < nb; b++) {
      const d = f16BitsToF32(dv.getUint16(b * 34, true));
      for (let j = 0; j < Q8_0_BLOCK; j++) out[b * 32 + j] = d * dv.getInt8(b * 34 + 2 + j);
    }
    return out;
  }
  const n = Math.floor(bytes.byteLength / DTYPE_BYTES[dtype]);
  const out = new Float32Array(n);
  if (dtype === 'f32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  else if (dtype === 'f16') for (let i = 0; i < n; i++) out[i] = f16BitsToF32(dv.getUint16(i * 2, true));
  else for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(dv.getUint16(i * 2, true));
  return out;
}
