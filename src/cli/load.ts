import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { isModel, type Model } from '../dsl/model.js';
import { DiagnosticsError, isKilnError, userThrowSite } from './report.js';
import { readStdin, withStatus } from './io.js';
import { knownClean, rememberClean } from './typecheck-cache.js';
import type { Checkpoint, TokenizerData } from '../formats/checkpoint.js';

/**
 * Turns the `<model>` argument into a graph. It is one of:
 *   preset:NAME          a built-in LLaMA configuration
 *   -                    a JSON graph on stdin
 *   file.json            a JSON graph (as `kiln dump --format json` writes it)
 *   file.ts / file.mts   a model file: type-checked, imported, its Model built
 *   a checkpoint         .gguf, .safetensors (or its index .json), a Hugging Face folder, a
 *                        llama2.c .bin: the graph is llama(config from the file), and the file's
 *                        weights and tokenizer come with it (`loadModel`)
 * Every way it can fail on the user's side is a KilnError K1013 naming the file (K1021 for the
 * bytes of a checkpoint).
 */

export interface LoadOptions {
  /** Type-check .ts model files before importing them (default true). */
  readonly typecheck?: boolean;
  /** A tokenizer file for a checkpoint (tokenizer.json or llama2.c's tokenizer.bin). */
  readonly tokenizer?: string;
}

/** A model as the commands use it: the graph, and for a checkpoint its file, weights and tokenizer. */
export interface LoadedModel {
  readonly graph: Graph;
  readonly checkpoint?: Checkpoint;
  readonly tokenizer?: TokenizerData;
}

const TS_EXTS = new Set(['.ts', '.mts', '.cts']);
const JS_EXTS = new Set(['.js', '.mjs']);

function display(path: string): string {
  const rel = relative(process.cwd(), resolve(path));
  return (rel.startsWith('..') ? resolve(path) : rel).split(sep).join('/');
}

function cannotLoad(message: string): KilnError {
  return new KilnError('K1013', message);
}

const CHECKPOINT_EXTS = ['.gguf', '.safetensors', '.bin', '.safetensors.index.json'];
/** What marks a folder as a Hugging Face checkpoint. */
const CHECKPOINT_DIR_FILES = ['model.safetensors.index.json', 'config.json', 'model.safetensors'];

/** Whether `spec` names a checkpoint (by extension, or a folder holding one) rather than a graph. */
export function isCheckpointPath(spec: string): boolean {
  if (spec === '-' || spec.startsWith('preset:')) return false;
  const lower = spec.toLowerCase();
  if (CHECKPOINT_EXTS.some((e) => lower.endsWith(e))) return true;
  try {
    return statSync(spec).isDirectory() && CHECKPOINT_DIR_FILES.some((f) => existsSync(join(spec, f)));
  } catch {
    return false;
  }
}

/**
 * The graph, plus the checkpoint behind it when `spec` is one. A checkpoint is read once, here:
 * its tensors become the weights, and its tokenizer (or `opts.tokenizer`) the tokenizer.
 */
export async function loadModel(spec: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  if (!isCheckpointPath(spec)) return { graph: await loadGraph(spec, opts) };
  const name = display(spec);
  if (!existsSync(spec)) throw cannotLoad(`cannot find checkpoint '${name}'`);
  const { loadCheckpoint } = await import('../formats/checkpoint.js');
  const checkpoint = await withStatus(`reading ${name}`, () => loadCheckpoint(spec));
  const { llama } = await import('../dsl/llama.js');
  const graph = await buildModel(llama(checkpoint.config), name);
  // A tokenizer named on the command line replaces the file's own (or the one found beside it).
  const tokenizer = opts.tokenizer !== undefined ? await sideTokenizer(opts.tokenizer, checkpoint) : checkpoint.tokenizer;
  // A tokenizer of another vocabulary fails mid-generation (an id past the logits) or, written
  // out by convert, makes a file no reader accepts: refuse it before anything runs.
  const V = checkpoint.config.vocabSize;
  if (tokenizer && tokenizer.tokens.length !== V)
    throw new KilnError(
      opts.tokenizer !== undefined ? 'K1016' : 'K1021',
      `${opts.tokenizer !== undefined ? `--tokenizer: ${opts.tokenizer}` : `${name}: its tokenizer`} has ${tokenizer.tokens.length} tokens, but the model's vocabulary has ${V}: they belong to different models`,
    );
  return { graph, checkpoint, ...(tokenizer ? { tokenizer } : {}) };
}

/**
 * `--tokenizer FILE`, read here rather than by the checkpoint readers so that either kind fits
 * any checkpoint: tokenizer.json by its extension, else llama2.c's tokenizer.bin.
 */
async function sideTokenizer(path: string, ck: Checkpoint): Promise<TokenizerData> {
  if (!existsSync(path)) throw new KilnError('K1021', `${path}: tokenizer file not found`);
  const t = await import('../tokenizer/index.js');
  return path.toLowerCase().endsWith('.json') ? t.tokenizerFromHfJson(path).data : t.tokenizerFromLlama2cBin(path, ck.config.vocabSize).data;
}

export async function loadGraph(spec: string, opts: LoadOptions = {}): Promise<Graph> {
  if (isCheckpointPath(spec)) return (await loadModel(spec, opts)).graph;
  if (spec.startsWith('preset:')) {
    const name = spec.slice('preset:'.length);
    const { presetModel } = await import('../dsl/presets.js');
    let model: Model;
    try {
      model = presetModel(name);
    } catch (e) {
      // The name came from the command line: there is no source line to point at.
      if (isKilnError(e)) throw new KilnError(e.code, e.message);
      throw e;
    }
    return buildModel(model, `preset:${name}`);
  }
  if (spec === '-') {
    const { parseGraph } = await import('../../graph/print/json.js');
    if (process.stdin.isTTY) process.stderr.write('kiln: reading a JSON graph from stdin (end with Ctrl-D)\n');
    return parseGraph(await readStdin(), '<stdin>');
  }

  const name = display(spec);
  let isDir: boolean;
  try {
    isDir = statSync(spec).isDirectory();
  } catch {
    throw cannotLoad(`cannot find model file '${name}'`);
  }
  if (isDir) throw cannotLoad(`'${name}' is a directory without a checkpoint (config.json, model.safetensors); give a model file (.ts or .json), a checkpoint or preset:NAME`);

  const ext = extname(spec).toLowerCase();
  if (ext === '.json') {
    const { parseGraph } = await import('../../graph/print/json.js');
    return parseGraph(readFileSync(spec, 'utf8'), name);
  }
  if (!TS_EXTS.has(ext) && !JS_EXTS.has(ext))
    throw cannotLoad(`'${name}' is not a model file: expected .ts, .mts, .json, a checkpoint (.gguf, .safetensors, llama2.c .bin), '-' (stdin) or preset:NAME`);

  if (TS_EXTS.has(ext) && opts.typecheck !== false && !knownClean(spec)) {
    const { diagnostics, files } = await withStatus(`type-checking ${name}`, async () => {
      const { typecheckModelFile } = await import('./typecheck.js');
      return typecheckModelFile(spec);
    });
    if (diagnostics.length > 0) {
      const { formatTsDiagnostic } = await import('./typecheck.js');
      throw new DiagnosticsError(diagnostics.map(formatTsDiagnostic));
    }
    rememberClean(spec, files);
  }
  const model = await importModel(spec, name);
  return buildModel(model, name);
}

async function importModel(path: string, name: string): Promise<Model> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (e) {
    // An import that does not resolve, or a file that does not parse, is the model file's problem.
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    const message = e instanceof Error ? e.message : String(e);
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || e instanceof SyntaxError || message.startsWith('Transform failed'))
      throw cannotLoad(`cannot load '${name}': ${message.startsWith('Transform failed') ? message : message.split('\n')[0]}`);
    throw asUserError(e, `cannot load '${name}'`);
  }
  // A CommonJS model file (no "type": "module" above it) arrives as { default: module.exports }.
  const cjs = typeof mod['default'] === 'object' && mod['default'] !== null ? (mod['default'] as Record<string, unknown>) : {};
  const candidate = [mod['default'], mod['model'], cjs['default'], cjs['model']].find(isModel);
  if (!isModel(candidate))
    throw cannotLoad(`'${name}' exports no model (${mod['default'] === undefined ? `it has no default export${Object.keys(mod).length ? `; it exports ${Object.keys(mod).slice(0, 5).join(', ')}` : ''}` : `its default export is ${describeExport(mod['default'])}`}): write \`export default model('name', (m) => { … })\` or \`export default llama({ … })\``);
  return candidate;
}

async function buildModel(model: Model, name: string): Promise<Graph> {
  return withStatus(`building ${model.name}`, () => {
    try {
      return model.build();
    } catch (e) {
      throw asUserError(e, `building '${name}' failed`);
    }
  });
}

/**
 * A KilnError stays as it is. Anything else thrown from the user's own code (a TypeError in their
 * model file) is their mistake: a K1013 at the line that threw. Thrown from inside kiln, it is ours
 * and stays an internal error.
 */
function asUserError(e: unknown, what: string): unknown {
  if (isKilnError(e)) return e;
  // kiln throws only Errors: a string or an object thrown is the model file's, though it has no line
  if (!(e instanceof Error)) return new KilnError('K1013', `${what}: the model code threw ${showThrown(e)}, not an Error (so there is no line to point at)`);
  const site = userThrowSite(e);
  if (!site) return e;
  return new KilnError('K1013', `${what}: ${e instanceof Error ? e.message : String(e)}`, site);
}

function showThrown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  try {
    const j = JSON.stringify(v);
    if (j !== undefined) return j.length > 80 ? `${j.slice(0, 80)}…` : j;
  } catch {
    // a cycle: fall through
  }
  return String(v);
}

/** A few words on what a file exported instead of a model. */
function describeExport(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'function') return `a function${v.name ? ` '${v.name}'` : ''}`;
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object with keys ${Object.keys(v).slice(0, 5).join(', ') || '(none)'}`;
  return `a ${typeof v}`;
}
