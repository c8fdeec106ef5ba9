/**
 * Which attention scores a causal softmax reads only in part. A fused rope_qk whose one reader
 * (through reshapes that keep the last axis) is a fused causal_softmax has row r of each block
 * read up to column (r mod rows) + offset only, so its kernel may leave the columns after that:
 * in a prefill of n tokens, half the scores. Not with per-node checks (`debugValues`), which read
 * every score.
 */
import { type Dim, dimEq } from '../../graph/dim.js';
import type { Node } from '../../graph/graph.js';
import type { FusedBody } from '../../graph/ops.js';
import { causalSoftmaxForm } from '../js/kernels/fused-causal-softmax.js';

/**
 * Back from `x` through reshapes that keep the last axis (and, with `ok`, are read only by the
 * node after them): the node reached, and its reader on the way.
 */
function throughReshapes(byId: ReadonlyMap<number, Node>, x: Node | undefined, reader = -1, ok: (id: number, reader: number) => boolean = () => true): { node: Node | undefined; reader: number } {
  while (x?.op === 'reshape' && ok(x.id, reader) && dimEq(x.type.shape.at(-1)!, byId.get(x.inputs[0]!)?.type.shape.at(-1) ?? -1)) {
    reader = x.id;
    x = byId.get(x.inputs[0]!);
  }
  return { node: x, reader };
}

export interface CausalRows {
  /** Rows per block of the softmax's input ([…, rows, T]): a score row's place in its block is r mod rows. */
  readonly rows: Dim;
  /** The causal mask's offset: row i keeps columns 0 … i + offset. */
  readonly offset: Dim;
}

/**
 * Matmuls whose a operand is a causal softmax's output (through reshapes that keep the last
 * axis): row r holds zeros after column (r mod rows) + offset, which the wasm kernel writes, so
 * mm_nn may stop each row's sum there (a + 0·v is a, for finite v).
 */
export function causalZeros(nodes: readonly Node[]): Map<number, CausalRows> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const found = new Map<number, CausalRows>();
  for (const mm of nodes) {
    if (mm.op !== 'matmul' || mm.attrs['transB'] === true) continue;
    const x = throughReshapes(byId, byId.get(mm.inputs[0]!)).node;
    if (x?.op !== 'fused' || x.attrs['pattern'] !== 'causal_softmax') continue;
    const form = causalSoftmaxForm(x.attrs['body'] as FusedBody);
    const rows = x.type.shape.at(-2);
    if (form && rows !== undefined) found.set(mm.id, { rows, offset: form.offset });
  }
  return found;
}

export function causalRows(nodes: readonly Node[], outputs: ReadonlySet<number>): Map<number, CausalRows> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const readers = new Map<number, number[]>();
  for (const n of nodes) for (const i of n.inputs) readers.set(i, [...(readers.get(i) ?? []), n.id]);
  const onlyReader = (id: number, reader: number) => !outputs.has(id) && readers.get(id)?.length === 1 && readers.get(id)![0] === reader;
  const found = new Map<number, CausalRows>();
  for (const sm of nodes) {
    if (sm.op !== 'fused' || sm.attrs['pattern'] !== 'causal_softmax') continue;
    const form = causalSoftmaxForm(sm.attrs['body'] as FusedBody);
    if (!form) continue;
    const start = byId.get(sm.inputs[form.x]!);
    const [rows, T] = [start?.type.shape.at(-2), start?.type.shape.at(-1)];
    if (rows === undefined || T === undefined) continue;
    const { node: x, reader } = throughReshapes(byId, start, sm.id, onlyReader);
    if (x?.op === 'fused' && x.attrs['pattern'] === 'rope_qk' && onlyReader(x.id, reader) && dimEq(x.type.shape.at(-1)!, T)) found.set(x.id, { rows, offset: form.offset });
  }
  return found;
}
