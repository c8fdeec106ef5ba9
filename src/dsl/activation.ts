import { readFileSync } from 'node:fs';
import * as acorn from 'acorn';
import { KilnError, type SourceLoc } from '../../graph/errors.js';
import type { BinaryOp, UnaryOp } from '../../graph/ops.js';
import { absoluteLoc, userSite } from '../../graph/source.js';
import { scalar } from './ops.js';
import type { Names, Tensor } from './tensor.js';

/**
 * Custom activations written as plain arrows, `x => x * sigmoid(1.702 * x)`. The arrow's source
 * (`fn.toString()`) is parsed with acorn into a small expression tree, then emitted as IR
 * elementwise ops. The parameter's name is read from the AST (a bundler may have renamed it).
 * Anything else — a ternary, a closure variable, a loop — is a K1011 error at the spot inside
 * the arrow in the user's file.
 */
export type ActExpr =
  | { readonly kind: 'param' }
  | { readonly kind: 'num'; readonly value: number }
  | { readonly kind: 'unary'; readonly op: UnaryOp; readonly arg: ActExpr }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly a: ActExpr; readonly b: ActExpr };

export interface Activation {
  /** The function's source text, as the runtime prints it. */
  readonly source: string;
  readonly param: string;
  readonly expr: ActExpr;
}

const UNARY_CALLS: Readonly<Record<string, UnaryOp>> = {
  exp: 'exp', log: 'log', sqrt: 'sqrt', rsqrt: 'rsqrt', sin: 'sin', cos: 'cos', tanh: 'tanh',
  sigmoid: 'sigmoid', relu: 'relu', silu: 'silu', gelu: 'gelu', abs: 'abs',
};
const BINARY_CALLS: Readonly<Record<string, BinaryOp>> = { max: 'max', min: 'min', pow: 'pow' };
const OPERATORS: Readonly<Record<string, BinaryOp>> = { '+': 'add', '-': 'sub', '*': 'mul', '/': 'div', '**': 'pow' };
const MATH_CONSTANTS: Readonly<Record<string, number>> = { PI: Math.PI, E: Math.E };

export const SUPPORTED_ACTIVATION_SYNTAX =
  'one parameter, numbers, + - * / **, unary -, parentheses, and calls to ' +
  [...Object.keys(UNARY_CALLS), ...Object.keys(BINARY_CALLS)].join('/') +
  ' (also as Math.*)';

type AnyNode = acorn.Node & Record<string, any>;

/** Parse `fn` now; `site` is where the user handed it to kiln (errors are placed from there). */
export function parseActivation(fn: (x: number) => number, site: SourceLoc | undefined = userSite()): Activation {
  const source = fn.toString();
  let root: AnyNode;
  try {
    root = acorn.parseExpressionAt(source, 0, { ecmaVersion: 'latest' }) as AnyNode;
  } catch {
    throw new KilnError('K1011', `cannot parse activation as an arrow function: ${clip(source)}; supported: ${SUPPORTED_ACTIVATION_SYNTAX}`, site);
  }
  const unsupported = (n: AnyNode, why = ''): never => {
    const at = locate(site, source, n);
    const text = clip(at?.text ?? source.slice(n.start, n.end));
    throw new KilnError('K1011', `unsupported syntax in activation: ${n.type} (${text})${why}; supported: ${SUPPORTED_ACTIVATION_SYNTAX}`, at?.loc);
  };
  if (root.type !== 'ArrowFunctionExpression') unsupported(root, ': write an arrow function, x => …');
  const params = root['params'] as AnyNode[];
  if (params.length !== 1 || params[0]!.type !== 'Identifier') unsupported(root, ': the arrow takes exactly one plain parameter');
  const param = params[0]!['name'] as string;
  let body = root['body'] as AnyNode;
  if (body.type === 'BlockStatement') {
    const stmts = body['body'] as AnyNode[];
    const bad = stmts.find((s) => s.type !== 'ReturnStatement') ?? (stmts.length !== 1 ? body : undefined);
    if (bad) unsupported(bad, ': a block body may only hold one return statement');
    body = (stmts[0] as AnyNode)['argument'] ?? unsupported(stmts[0] as AnyNode);
  }

  const calleeName = (c: AnyNode): string | undefined => {
    if (c.type === 'Identifier') return c['name'];
    // `Math.exp`, or an import namespace (`kiln.exp`, and how test runners rewrite imports)
    if (c.type === 'MemberExpression' && !c['computed'] && c['object'].type === 'Identifier') return c['property']['name'];
    // `(0, ns.exp)(x)`: how bundlers call imported functions
    if (c.type === 'SequenceExpression' && c['expressions'].length === 2) return calleeName(c['expressions'][1]);
    return undefined;
  };

  const walk = (n: AnyNode): ActExpr => {
    switch (n.type) {
      case 'Identifier':
        if (n['name'] === param) return { kind: 'param' };
        return unsupported(n, `: only the parameter ${param} may be named (no closure variables)`);
      case 'Literal':
        if (typeof n['value'] === 'number') return { kind: 'num', value: n['value'] };
        return unsupported(n);
      case 'MemberExpression':
        if (!n['computed'] && n['object'].type === 'Identifier' && n['object'].name === 'Math' && n['property'].name in MATH_CONSTANTS)
          return { kind: 'num', value: MATH_CONSTANTS[n['property'].name]! };
        return unsupported(n);
      case 'UnaryExpression': {
        if (n['operator'] !== '-' && n['operator'] !== '+') return unsupported(n);
        const arg = walk(n['argument']);
        if (n['operator'] === '+') return arg;
        return arg.kind === 'num' ? { kind: 'num', value: -arg.value } : { kind: 'unary', op: 'neg', arg };
      }
      case 'BinaryExpression': {
        const op = OPERATORS[n['operator']];
        if (!op) return unsupported(n);
        return { kind: 'binary', op, a: walk(n['left']), b: walk(n['right']) };
      }
      case 'CallExpression': {
        const name = calleeName(n['callee']);
        const args = n['arguments'] as AnyNode[];
        const u = name === undefined ? undefined : UNARY_CALLS[name];
        const b = name === undefined ? undefined : BINARY_CALLS[name];
        if (!u && !b) return unsupported(n);
        const want = u ? 1 : 2;
        if (args.length !== want) return unsupported(n, `: ${name} takes ${want} argument${want === 1 ? '' : 's'}`);
        return u ? { kind: 'unary', op: u, arg: walk(args[0]!) } : { kind: 'binary', op: b!, a: walk(args[0]!), b: walk(args[1]!) };
      }
      default:
        return unsupported(n);
    }
  };
  return { source, param, expr: walk(body) };
}

/** Emit the activation as elementwise ops on `x`, left to right. */
export function applyActivation<S extends Names>(act: Activation, x: Tensor<S>): Tensor<S> {
  const emit = (e: ActExpr): Tensor => {
    switch (e.kind) {
      case 'param':
        return x;
      case 'num':
        return scalar(x.m, e.value, x.type.dtype);
      case 'unary':
        return x.m.add(e.op, [emit(e.arg)]);
      case 'binary': {
        const a = emit(e.a);
        return x.m.add(e.op, [a, emit(e.b)]);
      }
    }
  };
  return emit(act.expr) as Tensor<S>;
}

/** `const act = activation(x => x * sigmoid(1.702 * x)); act(h)` — parsed here, emitted per call. */
export function activation(fn: (x: number) => number): <S extends Names>(x: Tensor<S>) => Tensor<S> {
  const act = parseActivation(fn, userSite());
  return (x) => applyActivation(act, x);
}

/** Test runners and bundlers call imports as `(0, __ns__.exp)(x)`; the user wrote `exp(x)`. */
function unwrapImports(s: string): string {
  return s.replace(/\(0,\s*([\w$.]+)\)/g, '$1').replace(/\b__\w+__\./g, '');
}

function clip(s: string, n = 60): string {
  const one = unwrapImports(s).replace(/\s+/g, ' ');
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/**
 * Where node `n` of the function source sits in the user's file. The runtime's text of the
 * function may differ from what the user wrote (TypeScript is transpiled), so the node's tokens
 * are searched for, whitespace-insensitively, after the first `=>` that follows the call site
 * (then, for a distinctive text, anywhere in the file: the arrow may be defined above the call).
 * Without the file, the offset within the function is added to the call site.
 */
function locate(site: SourceLoc | undefined, source: string, n: acorn.Node): { loc: SourceLoc; text?: string } | undefined {
  if (!site) return undefined;
  const fallback = () => {
    const before = source.slice(0, n.start).split('\n');
    return { loc: before.length === 1 ? site : { ...site, line: site.line + before.length - 1, col: before.at(-1)!.length + 1 } };
  };
  let text: string;
  try {
    text = readFileSync(absoluteLoc(site).file, 'utf8');
  } catch {
    return fallback();
  }
  const lines = text.split('\n');
  let from = lines.slice(0, site.line - 1).reduce((acc, l) => acc + l.length + 1, 0) + site.col - 1;
  const arrow = text.indexOf('=>', from);
  if (arrow >= 0) from = arrow + 2;
  // fn.toString() may come minified (0.01 → .01): a number token matches any numeric literal
  const tokens = unwrapImports(source.slice(n.start, n.end)).match(new RegExp(`[A-Za-z_$][\\w$]*|${NUMBER}|\\S`, 'g')) ?? [];
  const esc = tokens.map((t) => (new RegExp(`^${NUMBER}$`).test(t) ? `(?:${NUMBER})` : t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const word = (t: string | undefined) => (t !== undefined && /^[\w$]/.test(t) ? '(?<![\\w$])' : '');
  const re = new RegExp(`${word(tokens[0])}${esc.join('\\s*')}`, 'g');
  re.lastIndex = from;
  let m = re.exec(text);
  // an arrow defined before the call (`activation: myAct`): search the whole file, if the text is distinctive
  if (!m && tokens.length >= 3) {
    re.lastIndex = 0;
    m = re.exec(text);
  }
  if (!m) return fallback();
  const upto = text.slice(0, m.index).split('\n');
  return { loc: { ...site, line: upto.length, col: upto.at(-1)!.length + 1 }, text: m[0] };
}

/** A JS numeric literal, decimal or not (a regex source). */
const NUMBER = '(?:\\d[\\d_]*(?:\\.[\\d_]*)?|\\.\\d[\\d_]*)(?:[eE][+-]?\\d+)?';
