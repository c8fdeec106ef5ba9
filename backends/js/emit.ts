/**
 * The js emitter: a Program (a graph after the pipeline; node order = schedule) becomes the source
 * of one ES module that runs on its own — `createModel()` returning `{ setWeights, run }`.
 *
 * Stages:
 *  1. expand — every node gets a kernel: fused nodes of a known pattern whose body has the form
 *     the kernel reads keep it; other bodies of a known pattern are inlined as their
 *     decomposition (noted in the header). An unknown pattern or an op without a kernel is a
 *     K1019 compile error naming the op and the backend.
 *  2. buffers — where each value lives: the caller's arrays (inputs, params, state), module
 *     constants, the arena at its planned offset (meta.memoryPlan), an array of its own, or
 *     another value's array (a reshape nobody planned; an update_slice written in place into the
 *     state buffer it updates). The plan is checked against the schedule before it is trusted: a
 *     value whose planned bytes would be overwritten while it is still read gets its own array.
 *  3. code — `run()` binds the symbols and checks every run-time array, then calls one kernel per
 *     node in schedule order; dims are numbers where static (or fixed by `specialize`), symbol
 *     variables (`seq`, `pos`) otherwise.
 */
import { type Dim, dimSymbols, isStatic, shapeToString } from '../../graph/dim.js';
import { KilnError } from '../../graph/errors.js';
import type { Graph, Node } from '../../graph/graph.js';
import type { FusedBody } from '../../graph/ops.js';
import { typeToString } from '../../graph/types.js';
import type { CompileOptions } from '../backend.js';
import { dimExpr, indent, isNumberExpr, jsNum, productOf, symbolVar } from './codegen.js';
import { FUSED_KERNELS, KERNELS } from './kernels/index.js';
import { esc, type KernelCtx } from './kernels/kernel.js';
import { inlineBody } from '../inline.js';
import { checkPlan, type MemoryPlanLike, readPlan, rootOf } from '../plan.js';
import { planMemoryGraph } from '../../passes/plan-memory.js';

export const BACKEND = 'js';


type Home =
  | { kind: 'input' | 'param' | 'state'; index: number }
  | { kind: 'const' }
  | { kind: 'alias'; of: number }
  | { kind: 'arena'; offset: number; cap: number }
  | { kind: 'own' }
  | { kind: 'fresh' };

export interface EmitResult {
  readonly source: string;
  /** Things a reader of the source should know (bodies run as decompositions, plan entries not used). */
  readonly notes: readonly string[];
  /** The nodes the module computes: the graph's, with fused bodies it runs as decompositions inlined. */
  readonly nodes: readonly Node[];
}

const SOURCE_OPS = new Set(['input', 'param', 'state']);
const oneLine = (s: string) => s.replace(/[\r\n\u2028\u2029]+/g, ' ');
const typed = (dtype: string) => (dtype === 'i32' ? 'Int32Array' : 'Float32Array');
const q = (s: string) => JSON.stringify(s);

// ---------------------------------------------------------------------------------------------
// 1. expand

function expand(g: Graph, notes: string[]): { nodes: Node[]; sched: Map<number, number> } {
  let next = Math.max(-1, ...g.nodes.map((n) => n.id)) + 1;
  const nodes: Node[] = [];
  const sched = new Map<number, number>();
  const visit = (n: Node, at: number): void => {
    if (n.op === 'fused') {
      const pattern = String(n.attrs['pattern']);
      const fk = Object.hasOwn(FUSED_KERNELS, pattern) ? FUSED_KERNELS[pattern] : undefined;
      if (!fk) throw new KilnError('K1019', `js backend: no kernel for fused pattern '${pattern}' (%${n.id}${n.scope ? ` in ${n.scope}` : ''}); it has ${Object.keys(FUSED_KERNELS).join(', ')}`, n.loc);
      const body = n.attrs['body'] as FusedBody;
      if (!fk.form(body)) {
        notes.push(`%${n.id} fused ${pattern}: its body is not in the form the js kernel reads; it runs as its decomposition`);
        for (const m of inlineBody(n, () => next++)) visit(m, at);
        return;
      }
    } else if (!SOURCE_OPS.has(n.op) && n.op !== 'const' && !KERNELS[n.op]) {
      throw new KilnError('K1019', `js backend: no kernel for op '${n.op}' (%${n.id}${n.scope ? ` in ${n.scope}` : ''})`, n.loc);
    }
    nodes.push(n);
    sched.set(n.id, at);
  };
  g.nodes.forEach((n, i) => visit(n, i));
  return { nodes, sched };
}


// ---------------------------------------------------------------------------------------------
// symbols

function isDimValue(v: unknown): v is Dim {
  return typeof v === 'object' && v !== null && 'terms' in v && 'offset' in v;
}

function collectSymbols(nodes: readonly Node[], into: Set<string>): void {
  const walk = (v: unknown): void => {
    if (isDimValue(v)) dimSymbols(v).forEach((s) => into.add(s));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null && 'nodes' in v) collectSymbols((v as FusedBody).nodes, into);
  };
  for (const n of nodes) {
    n.type.shape.forEach(walk);
    Object.values(n.attrs).forEach(walk);
  }
}

/** The symbol a dim is exactly, if any. */
function soleSymbol(d: Dim): string | undefined {
  if (typeof d === 'number' || d.offset !== 0) return undefined;
  const ks = Object.keys(d.terms);
  return ks.length === 1 && d.terms[ks[0]!] === 1 ? ks[0] : undefined;
}

// ---------------------------------------------------------------------------------------------
// 2. buffers

interface Layout {
  readonly homes: Map<number, Home>;
  readonly inPlace: Set<number>;
}

function layout(g: Graph, nodes: readonly Node[], sched: Map<number, number>, plan: MemoryPlanLike | undefined, notes: string[]): Layout {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const outputs = new Set(g.outputs.map((o) => o.value));
  const pos = new Map(nodes.map((n, i) => [n.id, i]));
  const homes = new Map<number, Home>();
  const inPlace = new Set<number>();
  const counters = { input: 0, param: 0, state: 0 };
  const planned = new Map((plan?.buffers ?? []).map((b) => [b.value, b]));

  // update_slice into a state buffer, in place: the result is the `state:` output of that state,
  // and every other reader of the old state runs before it.
  const users = new Map<number, number[]>();
  for (const n of nodes) for (const i of n.inputs) users.set(i, [...(users.get(i) ?? []), n.id]);
  for (const o of g.outputs) {
    const n = byId.get(o.value);
    if (n?.op !== 'update_slice') continue;
    const base = byId.get(n.inputs[0]!)!;
    if (base.op !== 'state' || o.name !== `state:${String(base.attrs['name'])}` || n.inputs[1] === base.id || outputs.has(base.id)) continue;
    if ((users.get(base.id) ?? []).every((u) => u === n.id || pos.get(u)! < pos.get(n.id)!)) inPlace.add(n.id);
  }

  for (const n of nodes) {
    if (SOURCE_OPS.has(n.op)) homes.set(n.id, { kind: n.op as 'input', index: counters[n.op as 'input']++ });
    else if (n.op === 'const') homes.set(n.id, { kind: 'const' });
    else if (inPlace.has(n.id)) homes.set(n.id, { kind: 'alias', of: n.inputs[0]! });
    else if (outputs.has(n.id)) homes.set(n.id, { kind: 'fresh' });
    else if (n.op === 'reshape' && !planned.has(n.id)) homes.set(n.id, { kind: 'alias', of: n.inputs[0]! });
    else {
      const b = planned.get(n.id);
      if (!b) homes.set(n.id, { kind: 'own' });
      else homes.set(n.id, { kind: 'arena', offset: b.offset, cap: Math.floor(b.bytes / 4) });
    }
  }
  if (plan)
    checkPlan(nodes, sched, plan, homes, (id, why) => {
      homes.set(id, { kind: 'own' });
      notes.push(`%${id}: not placed in the arena (${why})`);
    });
  return { homes, inPlace };
}


// ---------------------------------------------------------------------------------------------
// 3. code

export function emitModule(g: Graph, opts: CompileOptions = {}): EmitResult {
  const spec = opts.specialize ?? {};
  const notes: string[] = [];
  const { nodes, sched } = expand(g, notes);
  const plan = specialisedPlan(g, readPlan(g, BACKEND), spec);
  const { homes, inPlace } = layout(g, nodes, sched, plan, notes);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const original = new Set(g.nodes.map((n) => n.id));

  const symbols = new Set<string>();
  collectSymbols(nodes, symbols);
  for (const s of Object.keys(spec)) if (!symbols.has(s)) notes.push(`specialize: '${s}' is not a dim symbol of this graph`);
  const runtimeSyms = [...symbols].filter((s) => spec[s] === undefined).sort();
  const dim = (d: Dim) => dimExpr(d, spec);
  const dims = (s: readonly Dim[]) => s.map(dim);
  const numel = (s: readonly Dim[]) => productOf(dims(s));
  const staticSize = (s: readonly Dim[]) => isNumberExpr(numel(s));

  const helpers = new Map<string, string>();
  const constants: string[] = [];
  const constNames = new Set<string>();
  const helper = (name: string, src: string) => {
    if (!helpers.has(name)) helpers.set(name, src);
    return name;
  };
  helper('checkArray', CHECK_ARRAY);
  const varOf = (id: number): string => `v${rootOf(homes, id)}`;

  // module-level arrays: consts, static buffers, static arena views
  const setup: string[] = [];
  if (plan && [...homes.values()].some((h) => h.kind === 'arena')) setup.push(`const _arena = new ArrayBuffer(${plan.arenaBytes});`);
  const sources = { input: [] as Node[], param: [] as Node[], state: [] as Node[] };
  for (const n of nodes) {
    const h = homes.get(n.id)!;
    const T = typed(n.type.dtype);
    if (h.kind === 'input' || h.kind === 'param' || h.kind === 'state') sources[h.kind].push(n);
    else if (h.kind === 'const') {
      const v = n.attrs['value'] as number[];
      setup.push(
        v.length === 1
          ? `const v${n.id} = new ${T}(${numel(n.type.shape)}).fill(${jsNum(v[0]!)}); // const ${typeToString(n.type)}`
          : `const v${n.id} = ${T}.of(${v.map(jsNum).join(', ')}); // const ${typeToString(n.type)}`,
      );
    } else if (h.kind === 'own' && staticSize(n.type.shape)) setup.push(`const v${n.id} = new ${T}(${numel(n.type.shape)}); // %${n.id} ${n.op}`);
    else if (h.kind === 'arena' && staticSize(n.type.shape))
      setup.push(`const v${n.id} = new ${T}(_arena, ${h.offset}, ${numel(n.type.shape)}); // %${n.id} ${n.op}`);
  }

  // run(): symbols, checks, then one block per node
  const body: string[] = [];
  body.push(`if (P.includes(undefined)) throw fail('K1017', \`weights not bound: \${PARAMS.filter((p, i) => P[i] === undefined).map((p) => "'" + p.name + "'").slice(0, 5).join(', ')}\${P.filter((w) => w === undefined).length > 5 ? ', …' : ''} (call setWeights first)\`);`);
  body.push(`const sy = args.symbols ?? {};`);
  for (const [s, v] of Object.entries(spec))
    if (symbols.has(s)) body.push(`if (sy[${q(s)}] !== undefined && sy[${q(s)}] !== ${v}) throw fail('K1017', \`this program is compiled for ${esc(s)} = ${v}, given ${esc(s)} = \${sy[${q(s)}]}\`);`);
  if (runtimeSyms.length) helper('bindSymbol', BIND_SYMBOL);
  for (const s of runtimeSyms) {
    // A symbol may also be read off an input whose shape is that symbol times static dims.
    let inferred = 'undefined';
    for (const n of sources.input) {
      const sh = n.type.shape;
      const k = sh.findIndex((d) => soleSymbol(d) === s);
      if (k < 0 || !sh.every((d, i) => i === k || isNumberExpr(dim(d)))) continue;
      const per = productOf(dims(sh.filter((_, i) => i !== k)));
      const get = `args.inputs?.[${q(String(n.attrs['name']))}]`;
      inferred = `${get} === undefined ? undefined : Math.floor(${get}.length / ${per})`;
      break;
    }
    const bound = plan?.bounds[s];
    body.push(`const ${symbolVar(s)} = bindSymbol(${q(s)}, sy[${q(s)}], ${inferred}${bound !== undefined ? `, ${bound}` : ''});`);
  }
  const shapeText = (shape: readonly Dim[]) => {
    const fixed = shapeToString(shape);
    return shape.every(isStatic) ? esc(fixed) : `${esc(fixed)} = [${dims(shape).map((d) => (isNumberExpr(d) ? d : `\${${d}}`)).join(', ')}]`;
  };
  const where = (n: Node) => `%${n.id} ${n.op}${n.op === 'fused' ? ` ${String(n.attrs['pattern'])}` : ''}${n.scope ? ` (${n.scope})` : ''}`;

  for (const n of nodes) {
    const h = homes.get(n.id)!;
    const v = `v${n.id}`;
    const T = typed(n.type.dtype);
    const size = numel(n.type.shape);
    const loc = n.loc ? `  ${oneLine(n.loc.file.split(/[\\/]/).pop()!)}:${n.loc.line}:${n.loc.col}` : '';
    const head = `// %${n.id} = ${n.op}${n.op === 'fused' ? ` ${oneLine(String(n.attrs['pattern']))}` : ''}(${n.inputs.map((i) => `%${i}`).join(', ')}) ${typeToString(n.type)}${n.scope ? `  ${oneLine(n.scope)}` : ''}${loc}`;
    if (h.kind === 'input' || h.kind === 'param' || h.kind === 'state') {
      const name = String(n.attrs['name']);
      const from = h.kind === 'param' ? `P[${h.index}]` : `args.${h.kind === 'input' ? 'inputs' : 'state'}?.[${q(name)}]`;
      body.push(`// ${h.kind} ${oneLine(q(name))} ${typeToString(n.type)}`);
      if (h.kind === 'param' && staticSize(n.type.shape)) body.push(`const ${v} = ${from};`);
      else body.push(`const ${v} = checkArray(${q(h.kind)}, ${q(name)}, ${from}, ${q(n.type.dtype)}, ${size}, \`${shapeText(n.type.shape)}\`);`);
    } else if (h.kind === 'const') {
      body.push(`// %${n.id} = const ${typeToString(n.type)}: set up once`);
    } else if (h.kind === 'alias' && !inPlace.has(n.id)) {
      body.push(`${head}: the same array as %${n.inputs[0]}`);
    } else {
      body.push(head);
      const kernel = n.op === 'fused' ? FUSED_KERNELS[String(n.attrs['pattern'])]!.kernel : KERNELS[n.op]!;
      const ctx: KernelCtx = {
        node: n,
        out: varOf(n.id),
        ins: n.inputs.map(varOf),
        types: n.inputs.map((i) => byId.get(i)!.type),
        inPlace: inPlace.has(n.id),
        dim,
        dims,
        numel,
        helper,
        constant: (name, init) => {
          if (!constNames.has(name)) {
            constNames.add(name);
            constants.push(`const ${name} = ${init};`);
          }
          return name;
        },
        raise: (code, message) => `throw fail(${q(code)}, ${message});`,
        where: where(n),
      };
      const made = kernel(ctx);
      const { check, code } = typeof made === 'string' ? { check: '', code: made } : made;
      if (check) body.push(check);
      if (h.kind === 'fresh' || (h.kind === 'own' && !staticSize(n.type.shape))) body.push(`const ${v} = new ${T}(${size});`);
      else if (h.kind === 'arena' && !staticSize(n.type.shape)) {
        helper('arenaView', ARENA_VIEW);
        body.push(`const ${v} = arenaView(${T}, ${h.offset}, ${size}, ${h.cap}, ${n.id});`);
      }
      body.push(code.includes('\n') ? `{\n${indent(code)}\n}` : code);
      if (opts.profile) body.push(`tick(${n.id});`);
    }
    if (opts.debugValues && original.has(n.id)) body.push(`if (dbg) dbg.set(${n.id}, ${varOf(n.id)}.slice());`);
  }

  // profile builds: options.tick(-1) as the kernels start, then tick(id) after each node's kernel
  if (opts.profile) body.splice(body.findIndex((l) => l.startsWith('const sy =')), 0, 'tick(-1);');
  // outputs: fresh arrays, except a state written in place, which is the caller's own buffer
  const handed = new Set<number>();
  const outs = g.outputs.map((o) => {
    const r = rootOf(homes, o.value);
    const h = homes.get(o.value)!;
    const direct = (h.kind === 'fresh' && !handed.has(r)) || (inPlace.has(o.value) && o.name.startsWith('state:'));
    handed.add(r);
    return `${q(o.name)}: ${varOf(o.value)}${direct ? '' : '.slice()'}`;
  });
  body.push(`return { ${outs.join(', ')} };`);

  const paramTable = sources.param.map((n) => {
    const size = numel(n.type.shape);
    return `  { name: ${q(String(n.attrs['name']))}, dtype: ${q(n.type.dtype)}, shape: ${q(shapeToString(n.type.shape))}, size: ${isNumberExpr(size) ? size : 'null'} },`;
  });

  const header = headerComment(g, sources, runtimeSyms, spec, plan, notes);
  const src = [
    header,
    `function createModel(options = {}) {`,
    indent(
      [
        `/** Errors carry a kiln code (K1017: a missing or malformed run-time value; K1009: a slice out of bounds). */`,
        `const fail = options.makeError ?? ((code, message) => Object.assign(new Error(message), { name: 'KilnError', code }));`,
        ...(opts.profile ? [`const tick = options.tick ?? (() => {});`] : []),
        ``,
        ...[...helpers.values()].flatMap((s) => [s, '']),
        ...(constants.length ? [...constants, ''] : []),
        `const PARAMS = [`,
        ...paramTable,
        `];`,
        `const PARAM_INDEX = new Map(PARAMS.map((p, i) => [p.name, i]));`,
        `const P = new Array(PARAMS.length).fill(undefined);`,
        ...(setup.length ? ['', ...setup] : []),
        ``,
        SET_WEIGHTS,
        ``,
        `/** One step: ${runtimeSyms.length ? `symbols ${runtimeSyms.join(', ')} from args.symbols (or the inputs' lengths); ` : ''}returns the outputs by name.${opts.debugValues ? ' With a Map as dbg, every node\'s value is also put there by id.' : ''} */`,
        `function run(args${opts.debugValues ? ', dbg' : ''}) {`,
        indent(body.join('\n')),
        `}`,
        ``,
        `return { setWeights, run, params: PARAMS.map((p) => ({ ...p })) };`,
      ].join('\n'),
    ),
    `}`,
    ``,
    EXPORT_LINE,
    ``,
  ].join('\n');
  return { source: src, notes, nodes };
}

/** The module's last line; evaluating the module in-process drops it and returns createModel instead. */
export const EXPORT_LINE = 'export { createModel };';

function headerComment(g: Graph, s: Record<'input' | 'param' | 'state', Node[]>, syms: readonly string[], spec: Readonly<Record<string, number>>, plan: MemoryPlanLike | undefined, notes: readonly string[]): string {
  const nm = (n: Node) => String(n.attrs['name']);
  const list = (ns: Node[], max = 6) => ns.slice(0, max).map((n) => `${nm(n)} ${typeToString(n.type)}`).concat(ns.length > max ? [`… ${ns.length - max} more`] : []);
  const example = (ns: Node[]) => ns.slice(0, 2).map((n) => `${q(nm(n))}: …`).concat(ns.length > 2 ? ['…'] : []).join(', ');
  const symbolArg = [...syms.map((x) => `${x}: …`)].join(', ');
  const lines = [
    `kiln — generated by the js backend from graph ${q(g.name)}. Plain JavaScript, no imports.`,
    ``,
    `Usage:`,
    `  import { createModel } from './<this file>.js';`,
    `  const model = createModel();`,
    `  model.setWeights({ ${example(s.param)} });   // Float32Array per param, row-major`,
    `  const out = model.run({ inputs: { ${example(s.input)} }, symbols: { ${symbolArg} }${s.state.length ? `, state: { ${example(s.state)} }` : ''} });`,
    `  // out.<name>: a fresh array per output${s.state.length ? "; 'state:<name>' outputs are the state buffers, updated in place where possible" : ''}`,
    ``,
    `Params (${s.param.length}): ${list(s.param).join('; ') || 'none'}`,
    `Inputs: ${list(s.input).join('; ') || 'none'}`,
    ...(s.state.length ? [`State: ${list(s.state).join('; ')}`] : []),
    `Outputs: ${g.outputs.map((o) => o.name).join(', ') || 'none'}`,
    `Symbols: ${[...syms.map((x) => `${x} (at run time)`), ...Object.entries(spec).map(([k, v]) => `${k} = ${v} (fixed)`)].join(', ') || 'none'}`,
    plan ? `Memory: one arena of ${plan.arenaBytes} bytes for the intermediates (planned for ${Object.entries(plan.bounds).map(([k, v]) => `${k} ≤ ${v}`).join(', ') || 'static sizes'}).` : `Memory: an array per intermediate value (no memory plan).`,
    ...notes.map((n) => `Note: ${n}`),
  ];
  return `/*\n${lines.map((l) => ` * ${oneLine(l).replace(/\*\//g, '* /')}`.trimEnd()).join('\n')}\n */`;
}

const CHECK_ARRAY = `/** The caller's array for a source, checked: its kind (Float32Array for f32, Int32Array for i32) and length. */
function checkArray(kind, name, x, dtype, n, shape) {
  const want = dtype === 'i32' ? Int32Array : Float32Array;
  if (x === undefined) throw fail('K1017', \`no value given for \${kind} '\${name}' (\${dtype}\${shape})\`);
  if (!(x instanceof want)) throw fail('K1017', \`\${kind} '\${name}': expected a \${want.name} for \${dtype}\${shape}, given \${x?.constructor?.name ?? typeof x}\`);
  if (x.length !== n) throw fail('K1017', \`\${kind} '\${name}': expected \${n} values for \${dtype}\${shape}, given \${x.length}\`);
  return x;
}`;

const BIND_SYMBOL = `/** A dim symbol's value: given, or read off an input; a non-negative integer within the planned bound. */
function bindSymbol(name, given, inferred, bound) {
  const v = given ?? inferred;
  if (v === undefined) throw fail('K1017', \`no value for dim symbol '\${name}' (pass it in symbols)\`);
  if (!Number.isInteger(v) || v < 0) throw fail('K1017', \`dim symbol '\${name}' must be a non-negative integer, given \${v}\`);
  if (bound !== undefined && v > bound) throw fail('K1017', \`\${name} = \${v} is past \${bound}, the largest the memory plan allows\`);
  return v;
}`;

const ARENA_VIEW = `/** A view of n elements at a byte offset of the arena; more than the plan's cap means the symbols are past what was planned. */
function arenaView(T, offset, n, cap, id) {
  if (n > cap) throw fail('K1017', \`value %\${id} needs \${n} elements, the memory plan has room for \${cap}: the symbols are past their planned bounds (is pos + seq above maxSeqLen?)\`);
  return new T(_arena, offset, n);
}`;

const SET_WEIGHTS = `/** Bind weights by param name (all at once or in parts); each is checked before any is kept. */
function setWeights(weights) {
  const names = Object.keys(weights);
  const unknown = names.filter((n) => !PARAM_INDEX.has(n));
  if (unknown.length) throw fail('K1017', \`unknown param\${unknown.length > 1 ? 's' : ''} \${unknown.slice(0, 5).map((n) => "'" + n + "'").join(', ')}; this model's params are \${PARAMS.slice(0, 5).map((p) => "'" + p.name + "'").join(', ')}\${PARAMS.length > 5 ? ', …' : ''}\`);
  for (const name of names) {
    const p = PARAMS[PARAM_INDEX.get(name)], w = weights[name];
    const want = p.dtype === 'i32' ? Int32Array : Float32Array;
    if (!(w instanceof want)) throw fail('K1017', \`param '\${name}': expected a \${want.name} for \${p.dtype}\${p.shape}, given \${w?.constructor?.name ?? typeof w}\`);
    if (p.size !== null && w.length !== p.size) throw fail('K1017', \`param '\${name}': expected \${p.size} values for \${p.dtype}\${p.shape}, given \${w.length}\`);
  }
  for (const name of names) P[PARAM_INDEX.get(name)] = weights[name];
}`;


/**
 * The plan for a program with symbols fixed (the decode module, seq = 1): planned again at those
 * values, so that the arena holds one token's intermediates, not the prefill's (stories15M at
 * 2048 positions: 206 MB for both before). The wasm backend keeps the stored plan instead: its
 * decode program shares the prefill program's memory and layout.
 */
function specialisedPlan(g: Graph, plan: MemoryPlanLike | undefined, spec: Readonly<Record<string, number>>): MemoryPlanLike | undefined {
  const fixed = Object.fromEntries(Object.entries(spec).filter(([k]) => plan?.bounds[k] !== undefined));
  if (!plan || Object.keys(fixed).length === 0) return plan;
  return planMemoryGraph(g, { maxSeqLen: Math.max(...Object.values(plan.bounds)) }, fixed);
}
