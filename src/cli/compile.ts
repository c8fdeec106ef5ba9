import { mkdirSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { tokensSymbol } from '../../passes/kv-util.js';
import { type GraphSummary, graphSummary } from '../analysis/summary.js';
import { makeDirs, writeFileAtomic } from './io.js';
import { commas, humanBytes, table } from './format.js';
import { writeStdout } from './io.js';
import { loadGraph } from './load.js';

export interface CompileOptions {
  readonly backend: string;
  readonly typecheck?: boolean;
  readonly out?: string;
  readonly dumpAfter?: string;
  readonly dumpDir?: string;
  readonly passes?: string;
  readonly maxSeqLen?: number;
  /** The most tokens the prefill program takes per run (default: the whole context). */
  readonly batch?: number;
}

/** The context length assumed when neither the model nor --max-seq-len gives one (as `kiln info` does). */
export const DEFAULT_MAX_SEQ_LEN = 2048;

/** The model's own maxSeqLen (meta.llama), if it states one. */
export function modelMaxSeqLen(g: Graph): number | undefined {
  const m = (g.meta['llama'] as { maxSeqLen?: unknown } | undefined)?.maxSeqLen;
  return typeof m === 'number' ? m : undefined;
}

/** Whether insert-kv-cache applies: a `tokens` input and at least one causal attention. */
function isLanguageModel(g: Graph): boolean {
  return g.nodes.some((n) => n.op === 'input' && n.attrs['name'] === 'tokens') && g.nodes.some((n) => n.op === 'causal_mask');
}

/**
 * `kiln compile`: the pipeline (each pass's report), the memory plan, then code generation. With
 * `--out DIR` the generated modules are written there — a language model gets a prefill program
 * (seq at run time) and a decode program (seq = 1), anything else one module — and the graph
 * after passes goes to `--dump-dir` (default DIR/dumps) as `NNN_PASS.ir` text.
 */
export async function compile(spec: string, opts: CompileOptions): Promise<void> {
  const g = await loadGraph(spec, { typecheck: opts.typecheck !== false });
  const { runPipeline, selectPasses, formatReport } = await import('../../passes/manager.js');
  const { PIPELINE } = await import('../../passes/pipeline.js');
  const { printText } = await import('../../graph/print/index.js');
  const lm = isLanguageModel(g);
  let passes = opts.passes !== undefined ? selectPasses([opts.passes]) : PIPELINE;
  if (opts.passes !== undefined && passes.length === 0)
    throw new KilnError('K1016', `--passes: name at least one pass (comma-separated); the pipeline is ${PIPELINE.map((p) => p.name).join(', ')}`);
  // insert-kv-cache needs tokens and attention; a plain graph (an MLP) compiles without it.
  if (!lm && opts.passes === undefined) passes = passes.filter((p) => p.name !== 'insert-kv-cache');

  const dumpDir = opts.dumpDir ?? (opts.out !== undefined ? join(opts.out, 'dumps') : undefined);
  if (opts.dumpAfter !== undefined && dumpDir === undefined) throw new KilnError('K1016', '--dump-after needs a folder for the dumps: give --out DIR or --dump-dir DIR');
  if (opts.dumpDir !== undefined && opts.dumpAfter === undefined) throw new KilnError('K1016', "--dump-dir says where dumps go; --dump-after says which passes to dump (names, or 'all'): give it too");
  const dumpAfter = opts.dumpAfter === undefined ? undefined : opts.dumpAfter === 'all' ? ('all' as const) : opts.dumpAfter.split(',').map((s) => s.trim());
  const dumped: string[] = [];

  const maxSeqLen = opts.maxSeqLen ?? (modelMaxSeqLen(g) === undefined ? DEFAULT_MAX_SEQ_LEN : undefined);
  const { graph: program, reports } = runPipeline(g, passes, {
    ...(lm ? { lastLogitsOnly: true } : {}),
    ...(maxSeqLen !== undefined ? { maxSeqLen } : {}),
    ...(opts.batch !== undefined ? { maxBatch: opts.batch } : {}),
    ...(dumpAfter !== undefined
      ? {
          dumpAfter,
          onDump: (index: number, pass: string, after: Graph) => {
            const file = join(dumpDir!, `${String(index).padStart(3, '0')}_${pass}.ir`);
            // made here, once the pipeline has taken the pass names: a bad --dump-after leaves no folder behind
            makeDirs(dumpDir!);
            writeFileAtomic(file, printText(after));
            dumped.push(file);
          },
        }
      : {}),
  });

  const { loadBackend } = await import('./backends.js');
  const backend = await loadBackend(opts.backend);
  const seq = tokensSymbol(program);
  const kv = program.meta['kvCache'] !== undefined && seq !== undefined;
  // an arena or memory too large to allocate: the context (and the batch) set its size
  const tooLarge = (e: unknown): never => {
    if (!(e instanceof RangeError)) throw e;
    throw new KilnError('K1020', `cannot allocate the memory the program needs (${e.message}); its largest values grow with the context and the prefill batch: give a smaller --max-seq-len or a --batch`);
  };
  const first = await backend.compile(program).catch(tooLarge);
  const modules = kv
    ? [
        { suffix: 'prefill', what: `prefill: runs ${seq} new tokens from position pos (${seq} and pos given at run time)`, exe: first },
        // as a Session compiles it: to share the prefill program's memory (wasm: its manifest says which job area its threads use)
        { suffix: 'decode', what: 'decode: runs one new token at position pos (seq fixed at 1)', exe: await backend.compile(program, { specialize: { [seq]: 1 }, shareWith: first }).catch(tooLarge) },
      ]
    : [{ suffix: '', what: 'the whole graph in one run', exe: first }];

  const device = modules.map((m) => m.exe.device).find((d) => d !== undefined);
  const deviceNote = modules.map((m) => m.exe.deviceNote).find((d) => d !== undefined);
  if (deviceNote !== undefined) process.stderr.write(`kiln: ${deviceNote}\n`);
  if (device !== undefined) process.stderr.write(`kiln: ${backend.name} backend running on ${device}\n`);
  const lines = [`passes (${g.name}, ${opts.backend} backend):`, formatReport(reports).trimEnd(), formatPlan(program, maxSeqLen ?? modelMaxSeqLen(g))];
  await writeStdout(`${lines.filter((l) => l !== '').join('\n')}\n\n${formatSummary(graphSummary(g))}`);

  if (opts.out === undefined) {
    process.stderr.write(`kiln: compiled ${g.name} for the ${backend.name} backend; no code generated on disk (give --out DIR to write it)\n`);
  } else {
    const base = g.name.replace(/[^A-Za-z0-9_.-]/g, '_') || 'model';
    makeDirs(opts.out);
    let relaxed = false;
    const wrote = new Set<string>();
    for (const m of modules) {
      const stem = m.suffix ? `${base}.${m.suffix}` : base;
      if (m.exe.binary !== undefined) {
        [`${stem}.wasm`, `${stem}.wat`, `${stem}.json`].forEach((f) => wrote.add(f));
        // A WebAssembly module: the binary that runs, and its text (WAT) to read.
        const header = `;; ${stem}.wat — kiln compile ${spec} --backend ${backend.name}\n;; ${m.what}.\n`;
        writeFileAtomic(join(opts.out, `${stem}.wasm`), m.exe.binary);
        writeFileAtomic(join(opts.out, `${stem}.wat`), header + (m.exe.source ?? ''));
        // The manifest: what backends/wasm/host.ts needs to run the module anywhere (loadWasm).
        const manifest = (m.exe as { manifest?: unknown }).manifest;
        if (manifest !== undefined) writeFileAtomic(join(opts.out, `${stem}.json`), JSON.stringify(manifest));
        process.stderr.write(`wrote ${join(opts.out, `${stem}.wasm`)}, ${stem}.wat${manifest !== undefined ? ` and ${stem}.json (its manifest)` : ''}\n`);
        relaxed ||= m.exe.device?.startsWith('relaxed') === true;
        continue;
      }
      const name = `${stem}.js`;
      wrote.add(name);
      if (m.exe.source === undefined) throw new KilnError('K1016', `the ${backend.name} backend writes no source code; --out needs one that does`);
      const note = `// ${name} — kiln compile ${spec} --backend ${backend.name}\n// ${m.what}.\n// Import this file by its own name: import { createModel } from './${name}';\n`;
      writeFileAtomic(join(opts.out, name), note + m.exe.source);
      process.stderr.write(`wrote ${join(opts.out, name)}\n`);
    }
    if (relaxed)
      process.stderr.write('kiln: the modules use relaxed-SIMD fused multiply-add: engines without relaxed SIMD refuse them (Node 20 needs --experimental-wasm-relaxed-simd); --no-relaxed-simd writes plain SIMD128\n');
    staleNote(opts.out, (f) => f.startsWith(`${base}.`) && /\.(js|wasm|wat|json)$/.test(f), wrote);
  }
  const threads = modules.map((m) => (m.exe as { manifest?: { threads?: number } }).manifest?.threads ?? 1);
  if (opts.out !== undefined && Math.max(...threads) > 1)
    process.stderr.write(`kiln: the modules run ${Math.max(...threads)} threads over a shared memory: a browser allows that only on a cross-origin isolated page (COOP and COEP headers); --threads 1 builds modules for any page\n`);
  if (dumped.length) process.stderr.write(`wrote ${dumped.length} dump${dumped.length > 1 ? 's' : ''} to ${dumpDir}\n`);
  if (dumpDir !== undefined && dumped.length) staleNote(dumpDir, (f) => /^\d{3}_.+\.ir$/.test(f), new Set(dumped.map((d) => basename(d))));
}

/** Files an earlier compile left in `dir` beside this one's: name them, so no one loads the wrong program. */
function staleNote(dir: string, ours: (file: string) => boolean, written: ReadonlySet<string>): void {
  const old = readdirSync(dir).filter((f) => ours(f) && !written.has(f)).sort();
  if (old.length)
    process.stderr.write(`kiln: ${dir} also holds ${old.length === 1 ? 'a file' : `${old.length} files`} an earlier compile wrote, not part of this one: ${old.slice(0, 6).join(', ')}${old.length > 6 ? ', …' : ''}\n`);
}


/** The memory plan's figures: arena size against no reuse, and the KV cache it sits beside. */
function formatPlan(g: Graph, maxSeqLen: number | undefined): string {
  const plan = g.meta['memoryPlan'] as { arenaBytes: number; totalBytes: number; bounds: Record<string, number>; buffers: unknown[] } | undefined;
  if (!plan) return '';
  const bounds = Object.entries(plan.bounds).map(([k, v]) => `${k} ≤ ${v}`).join(', ');
  const saved = plan.totalBytes > 0 ? ` (${((1 - plan.arenaBytes / plan.totalBytes) * 100).toFixed(1)}% saved by reuse)` : '';
  const rows: [string, string][] = [
    ['arena', `${commas(plan.arenaBytes)} bytes (${humanBytes(plan.arenaBytes)})${saved}`],
    ['without reuse', `${commas(plan.totalBytes)} bytes (${humanBytes(plan.totalBytes)})`],
    ['buffers', String(plan.buffers.length)],
  ];
  const states = g.nodes.filter((n) => n.op === 'state');
  if (states.length) {
    const bytes = states.reduce((s, n) => s + n.type.shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : 0), 4), 0);
    rows.push(['kv cache', `${commas(bytes)} bytes (${humanBytes(bytes)}) in ${states.length} state buffers`]);
  }
  return `\nmemory plan${bounds ? ` (${bounds}${maxSeqLen !== undefined ? `, maxSeqLen ${maxSeqLen}` : ''})` : ''}:\n${table(rows)}`;
}

export function formatSummary(s: GraphSummary): string {
  const p = s.params;
  const lines = [
    `graph ${s.name} as declared (before the passes): ${commas(s.nodes)} nodes`,
    `params: ${commas(p.count)} in ${p.tensors} tensors, ${commas(p.bytes)} bytes (${humanBytes(p.bytes)})`,
    'ops:',
    table(s.ops.map(([op, n]) => [op, String(n)])),
    'inputs:',
    table(s.inputs.map((v) => [v.name, v.type])),
  ];
  if (s.state.length) lines.push('state:', table(s.state.map((v) => [v.name, v.type])));
  lines.push('outputs:', table(s.outputs.map((v) => [v.name, v.type])), `symbols: ${s.symbols.length ? s.symbols.join(', ') : '(none)'}`);
  return `${lines.join('\n')}\n`;
}
