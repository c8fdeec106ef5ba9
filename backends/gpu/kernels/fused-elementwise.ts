/**
 * fused elementwise: a body of unary/binary ops (and single-valued consts) computed per element
 * in one kernel, its operands broadcast against the result. A body not of that form runs as its
 * decomposition (see index.ts).
 */
import type { FusedBody } from '../../../graph/ops.js';
import { BINARY_OPS, UNARY_OPS } from '../../../graph/ops.js';
import { typeEq } from '../../../graph/types.js';
import { binaryExpr, broadcastPrelude, operandIndex, unaryExpr } from './elementwise.js';
import type { GpuKernel } from './kernel.js';
import { lit } from './kernel.js';

const EW = new Set<string>([...UNARY_OPS, ...BINARY_OPS]);

export function elementwiseForm(body: FusedBody): boolean {
  const out = body.nodes.find((n) => n.id === body.outputs[0]?.value);
  if (!out || out.op === 'input') return false;
  return body.nodes.every((n) => {
    if (n.op === 'input') return true;
    if (n.op === 'const') return (n.attrs['value'] as number[]).length === 1 && Number.isFinite((n.attrs['value'] as number[])[0]);
    return EW.has(n.op) && typeEq(n.type, out.type);
  });
}

export const fusedElementwiseKernel: GpuKernel = (c) => {
  const body = c.node.attrs['body'] as FusedBody;
  const { code, dims, vars } = broadcastPrelude(c);
  const lines = [code];
  const name = new Map<number, string>();
  for (const n of body.nodes) {
    const v = `b${n.id}`;
    name.set(n.id, v);
    if (n.op === 'input') {
      const j = Number(/^arg(\d+)$/.exec(String(n.attrs['name']))![1]);
      lines.push(`let ${v} = ${c.ins[j]}[${operandIndex(c, j, dims, vars)}];`);
    } else if (n.op === 'const') lines.push(`let ${v} = ${lit((n.attrs['value'] as number[])[0]!)};`);
    else if (n.inputs.length === 1) lines.push(`let ${v} = ${unaryExpr(n.op, name.get(n.inputs[0]!)!)};`);
    else lines.push(`let ${v} = ${binaryExpr(n.op, name.get(n.inputs[0]!)!, name.get(n.inputs[1]!)!, n.type.dtype === 'i32')};`);
  }
  lines.push(`return ${name.get(body.outputs[0]!.value)};`);
  return lines.join('\n');
};
