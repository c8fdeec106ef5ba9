import { relative, resolve, sep } from 'node:path';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError, KilnError, type SourceLoc } from '../../graph/errors.js';

/**
 * How the CLI ends. Exit codes: 0 success; 1 the user's mistake (a KilnError or type errors in the
 * model file: short messages, no stack); 2 a usage error (commander's own); 70 a bug in kiln
 * (EX_SOFTWARE: message, stack and a request to report it). `KILN_DEBUG=1` adds stacks to user
 * errors too.
 */
export const EXIT = { ok: 0, user: 1, usage: 2, internal: 70 } as const;

/** Several already-formatted diagnostics (e.g. TypeScript's), reported as a user error. */
export class DiagnosticsError extends Error {
  readonly lines: readonly string[];
  constructor(lines: readonly string[]) {
    super(lines.join('\n'));
    this.name = 'DiagnosticsError';
    this.lines = lines;
  }
}

const KILN_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LIBRARY_DIRS = ['graph', 'src', 'passes', 'backends', 'node_modules'].map((d) => join(KILN_ROOT, d) + sep);
// `at fn (/abs/file.ts:3:7)`, `at /abs/file.ts:3:7`, `at async file:///abs/file.ts:3:7`; not `node:internal/…`
const FRAME_RE = /(?:\(|^at (?:async )?)((?:file:\/\/)?\/[^\s()]+?):(\d+):(\d+)\)?$/;

/**
 * Where a non-kiln error was thrown, when that place is the user's code (the first stack frame
 * with a file is outside kiln and node_modules); undefined when kiln itself threw it.
 */
export function userThrowSite(err: unknown): SourceLoc | undefined {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME_RE.exec(line.trim());
    if (!m) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (LIBRARY_DIRS.some((d) => file.startsWith(d))) return undefined;
    const rel = relative(process.cwd(), file);
    return { file: (rel.startsWith('..') ? file : rel).split(sep).join('/'), line: Number(m[2]), col: Number(m[3]) };
  }
  return undefined;
}

/**
 * A KilnError, also from a second copy of kiln's modules: a model file loaded as CommonJS gets its
 * own instances of them (tsx compiles each copy separately), so `instanceof` alone would miss it.
 */
export function isKilnError(e: unknown): e is KilnError {
  if (e instanceof KilnError) return true;
  const k = e as Partial<KilnError> | null;
  return e instanceof Error && e.name === 'KilnError' && typeof k?.code === 'string' && typeof k.format === 'function';
}

/** Print what went wrong to stderr and return the exit code. */
export function reportError(err: unknown): number {
  const debug = process.env['KILN_DEBUG'] === '1';
  if (isKilnError(err)) {
    process.stderr.write(`${err.format()}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    // K1016 is a flag's value the command cannot take: a usage error, as commander's own are
    return err.code === 'K1016' ? EXIT.usage : EXIT.user;
  }
  if (err instanceof DiagnosticsError) {
    process.stderr.write(`${err.lines.join('\n')}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT.user;
  }
  const message = err instanceof Error ? err.message : String(err);
  const plain = err instanceof InternalError ? message.replace(/^internal error: /, '') : message;
  process.stderr.write(`kiln: internal error: ${plain}\n`);
  if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.stderr.write('This is a bug in kiln, not in your model. Please report it with the command you ran and the output above.\n');
  return EXIT.internal;
}
