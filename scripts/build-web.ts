/**
 * Prepares what examples/web/ loads: a compiled model, its weights and a prompt.
 *
 *   node --import binaryen --import tsx scripts/build-web.ts --model preset:tiny --out examples/web/dist [--serve]
 *
 * The folder holds
 *   manifest.json        model, prompt, steps, symbols, the KV state shapes, the weights' table
 *                        (name, dtype, shape, byte offset) and per backend the files below; also
 *                        the tokens the js backend generates here in Node, so the page can say
 *                        whether it agrees
 *   weights.bin          every param, row-major, at its offset (little-endian f32 / i32)
 *   <backend>/prefill.js the program with `seq` symbolic (the whole prompt in one step)
 *   <backend>/decode.js  the same step graph compiled for seq = 1
 *   wasm/…               besides those two entry modules: each program's manifest and module
 *                        (plain and relaxed SIMD), and host.js, the shared host (web-wasm.ts)
 *
 * The step graph and both compilations are the runtime's (Session: PIPELINE with insert-kv-cache
 * and lastLogitsOnly); js and gpu's `executable.source` is their standalone module.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsBackend } from '../backends/js/index.js';
import type { CompileOptions, HostArray } from '../backends/backend.js';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { POS, type KvCacheMeta } from '../passes/insert-kv-cache.js';
import { loadGraph } from '../src/cli/load.js';
import { Session } from '../src/runtime/session.js';
import { randomWeights, type Weights } from '../src/runtime/weights.js';

export interface WebBuildOptions {
  /** `preset:NAME` or a model file, as the CLI takes it. */
  readonly model: string;
  readonly out: string;
  /** Seed of the random weights (default 1). */
  readonly seed?: number;
  readonly prompt?: readonly number[];
  /** Tokens to generate (default 32). */
  readonly steps?: number;
  /** Which backends' modules to write (default: those that build here). */
  readonly backends?: readonly string[];
}

export interface WeightEntry {
  readonly name: string;
  readonly dtype: 'f32' | 'i32';
  readonly shape: readonly number[];
  /** Byte offset in weights.bin. */
  readonly offset: number;
  /** Number of elements. */
  readonly length: number;
}

export interface WebManifest {
  readonly model: string;
  readonly seed: number;
  readonly prompt: readonly number[];
  readonly steps: number;
  readonly vocabSize: number;
  readonly maxSeqLen: number;
  readonly seqSymbol: string;
  readonly posSymbol: string;
  readonly states: readonly { name: string; dtype: 'f32' | 'i32'; shape: readonly number[] }[];
  readonly weights: readonly WeightEntry[];
  /** Per backend: the module files (relative to the manifest) and options its createModel needs. */
  readonly backends: Readonly<Record<string, { prefill: string; decode: string }>>;
  /** Backends left out of this build, with the reason (the page shows it). */
  readonly unavailable: Readonly<Record<string, string>>;
  /** The greedy tokens of the js backend in Node (the reference the page compares against). */
  readonly reference: readonly number[];
}

export interface WebBuild {
  readonly manifest: WebManifest;
  readonly weights: Weights;
  readonly graph: Graph;
}

/** Backends that cannot run in the page yet, and why. */
const NOT_IN_BROWSER: Readonly<Record<string, string>> = {};

/** The files of one program under `<backend>/`, by name; `<stem>.js` is the module the page imports. */
type EmitFiles = (program: Graph, opts: CompileOptions, stem: string) => Promise<Record<string, string | Uint8Array>>;
/** How a backend's programs are written, and files its programs share (written once). */
interface WebBackend {
  readonly files: EmitFiles;
  readonly shared?: () => Promise<Record<string, string>>;
}
const sourceOnly = (emit: (program: Graph, opts: CompileOptions) => Promise<string>): WebBackend => ({
  files: async (program, opts, stem) => ({ [`${stem}.js`]: await emit(program, opts) }),
});

/** How each backend's modules are produced; a backend missing here cannot run in the page. */
const WEB_BACKENDS: Readonly<Record<string, () => Promise<WebBackend>>> = {
  js: async () =>
    sourceOnly(async (program, opts) => {
      const exe = await jsBackend.compile(program, opts);
      if (!exe.source) throw new KilnError('K1019', 'the js backend gave no standalone module (executable.source)');
      return exe.source;
    }),
  // Compiling through gpuBackend() would open a Node device (headless-gl or Dawn); the page brings its own.
  gpu: async () => {
    const { emitModule } = (await import('../backends/gpu/emit.js' as string)) as { emitModule(g: Graph, o: CompileOptions): { source: string } };
    return sourceOnly(async (program, opts) => emitModule(program, opts).source);
  },
  wasm: async () => {
    const { webWasmFiles, bundleWasmHost } = await import('./web-wasm.js');
    return { files: webWasmFiles, shared: async () => ({ 'host.js': await bundleWasmHost() }) };
  },
};

export async function buildWeb(opts: WebBuildOptions): Promise<WebBuild> {
  const seed = opts.seed ?? 1;
  const prompt = [...(opts.prompt ?? [1, 2, 3, 4])];
  const steps = opts.steps ?? 32;
  if (!Number.isInteger(steps) || steps < 1) throw new KilnError('K1016', `--steps must be an integer ≥ 1, got ${steps}`);
  if (prompt.length === 0) throw new KilnError('K1016', 'the prompt is empty');
  const graph = await loadGraph(opts.model);
  const weights = randomWeights(graph, seed);
  // The last generated token is never run: prompt + steps − 1 positions.
  const need = prompt.length + steps - 1;
  const modelMax = (graph.meta['llama'] as { maxSeqLen?: number } | undefined)?.maxSeqLen ?? need;
  const session = await Session.create(graph, { backend: jsBackend, weights, maxSeqLen: Math.max(modelMax, need) });
  const reference: number[] = [];
  for await (const s of session.generate(prompt, { maxTokens: steps })) reference.push(s.token);

  const program = session.program;
  const kv = program.meta['kvCache'] as KvCacheMeta;
  const tokens = program.nodes.find((n) => n.op === 'input' && n.attrs['name'] === 'tokens')!;
  const seqDim = tokens.type.shape[0]!;
  const seqSymbol = typeof seqDim === 'number' ? 'seq' : Object.keys(seqDim.terms)[0]!;
  const states = kv.states.map((name) => {
    const n = program.nodes.find((x) => x.op === 'state' && x.attrs['name'] === name)!;
    return { name, dtype: n.type.dtype as 'f32' | 'i32', shape: n.type.shape as number[] };
  });

  mkdirSync(opts.out, { recursive: true });
  const { entries, bytes } = packWeights(graph, weights);
  writeFileSync(join(opts.out, 'weights.bin'), bytes);

  const backends: Record<string, { prefill: string; decode: string }> = {};
  const unavailable: Record<string, string> = { ...NOT_IN_BROWSER };
  const wanted = opts.backends ?? Object.keys(WEB_BACKENDS);
  for (const name of wanted) {
    const make = Object.hasOwn(WEB_BACKENDS, name) ? WEB_BACKENDS[name] : undefined;
    if (!make) throw new KilnError('K1016', `the web page has no ${name} backend${Object.hasOwn(NOT_IN_BROWSER, name) ? ` (${NOT_IN_BROWSER[name]})` : ''}; it has ${Object.keys(WEB_BACKENDS).join(', ')}`);
    let web: WebBackend;
    try {
      web = await make();
    } catch (e) {
      // Without an explicit list, a backend that is not there yet is left out (and said so).
      if (opts.backends) throw e;
      unavailable[name] = `it did not build here: ${(e as Error).message}`;
      console.error(`build-web: skipping the ${name} backend: ${(e as Error).message}`);
      continue;
    }
    const files = {
      ...(await web.shared?.()),
      ...(await web.files(program, {}, 'prefill')),
      ...(await web.files(program, { specialize: { [seqSymbol]: 1 } }, 'decode')),
    };
    mkdirSync(join(opts.out, name), { recursive: true });
    for (const [file, body] of Object.entries(files)) writeFileSync(join(opts.out, name, file), body);
    backends[name] = { prefill: `${name}/prefill.js`, decode: `${name}/decode.js` };
  }

  const manifest: WebManifest = {
    model: opts.model,
    seed,
    prompt,
    steps,
    vocabSize: session.vocabSize,
    maxSeqLen: session.maxSeqLen,
    seqSymbol,
    posSymbol: POS,
    states,
    weights: entries,
    backends,
    unavailable,
    reference,
  };
  writeFileSync(join(opts.out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  return { manifest, weights, graph };
}

/** Every param back to back in node order; 4-byte elements keep every offset aligned. */
function packWeights(g: Graph, w: Readonly<Record<string, HostArray>>): { entries: WeightEntry[]; bytes: Uint8Array } {
  const entries: WeightEntry[] = [];
  let offset = 0;
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const name = String(n.attrs['name']);
    if (entries.some((e) => e.name === name)) continue;
    const data = w[name]!;
    entries.push({ name, dtype: n.type.dtype as 'f32' | 'i32', shape: n.type.shape as number[], offset, length: data.length });
    offset += data.length * 4;
  }
  const bytes = new Uint8Array(offset);
  for (const e of entries) bytes.set(new Uint8Array(w[e.name]!.buffer, w[e.name]!.byteOffset, e.length * 4), e.offset);
  return { entries, bytes };
}

// ---------------------------------------------------------------------------------------------
// command line

function arg(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: string[]): Promise<void> {
  const out = arg(argv, '--out') ?? 'examples/web/dist';
  const list = (s: string | undefined) => s?.split(',').map((x) => x.trim()).filter(Boolean);
  const prompt = list(arg(argv, '--prompt'))?.map(Number);
  const steps = arg(argv, '--steps');
  const seed = arg(argv, '--seed');
  const backends = list(arg(argv, '--backends'));
  const { manifest } = await buildWeb({
    model: arg(argv, '--model') ?? 'preset:tiny',
    out,
    ...(prompt ? { prompt } : {}),
    ...(steps ? { steps: Number(steps) } : {}),
    ...(seed ? { seed: Number(seed) } : {}),
    ...(backends ? { backends } : {}),
  });
  console.log(`build-web: ${manifest.model} (seed ${manifest.seed}) → ${out}: backends ${Object.keys(manifest.backends).join(', ')}; reference tokens ${manifest.reference.join(',')}`);
  if (argv.includes('--serve')) {
    const { startServer } = await import('../tests/browser/server.js');
    const server = await startServer({ dist: out, port: Number(arg(argv, '--port') ?? 8080) });
    console.log(`serving the page at ${server.url}/index.html?backend=js (Ctrl-C to stop)`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof KilnError ? e.format() : e);
    process.exitCode = 1;
  });
}
