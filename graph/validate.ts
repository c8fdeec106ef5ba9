import { KilnError, ShapeError } from './errors.js';
import type { Graph } from './graph.js';
import { OPS, attrMatches, attrProblem, isOpKind } from './ops.js';
import { type TensorType, typeEq, typeToString } from './types.js';

/**
 * Checks the invariants every pass must keep: known ops with the right operand count and
 * attributes, single assignment (each id defined once), topological order (operands defined
 * before use), every recorded type equal to what the op's shape rule infers, outputs that exist,
 * and source names (inputs, params, state) that are unique. Throws `KilnError` K1015 naming the
 * value and its scope.
 */
export function validate(g: Graph): void {
  const types = new Map<number, TensorType>();
  const sourceNames = new Map<string, number>();
  for (const n of g.nodes) {
    const where = `graph ${g.name}: %${n.id}${n.scope ? ` (${n.scope})` : ''}`;
    const bad = (msg: string): never => {
      throw new KilnError('K1015', `${where}: ${msg}`, n.loc);
    };
    if (!isOpKind(n.op)) bad(`unknown op '${String(n.op)}'`);
    if (types.has(n.id)) bad(`value defined twice (single assignment)`);
    const def = OPS[n.op];
    if (def.arity === 'variadic' ? n.inputs.length < 1 : n.inputs.length !== def.arity)
      bad(`${n.op} takes ${def.arity === 'variadic' ? 'one or more' : def.arity} operand(s), got ${n.inputs.length}`);
    const ins: TensorType[] = [];
    for (const i of n.inputs) {
      const t = types.get(i);
      if (!t) bad(`operand %${i} is not defined before use (topological order)`);
      ins.push(t!);
    }
    for (const [k, kind] of Object.entries(def.attrs)) {
      const v = n.attrs[k];
      if (v === undefined) {
        if (!def.optional?.includes(k)) bad(`${n.op} is missing attribute '${k}'`);
      } else if (!attrMatches(kind, v)) bad(`${n.op} attribute '${k}' ${attrProblem(kind, v)}`);
    }
    for (const k of Object.keys(n.attrs)) if (!(k in def.attrs)) bad(`${n.op} has unknown attribute '${k}'`);
    let inferred: TensorType;
    try {
      inferred = def.infer(ins, n.attrs);
    } catch (e) {
      if (e instanceof ShapeError) bad(e.message);
      throw e;
    }
    if (!typeEq(inferred!, n.type)) bad(`recorded type ${typeToString(n.type)} differs from inferred ${typeToString(inferred!)}`);
    if (n.op === 'input' || n.op === 'param' || n.op === 'state') {
      const key = `${n.op}:${String(n.attrs['name'])}`;
      if (sourceNames.has(key)) bad(`${n.op} '${String(n.attrs['name'])}' is declared twice (also %${sourceNames.get(key)})`);
      sourceNames.set(key, n.id);
    }
    types.set(n.id, n.type);
  }
  const outNames = new Set<string>();
  for (const o of g.outputs) {
    if (!types.has(o.value)) throw new KilnError('K1015', `graph ${g.name}: output '${o.name}' refers to undefined value %${o.value}`);
    if (outNames.has(o.name)) throw new KilnError('K1015', `graph ${g.name}: output '${o.name}' is declared twice`);
    outNames.add(o.name);
  }
}
