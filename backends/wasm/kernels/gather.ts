/** gather: one row copy per index; an index outside [0, V) fails the run (K1017). */
import { FAIL, type WasmKernel } from './kernel.js';

export const gatherKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const tshape = c.types[0]!.shape;
  const row = () => c.numel(tshape.slice(1));
  const [i, v] = [f.local(b.i32), f.local(b.i32)];
  const bytesAt = (base: Expr, k: Expr) => m.i32.add(base, m.i32.shl(m.i32.mul(k, row()), m.i32.const(2)));
  return [
    f.for(i, m.i32.const(0), () => c.numel(c.types[1]!.shape), 1, [
      f.set(v, m.i32.load(0, 4, m.i32.add(c.in(1), m.i32.shl(f.get(i), m.i32.const(2))))),
      m.if(m.i32.ge_u(f.get(v), c.dim(tshape[0]!)), c.fail(FAIL.gatherIndex, f.get(v), f.get(i), c.dim(tshape[0]!))),
      m.memory.copy(bytesAt(c.out(), f.get(i)), bytesAt(c.in(0), f.get(v)), m.i32.shl(row(), m.i32.const(2))),
    ]),
  ];
};
type Expr = number;
