/**
 * The gpu emitter: a Program becomes one standalone ES module, `createModel({ GPU, mode })`,
 * that builds one gpu.js kernel per node with the `GPU` class it is given (Node: gpu.js with
 * headless-gl or WebGPU; a browser: gpu.js's browser bundle on WebGL2 or WebGPU). A fused node is
 * one kernel when its body has its kernel's form (elementwise, rope_qk, swiglu; see kernels/),
 * else its body is inlined, one kernel per core op, with a note in the module's header.
 *
 * - Every value is a flat float32 vector (i32 values are exact integers below 2^24); outputs are
 *   1-D, so gpu.js lays them out as near-square textures and a [32000, 288] table fits under
 *   an 8192 texture limit. A tensor past 2^24 elements is a compile error.
 * - Dims are kernel literals where static; symbols (`pos`, `seq`) are kernel arguments, so one
 *   kernel serves every step. A kernel's output is sized for the symbols' capacities (the memory
 *   plan's bounds, else what a run needed, doubling); the values sit at its front in row-major
 *   order. Loops run to bounds read from arguments, so `loopMaxIterations` is raised past any
 *   bound (gpu.js would silently cap them at 1000).
 * - Weights and consts are uploaded once (setWeights); intermediates stay on the device
 *   (`pipeline: true`); inputs go up each run; the outputs come back. Host tables (rope's
 *   cos/sin) go up only when their arguments change.
 * - State stays on the device: each `state:<name>` output computed by a kernel is kept for the next
 *   run (two kernels take turns computing it, since a gpu.js kernel cannot read its own output),
 *   and `run({ …, resident: [name] })` reads state `name` from there instead of an uploaded array.
 *   A state output comes back whole (into `args.state[name]` when given), or, when it is an
 *   update_slice of its state and `rows: [name]` asks for it, as just the update's rows; the
 *   backend's host side (state.ts) decides both. Without `resident`/`rows` a run uploads every
 *   state and reads every state output back, as a standalone caller expects.
 * - What a shader cannot report is checked on the host before the node's kernel runs: indices of
 *   gather, scatter_add and cross_entropy that come from a graph input or a const (K1017), and
 *   slice/update_slice ranges that depend on the symbols (K1009). Those three ops over indices
 *   computed on the device, and dropout_mask (uint32 hashing), are refused (K1019).
 * - run is a generator driven synchronously on GL (textures read back with readPixels) and
 *   asynchronously on WebGPU (its kernels and readbacks return Promises): `await model.run(...)`
 *   works on both.
 */
import { type Dim, dimAdd, dimSymbols, isStatic, shapeToString } from '../../graph/dim.js';
import { KilnError } from '../../graph/errors.js';
import type { Graph, Node } from '../../graph/graph.js';
import type { FusedBody } from '../../graph/ops.js';
import { normAxis, typeEq, typeToString } from '../../graph/types.js';
import type { CompileOptions } from '../backend.js';
import { CHECKED_INDICES, FUSED_KERNELS, INLINED_PATTERNS, KERNELS, NO_KERNEL } from './kernels/index.js';
import { type GpuKernelCtx, lit } from './kernels/kernel.js';
import { inlineBody } from '../inline.js';

export const BACKEND = 'gpu';
export const EXPORT_LINE = 'export { createModel };';
/** Float32 represents every integer below this exactly: the limit on element counts (flat indices). */
export const MAX_ELEMENTS = 1 << 24;

const q = (s: string) => JSON.stringify(s);
const oneLine = (s: string) => s.replace(/[\r\n\u2028\u2029]+/g, ' ');
const SOURCES = new Set(['input', 'param', 'state', 'const']);


function expand(g: Graph, notes: string[]): Node[] {
  let next = Math.max(-1, ...g.nodes.map((n) => n.id)) + 1;
  const nodes: Node[] = [];
  /** Nodes of patterns this backend always inlines, by pattern: noted once each, at the end. */
  const inlined = new Map<string, number>();
  const visit = (n: Node): void => {
    if (n.op === 'fused') {
      const pattern = String(n.attrs['pattern']);
      const fk = Object.hasOwn(FUSED_KERNELS, pattern) ? FUSED_KERNELS[pattern] : undefined;
      if (!fk && !INLINED_PATTERNS.includes(pattern))
        throw new KilnError('K1019', `gpu backend: no kernel for fused pattern '${pattern}' (%${n.id}${n.scope ? ` in ${n.scope}` : ''}); it has ${[...Object.keys(FUSED_KERNELS), ...INLINED_PATTERNS].join(', ')}`, n.loc);
      const body = n.attrs['body'] as FusedBody;
      if (!fk || !fk.form(body)) {
        if (fk) notes.push(`%${n.id} fused ${pattern}: runs as its decomposition (one kernel per core op)`);
        else inlined.set(pattern, (inlined.get(pattern) ?? 0) + 1);
        for (const m of inlineBody(n, () => next++, 'broadcast')) visit(m);
        return;
      }
    } else if (!SOURCES.has(n.op) && n.op !== 'reshape' && !KERNELS[n.op]) {
      const why = NO_KERNEL[n.op];
      throw new KilnError('K1019', `gpu backend: no kernel for op '${n.op}' (%${n.id}${n.scope ? ` in ${n.scope}` : ''})${why ? `: ${why}` : ''}`, n.loc);
    }
    nodes.push(n);
  };
  g.nodes.forEach(visit);
  for (const [pattern, count] of inlined) notes.push(`fused ${pattern} (${count} nodes): runs as its decomposition on this backend (one kernel per core op)`);
  return nodes;
}

/** A dim as code: in a kernel (`s_pos`, float literals) or on the host (`S.pos`, integers). */
function dimCode(d: Dim, spec: Readonly<Record<string, number>>, symbol: (s: string) => string, num: (x: number) => string): string {
  if (isStatic(d)) return num(d);
  let offset = d.offset;
  const parts: string[] = [];
  for (const [s, k] of Object.entries(d.terms)) {
    if (spec[s] !== undefined) offset += k * spec[s]!;
    else parts.push(k === 1 ? symbol(s) : `${num(k)} * ${symbol(s)}`);
  }
  if (parts.length === 0) return num(offset);
  if (offset !== 0) parts.push(num(offset));
  return `(${parts.join(' + ')})`;
}

/**
 * A `state:<name>` output of a program that reads state `<name>`: whether the module keeps its
 * value on the device for the next run (`keep`), and, when it is an update_slice of that state,
 * where the update's rows go (the module can hand back just those rows).
 */
export interface StateOut {
  readonly name: string;
  readonly keep: boolean;
  readonly rows?: { readonly axis: number; readonly start: Dim; readonly base: readonly Dim[]; readonly upd: readonly Dim[] };
}

export interface EmitResult {
  readonly source: string;
  readonly notes: readonly string[];
  readonly stateOuts: readonly StateOut[];
}

export function emitModule(g: Graph, opts: CompileOptions = {}): EmitResult {
  const spec = opts.specialize ?? {};
  const notes: string[] = [];
  const nodes = expand(g, notes);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const original = new Set(g.nodes.map((n) => n.id));
  const symbols = new Set<string>();
  for (const n of nodes) {
    for (const d of n.type.shape) dimSymbols(d).forEach((s) => symbols.add(s));
    for (const a of Object.values(n.attrs)) if (typeof a === 'object' && a !== null && 'terms' in a) dimSymbols(a as Dim).forEach((s) => symbols.add(s));
  }
  const syms = [...symbols].filter((s) => spec[s] === undefined).sort();
  const kdim = (d: Dim) => dimCode(d, spec, (s) => `s_${s}`, lit);
  const hdim = (d: Dim, env: string) => dimCode(d, spec, (s) => `${env}[${q(s)}]`, String);
  const hsize = (shape: readonly Dim[], env: string) => shape.map((d) => hdim(d, env)).join(' * ') || '1';
  const plan = g.meta['memoryPlan'] as { bounds?: Record<string, number> } | undefined;
  const bounds = Object.fromEntries(syms.filter((s) => plan?.bounds?.[s] !== undefined).map((s) => [s, plan!.bounds![s]!]));

  for (const n of nodes) {
    const fixed = n.type.shape.every((d) => isStatic(d) || dimSymbols(d).every((s) => spec[s] !== undefined));
    if (fixed) {
      const size = n.type.shape.reduce<number>((a, d) => a * Number(hdim(d, 'S')), 1);
      if (size >= MAX_ELEMENTS)
        throw new KilnError('K1019', `gpu backend: %${n.id} ${n.op} ${typeToString(n.type)} has ${size} elements; flat indices are float32 and exact only below 2^24 (${MAX_ELEMENTS})`, n.loc);
    }
  }

  const sources = { input: [] as Node[], param: [] as Node[], state: [] as Node[], const: [] as Node[] };
  const build: string[] = [];
  const step: string[] = [];
  const alias = new Map<number, number>();
  for (const n of nodes) if (n.op === 'reshape') alias.set(n.id, n.inputs[0]!);
  const root = (id: number): number => (alias.has(id) ? root(alias.get(id)!) : id);
  const v = (id: number) => `v${root(id)}`;

  // State outputs kept on the device: a kernel's result (two kernels take turns computing it, so
  // that the next run reads one while the other writes), or the state itself passed through.
  const stateNodes = new Map(nodes.filter((n) => n.op === 'state').map((n) => [String(n.attrs['name']), n]));
  const stateOuts: StateOut[] = [];
  const pingPong = new Set<number>();
  for (const o of g.outputs) {
    const st = o.name.startsWith('state:') ? stateNodes.get(o.name.slice(6)) : undefined;
    if (!st) continue;
    const r = byId.get(root(o.value))!;
    const computed = !SOURCES.has(r.op) && r.op !== 'reshape';
    const keep = (computed || r.id === st.id) && typeEq(byId.get(o.value)!.type, st.type);
    if (keep && computed) pingPong.add(r.id);
    const base = r.op === 'update_slice' ? byId.get(r.inputs[0]!)! : undefined;
    const rows =
      keep && base && root(base.id) === st.id
        ? { axis: normAxis(r.attrs['axis'] as number, base.type.shape.length)!, start: r.attrs['start'] as Dim, base: base.type.shape, upd: byId.get(r.inputs[1]!)!.type.shape }
        : undefined;
    stateOuts.push({ name: st.attrs['name'] as string, keep, ...(rows ? { rows } : {}) });
  }
  const tables = new Map<string, string>();

  // A slice or update_slice whose range depends on the symbols: checked on the host each run (a
  // K1009, as in the interpreter); a shader would read or write past the axis in silence.
  const sliceCheck = (n: Node): string[] => {
    if (n.op !== 'slice' && n.op !== 'update_slice') return [];
    const x = byId.get(n.inputs[0]!)!.type.shape;
    const ax = normAxis(n.attrs['axis'] as number, x.length)!;
    const start = n.attrs['start'] as Dim;
    const end = n.op === 'slice' ? (n.attrs['end'] as Dim) : dimAdd(start, byId.get(n.inputs[1]!)!.type.shape[ax]!);
    if ([start, end, x[ax]!].every(isStatic)) return []; // static: the op's shape rule settled it
    const where = `%${n.id} ${n.op}${n.scope ? ` (${n.scope})` : ''}`;
    return [`checkRange(${hdim(start, 'E')}, ${hdim(end, 'E')}, ${hdim(x[ax]!, 'E')}, ${q(where)}, ${ax});`];
  };

  // Indices a shader reads but cannot report (gather's, scatter_add's, cross_entropy's targets):
  // from a graph input or a const, checked on the host before the node's kernel runs (a K1017, as
  // in the interpreter); computed on the device, refused at compile (K1019).
  const indexChecks = new Map<number, string>();
  for (const n of nodes) {
    const rule = CHECKED_INDICES[n.op];
    if (!rule) continue;
    const src = byId.get(root(n.inputs[rule.operand]!))!;
    const from = byId.get(n.inputs[0]!)!.type.shape;
    const bound = n.op === 'scatter_add' ? (n.attrs['rows'] as Dim) : n.op === 'gather' ? from[0]! : from.at(-1)!;
    const where = `%${n.id} ${n.op}${n.scope ? ` (${n.scope})` : ''}`;
    if (src.op === 'input') indexChecks.set(n.id, `checkIndices(h${src.id}, ${hdim(bound, 'E')}, ${q(where)}, ${q(rule.what)});`);
    else if (src.op === 'const') {
      const values = src.attrs['value'] as number[];
      const count = src.type.shape.reduce<number>((a, d) => a * Number(hdim(d, 'S')), 1);
      indexChecks.set(n.id, `checkIndices(${values.length === 1 ? `new Float32Array(${count}).fill(${values[0]})` : `[${values.join(', ')}]`}, ${hdim(bound, 'E')}, ${q(where)}, ${q(rule.what)});`);
    } else
      throw new KilnError(
        'K1019',
        `gpu backend: no kernel for op '${n.op}' (%${n.id}${n.scope ? ` in ${n.scope}` : ''}) over ${rule.what === 'index' ? 'indices' : 'targets'} computed on the device (%${src.id} ${src.op}): a shader cannot report one outside its range; give them as a graph input`,
        n.loc,
      );
  }

  for (const n of nodes) {
    const head = `// %${n.id} = ${n.op}${n.op === 'fused' ? ` ${oneLine(String(n.attrs['pattern']))}` : ''}(${n.inputs.map((i) => `%${i}`).join(', ')}) ${typeToString(n.type)}${n.scope ? `  ${oneLine(n.scope)}` : ''}`;
    const size = hsize(n.type.shape, 'S');
    if (n.op === 'state') {
      const name = String(n.attrs['name']);
      step.push(`${head} ${q(name)}`);
      step.push(`const v${n.id} = yield* stateIn(${sources.state.length}, ${q(name)}, args, ${q(n.type.dtype)}, ${hsize(n.type.shape, 'E')}, ${hsize(n.type.shape, 'caps')}, ${q(shapeToString(n.type.shape))});`);
      sources.state.push(n);
    } else if (n.op === 'input') {
      const name = String(n.attrs['name']);
      step.push(`${head} ${q(name)}`);
      step.push(`const h${n.id} = checkArray('input', ${q(name)}, args.inputs?.[${q(name)}], ${q(n.type.dtype)}, ${hsize(n.type.shape, 'E')}, ${q(shapeToString(n.type.shape))});`);
      step.push(`const v${n.id} = pad(h${n.id}, ${hsize(n.type.shape, 'caps')});`);
      sources.input.push(n);
    } else if (n.op === 'param') {
      step.push(`const v${n.id} = W[${sources.param.length}]; // param ${q(String(n.attrs['name']))}`);
      sources.param.push(n);
    } else if (n.op === 'const') {
      const val = n.attrs['value'] as number[];
      step.push(`const v${n.id} = C[${sources.const.length}]; // const ${typeToString(n.type)}`);
      sources.const.push(n);
      void val;
    } else if (n.op === 'reshape') {
      alias.set(n.id, n.inputs[0]!);
      step.push(`${head}: the same texture as %${n.inputs[0]}`);
    } else {
      const kernel = n.op === 'fused' ? FUSED_KERNELS[String(n.attrs['pattern'])]!.kernel : KERNELS[n.op]!;
      const hostArgs: string[] = [];
      const hostSteps: string[] = [];
      const ctx: GpuKernelCtx = {
        node: n,
        ins: n.inputs.map((_, j) => `a${j}`),
        types: n.inputs.map((i) => byId.get(i)!.type),
        dim: kdim,
        coords(idx, shape, p) {
          const lines: string[] = [];
          const vars = shape.map((_, k) => `${p}${k}`);
          let t = idx;
          for (let k = shape.length - 1; k >= 1; k--) {
            const D = shape[k]!;
            if (D === '1.0') {
              lines.push(`let ${p}${k} = 0.0;`);
              continue;
            }
            lines.push(
              `let ${p}q${k} = Math.floor((${t} + 0.5) / ${D});`,
              `let ${p}${k} = ${t} - ${p}q${k} * ${D};`,
              `if (${p}${k} < 0.0) { ${p}q${k} = ${p}q${k} - 1.0; ${p}${k} = ${p}${k} + ${D}; }`,
              `if (${p}${k} >= ${D}) { ${p}q${k} = ${p}q${k} + 1.0; ${p}${k} = ${p}${k} - ${D}; }`,
            );
            t = `${p}q${k}`;
          }
          if (shape.length > 0) lines.push(`let ${p}0 = ${t};`);
          return { code: lines.join('\n'), vars };
        },
        flat(vars, shape) {
          let e = '';
          vars.forEach((x, k) => (e = k === 0 ? x : `(${e}) * ${shape[k]} + ${x}`));
          return e || '0.0';
        },
        hostArg(fn, args) {
          const call = `${fn}, [${args.join(', ')}]`;
          let t = tables.get(call);
          if (!t) {
            t = `t${tables.size}`;
            tables.set(call, t);
            hostSteps.push(`const ${t} = yield* hostTable(${tables.size - 1}, ${call});`);
          }
          hostArgs.push(t);
          return `h${hostArgs.length - 1}`;
        },
        hostDim: (d, at) => hdim(d, at === 'run' ? 'E' : 'caps'),
      };
      const body = kernel(ctx);
      const numel = n.type.shape.map(kdim).join(' * ') || '1.0';
      const used = syms.filter((s) => new RegExp(`\\bs_${s}\\b`).test(body + numel));
      const needInf = /\bs_inf\b/.test(body);
      const needNan = /\bs_nan\b/.test(body);
      const params = [...ctx.ins, ...hostArgs.map((_, j) => `h${j}`), ...used.map((s) => `s_${s}`), ...(needInf ? ['s_inf'] : []), ...(needNan ? ['s_nan'] : [])];
      const src = `function (${params.join(', ')}) {\n  let i = this.thread.x * 1.0;\n  if (i >= ${numel}) { return 0.0; }\n${body.split('\n').map((l) => `  ${l}`).join('\n')}\n}`;
      const make = `kernel(\`${src.replace(/[`\\]/g, (m) => `\\${m}`)}\`, ${size}, ${q(params.join(','))})`;
      build.push(`${head}\nK[${n.id}] = ${make};${pingPong.has(n.id) ? `\nK['${n.id}b'] = ${make};` : ''}`);
      const argv = [...n.inputs.map(v), ...hostArgs, ...used.map((s) => `E[${q(s)}]`), ...(needInf ? ['Infinity'] : []), ...(needNan ? ['NaN'] : [])];
      const k = pingPong.has(n.id) ? `(FLIP[${n.id}] ? K['${n.id}b'] : K[${n.id}])` : `K[${n.id}]`;
      step.push(head, ...(indexChecks.has(n.id) ? [indexChecks.get(n.id)!] : []), ...sliceCheck(n), ...hostSteps, `const v${n.id} = yield ${k}(${argv.join(', ')});`);
    }
    if (opts.debugValues && original.has(n.id))
      step.push(`if (dbg) dbg.set(${n.id}, yield* readBack(${v(n.id)}, ${hsize(n.type.shape, 'E')}, ${q(n.type.dtype)}));`);
  }

  const outs = g.outputs.map((o) => {
    const t = byId.get(o.value)!.type;
    const st = o.name.startsWith('state:') ? o.name.slice(6) : undefined;
    const full = `yield* readBack(${v(o.value)}, ${hsize(t.shape, 'E')}, ${q(t.dtype)}${st !== undefined ? `, args.state?.[${q(st)}]` : ''})`;
    const rows = stateOuts.find((x) => x.name === st)?.rows;
    if (!rows) return `${q(o.name)}: ${full},`;
    const upd = byId.get(root(o.value))!.inputs[1]!;
    return `${q(o.name)}: args.rows?.includes(${q(st!)}) ? yield* readBack(${v(upd)}, ${hsize(rows.upd, 'E')}, ${q(t.dtype)}) : ${full},`;
  });
  // after the outputs are read: what the device now holds for the next run
  const keepLines = [
    ...stateOuts.map((x) => {
      const o = g.outputs.find((y) => y.name === `state:${x.name}`)!;
      const t = byId.get(o.value)!.type;
      return x.keep ? `RES[${q(x.name)}] = { v: ${v(o.value)}, n: ${hsize(t.shape, 'E')}, dtype: ${q(t.dtype)} };` : `delete RES[${q(x.name)}];`;
    }),
    ...[...pingPong].map((id) => `FLIP[${id}] = !FLIP[${id}];`),
  ];

  const table = (ns: Node[]) => ns.map((n) => `  { name: ${q(String(n.attrs['name']))}, dtype: ${q(n.type.dtype)}, shape: ${q(shapeToString(n.type.shape))}, size: ${n.type.shape.every(isStatic) ? hsize(n.type.shape, 'S') : 'null'} },`);
  const consts = sources.const.map((n) => {
    const val = n.attrs['value'] as number[];
    const size = hsize(n.type.shape, 'S');
    return val.length === 1 ? `new Float32Array(${size}).fill(${val[0]})` : `Float32Array.of(${val.join(', ')})`;
  });

  const header = [
    `kiln — generated by the gpu backend from graph ${q(g.name)}: gpu.js kernels, no imports.`,
    ``,
    `Usage:`,
    `  import { GPU } from 'gpu.js';   // or the browser bundle's global GPU`,
    `  const model = createModel({ GPU, mode: 'headlessgl' });   // 'webgl2', 'webgl', 'webgpu', …`,
    `  await model.setWeights({ …: Float32Array });`,
    `  const out = await model.run({ inputs: { … }, symbols: { ${syms.map((s) => `${s}: …`).join(', ')} }${sources.state.length ? ', state: { … }' : ''} });`,
    ...(sources.state.length
      ? [
          `  // state outputs are also kept on the device: run({ …, resident: ['name'] }) reads that copy instead of state.name;`,
          `  // rows: ['name'] returns only the rows an update_slice of state 'name' wrote (the caller puts them in place).`,
        ]
      : []),
    `  // GL modes return values directly, webgpu returns Promises: await works for both.`,
    ``,
    `Params (${sources.param.length}); inputs: ${sources.input.map((n) => `${String(n.attrs['name'])} ${typeToString(n.type)}`).join('; ') || 'none'}; outputs: ${g.outputs.map((o) => o.name).join(', ')}`,
    `Symbols at run time: ${syms.join(', ') || 'none'}${Object.keys(spec).length ? `; fixed: ${Object.entries(spec).map(([k, x]) => `${k} = ${x}`).join(', ')}` : ''}`,
    `Precision: float32 on the device; a dot product sums in ascending order, rounding each step.`,
    ...notes.map((x) => `Note: ${x}`),
  ];

  const src = `/*\n${header.map((l) => ` * ${oneLine(l).replace(/\*\//g, '* /')}`.trimEnd()).join('\n')}\n */
function createModel(options = {}) {
  const GPU = options.GPU;
  if (!GPU) throw new Error('createModel: pass { GPU } (the gpu.js class)');
  const mode = options.mode;
  const gpu = options.gpu ?? new GPU(mode ? { mode } : {});
  const fail = options.makeError ?? ((code, message) => Object.assign(new Error(message), { name: 'KilnError', code }));
  const ASYNC = mode === 'webgpu';
  const PARAMS = [
${table(sources.param).join('\n')}
  ];
  const PARAM_INDEX = new Map(PARAMS.map((p, i) => [p.name, i]));
  const SYMBOLS = ${JSON.stringify(syms)};
  const BOUNDS = ${JSON.stringify(bounds)};
  const S = {};
  const W = new Array(PARAMS.length).fill(undefined);
  let C = null;
  let K = {};
  let caps = null;
  const uploads = new Map();
  const made = [];
  // What stays on the device between runs: RES[state] = { v, n, dtype }, the state's value after
  // the last run (a texture/buffer; a host array after a rebuild); FLIP says which of a kept
  // value's two kernels writes next; SU[j] uploads state j; TABLES[k] is host table k, uploaded by TK[k].
  const RES = {};
  let FLIP = {};
  let SU = {};
  let TK = {};
  let TABLES = {};

  function kernel(src, size, args) {
    const k = gpu.createKernel(src, { output: [Math.max(1, size)], pipeline: true, precision: 'single', tactic: 'precision', loopMaxIterations: ${MAX_ELEMENTS} });
    made.push(k);
    return k;
  }
  function upload(a) {
    let k = uploads.get(a.length);
    if (!k) {
      k = gpu.createKernel('function (a) { return a[this.thread.x]; }', { output: [Math.max(1, a.length)], pipeline: true, immutable: true, precision: 'single' });
      uploads.set(a.length, k);
      made.push(k);
    }
    return k(a.length ? a : new Float32Array(1));
  }
  function copier(n) {
    const k = gpu.createKernel('function (a) { return a[this.thread.x]; }', { output: [Math.max(1, n)], pipeline: true, precision: 'single' });
    made.push(k);
    return k;
  }
  /** State j's value: the device's copy when the caller says it is current (args.resident), else the caller's array, uploaded. */
  function* stateIn(j, name, args, dtype, n, cap, shape) {
    const r = RES[name];
    if (args.resident?.includes(name)) {
      if (!r || r.n !== n) throw fail('K1017', \`state '\${name}': the device holds no copy of \${n} values (pass the array)\`);
      if (!(r.v instanceof Float32Array || r.v instanceof Int32Array)) return r.v;
      RES[name] = { v: yield (SU[j] ??= copier(cap))(pad(r.v, cap)), n, dtype };
      return RES[name].v;
    }
    const h = checkArray('state', name, args.state?.[name], dtype, n, shape);
    RES[name] = { v: yield (SU[j] ??= copier(cap))(pad(h, cap)), n, dtype };
    return RES[name].v;
  }
  /** Host table k = fn(...a) on the device, recomputed and uploaded only when a's values change. */
  function* hostTable(k, fn, a) {
    const sig = a.join(',');
    if (TABLES[k]?.sig === sig) return TABLES[k].v;
    const data = fn(...a);
    TABLES[k] = { sig, v: yield (TK[k] ??= copier(data.length))(data) };
    return TABLES[k].v;
  }
  function pad(a, n) {
    if (a instanceof Float32Array && a.length === n) return a;
    const f = new Float32Array(Math.max(1, n));
    f.set(a.length > n ? a.subarray(0, n) : a);
    return f;
  }
  function drive(gen) {
    if (!ASYNC) {
      let r = gen.next();
      while (!r.done) r = gen.next(r.value);
      return r.value;
    }
    return (async () => {
      let r = gen.next();
      while (!r.done) r = gen.next(await r.value);
      return r.value;
    })();
  }
  function* readBack(x, n, dtype, into) {
    let a = x instanceof Float32Array ? x : typeof x.toArray === 'function' ? yield x.toArray() : x;
    if (!(a instanceof Float32Array)) a = Float32Array.from(a);
    if (dtype === 'i32') {
      const r = into instanceof Int32Array && into.length === n ? into : new Int32Array(n);
      for (let j = 0; j < n; j++) r[j] = Math.round(a[j]);
      return r;
    }
    if (into instanceof Float32Array && into.length === n) { into.set(a.subarray(0, n)); return into; }
    return a.slice(0, n);
  }
  function checkArray(kind, name, x, dtype, n, shape) {
    const want = dtype === 'i32' ? Int32Array : Float32Array;
    if (x === undefined) throw fail('K1017', \`no value given for \${kind} '\${name}' (\${dtype}\${shape})\`);
    if (!(x instanceof want)) throw fail('K1017', \`\${kind} '\${name}': expected a \${want.name} for \${dtype}\${shape}, given \${x?.constructor?.name ?? typeof x}\`);
    if (x.length !== n) throw fail('K1017', \`\${kind} '\${name}': expected \${n} values for \${dtype}\${shape}, given \${x.length}\`);
    return x;
  }
  function checkRange(start, end, n, where, axis) {
    if (start < 0 || end < start || end > n) throw fail('K1009', \`\${where}: [\${start}, \${end}) is outside axis \${axis} of size \${n}\`);
  }
  function checkIndices(x, n, where, what = 'index') {
    for (let j = 0; j < x.length; j++) if (!(x[j] >= 0 && x[j] < n)) throw fail('K1017', \`\${where}: \${what} \${x[j]} at position \${j} is outside [0, \${n})\`);
  }
  /** cos/sin of (offset + s)·base^(−2i/D) in doubles, as [s][i][cos, sin]. */
  function ropeAngles(offset, S, D, base) {
    const h = D / 2, t = new Float32Array(Math.max(1, S * h * 2));
    for (let s = 0; s < S; s++)
      for (let i = 0; i < h; i++) {
        const a = (offset + s) * Math.pow(base, (-2 * i) / D);
        t[(s * h + i) * 2] = Math.cos(a);
        t[(s * h + i) * 2 + 1] = Math.sin(a);
      }
    return t;
  }
  /** (Re)build every kernel for symbol capacities \`S\` (the plan's bounds, or what a run needs). */
  function* build(need) {
    const next = {};
    for (const s of SYMBOLS) {
      const have = caps?.[s] ?? 0; // capacities are at least 1: a texture has one texel or more
      next[s] = need[s] <= have && have >= 1 ? have : BOUNDS[s] !== undefined && need[s] <= BOUNDS[s] ? Math.max(1, BOUNDS[s]) : Math.max(need[s], 2 * have, 1);
    }
    if (caps && SYMBOLS.every((s) => next[s] === caps[s])) return;
    // kept state lives in the kernels' outputs: take it to the host, to go up again when next read
    for (const [name, r] of Object.entries(RES))
      if (!(r.v instanceof Float32Array || r.v instanceof Int32Array)) RES[name] = { ...r, v: yield* readBack(r.v, r.n, r.dtype) };
    for (const k of [...Object.values(K), ...Object.values(SU), ...Object.values(TK)]) k.destroy?.();
    K = {};
    SU = {};
    TK = {};
    TABLES = {};
    FLIP = {};
    caps = next;
    Object.assign(S, caps);
${build.map((l) => l.split('\n').map((x) => `    ${x}`).join('\n')).join('\n')}
  }

  function* upWeights(weights) {
    const names = Object.keys(weights);
    const unknown = names.filter((n) => !PARAM_INDEX.has(n));
    if (unknown.length) throw fail('K1017', \`unknown param\${unknown.length > 1 ? 's' : ''} \${unknown.slice(0, 5).map((n) => "'" + n + "'").join(', ')}; this model's params are \${PARAMS.slice(0, 5).map((p) => "'" + p.name + "'").join(', ')}\${PARAMS.length > 5 ? ', …' : ''}\`);
    for (const name of names) {
      const p = PARAMS[PARAM_INDEX.get(name)], w = weights[name];
      const want = p.dtype === 'i32' ? Int32Array : Float32Array;
      if (!(w instanceof want)) throw fail('K1017', \`param '\${name}': expected a \${want.name} for \${p.dtype}\${p.shape}, given \${w?.constructor?.name ?? typeof w}\`);
      if (p.size !== null && w.length !== p.size) throw fail('K1017', \`param '\${name}': expected \${p.size} values for \${p.dtype}\${p.shape}, given \${w.length}\`);
    }
    for (const name of names) {
      const w = weights[name];
      const old = W[PARAM_INDEX.get(name)];
      W[PARAM_INDEX.get(name)] = yield upload(w instanceof Float32Array ? w : Float32Array.from(w));
      if (old && old !== W[PARAM_INDEX.get(name)]) old.delete?.();
    }
  }

  function* steps(args, dbg) {
    if (W.includes(undefined)) throw fail('K1017', \`weights not bound: \${PARAMS.filter((p, i) => W[i] === undefined).map((p) => "'" + p.name + "'").slice(0, 5).join(', ')} (call setWeights first)\`);
    const sy = args.symbols ?? {};
    const E = {};
    for (const s of SYMBOLS) {
      const x = sy[s];
      if (x === undefined) throw fail('K1017', \`no value for dim symbol '\${s}' (pass it in symbols)\`);
      if (!Number.isInteger(x) || x < 0) throw fail('K1017', \`dim symbol '\${s}' must be a non-negative integer, given \${x}\`);
      E[s] = x;
    }
    yield* build(E);
    if (C === null) {
      C = [];
      for (const a of [${consts.join(', ')}]) C.push(yield upload(a));
    }
${step.map((l) => `    ${l}`).join('\n')}
    const out = {
${outs.map((l) => `      ${l}`).join('\n')}
    };
${keepLines.map((l) => `    ${l}`).join('\n')}
    return out;
  }

  return {
    params: PARAMS.map((p) => ({ ...p })),
    setWeights: (weights) => drive(upWeights(weights)),
    run: (args, dbg) => drive(steps(args, dbg)),
    /** The gpu.js kernel classes in use (HeadlessGLKernel, WebGPUKernel, …): how a caller checks there was no CPU fallback. */
    kernelKinds: () => [...new Set(made.map((k) => k.kernel?.constructor?.name ?? k.constructor?.name))],
    destroy: () => gpu.destroy(),
  };
}

${EXPORT_LINE}
`;
  return { source: src, notes, stateOuts };
}
