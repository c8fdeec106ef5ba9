/**
 * `kiln convert IN OUT`: any readable checkpoint to GGUF (OUT ends in .gguf) or safetensors
 * (OUT ends in .safetensors, or is a directory). Stored bytes are copied as they are wherever
 * the target can hold the dtype, so a round trip gives identical tensors; the only re-encoding
 * is q8_0 → f32 for safetensors, which has no q8_0 (exact: every q8_0 value is an f32).
 * RoPE: GGUF is Meta's interleaved layout, safetensors HF's rotate-half; q/k rows are permuted
 * per head on the way (see hf-names.ts).
 */
import { KilnError } from '../../graph/errors.js';
import { type Checkpoint, loadCheckpoint, type LoadOptions } from './checkpoint.js';
import { checkConfig, expectedShapes } from './consistency.js';
import { writeGguf, llamaGgufMetadata } from './gguf-write.js';
import { permuteRopeRows, ropeHeads } from './hf-names.js';
import { writeSafetensors } from './safetensors-write.js';

/** Tensors in the llama order (embedding, layers, head), then anything else the file had. */
function ordered(ck: Checkpoint) {
  const order = [...expectedShapes(checkConfig(ck.file, ck.config)).keys()].filter((n) => ck.tensors.has(n));
  const rest = [...ck.tensors.keys()].filter((n) => !order.includes(n));
  return [...order, ...rest].map((n) => ck.tensors.get(n)!);
}

export function writeCheckpointGguf(ck: Checkpoint, out: string): void {
  const c = checkConfig(ck.file, ck.config);
  const tensors = ordered(ck).map((t) => {
    const heads = ropeHeads(t.name, c.nHeads, c.nKvHeads);
    const bytes = heads !== undefined && c.ropeLayout === 'half' ? permuteRopeRows(t.bytes, t.shape[0]!, heads, 'interleaved') : t.bytes;
    return { name: t.name, dtype: t.dtype, shape: t.shape, bytes };
  });
  writeGguf(out, { metadata: llamaGgufMetadata({ ...ck.config, ropeLayout: 'interleaved' }, ck.tokenizer), tensors });
}

/** Returns the paths written: the weights, then config.json (see writeSafetensors). */
export function writeCheckpointSafetensors(ck: Checkpoint, out: string): string[] {
  const tensors = ordered(ck).map((t) =>
    t.dtype === 'q8_0' ? { name: t.name, dtype: 'f32' as const, shape: t.shape, data: t.toFloat32() } : { name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes },
  );
  // permutes q/k when the config is interleaved; the tokenizer goes beside as tokenizer.json
  return writeSafetensors(out, tensors, ck.config, ck.tokenizer ? { tokenizer: ck.tokenizer } : {});
}

export async function convert(inPath: string, outPath: string, opts: LoadOptions = {}): Promise<Checkpoint> {
  const lower = outPath.toLowerCase();
  const to = lower.endsWith('.gguf') ? 'gguf' : lower.endsWith('.safetensors') || !/\.[a-z0-9]+$/.test(lower) ? 'safetensors' : undefined;
  if (!to) throw new KilnError('K1016', `convert: cannot tell the output format of '${outPath}' (use .gguf, .safetensors, or a directory for safetensors)`);
  const ck = await loadCheckpoint(inPath, opts);
  if (to === 'gguf') writeCheckpointGguf(ck, outPath);
  else writeCheckpointSafetensors(ck, outPath);
  return ck;
}
