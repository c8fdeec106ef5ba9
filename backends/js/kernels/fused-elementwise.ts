/**
 * fused elementwise: a chain (a small DAG) of unary and binary ops, constants and broadcasts
 * computed in one loop over the output. Every operand and array constant is read at its
 * broadcast position in the output's index space, which is right for any elementwise DAG because
 * broadcasting composes; each body node becomes one `const tN = …` per element, in doubles, with
 * i32 nodes wrapped as the interpreter truncates them. Only the final value is rounded to f32.
 */
import type { Dim } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import { type BinaryOp, type FusedBody, type UnaryOp, BINARY_OPS, UNARY_OPS } from '../../../graph/ops.js';
import { jsNum } from '../codegen.js';
import { binaryExpr, broadcastLoop, unaryExpr } from './elementwise.js';
import type { Kernel } from './kernel.js';

const isUnary = (op: string) => (UNARY_OPS as readonly string[]).includes(op);
const isBinary = (op: string) => (BINARY_OPS as readonly string[]).includes(op);

/** Whether the body is made only of what one elementwise loop can compute. */
export function elementwiseForm(body: FusedBody): boolean {
  const out = body.nodes.find((n) => n.id === body.outputs[0]?.value);
  if (!out || out.op === 'input') return false;
  return body.nodes.every((n) => n.op === 'input' || n.op === 'const' || n.op === 'broadcast' || isUnary(n.op) || isBinary(n.op));
}

const constValue = (n: Node, v: number) => (n.type.dtype === 'i32' ? v | 0 : v);

export const fusedElementwiseKernel: Kernel = (c) => {
  const body = c.node.attrs['body'] as FusedBody;
  const outShape = c.node.type.shape;
  const leaves: { v: string; shape: readonly Dim[] }[] = [];
  const leafOf = new Map<number, number>();
  const isScalarConst = (n: Node) => n.op === 'const' && (n.attrs['value'] as number[]).length === 1;
  for (const n of body.nodes) {
    if (n.op === 'input') {
      const i = Number(/^arg(\d+)$/.exec(String(n.attrs['name']))![1]);
      leafOf.set(n.id, leaves.length);
      leaves.push({ v: c.ins[i]!, shape: n.type.shape });
    } else if (n.op === 'const' && !isScalarConst(n)) {
      const vals = (n.attrs['value'] as number[]).map((v) => jsNum(constValue(n, v)));
      const arr = n.type.dtype === 'i32' ? 'Int32Array' : 'Float64Array';
      const name = c.constant(`_k${c.node.id}_${n.id}`, `${arr}.of(${vals.join(', ')})`);
      leafOf.set(n.id, leaves.length);
      leaves.push({ v: name, shape: n.type.shape });
    }
  }
  return broadcastLoop(c, leaves, outShape, (loads, at) => {
    const lines: string[] = loads.map((l, i) => `const x${i} = ${l};`);
    const val = new Map<number, string>();
    for (const n of body.nodes) {
      const leaf = leafOf.get(n.id);
      if (leaf !== undefined) val.set(n.id, `x${leaf}`);
      else if (n.op === 'const') val.set(n.id, jsNum(constValue(n, (n.attrs['value'] as number[])[0]!)));
      else if (n.op === 'broadcast') val.set(n.id, val.get(n.inputs[0]!)!);
      else {
        const [a, b] = n.inputs.map((i) => val.get(i)!);
        const e = isUnary(n.op) ? unaryExpr(n.op as UnaryOp, a!) : binaryExpr(n.op as BinaryOp, a!, b!, n.type.dtype);
        lines.push(`const t${n.id} = ${e};`);
        val.set(n.id, `t${n.id}`);
      }
    }
    lines.push(`${c.out}[${at}] = ${val.get(body.outputs[0]!.value)};`);
    return lines.map((l) => `  ${l}`).join('\n');
  });
};
