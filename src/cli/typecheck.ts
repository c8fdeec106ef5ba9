import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Project, ts } from 'ts-morph';

/**
 * Type-check a model file before running it, so that a mistake the types can see is reported the
 * way `tsc` reports it (`model.ts(12,5): error TS2345: …`) instead of surfacing as a crash while
 * the graph is built. This module loads the TypeScript compiler (~1–2 s): import it lazily.
 */

const KILN_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// kiln's own sources are not the user's to fix; their diagnostics are left to kiln's own build.
const LIBRARY_DIRS = ['graph', 'src', 'passes', 'backends'].map((d) => join(KILN_ROOT, d) + sep);

/** Options equal in spirit to kiln's own tsconfig, for model files that have no tsconfig above them. */
const DEFAULT_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  noUncheckedIndexedAccess: true,
  skipLibCheck: true,
  resolveJsonModule: true,
  // tsx runs `import './x.ts'` as written, and nothing is emitted
  allowImportingTsExtensions: true,
  isolatedModules: true,
};

export interface TsDiagnostic {
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
  readonly code: number;
  readonly message: string;
}

/** `file(line,col): error TS2345: message`, as `tsc --pretty false` prints it; chained detail indented below. */
export function formatTsDiagnostic(d: TsDiagnostic): string {
  const where = d.file !== undefined ? `${d.file}(${d.line},${d.col}): ` : '';
  return `${where}error TS${d.code}: ${d.message}`;
}

function findTsconfig(from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const p = join(dir, 'tsconfig.json');
    if (existsSync(p)) return p;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The compiler options of the nearest tsconfig.json above the file (kiln's defaults without one). */
function compilerOptionsFor(file: string): { options: ts.CompilerOptions; configPath?: string } {
  const configPath = findTsconfig(dirname(file));
  if (!configPath) return { options: DEFAULT_OPTIONS };
  const read = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  if (read.error) return { options: DEFAULT_OPTIONS };
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, dirname(configPath), undefined, configPath);
  return { options: parsed.options, configPath };
}

function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return (rel.startsWith('..') ? file : rel).split(sep).join('/');
}

export interface TypecheckResult {
  /** Errors in `file` and in the user's files it imports (kiln's and node_modules' excluded). */
  readonly diagnostics: readonly TsDiagnostic[];
  /** The files the check read, outside node_modules and TypeScript's libs, and the tsconfig used. */
  readonly files: readonly string[];
}

export function typecheckModelFile(file: string): TypecheckResult {
  const abs = resolve(file);
  const { options, configPath } = compilerOptionsFor(abs);
  const project = new Project({ compilerOptions: { ...options, noEmit: true }, skipAddingFilesFromTsConfig: true });
  project.addSourceFileAtPath(abs);
  const program = project.getProgram().compilerObject;
  const files = program
    .getSourceFiles()
    .filter((sf) => !program.isSourceFileDefaultLibrary(sf))
    .map((sf) => resolve(sf.fileName))
    .filter((p) => !p.includes(`${sep}node_modules${sep}`));
  if (configPath) files.push(configPath);
  const out: TsDiagnostic[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (d.category !== ts.DiagnosticCategory.Error) continue;
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
    if (!d.file || d.start === undefined) {
      out.push({ code: d.code, message });
      continue;
    }
    const path = resolve(d.file.fileName);
    const library = path.includes(`${sep}node_modules${sep}`) || LIBRARY_DIRS.some((lib) => path.startsWith(lib));
    if (library && path !== abs) continue;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    out.push({ file: displayPath(path), line: line + 1, col: character + 1, code: d.code, message });
  }
  return { diagnostics: out, files };
}
