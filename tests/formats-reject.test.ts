/**
 * Checkpoints that must be refused at load, with a K1021 error naming the file and the tensor,
 * key or dim: non-finite weights, overlapping or stray tensor data, tensors the config does not
 * use, config keys that change the maths, and the wording of metadata errors. Each input is a
 * valid file from kiln's own writers, then patched.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import type { LlamaConfig } from '../src/dsl/llama.js';
import { loadCheckpoint, type TensorDType } from '../src/formats/checkpoint.js';
import { llamaGgufMetadata, typed, writeGguf } from '../src/formats/gguf-write.js';
import { writeSafetensors } from '../src/formats/safetensors-write.js';
import { exactSyntheticVocab } from '../src/cli/vocab.js';
import { type NamedTensor, seededTensors, writeLlama2c } from './formats-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-reject-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = (ext: string) => join(dir, `r${n++}${ext}`);

const CFG: LlamaConfig = { name: 'tiny', vocabSize: 40, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 16, ropeBase: 10000, normEps: 1e-5 };
const TENSORS = seededTensors(CFG, 7);

const expectKiln = async (p: Promise<unknown>, re: RegExp): Promise<string> => {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(KilnError);
  expect((e as KilnError).code).toBe('K1021');
  expect((e as KilnError).message).toMatch(re);
  expect((e as KilnError).message).not.toContain('\n');
  return (e as KilnError).message;
};

function gguf(md: Record<string, unknown>, tensors: NamedTensor[] = TENSORS, dtype: TensorDType = 'f32'): string {
  const p = tmp('.gguf');
  writeGguf(p, { metadata: md, tensors: tensors.map((t) => ({ ...t, dtype: t.shape.length === 1 ? 'f32' : dtype })) });
  return p;
}

/** The absolute position of a GGUF tensor info's data-offset field. */
function ggufOffsetField(bytes: Uint8Array, name: string, nDims: number): number {
  return Buffer.from(bytes).indexOf(name) + name.length + 4 + 8 * nDims + 4;
}

/** A safetensors folder (f32) for `config`, with `tensors` under kiln names. */
function stDir(config: LlamaConfig = CFG, tensors: NamedTensor[] = TENSORS): string {
  const d = tmp('');
  writeSafetensors(d, tensors.map((t) => ({ ...t, dtype: 'f32' as const })), config);
  return d;
}

type StHeader = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** Rewrite a .safetensors file's header and data (offsets are relative to the data). */
function editSt(file: string, edit: (h: StHeader, data: Buffer) => Buffer | void): void {
  const b = readFileSync(file);
  const len = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.toString('utf8', 8, 8 + len)) as StHeader;
  const data = edit(h, b.subarray(8 + len)) ?? b.subarray(8 + len);
  const json = Buffer.from(JSON.stringify(h));
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([lenBuf, json, data]));
}

/** Append a tensor of `values` to a safetensors file. */
function addStTensor(file: string, name: string, shape: number[], values: Float32Array): void {
  editSt(file, (h, data) => {
    h[name] = { dtype: 'F32', shape, data_offsets: [data.length, data.length + values.byteLength] };
    return Buffer.concat([data, Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
  });
}

function editConfig(d: string, edit: Record<string, unknown>): void {
  const f = join(d, 'config.json');
  writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), ...edit }));
}

const withValue = (name: string, i: number, v: number) =>
  TENSORS.map((t) => {
    if (t.name !== name) return t;
    const data = Float32Array.from(t.data);
    data[i] = v;
    return { ...t, data };
  });

describe('non-finite weights', () => {
  it('GGUF: names the tensor and the first bad element, for every dtype', async () => {
    await expectKiln(loadCheckpoint(gguf(llamaGgufMetadata(CFG), withValue('blk.0.attn_q.weight', 5, NaN))), /: tensor "blk\.0\.attn_q\.weight" holds NaN at element 5;/);
    await expectKiln(loadCheckpoint(gguf(llamaGgufMetadata(CFG), withValue('output_norm.weight', 9, -Infinity))), /tensor "output_norm\.weight" holds -Infinity at element 9;/);
    await expectKiln(loadCheckpoint(gguf(llamaGgufMetadata(CFG), withValue('blk.1.ffn_up.weight', 70, Infinity), 'f16')), /tensor "blk\.1\.ffn_up\.weight" holds Infinity at element 70;/);
    await expectKiln(loadCheckpoint(gguf(llamaGgufMetadata(CFG), withValue('blk.1.ffn_up.weight', 3, NaN), 'bf16')), /tensor "blk\.1\.ffn_up\.weight" holds NaN at element 3;/);
    // q8_0: an f16 scale of Inf turns its whole block (elements 64..95 here) non-finite.
    const p = gguf(llamaGgufMetadata(CFG), TENSORS, 'q8_0');
    const b = readFileSync(p);
    await loadCheckpoint(p); // loads before the patch
    const at = b.length - 40 * 64 / 32 * 34 + 2 * 34; // output.weight is last: its third block's scale
    b.writeUInt16LE(0x7c00, at);
    writeFileSync(p, b);
    await expectKiln(loadCheckpoint(p), /tensor "output\.weight" holds (NaN|Infinity) at element 64;/);
  });

  it('safetensors (by its HF name) and llama2.c', async () => {
    const d = stDir(CFG, withValue('blk.1.ffn_down.weight', 17, NaN));
    await expectKiln(loadCheckpoint(d), /model\.safetensors: tensor "model\.layers\.1\.mlp\.down_proj\.weight" holds NaN at element 17;/);
    const cfg = { vocabSize: 40, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 16 };
    const p = tmp('.bin');
    writeLlama2c(p, cfg, withValue('token_embd.weight', 100, Infinity), true);
    await expectKiln(loadCheckpoint(p), /\.bin: tensor "token_embd\.weight" holds Infinity at element 100;/);
  });
});

describe('tensor data layout', () => {
  it("kiln's own writers' files load (GGUF q8_0 and f32, safetensors single and sharded)", async () => {
    await loadCheckpoint(gguf(llamaGgufMetadata(CFG), TENSORS, 'q8_0'));
    await loadCheckpoint(gguf(llamaGgufMetadata(CFG), TENSORS, 'f32'));
    await loadCheckpoint(stDir());
    const d = tmp('');
    writeSafetensors(d, TENSORS.map((t) => ({ ...t, dtype: 'f16' as const })), CFG, { shardBytes: 20000 });
    await loadCheckpoint(d);
  });

  it('GGUF: a tensor whose offset is not the running, padded sum is refused', async () => {
    const p = gguf(llamaGgufMetadata(CFG));
    const b = readFileSync(p);
    // token_embd.weight is 40·64·4 = 10240 bytes, so blk.0.attn_norm.weight must start at 10240.
    const at = ggufOffsetField(b, 'blk.0.attn_norm.weight', 1);
    expect(b.readBigUInt64LE(at)).toBe(10240n);
    b.writeBigUInt64LE(0n, at); // overlaps token_embd.weight
    writeFileSync(p, b);
    await expectKiln(loadCheckpoint(p), /: tensor "blk\.0\.attn_norm\.weight" data offset is 0, expected 10240 /);
    b.writeBigUInt64LE(10240n + 32n, at); // aligned, in the file, but skips 32 bytes
    writeFileSync(p, b);
    await expectKiln(loadCheckpoint(p), /tensor "blk\.0\.attn_norm\.weight" data offset is 10272, expected 10240 /);
  });

  it('safetensors: overlap, a gap and trailing bytes are refused, naming the tensors', async () => {
    const f = join(stDir(), 'model.safetensors');
    const good = readFileSync(f);
    editSt(f, (h) => {
      h['model.layers.0.post_attention_layernorm.weight']!.data_offsets = [...h['model.layers.0.input_layernorm.weight']!.data_offsets];
    });
    const m = await expectKiln(loadCheckpoint(f), /model\.safetensors: tensors ".*" \(data bytes \d+\.\.\d+\) and ".*" \(data bytes \d+\.\.\d+\) overlap/);
    expect(m).toContain('"model.layers.0.input_layernorm.weight"');
    expect(m).toContain('"model.layers.0.post_attention_layernorm.weight"');

    writeFileSync(f, good);
    editSt(f, (h, data) => {
      for (const v of Object.values(h)) if (v.data_offsets) v.data_offsets = [v.data_offsets[0] + 4, v.data_offsets[1] + 4];
      return Buffer.concat([Buffer.alloc(4), data]);
    });
    await expectKiln(loadCheckpoint(f), /tensor ".*" starts at data byte 4, expected 0 \(right after the header/);

    writeFileSync(f, Buffer.concat([good, Buffer.alloc(8)]));
    await expectKiln(loadCheckpoint(f), /the tensors' data ends at byte \d+ but the file holds \d+ bytes of data \(stray bytes/);
  });
});

describe('tensors the config does not use', () => {
  it('GGUF: a layer past block_count, a misspelt name', async () => {
    await expectKiln(loadCheckpoint(gguf(llamaGgufMetadata({ ...CFG, nLayers: 1 }))), /: unexpected tensor "blk\.1\.attn_norm\.weight": the llama config \(1 layer\) does not use it/);
    const misspelt = TENSORS.map((t) => (t.name === 'output.weight' ? { ...t, name: 'outpuX.weight' } : t));
    await expectKiln(loadCheckpoint(gguf(llamaGgufMetadata(CFG), misspelt)), /unexpected tensor "outpuX\.weight"/);
  });

  it('safetensors: a layer past num_hidden_layers, a bias, an unknown name', async () => {
    const d = stDir({ ...CFG, nLayers: 3 }, seededTensors({ ...CFG, nLayers: 3 }, 2));
    editConfig(d, { num_hidden_layers: 2 });
    await expectKiln(loadCheckpoint(d), /model\.safetensors: unexpected tensor "model\.layers\.2\.[a-z_.]+\.weight"/);

    const e = stDir();
    addStTensor(join(e, 'model.safetensors'), 'model.layers.0.self_attn.q_proj.bias', [64], new Float32Array(64));
    await expectKiln(loadCheckpoint(e), /model\.safetensors: unexpected tensor "model\.layers\.0\.self_attn\.q_proj\.bias"/);
    const g = stDir();
    addStTensor(join(g, 'model.safetensors'), 'model.extra.weight', [4], new Float32Array(4));
    await expectKiln(loadCheckpoint(g), /unexpected tensor "model\.extra\.weight"/);
  });

  it('a tied HF model with a stored lm_head loads without it; rotary inv_freq is still ignored', async () => {
    const tied = { ...CFG, tiedEmbeddings: true };
    const d = stDir(tied, seededTensors(tied, 4));
    const f = join(d, 'model.safetensors');
    addStTensor(f, 'lm_head.weight', [40, 64], new Float32Array(40 * 64).fill(0.5));
    addStTensor(f, 'model.layers.0.self_attn.rotary_emb.inv_freq', [8], new Float32Array(8).fill(1));
    const ck = await loadCheckpoint(d);
    expect(ck.config.tiedEmbeddings).toBe(true);
    expect(ck.tensors.has('output.weight')).toBe(false);
  });
});

describe('config keys that change the maths', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ rope_scaling: { type: 'linear', factor: 2 } }, /"rope_scaling" is \{"type":"linear","factor":2\}; kiln does not support RoPE scaling/],
    [{ attention_bias: true }, /"attention_bias" is true; kiln does not support attention biases/],
    [{ mlp_bias: true }, /"mlp_bias" is true; kiln does not support MLP biases/],
    [{ model_type: 'mistral', sliding_window: 8 }, /"sliding_window" is 8; kiln does not support sliding-window attention/],
    [{ model_type: 'gpt2' }, /"model_type" is "gpt2"; kiln does not support this architecture/],
  ];
  for (const [edit, re] of cases)
    it(`config.json ${JSON.stringify(edit)}`, async () => {
      const d = stDir();
      editConfig(d, edit);
      const m = await expectKiln(loadCheckpoint(d), re);
      expect(m.startsWith(join(d, 'config.json') + ':')).toBe(true);
    });

  it('harmless values still load', async () => {
    const d = stDir();
    editConfig(d, { model_type: 'mistral', sliding_window: 4096, rope_scaling: null, attention_bias: false, mlp_bias: false });
    await loadCheckpoint(d);
    await loadCheckpoint(gguf({ ...llamaGgufMetadata(CFG), 'llama.rope.scaling.type': 'none', 'llama.rope.scaling.factor': typed('f32', 1) }));
  });

  it('GGUF rope scaling', async () => {
    await expectKiln(loadCheckpoint(gguf({ ...llamaGgufMetadata(CFG), 'llama.rope.scaling.type': 'linear' })), /\.gguf: metadata key "llama\.rope\.scaling\.type" is "linear"; kiln does not support RoPE scaling/);
    await expectKiln(loadCheckpoint(gguf({ ...llamaGgufMetadata(CFG), 'llama.rope.scaling.factor': typed('f32', 4) })), /metadata key "llama\.rope\.scaling\.factor" is 4; kiln does not support RoPE scaling/);
  });
});

describe('messages', () => {
  it('GGUF: an embedding length the heads do not divide says so first', async () => {
    const md = { ...llamaGgufMetadata(CFG), 'llama.embedding_length': typed('u32', 66) };
    await expectKiln(loadCheckpoint(gguf(md, [])), /metadata key "llama\.embedding_length" \(66\) must be divisible by "llama\.attention\.head_count" \(4\)$/);
  });

  it('GGUF: kv heads, an odd head dim, a rope base or epsilon out of range, in GGUF keys', async () => {
    const md = llamaGgufMetadata(CFG);
    await expectKiln(loadCheckpoint(gguf({ ...md, 'llama.attention.head_count_kv': typed('u32', 3) }, [])), /"llama\.attention\.head_count" \(4\) must be divisible by "llama\.attention\.head_count_kv" \(3\)$/);
    await expectKiln(loadCheckpoint(gguf({ ...md, 'llama.embedding_length': typed('u32', 12) }, [])), /"llama\.embedding_length" \/ "llama\.attention\.head_count" = 3 is the head dim, which must be even for RoPE$/);
    await expectKiln(loadCheckpoint(gguf({ ...md, 'llama.rope.freq_base': typed('f32', 0.5) }, [])), /"llama\.rope\.freq_base" is 0\.5, expected a number above 1$/);
    await expectKiln(loadCheckpoint(gguf({ ...md, 'llama.attention.layer_norm_rms_epsilon': typed('f32', -1) }, [])), /"llama\.attention\.layer_norm_rms_epsilon" is -1, expected a positive number$/);
  });

  it('GGUF: values shown as they are (NaN, missing, strings once, numbers bare)', async () => {
    const md = llamaGgufMetadata(CFG);
    await expectKiln(loadCheckpoint(gguf({ ...md, 'llama.attention.layer_norm_rms_epsilon': typed('f32', NaN) }, [])), /"llama\.attention\.layer_norm_rms_epsilon" is NaN, expected a number$/);
    await expectKiln(loadCheckpoint(gguf({ ...md, 'llama.attention.head_count': 'four' }, [])), /"llama\.attention\.head_count" is "four", expected a positive integer$/);
    await expectKiln(loadCheckpoint(gguf({ ...md, 'llama.block_count': typed('f32', 2.5) }, [])), /"llama\.block_count" is 2\.5, expected a positive integer$/);
    const { ['general.architecture']: _, ...noArch } = md;
    await expectKiln(loadCheckpoint(gguf(noArch, [])), /"general\.architecture" is missing, expected "llama"$/);
  });

  it('config.json: Infinity and missing keys, and bad values in HF terms', async () => {
    const d = stDir();
    const f = join(d, 'config.json');
    const good = readFileSync(f, 'utf8');
    writeFileSync(f, good.replace(/"hidden_size": ?64/, '"hidden_size": 1e999'));
    await expectKiln(loadCheckpoint(d), /config\.json: "hidden_size" is Infinity, expected a positive integer$/);
    const { vocab_size: _, ...rest } = JSON.parse(good) as Record<string, unknown>;
    writeFileSync(f, JSON.stringify(rest));
    await expectKiln(loadCheckpoint(d), /config\.json: "vocab_size" is missing, expected a positive integer$/);
    writeFileSync(f, good);
    editConfig(d, { num_attention_heads: 5 });
    await expectKiln(loadCheckpoint(d), /config\.json: "hidden_size" \(64\) must be divisible by "num_attention_heads" \(5\)$/);
    writeFileSync(f, good);
    editConfig(d, { num_key_value_heads: 3 });
    await expectKiln(loadCheckpoint(d), /config\.json: "num_attention_heads" \(4\) must be divisible by "num_key_value_heads" \(3\)$/);
  });

  it('a PyTorch zip or pickle is named as such, not as a bad llama2.c file', async () => {
    const zip = tmp('.bin');
    writeFileSync(zip, Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(200)]));
    await expectKiln(loadCheckpoint(zip), /\.bin: not a llama2\.c checkpoint: this is a PyTorch checkpoint .*convert it to safetensors/);
    const pickle = tmp('.bin');
    writeFileSync(pickle, Buffer.from([0x80, 0x02, 0x8a, 0x0a, ...new Array(100).fill(0)]));
    await expectKiln(loadCheckpoint(pickle), /this is a PyTorch checkpoint/);
    const pt = tmp('.pt');
    writeFileSync(pt, Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(200)]));
    await expectKiln(loadCheckpoint(pt), /\.pt: this is a PyTorch checkpoint/);
  });
});

describe('not a checkpoint at all', () => {
  it('an empty file, and a folder named like a GGUF or llama2.c file', async () => {
    const empty = tmp('.gguf');
    writeFileSync(empty, '');
    await expectKiln(loadCheckpoint(empty), /: the file is empty$/);
    for (const ext of ['.gguf', '.bin']) {
      const folder = tmp(ext);
      mkdirSync(folder);
      await expectKiln(loadCheckpoint(folder), ext === '.gguf' ? /: is a folder, not a GGUF file$/ : /: is a folder, not a llama2.c file$/);
    }
  });
});

describe('two counts of the vocabulary', () => {
  it('GGUF: llama.vocab_size that disagrees with the token list is refused', async () => {
    const md = { ...llamaGgufMetadata(CFG, exactSyntheticVocab(CFG.vocabSize)), 'llama.vocab_size': typed('u32', CFG.vocabSize + 1) };
    await expectKiln(loadCheckpoint(gguf(md)), /metadata key "llama\.vocab_size" is 41, but tokenizer\.ggml\.tokens lists 40 tokens$/);
    await loadCheckpoint(gguf(llamaGgufMetadata(CFG, exactSyntheticVocab(CFG.vocabSize))));
  });
});
