import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import { interpret } from '../graph/interpret.js';
import { hostTensor } from '../graph/tensor.js';
import { type LlamaConfig, llama } from '../src/dsl/llama.js';
import { checkpointWeights, loadCheckpoint, type TensorDType, type TokenizerData } from '../src/formats/checkpoint.js';
import { convert } from '../src/formats/convert.js';
import { bf16BitsToF32, decode, encode, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, quantizeQ8_0 } from '../src/formats/dtypes.js';
import { llamaGgufMetadata, typed, writeGguf } from '../src/formats/gguf-write.js';
import { permuteRopeRows } from '../src/formats/hf-names.js';
import { writeSafetensors } from '../src/formats/safetensors-write.js';
import { weightsToHost } from '../src/runtime/weights.js';
import { type NamedTensor, seededTensors, writeLlama2c } from './formats-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-formats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = (ext: string) => join(dir, `f${n++}${ext}`);

// dim and hidden are multiples of 32 so that every matrix row tiles q8_0 blocks.
const CFG: LlamaConfig = { name: 'tiny', vocabSize: 40, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 16, ropeBase: 10000, normEps: 1e-5 };
const TOK: TokenizerData = {
  model: 'llama',
  // token 3 is a lone U+FEFF, as LLaMA's vocabulary has one: a UTF-8 decoder must not eat it as a BOM
  tokens: Array.from({ length: 40 }, (_, i) => (i === 0 ? '<unk>' : i === 1 ? '<s>' : i === 2 ? '</s>' : i === 3 ? '\uFEFF' : `▁t${i}`)),
  scores: Array.from({ length: 40 }, (_, i) => -i / 2),
  types: Array.from({ length: 40 }, (_, i) => (i === 0 ? 2 : i < 3 ? 3 : 1)),
  bos: 1, eos: 2, unk: 0, addBos: true, addSpacePrefix: false,
};

function writeModel(path: string, config: LlamaConfig, tensors: NamedTensor[], dtype: TensorDType, tok?: TokenizerData): void {
  // Norm vectors stay f32, as llama.cpp's converters keep them (and q8_0 needs 32-wide rows).
  const dt = (t: NamedTensor) => (t.shape.length === 1 ? 'f32' : dtype);
  writeGguf(path, { metadata: llamaGgufMetadata(config, tok), tensors: tensors.map((t) => ({ ...t, dtype: dt(t) })) });
}

function logits(config: LlamaConfig, w: Record<string, Float32Array>, tokens: number[]): Float64Array {
  const g = llama(config).build();
  return interpret(g, { inputs: { tokens: hostTensor('i32', [tokens.length], tokens) }, params: weightsToHost(g, w) })['logits']!.data;
}

/** Bitwise equality of two typed arrays (vitest's deep equality is slow on large ones). */
function expectSame(a: ArrayBufferView, b: ArrayBufferView, what: string): void {
  const u = (x: ArrayBufferView) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  expect(u(a).equals(u(b)), what).toBe(true);
}

const expectKiln = async (p: Promise<unknown>, re: RegExp): Promise<KilnError> => {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(KilnError);
  expect((e as KilnError).code).toBe('K1021');
  expect((e as KilnError).message).toMatch(re);
  expect((e as KilnError).message).not.toContain('\n');
  return e as KilnError;
};

describe('codecs against hand-worked values', () => {
  it('f16 rounds to nearest, ties to even, with subnormals and overflow', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-0, 0x8000],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [2 ** -14, 0x0400], [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], [3 * 2 ** -26, 0x0001], [3 * 2 ** -25, 0x0002], [1 / 3, 0x3555], [Infinity, 0x7c00],
    ];
    for (const [x, h] of cases) expect([x, f32ToF16Bits(x)]).toEqual([x, h]);
    expect(f16BitsToF32(0x3555)).toBe(0.333251953125);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0xfbff)).toBe(-65504);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  });

  it('bf16 rounds to nearest, ties to even', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16Bits(-3.5)).toBe(0xc060);
    expect(bf16BitsToF32(0x3f82)).toBe(1 + 2 ** -6);
  });

  it('q8_0: scale amax/127 as f16, roundf (halves away from zero)', () => {
    const x = new Float32Array(32);
    x.set([127, 0.5, -0.5, 2.5, -126.5, 1.49, -3]);
    const q = quantizeQ8_0(x);
    expect(q.length).toBe(34);
    expect([q[0], q[1]]).toEqual([0x00, 0x3c]); // d = 1.0 as f16, little-endian
    expect(Array.from(new Int8Array(q.buffer, 2, 7))).toEqual([127, 1, -1, 3, -127, 1, -3]);
    expect(Array.from(decode('q8_0', q).subarray(0, 7))).toEqual([127, 1, -1, 3, -127, 1, -3]);
    // amax 2.54: d = 0.02 → f16 0x251f (0.0200042724609375); 1.27 · 50 = 63.5 → 64
    const y = new Float32Array(32);
    y.set([2.54, 1.27, -0.01]);
    const qy = quantizeQ8_0(y);
    expect(new DataView(qy.buffer).getUint16(0, true)).toBe(0x251f);
    expect(Array.from(new Int8Array(qy.buffer, 2, 3))).toEqual([127, 64, -1]);
    expect(Array.from(quantizeQ8_0(new Float32Array(32)))).toEqual(new Array(34).fill(0));
  });
});

describe('GGUF', () => {
  const tensors = seededTensors(CFG, 3);
  for (const dtype of ['f32', 'f16', 'bf16', 'q8_0'] as const) {
    it(`round-trips ${dtype} tensors, the config and the tokenizer`, async () => {
      const p = tmp('.gguf');
      writeModel(p, CFG, tensors, dtype, TOK);
      const ck = await loadCheckpoint(p);
      expect(ck.format).toBe('gguf');
      expect(ck.config).toEqual({ ...CFG, ropeLayout: 'interleaved', tiedEmbeddings: false, normEps: Math.fround(1e-5) });
      expect(ck.tokenizer).toEqual({ ...TOK, scores: TOK.scores.map(Math.fround) });
      expect([...ck.tensors.keys()]).toEqual(tensors.map((t) => t.name));
      for (const t of tensors) {
        const got = ck.tensors.get(t.name)!;
        const dt = t.shape.length === 1 ? 'f32' : dtype;
        expect([got.dtype, got.shape]).toEqual([dt, t.shape]);
        expectSame(got.bytes, encode(dt, t.data), t.name);
        expectSame(got.toFloat32(), dt === 'f32' ? t.data : decode(dt, encode(dt, t.data)), t.name);
      }
    });
  }

  it('reads a tied head (no output.weight) and metadata of every value type', async () => {
    const p = tmp('.gguf');
    const md = {
      ...llamaGgufMetadata(CFG),
      'x.u8': typed('u8', 200), 'x.i8': typed('i8', -5), 'x.u16': typed('u16', 60000), 'x.i16': typed('i16', -300),
      'x.i32': -7, 'x.u64': typed('u64', 2 ** 40), 'x.i64': typed('i64', -(2 ** 40)), 'x.f64': typed('f64', 0.1), 'x.f32': 0.25,
      'x.b': false, 'x.arr': typed('u16[]', [1, 2, 3]), 'x.strs': ['a', 'bé'],
    };
    writeGguf(p, { metadata: md, tensors: tensors.filter((t) => t.name !== 'output.weight').map((t) => ({ ...t, dtype: 'f32' as const })) });
    const ck = await loadCheckpoint(p);
    expect(ck.config.tiedEmbeddings).toBe(true);
    expect(ck.tokenizer).toBeUndefined();
    const m = ck.metadata;
    expect([m['x.u8'], m['x.i8'], m['x.u16'], m['x.i16'], m['x.i32'], m['x.u64'], m['x.i64'], m['x.f64'], m['x.f32'], m['x.b'], m['x.arr'], m['x.strs']])
      .toEqual([200, -5, 60000, -300, -7, 2 ** 40, -(2 ** 40), 0.1, 0.25, false, [1, 2, 3], ['a', 'bé']]);
    expect(m['general.alignment']).toBe(32);
  });

  it('rejects bad files with one-line K1021 errors naming the file and what was expected', async () => {
    const good = tmp('.gguf');
    writeModel(good, CFG, tensors, 'f32');
    const bytes = readFileSync(good);
    const p = tmp('.gguf');
    const withBytes = (b: Uint8Array) => (writeFileSync(p, b), loadCheckpoint(p));

    const bad = Uint8Array.from(bytes);
    bad[0] = 0x58;
    const e = await expectKiln(withBytes(bad), /wrong magic/);
    expect(e.message.startsWith(p)).toBe(true);
    const v2 = Uint8Array.from(bytes);
    v2[4] = 2; // v2 has v3's layout (v3 only added big-endian files)
    expect((await withBytes(v2)).tensors.size).toBe(tensors.length);
    const v9 = Uint8Array.from(bytes);
    v9[4] = 9;
    await expectKiln(withBytes(v9), /unsupported GGUF version 9/);
    await expectKiln(withBytes(bytes.subarray(0, 100)), /truncated/);
    await expectKiln(withBytes(bytes.subarray(0, bytes.length - 10)), /tensor "output.weight".*runs past the end/);

    // A k projection with 96 rows where head_count_kv · head_dim = 2 · 16 = 32.
    writeModel(p, CFG, tensors.map((t) => (t.name === 'blk.1.attn_k.weight' ? { ...t, shape: [96, 64], data: new Float32Array(96 * 64) } : t)), 'f32');
    await expectKiln(loadCheckpoint(p), /^.*: tensor "blk\.1\.attn_k\.weight" has shape \[96, 64\], expected \[32, 64\] \[head_count_kv·head_dim, dim\] = \[2·16, 64\]$/);
    writeModel(p, CFG, tensors.filter((t) => t.name !== 'blk.0.ffn_up.weight'), 'f32');
    await expectKiln(loadCheckpoint(p), /missing tensor "blk\.0\.ffn_up\.weight" of shape \[96, 64\]/);
    writeGguf(p, { metadata: { ...llamaGgufMetadata(CFG), 'llama.attention.head_count': 'four' }, tensors: [] });
    await expectKiln(loadCheckpoint(p), /metadata key "llama.attention.head_count" is .*expected a positive integer/);

    // Patch the first tensor's ggml type to q4_K (12).
    const q = Uint8Array.from(bytes);
    const at = Buffer.from(q).indexOf('token_embd.weight') + 'token_embd.weight'.length + 4 + 2 * 8;
    new DataView(q.buffer).setUint32(at, 12, true);
    await expectKiln(withBytes(q), /tensor "token_embd\.weight" has ggml type q4_K \(12\)/);
  });
});

describe('safetensors and convert', () => {
  const tensors = seededTensors(CFG, 5);

  it('writes HF names and config.json, with q/k rows in the rotate-half layout', async () => {
    const d = join(dir, 'st-single');
    writeSafetensors(d, tensors.map((t) => ({ ...t, dtype: 'f32' as const })), CFG);
    const ck = await loadCheckpoint(d);
    expect(ck.format).toBe('safetensors');
    expect(ck.config).toEqual({ ...CFG, ropeLayout: 'half', tiedEmbeddings: false });
    const q = tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    const got = ck.tensors.get('blk.0.attn_q.weight')!;
    expect(got.toFloat32()).not.toEqual(q.data);
    expectSame(permuteRopeRows(got.bytes, 64, 4, 'interleaved'), q.data, 'q rows');
    const header = readFileSync(join(d, 'model.safetensors')).toString('latin1', 8, 400);
    expect(header).toContain('"model.layers.0.self_attn.q_proj.weight"');
    expect(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'))).toMatchObject({ hidden_size: 64, num_key_value_heads: 2, tie_word_embeddings: false });
  });

  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    it(`round-trips ${dtype}, sharded with an index`, async () => {
      const d = join(dir, `st-${dtype}`);
      writeSafetensors(d, tensors.map((t) => ({ ...t, dtype })), { ...CFG, ropeLayout: 'half' }, { shardBytes: 20000 });
      const ck = await loadCheckpoint(d);
      expect(readFileSync(join(d, 'model.safetensors.index.json'), 'utf8')).toContain('model-00002-of-');
      for (const t of tensors) expectSame(ck.tensors.get(t.name)!.toFloat32(), decode(dtype, encode(dtype, t.data)), t.name);
    });
  }

  for (const dtype of ['f32', 'f16', 'q8_0'] as const) {
    it(`GGUF (${dtype}) → safetensors → GGUF gives identical tensors, and the same logits`, async () => {
      const g1 = tmp('.gguf');
      writeModel(g1, CFG, tensors, dtype, TOK);
      const st = join(dir, `conv-${dtype}`);
      await convert(g1, st);
      const g2 = tmp('.gguf');
      await convert(st, g2);
      const [a, b, s] = await Promise.all([loadCheckpoint(g1), loadCheckpoint(g2), loadCheckpoint(st)]);
      expect(b.config).toEqual(a.config);
      for (const [name, t] of a.tensors) {
        const u = b.tensors.get(name)!;
        if (t.dtype === 'q8_0') expectSame(u.toFloat32(), t.toFloat32(), name); // safetensors held them as f32
        else {
          expect(u.dtype).toBe(t.dtype);
          expectSame(u.bytes, t.bytes, name);
        }
      }
      // Same logits from the interleaved GGUF and the rotate-half safetensors: the layout is handled.
      const ids = [1, 7, 3, 22, 39, 5];
      const la = logits(a.config, checkpointWeights(a), ids);
      const ls = logits(s.config, checkpointWeights(s), ids);
      let err = 0;
      for (let i = 0; i < la.length; i++) err = Math.max(err, Math.abs(la[i]! - ls[i]!));
      expect(err).toBeLessThan(1e-9);
      // …and reading the safetensors weights with the wrong layout would not.
      const wrong = logits({ ...s.config, ropeLayout: 'interleaved' }, checkpointWeights(s), ids);
      expect(Math.max(...la.map((v, i) => Math.abs(v - wrong[i]!)))).toBeGreaterThan(1e-3);
    });
  }

  it('rejects a safetensors file whose tensor sizes contradict the header or config', async () => {
    const d = join(dir, 'st-bad');
    writeSafetensors(d, tensors.map((t) => ({ ...t, dtype: 'f32' as const })), CFG);
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, num_key_value_heads: 4 }));
    await expectKiln(loadCheckpoint(d), /tensor "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[32, 64\], expected \[64, 64\]/);
    writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
    const f = join(d, 'model.safetensors');
    writeFileSync(f, readFileSync(f).subarray(0, 5000));
    await expectKiln(loadCheckpoint(d), /model\.safetensors: tensor ".*" ends at data byte \d+ but the file holds/);
  });
});

describe('llama2.c', () => {
  const cfg = { vocabSize: 40, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 16 };
  for (const shared of [true, false]) {
    it(`loads a v0 checkpoint with a ${shared ? 'shared' : 'separate'} classifier`, async () => {
      const all = seededTensors({ ...cfg, tiedEmbeddings: shared }, 9);
      const p = tmp('.bin');
      writeLlama2c(p, cfg, all, shared);
      const ck = await loadCheckpoint(p);
      expect(ck.format).toBe('llama2c');
      expect(ck.config).toEqual({ ...cfg, ropeBase: 10000, ropeLayout: 'interleaved', normEps: 1e-5, tiedEmbeddings: shared });
      expect([...ck.tensors.keys()].sort()).toEqual(all.map((t) => t.name).sort());
      for (const t of all) expectSame(ck.tensors.get(t.name)!.toFloat32(), t.data, t.name);
      // llama2.c → GGUF keeps everything.
      const g = tmp('.gguf');
      await convert(p, g);
      const back = await loadCheckpoint(g);
      for (const t of all) expectSame(back.tensors.get(t.name)!.toFloat32(), t.data, t.name);
    });
  }

  it('rejects a truncated file or a header that does not match the size', async () => {
    const all = seededTensors({ ...cfg, tiedEmbeddings: true }, 9);
    const p = tmp('.bin');
    writeLlama2c(p, cfg, all, true);
    const b = readFileSync(p);
    writeFileSync(p, b.subarray(0, b.length - 4));
    await expectKiln(loadCheckpoint(p), /implies \d+ bytes, but the file has \d+ \(truncated\?\)/);
    const h = Uint8Array.from(b);
    new DataView(h.buffer).setInt32(0, 65, true);
    writeFileSync(p, h);
    await expectKiln(loadCheckpoint(p), /invalid model config: .*dim \(65\) must be divisible by nHeads/);
  });
});
