/**
 * Small helpers for writing JavaScript source: number literals, size expressions with constants
 * folded, dims as expressions of the run-time symbols, and the nested loop that every
 * broadcasting or permuting kernel walks.
 *
 * Naming rules that keep generated names apart (see `symbolVar`): kernel locals are one or two
 * lowercase letters, optionally followed by digits or `_` (`i`, `ao`, `c00`, `p1_2`); values are
 * `v<id>`; module-level helpers contain an uppercase letter or start with `_`. A dim symbol keeps
 * its own name (`seq`, `pos`) only when it cannot meet any of these.
 */
import type { Dim } from '../../graph/dim.js';

/** A JS literal for a number, NaN, ±Infinity and −0 included; negatives in parentheses. */
export function jsNum(v: number): string {
  if (Object.is(v, -0)) return '(-0)';
  const s = String(v);
  return v < 0 ? `(${s})` : s;
}

const RESERVED = new Set(
  (
    'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in ' +
    'instanceof new null return super switch this throw true try typeof var void while with yield let static await implements interface ' +
    'package private protected public arguments eval undefined globalThis console args dbg run weights inputs symbols state params options ' +
    'error fail model'
  ).split(' '),
);

/** The JS variable holding a dim symbol's value in `run()`. */
export function symbolVar(name: string): string {
  return /^[a-z]{3,}[a-z0-9_]*$/.test(name) && !RESERVED.has(name) ? name : `sym_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

const isLit = (s: string) => /^\(?-?\d+\)?$/.test(s);
const litVal = (s: string) => Number(s.replace(/[()]/g, ''));

/** `a * b * …` with numeric factors folded (and 0 or 1 simplified). */
export function mulExpr(...xs: (string | number)[]): string {
  let c = 1;
  const rest: string[] = [];
  for (const x of xs) {
    const s = String(x);
    if (isLit(s)) c *= litVal(s);
    else rest.push(s);
  }
  if (c === 0) return '0';
  if (rest.length === 0) return jsNum(c);
  const body = rest.join(' * ');
  return c === 1 ? body : `${jsNum(c)} * ${body}`;
}

/** `a + b + …` with numeric terms folded. */
export function addExpr(...xs: (string | number)[]): string {
  let c = 0;
  const rest: string[] = [];
  for (const x of xs) {
    const s = String(x);
    if (isLit(s)) c += litVal(s);
    else rest.push(s);
  }
  if (rest.length === 0) return jsNum(c);
  const body = rest.join(' + ');
  return c === 0 ? body : `${body} + ${jsNum(c)}`;
}

/** Whether an expression is a plain number. */
export function isNumberExpr(s: string): boolean {
  return isLit(s);
}

export function numberOf(s: string): number {
  return litVal(s);
}

/** Wrap a compound expression in parentheses so it can be an operand. */
export function paren(s: string): string {
  return /^[A-Za-z0-9_.$]+$/.test(s) || wrapped(s) ? s : `(${s})`;
}

/** Whether the whole of `s` is one parenthesised group: `(a + b)`, not `(a) + (b)`. */
function wrapped(s: string): boolean {
  if (!s.startsWith('(')) return false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return i === s.length - 1;
  }
  return false;
}

/**
 * A dim as a JS expression: a number, or the symbols' variables (`seq`, `(pos + seq)`), with the
 * symbols fixed by `specialize` written as numbers.
 */
export function dimExpr(d: Dim, specialize: Readonly<Record<string, number>>): string {
  if (typeof d === 'number') return jsNum(d);
  let c = d.offset;
  const terms: string[] = [];
  for (const [s, k] of Object.entries(d.terms)) {
    const fixed = specialize[s];
    if (fixed !== undefined) c += k * fixed;
    else terms.push(k === 1 ? symbolVar(s) : k === -1 ? `-${symbolVar(s)}` : `${k} * ${symbolVar(s)}`);
  }
  if (terms.length === 0) return jsNum(c);
  let s = terms.join(' + ').replace(/\+ -/g, '- ');
  if (c !== 0) s += c < 0 ? ` - ${-c}` : ` + ${c}`;
  return terms.length === 1 && c === 0 && !s.startsWith('-') && !s.includes(' ') ? s : `(${s})`;
}

/** Row-major strides of a shape of dim expressions. */
export function stridesOf(dims: readonly string[]): string[] {
  const out = new Array<string>(dims.length);
  let acc = '1';
  for (let i = dims.length - 1; i >= 0; i--) {
    out[i] = acc;
    acc = mulExpr(acc, paren(dims[i]!));
  }
  return out;
}

export function productOf(dims: readonly string[]): string {
  return mulExpr(...dims.map(paren));
}

/** Indent every line of `code` by `n` spaces. */
export function indent(code: string, n = 2): string {
  const pad = ' '.repeat(n);
  return code
    .split('\n')
    .map((l) => (l.length > 0 ? pad + l : l))
    .join('\n');
}

/**
 * Nested loops over the output index space `dims` (row-major; the output is written in order,
 * its position in `o`, advanced after each body). Each operand has one stride per output dim ('0' where it broadcasts);
 * `body` gets the operands' flat positions as expressions. Unit and zero strides are written
 * without multiplications; dims of static size 1 get no loop.
 */
export function loopNest(dims: readonly string[], strides: readonly (readonly string[])[], body: (offs: string[]) => string): string {
  const levels = dims.map((_, i) => i).filter((i) => dims[i] !== '1');
  let offs = strides.map(() => '0');
  const open: string[] = [];
  const close: string[] = [];
  levels.forEach((lv, depth) => {
    const iv = `i${depth}`;
    const next = strides.map((s, j) => {
      const st = s[lv]!;
      if (st === '0') return offs[j]!;
      return addExpr(offs[j]!, mulExpr(iv, paren(st)));
    });
    const innermost = depth === levels.length - 1;
    const decls = innermost ? [] : next.map((e, j) => (e === offs[j] ? undefined : `p${j}_${depth} = ${e}`)).filter((x) => x !== undefined);
    open.push(`${'  '.repeat(depth)}for (let ${iv} = 0; ${iv} < ${dims[lv]}; ${iv}++) {${decls.length ? ` const ${decls.join(', ')};` : ''}`);
    close.unshift(`${'  '.repeat(depth)}}`);
    offs = innermost ? next : next.map((e, j) => (e === offs[j] ? e : `p${j}_${depth}`));
  });
  const inner = indent(`${body(offs)}\no++;`, 2 * levels.length);
  return ['let o = 0;', ...open, inner, ...close].join('\n');
}
