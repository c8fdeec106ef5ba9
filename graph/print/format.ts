import { type Dim, dimSymbols, dimToString } from '../dim.js';
import type { SourceLoc } from '../errors.js';
import type { Graph, Node } from '../graph.js';
import { type AttrValue, type FusedBody, OPS } from '../ops.js';

/**
 * The small pieces every printer shares: how a float, an attribute list, a source position and
 * the symbols of a graph are written. Text and DOT must agree on these, so they live here once.
 */

/** `1e-5`, `0.5`, `10000`, `-inf`, `nan`: short, and exact (JavaScript's shortest round-trip form). */
export function formatFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Object.is(x, -0)) return '-0';
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e7) ? x.toExponential() : String(x);
}

const SHOWN_VALUES = 6;

function formatValue(kind: string, v: AttrValue): string {
  switch (kind) {
    case 'dim':
      return dimToString(v as Dim);
    case 'dims':
      return `[${(v as Dim[]).map(dimToString).join(', ')}]`;
    case 'ints':
      return `[${(v as number[]).join(', ')}]`;
    case 'floats': {
      const xs = v as number[];
      if (xs.length === 1) return formatFloat(xs[0]!);
      const shown = xs.slice(0, SHOWN_VALUES).map(formatFloat);
      return xs.length > SHOWN_VALUES ? `[${shown.join(', ')}, … ${xs.length} values]` : `[${shown.join(', ')}]`;
    }
    case 'float':
      return formatFloat(v as number);
    case 'string':
      return JSON.stringify(v);
    case 'graph': {
      const n = (v as FusedBody).nodes.length;
      return `(${n} node${n === 1 ? '' : 's'})`;
    }
    default:
      return String(v);
  }
}

/** Source ops carry their dtype and shape as attributes; the printed type already says both. */
function redundant(n: Node, key: string): boolean {
  return n.inputs.length === 0 && (key === 'dtype' || key === 'shape');
}

/**
 * `{axis=-1}`, `{transB}`, `{shape=[seq, 4, 16]}` in the order the op table declares them; true
 * flags by name only, false flags left out. A source's `name` and a const's `value` are returned
 * separately, as they read better in the operand position (`param "wq"`, `const 0.5`). A graph
 * attribute (a fused op's body) shows as its node count, or not at all with `bodies: false` (the
 * text dump prints bodies in full under the node).
 */
export function formatAttrs(n: Node, bodies = true): { lead: string; attrs: string } {
  const def = OPS[n.op];
  const kinds: Record<string, string> = { ...def.attrs };
  let lead = '';
  const parts: string[] = [];
  const keys = [...Object.keys(def.attrs), ...Object.keys(n.attrs).filter((k) => !(k in def.attrs))];
  for (const k of keys) {
    const v = n.attrs[k];
    if (v === undefined || redundant(n, k)) continue;
    const kind = kinds[k] ?? 'unknown';
    if (kind === 'graph' && !bodies) continue;
    if ((k === 'name' && kind === 'string' && n.inputs.length === 0) || (n.op === 'const' && k === 'value')) {
      lead = formatValue(kind, v);
    } else if (kind === 'bool') {
      if (v === true) parts.push(k);
    } else parts.push(`${k}=${formatValue(kind, v)}`);
  }
  return { lead, attrs: parts.length ? `{${parts.join(', ')}}` : '' };
}

/** `%12 = matmul %10, %11 {transB}`. */
export function formatOp(n: Node, bodies = true): string {
  const { lead, attrs } = formatAttrs(n, bodies);
  const operands = [lead, n.inputs.map((i) => `%${i}`).join(', ')].filter((s) => s !== '').join(' ');
  return [`%${n.id} = ${n.op}`, operands, attrs].filter((s) => s !== '').join(' ');
}

/** `examples/llama.ts(57,13)`, as compilers print positions. */
export function formatLoc(loc: SourceLoc | undefined): string {
  return loc ? `${loc.file}(${loc.line},${loc.col})` : '';
}

/** Every dim symbol the graph mentions, in types, in dim attributes or in bodies, sorted. */
export function graphSymbols(g: Graph | FusedBody): string[] {
  const syms = new Set<string>();
  const addDims = (ds: readonly Dim[]) => ds.forEach((d) => dimSymbols(d).forEach((s) => syms.add(s)));
  for (const n of g.nodes) {
    addDims(n.type.shape);
    for (const [k, kind] of Object.entries(OPS[n.op].attrs)) {
      const v = n.attrs[k];
      if (v === undefined) continue;
      if (kind === 'dim') addDims([v as Dim]);
      if (kind === 'dims') addDims(v as Dim[]);
      if (kind === 'graph') graphSymbols(v as FusedBody).forEach((s) => syms.add(s));
    }
  }
  return [...syms].sort();
}
