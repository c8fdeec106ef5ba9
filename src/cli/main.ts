import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { EXIT, reportError } from './report.js';

/**
 * The `kiln` command line. Commands load their heavy machinery (the TypeScript checker, the
 * Graphviz renderer) only when they run, so `kiln --help` and `kiln info preset:…` start fast.
 */

function version(): string {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('Expected a positive integer.');
  return n;
}

const BACKENDS = ['js'];
const PLANNED_BACKENDS = ['wasm', 'gpu'];

function backend(value: string): string {
  if (BACKENDS.includes(value)) return value;
  const why = PLANNED_BACKENDS.includes(value) ? `The ${value} backend does not exist yet` : `There is no backend '${value}'`;
  throw new InvalidArgumentError(`${why}; available: ${BACKENDS.join(', ')}.`);
}

const MODEL_HELP = 'a model file (.ts exporting a Model), a JSON graph (.json), - for JSON on stdin, or preset:NAME';

export function buildProgram(): Command {
  const program = new Command('kiln')
    .description('A compiler for LLaMA-family language models.')
    .version(version(), '-V, --version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');

  program
    .command('dump')
    .description('Print a model graph as text, JSON or Graphviz DOT, or render it as SVG.')
    .argument('<model>', MODEL_HELP)
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json', 'dot']).default('text'))
    .option('--svg <file>', 'render the graph (DOT through Graphviz) to an SVG file')
    .option('--fold', 'fold repeated layers into one (text and dot)')
    .option('-o, --out <file>', 'write the dump to a file instead of stdout')
    .option('--no-typecheck', 'skip type-checking a .ts model file')
    .action(async (model: string, opts: DumpOpts, cmd: Command) => {
      const { dump } = await import('./dump.js');
      await dump(model, { ...opts, formatGiven: cmd.getOptionValueSource('format') === 'cli' });
    });

  program
    .command('info')
    .description('Parameters, weight bytes, FLOPs per token and KV-cache size of a model.')
    .argument('<model>', MODEL_HELP)
    .option('-c, --context <n>', 'context length to measure at (default: the model\'s maxSeqLen, else 2048)', positiveInt)
    .option('--json', 'print the facts as JSON')
    .option('--no-typecheck', 'skip type-checking a .ts model file')
    .action(async (model: string, opts: InfoOpts) => {
      const { info } = await import('./info.js');
      await info(model, opts);
    });

  program
    .command('compile')
    .description('Build and validate a model graph and summarise it (code generation comes with the backends).')
    .argument('<model>', MODEL_HELP)
    .option('-b, --backend <name>', `target backend (${BACKENDS.join(', ')})`, backend, 'js')
    .option('--no-typecheck', 'skip type-checking a .ts model file')
    .action(async (model: string, opts: CompileOpts) => {
      const { compile } = await import('./compile.js');
      await compile(model, opts);
    });

  return program;
}

interface DumpOpts {
  format: 'text' | 'json' | 'dot';
  svg?: string;
  fold?: boolean;
  out?: string;
  typecheck: boolean;
}
interface InfoOpts {
  context?: number;
  json?: boolean;
  typecheck: boolean;
}
interface CompileOpts {
  backend: string;
  typecheck: boolean;
}

/** Run the CLI; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    return EXIT.ok;
  } catch (e) {
    // Help and --version end as "errors" under exitOverride, with exit code 0.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return reportError(e);
  }
}
