/**
 * fused elementwise: the body's DAG of unary and binary ops, constants and broadcasts computed
 * per element in one loop nest over the output, every leaf (operand or array constant) read at
 * its broadcast position. Each body node is one local (f64 for f32, i32 for i32, as in the
 * unfused kernels); only the result is stored.
 */
import type { Dim } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import { type BinaryOp, type FusedBody, type UnaryOp, BINARY_OPS, UNARY_OPS } from '../../../graph/ops.js';
import type { Expr } from '../fn.js';
import { binaryF64, binaryI32, broadcastStrides, elemAt, loadAs, nest, storeAs, unaryF64 } from './elementwise.js';
import type { WasmKernel } from './kernel.js';

const isUnary = (op: string) => (UNARY_OPS as readonly string[]).includes(op);

export const fusedElementwiseKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const body = c.node.attrs['body'] as FusedBody;
  const outShape = c.node.type.shape;
  const leaves: { at: () => Expr; shape: readonly Dim[]; dtype: string }[] = [];
  const leafOf = new Map<number, number>();
  const scalar = (n: Node) => n.op === 'const' && (n.attrs['value'] as number[]).length === 1;
  for (const n of body.nodes) {
    if (n.op === 'input') {
      const i = Number(/^arg(\d+)$/.exec(String(n.attrs['name']))![1]);
      leafOf.set(n.id, leaves.length);
      leaves.push({ at: () => c.in(i), shape: n.type.shape, dtype: n.type.dtype });
    } else if (n.op === 'const' && !scalar(n)) {
      const addr = c.constData(n.attrs['value'] as number[], n.type.dtype);
      leafOf.set(n.id, leaves.length);
      leaves.push({ at: () => m.i32.const(addr), shape: n.type.shape, dtype: n.type.dtype });
    }
  }
  const strides = [...leaves.map((l) => broadcastStrides(l.shape, outShape)), broadcastStrides(outShape, outShape)];
  return nest(c, outShape, strides, (offs) => {
    const code: Expr[] = [];
    const local = new Map<number, number>();
    const ty = (n: Node) => (n.type.dtype === 'i32' ? b.i32 : b.f64);
    for (const n of body.nodes) {
      if (n.op === 'broadcast') {
        local.set(n.id, local.get(n.inputs[0]!)!);
        continue;
      }
      const l = f.local(ty(n));
      local.set(n.id, l);
      const leaf = leafOf.get(n.id);
      let v: Expr;
      if (leaf !== undefined) v = loadAs(c, leaves[leaf]!.dtype, elemAt(c, leaves[leaf]!.at(), offs[leaf]!));
      else if (n.op === 'const') {
        const x = (n.attrs['value'] as number[])[0]!;
        v = n.type.dtype === 'i32' ? m.i32.const(x | 0) : m.f64.const(x);
      } else {
        const [x, y] = n.inputs.map((i) => f.at(local.get(i)!));
        if (isUnary(n.op)) v = unaryF64(c, n.op as UnaryOp, x!);
        else v = n.type.dtype === 'i32' ? binaryI32(c, n.op as BinaryOp, x!, y!) : binaryF64(c, n.op as BinaryOp, x!, y!);
        void BINARY_OPS;
      }
      code.push(f.set(l, v));
    }
    code.push(storeAs(c, c.node.type.dtype, elemAt(c, c.out(), offs[leaves.length]!), f.get(local.get(body.outputs[0]!.value)!)));
    return code;
  });
};
