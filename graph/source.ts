import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SourceLoc } from './errors.js';

/**
 * Where the user's code called into kiln. Every node records the position of the first stack
 * frame outside kiln's library code, so dumps and shape errors point at the line of the model
 * file that built the node, not at a line inside kiln.
 */
const KILN_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LIBRARY_DIRS = ['graph', 'src', 'passes', 'backends', 'bin', 'node_modules'].map((d) => resolve(KILN_ROOT, d) + sep);

/** Library files that are themselves model definitions (the LLaMA family): nodes built there point there. */
const modelFiles = new Set<string>();

export function registerModelFile(url: string): void {
  modelFiles.add(url.startsWith('file:') ? fileURLToPath(url) : url);
}

const FRAME_RE = /\(?((?:file:\/\/)?[^\s()]+?):(\d+):(\d+)\)?$/;

function frames(): SourceLoc[] {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  const out: SourceLoc[] = [];
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME_RE.exec(line.trim());
    if (!m) continue;
    let file = m[1]!;
    if (file.startsWith('file://')) file = fileURLToPath(file);
    if (file.startsWith('node:') || !file.startsWith('/')) continue;
    out.push({ file, line: Number(m[2]), col: Number(m[3]) });
  }
  return out;
}

function isLibrary(file: string): boolean {
  return LIBRARY_DIRS.some((d) => file.startsWith(d));
}

function display(loc: SourceLoc): SourceLoc {
  const rel = relative(process.cwd(), loc.file);
  return { ...loc, file: rel.startsWith('..') ? loc.file : rel.split(sep).join('/') };
}

/** The first frame in model code: a user's file, or a library file registered as a model definition. */
export function modelSite(): SourceLoc | undefined {
  const f = frames().find((fr) => !isLibrary(fr.file) || modelFiles.has(fr.file));
  return f && display(f);
}

/** The first frame outside kiln altogether: where the user called kiln. */
export function userSite(): SourceLoc | undefined {
  const f = frames().find((fr) => !isLibrary(fr.file));
  return f && display(f);
}

/** Resolve a displayed (possibly relative) location back to an absolute path, for excerpts. */
export function absoluteLoc(loc: SourceLoc): SourceLoc {
  return { ...loc, file: resolve(process.cwd(), loc.file) };
}
