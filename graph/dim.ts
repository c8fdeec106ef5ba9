/**
 * Dimensions: a number, a symbol (`seq`), or a small linear expression of symbols
 * (`pos + seq`, `2*seq + 1`). Dims are plain data so that graphs serialise as JSON.
 *
 * A symbolic dim is `{ terms: { sym: coefficient }, offset }`; `normalize` turns one without
 * terms back into a number, so `dimEq` can compare structurally.
 */
export interface SymDim {
  readonly terms: Readonly<Record<string, number>>;
  readonly offset: number;
}
export type Dim = number | SymDim;

const SYM_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isSymbolName(s: string): boolean {
  return SYM_RE.test(s);
}

export function sym(name: string): Dim {
  if (!isSymbolName(name)) throw new Error(`invalid dim symbol '${name}'`);
  return { terms: { [name]: 1 }, offset: 0 };
}

function normalize(terms: Record<string, number>, offset: number): Dim {
  const t: Record<string, number> = {};
  for (const k of Object.keys(terms).sort()) if (terms[k] !== 0) t[k] = terms[k]!;
  return Object.keys(t).length === 0 ? offset : { terms: t, offset };
}

function parts(d: Dim): { terms: Record<string, number>; offset: number } {
  return typeof d === 'number' ? { terms: {}, offset: d } : { terms: { ...d.terms }, offset: d.offset };
}

export function dimAdd(a: Dim, b: Dim): Dim {
  const pa = parts(a);
  const pb = parts(b);
  for (const [k, v] of Object.entries(pb.terms)) pa.terms[k] = (pa.terms[k] ?? 0) + v;
  return normalize(pa.terms, pa.offset + pb.offset);
}

export function dimSub(a: Dim, b: Dim): Dim {
  return dimAdd(a, dimScale(b, -1));
}

export function dimScale(a: Dim, k: number): Dim {
  const p = parts(a);
  for (const s of Object.keys(p.terms)) p.terms[s] = p.terms[s]! * k;
  return normalize(p.terms, p.offset * k);
}

export function isStatic(d: Dim): d is number {
  return typeof d === 'number';
}

export function dimEq(a: Dim, b: Dim): boolean {
  return dimToString(a) === dimToString(b);
}

/** The symbols a dim mentions. */
export function dimSymbols(d: Dim): string[] {
  return typeof d === 'number' ? [] : Object.keys(d.terms);
}

/** Evaluate with concrete symbol values; throws naming the missing symbol. */
export function evalDim(d: Dim, env: Readonly<Record<string, number>>): number {
  if (typeof d === 'number') return d;
  let v = d.offset;
  for (const [s, k] of Object.entries(d.terms)) {
    const x = env[s];
    if (x === undefined) throw new Error(`no value given for dim symbol '${s}'`);
    v += k * x;
  }
  return v;
}

/** `pos + seq`, `2*seq - 1`, `4096`. Parsed back by `parseDim`. */
export function dimToString(d: Dim): string {
  if (typeof d === 'number') return String(d);
  let s = '';
  for (const [name, k] of Object.entries(d.terms)) {
    const mag = Math.abs(k);
    const term = mag === 1 ? name : `${mag}*${name}`;
    if (s === '') s = k < 0 ? `-${term}` : term;
    else s += k < 0 ? ` - ${term}` : ` + ${term}`;
  }
  if (d.offset !== 0) s += d.offset < 0 ? ` - ${-d.offset}` : ` + ${d.offset}`;
  return s;
}

/** Parse `pos + seq`, `2*seq - 1`, `seq`, `12`. Returns undefined when it is not a dim. */
export function parseDim(src: string): Dim | undefined {
  // Whitespace may separate terms and operators, never split a name or a number.
  if (/[A-Za-z0-9_]\s+[A-Za-z0-9_]/.test(src)) return undefined;
  const text = src.replace(/\s+/g, '');
  if (text === '') return undefined;
  const re = /([+-]?)(?:(\d+)\*)?([A-Za-z_][A-Za-z0-9_]*)|([+-]?)(\d+)/y;
  let acc: Dim = 0;
  let i = 0;
  let first = true;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return undefined;
    const sign = (m[1] ?? m[4]) === '-' ? -1 : 1;
    if (!first && !(m[1] || m[4])) return undefined;
    if (m[3] !== undefined) acc = dimAdd(acc, dimScale(sym(m[3]), sign * (m[2] ? Number(m[2]) : 1)));
    else acc = dimAdd(acc, sign * Number(m[5]));
    i = re.lastIndex;
    first = false;
  }
  return acc;
}

/**
 * Whether two products of dims are equal for every value of the symbols. Products of linear
 * expressions are polynomials; comparing them at a few fixed, unrelated points decides equality
 * (two distinct polynomials of this degree agree at all of them only by accident, and the points
 * are chosen to make that impossible for the degrees seen in shapes).
 */
export function productEq(a: readonly Dim[], b: readonly Dim[]): boolean {
  const syms = new Set([...a, ...b].flatMap(dimSymbols));
  const points = [7919, 104729, 1299709];
  for (let p = 0; p < points.length; p++) {
    const env: Record<string, number> = {};
    let j = 0;
    for (const s of [...syms].sort()) env[s] = points[p]! + 31 * ++j * (p + 1);
    const prod = (ds: readonly Dim[]) => ds.reduce<bigint>((acc, d) => acc * BigInt(evalDim(d, env)), 1n);
    if (prod(a) !== prod(b)) return false;
  }
  return true;
}

export function shapeToString(shape: readonly Dim[]): string {
  return `[${shape.map(dimToString).join(', ')}]`;
}
