import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BACKENDS, RUN_BACKENDS } from './backends.js';
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

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('Expected an integer ≥ 0.');
  return n;
}

function finiteNumber(value: string): number {
  const n = Number(value);
  // decimal only: Number() would also take 0x1 and 0b1
  if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value) || !Number.isFinite(n)) throw new InvalidArgumentError('Expected a number.');
  return n;
}

function backendIn(available: readonly string[]): (value: string) => string {
  return (value) => {
    if (available.includes(value)) return value;
    throw new InvalidArgumentError(`There is no backend '${value}'; available: ${available.join(', ')}.`);
  };
}
const backend = backendIn(BACKENDS);

const MODEL_HELP =
  'a model file (.ts exporting a Model), a JSON graph (.json), - for JSON on stdin, preset:NAME, or a checkpoint ' +
  '(.gguf, .safetensors, a Hugging Face folder, a llama2.c .bin: its config, weights and tokenizer)';

function vocabKind(value: string): 'llama' | 'synthetic' {
  if (value === 'llama' || value === 'synthetic') return value;
  throw new InvalidArgumentError("Expected 'llama' or 'synthetic'.");
}

export function buildProgram(): Command {
  const program = new Command('kiln')
    .description('A compiler for LLaMA-family language models.')
    .version(version(), '-V, --version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    // the option parser's usage errors carry the code the README gives them, as kiln's own do
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'error K1016: ')) })
    // --threads reaches the wasm backend wherever a command creates it (src/cli/backends.ts).
    .hook('preAction', (_, action) => {
      const opts = action.opts();
      const threads = opts['threads'] as number | undefined;
      if (threads !== undefined) process.env['KILN_THREADS'] = String(threads);
      const device = opts['device'] as string | undefined;
      if (device !== undefined) process.env['KILN_GPU_DEVICE'] = device;
      if (opts['relaxedSimd'] === false) process.env['KILN_WASM_RELAXED'] = '0';
      // a flag for a backend the command does not use would otherwise be dropped in silence
      const chosen = String(opts['backends'] ?? opts['backend'] ?? '').split(',').map((x) => x.trim());
      for (const [flag, given, backend] of [['--threads', threads, 'wasm'], ['--device', device, 'gpu']] as const)
        if (given !== undefined && !chosen.includes(backend)) process.stderr.write(`kiln: ${flag} applies to the ${backend} backend; ${chosen.join(', ') || 'this command'} ignores it\n`);
    });

  program
    .command('dump')
    .description('Print a model graph as text, JSON or Graphviz DOT, or render it as SVG.')
    .argument('<model>', MODEL_HELP)
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json', 'dot']).default('text'))
    .option('--svg <file>', 'render the graph (DOT through Graphviz) to an SVG file (- for stdout)')
    .option('--fold', 'fold repeated layers into one (text and dot)')
    .option('-o, --out <file>', 'write the dump to a file instead of stdout')
    .option('--no-typecheck', 'skip type-checking a .ts model file')
    .action(async (model: string, opts: DumpOpts, cmd: Command) => {
      const { dump } = await import('./dump.js');
      await dump(model, { ...opts, formatGiven: cmd.getOptionValueSource('format') === 'cli' });
    });

  program
    .command('info')
    .description('Parameters, weight bytes, FLOPs per token and KV-cache size of a model; for a checkpoint also its file size, tensor count and dtype mix.')
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
    .description('Run the pass pipeline (a report per pass, the memory plan) and generate code for a backend.')
    .argument('<model>', MODEL_HELP)
    .option('-b, --backend <name>', `target backend (${BACKENDS.join(', ')})`, backend, 'js')
    .option('--threads <n>', 'wasm backend: worker threads (default: every core)', positiveInt)
    .addOption(new Option('--device <name>', 'gpu backend: where its kernels run (auto picks the best that works and says which)').choices(['auto', 'headlessgl', 'webgpu', 'webgl2']))
    .option('-o, --out <dir>', 'write the generated module(s) into this folder')
    .option('--dump-after <passes>', "dump the graph after these passes (comma-separated names, or 'all')")
    .option('--dump-dir <dir>', 'folder for the NNN_PASS.ir dumps (default: <out>/dumps)')
    .option('--passes <list>', 'run these passes instead of the pipeline (comma-separated names)')
    .option('--max-seq-len <n>', `context length for the KV cache and memory plan (default: the model's maxSeqLen, else 2048)`, positiveInt)
    .option('--batch <n>', 'the most tokens one prefill run takes (default: the whole context); attention scores take heads × batch × context floats', positiveInt)
    .option('--no-relaxed-simd', 'wasm backend: plain SIMD128 modules, for engines without relaxed SIMD (default: relaxed fused multiply-add where this engine has it)')
    .option('--no-typecheck', 'skip type-checking a .ts model file')
    .action(async (model: string, opts: CompileOpts) => {
      const { compile } = await import('./compile.js');
      await compile(model, opts);
    });

  program
    .command('run')
    .description(
      'Generate after a prompt: text (--prompt, streamed as it comes; needs a tokenizer) or token ids (--tokens). ' +
        'A checkpoint runs with its own weights and tokenizer, anything else with seeded random weights. ' +
        'Generation stops after the end-of-sequence token (EOS) or --max-tokens.',
    )
    .argument('<model>', MODEL_HELP)
    .option('-p, --prompt <text>', 'the prompt as text, encoded by the model\'s tokenizer (BOS added as the tokenizer says)')
    .option('-t, --tokens <ids>', 'the prompt as comma-separated token ids, e.g. 1,2,3 (ids stream out)')
    .option('--tokenizer <file>', 'a tokenizer for a checkpoint that lacks one (tokenizer.json, or llama2.c tokenizer.bin)')
    .option('-n, --max-tokens <n>', 'how many tokens to generate at most', nonNegativeInt, 16)
    .option('--temperature <t>', '0 is greedy (argmax)', finiteNumber, 0)
    .option('--top-k <k>', 'sample among the k most likely tokens (0: all)', nonNegativeInt)
    .option('--top-p <p>', 'sample among the most likely tokens holding probability p (0: the most likely one)', finiteNumber)
    .option('--repeat-penalty <r>', 'discourage tokens already seen (llama.cpp rule; 1: off)', finiteNumber)
    .option('--repeat-last-n <n>', 'how many of the last tokens --repeat-penalty looks at (default 64, as llama.cpp; 0: off)', nonNegativeInt)
    .option('--seed <s>', 'seed of the sampler', nonNegativeInt, 0)
    .option('--weights-seed <s>', 'seed of the random weights (models without a checkpoint; default 0)', nonNegativeInt)
    .option('--ignore-eos', 'keep generating after the end-of-sequence token')
    .option('--context <n>', "KV cache length (default: the model's maxSeqLen, raised to fit the prompt and --max-tokens)", positiveInt)
    .option('--batch <n>', 'prompt tokens per prefill step (default 512, as llama.cpp); attention scores take heads × batch × context floats', positiveInt)
    .option('-b, --backend <name>', `backend (${RUN_BACKENDS.join(', ')})`, backendIn(RUN_BACKENDS), 'js')
    .option('--threads <n>', 'wasm backend: worker threads (default: every core)', positiveInt)
    .addOption(new Option('--device <name>', 'gpu backend: where its kernels run (auto picks the best that works and says which)').choices(['auto', 'headlessgl', 'webgpu', 'webgl2']))
    .option('--json', 'print { tokens, prompt, text, stopped, timings } as JSON at the end instead of streaming')
    .option('--profile', 'js and wasm backends: time every kernel and print the time per op, prefill and decode (stderr; with --json, in the JSON)')
    .option('--no-typecheck', 'skip type-checking a .ts model file')
    .action(async (model: string, opts: import('./run.js').RunOptions) => {
      const { run } = await import('./run.js');
      await run(model, opts);
    });

  program
    .command('logits')
    .description("The logits after the last of the given tokens (a checkpoint's weights, else seeded random ones), on a backend or the interpreter.")
    .argument('<model>', MODEL_HELP)
    .requiredOption('-t, --tokens <ids>', 'comma-separated token ids, e.g. 1,2,3')
    .option('-b, --backend <name>', `backend (${RUN_BACKENDS.join(', ')}; interpret runs the graph as written)`, backendIn(RUN_BACKENDS), 'js')
    .option('--threads <n>', 'wasm backend: worker threads (default: every core)', positiveInt)
    .addOption(new Option('--device <name>', 'gpu backend: where its kernels run (auto picks the best that works and says which)').choices(['auto', 'headlessgl', 'webgpu', 'webgl2']))
    .option('--weights-seed <s>', 'seed of the random weights (models without a checkpoint; default 0)', nonNegativeInt)
    .option('--json', 'print every logit as JSON')
    .option('--no-typecheck', 'skip type-checking a .ts model file')
    .action(async (model: string, opts: import('./logits.js').LogitsOptions) => {
      const { logits } = await import('./logits.js');
      await logits(model, opts);
    });

  program
    .command('convert')
    .description(
      'Convert a checkpoint between formats (GGUF ↔ safetensors, llama2.c → either), or write preset:NAME with seeded random weights ' +
        '(std 0.1) and a tokenizer (the LLaMA vocabulary when it has 32000 tokens, else a synthetic one) — a model to run without a download. ' +
        'The output format follows OUT: .gguf, .safetensors, or a folder (safetensors). Written atomically.',
    )
    .argument('<model>', 'a checkpoint (.gguf, .safetensors, a Hugging Face folder, a llama2.c .bin) or preset:NAME')
    .argument('<out>', 'the file to write: .gguf, .safetensors, or a folder for safetensors')
    .option('--tokenizer <file>', 'a tokenizer for an input that keeps it apart (tokenizer.json, llama2.c tokenizer.bin)')
    .option('--seed <s>', 'preset:NAME only: seed of the random weights (default 0)', nonNegativeInt)
    .option('--vocab <kind>', "preset:NAME only: 'llama' (the 32000-token LLaMA vocabulary) or 'synthetic' (default: llama when vocabSize is 32000)", vocabKind)
    .action(async (model: string, out: string, opts: import('./convert.js').ConvertOptions) => {
      const { convertCommand } = await import('./convert.js');
      await convertCommand(model, out, opts);
    });

  program
    .command('train')
    .description(
      'Train a model on text: a model file or preset starts from fresh seeded weights, a checkpoint is fine-tuned. ' +
        'Mean next-token cross-entropy over windows of --seq tokens, gradients by the autodiff pass, AdamW with warmup and cosine decay, ' +
        'global-norm clipping. Writes the trained model (GGUF and safetensors, with its tokenizer), metrics.jsonl, TensorBoard event files ' +
        'and loss.svg into --out; --save-every writes checkpoints that --resume continues exactly.',
    )
    .argument('<model>', MODEL_HELP)
    .requiredOption('-d, --data <files...>', 'training data: .jsonl (a "text" field per line), .json (one array of token ids), anything else UTF-8 text (.txt, .md)')
    .option('--val <files...>', 'validation data (default: a held-out share of the windows of --data)')
    .option('--val-fraction <f>', 'share of the windows held out for validation when --val is not given', finiteNumber, 0.1)
    .option('-o, --out <dir>', 'folder for the trained model, metrics, event files, picture and checkpoints (default: out/<model name>-trained)')
    .option('--tokenizer <file>', "a tokenizer (tokenizer.json, llama2.c tokenizer.bin) instead of the checkpoint's own; a model without one gets one made from the data")
    .option('--strip-html', 'remove HTML tags from the text')
    .option('--normalize-whitespace', 'collapse runs of spaces and blank lines')
    .option('--batch <n>', 'windows per micro-batch', positiveInt, 8)
    .option('--seq <n>', "tokens per window (default: 256, or the model's context if shorter)", positiveInt)
    .option('--grad-accum <n>', 'micro-batches per optimizer step', positiveInt, 1)
    .option('--steps <n>', 'optimizer steps (default 100)', positiveInt)
    .option('--tokens <n>', 'train on this many tokens instead of giving --steps', positiveInt)
    .option('--lr <x>', 'peak learning rate (default: 1e-3 from fresh weights, 1e-4 to fine-tune a checkpoint)', finiteNumber)
    .option('--min-lr <x>', 'learning rate at the end of the cosine decay (default: lr / 10)', finiteNumber)
    .option('--warmup <n>', 'steps of linear warmup (default: a tenth of the steps, at most 1000)', nonNegativeInt)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay, on matrices only', finiteNumber, 0.1)
    .option('--dropout <p>', 'dropout on each residual branch (0: none)', finiteNumber, 0)
    .option('--clip <x>', 'clip the global gradient norm to this (0: no clipping)', finiteNumber, 1)
    .option('--beta1 <x>', 'AdamW β1', finiteNumber, 0.9)
    .option('--beta2 <x>', 'AdamW β2', finiteNumber, 0.95)
    .option('--eps <x>', 'AdamW ε', finiteNumber, 1e-8)
    .option('--seed <s>', 'seed of the fresh weights, the data order, the split and dropout', nonNegativeInt, 0)
    .option('--no-shuffle', 'take the windows in file order (row b of step s is window (s·batch + b) mod windows)')
    .option('--eval-every <n>', 'validation loss, perplexity and a sample every n steps (0: only at the end)', nonNegativeInt)
    .option('--eval-batches <n>', 'validation micro-batches per evaluation (default: all of them, at most 8)', positiveInt)
    .option('--save-every <n>', 'write a checkpoint every n steps (and at the end)', positiveInt)
    .option('--resume <dir>', 'continue the run saved in this folder (its --out, or one checkpoint folder) exactly where it stopped')
    .option('-b, --backend <name>', 'backend (js, wasm, or gpu where a device works; gpu has no dropout)', backendIn(BACKENDS), 'wasm')
    .option('--threads <n>', 'wasm backend: worker threads (default: every core)', positiveInt)
    .addOption(new Option('--device <name>', 'gpu backend: where its kernels run (auto picks the best that works and says which)').choices(['auto', 'headlessgl', 'webgpu']))
    .option('--no-typecheck', 'skip type-checking a .ts model file')
    .action(async (model: string, opts: import('./train.js').TrainCliOptions) => {
      const { trainCommand } = await import('./train.js');
      await trainCommand(model, opts);
    });

  program
    .command('fuzz')
    .description(
      'Random graphs and random tiny LLaMA variants through the passes and backends, compared with the interpreter. ' +
        'Takes no <model>: it draws its own. Exit 1 on a mismatch, with the smallest failing graph and where it goes wrong.',
    )
    .option('--backends <list>', `backends to check, comma-separated (${BACKENDS.join(', ')})`, 'js')
    .option('--threads <n>', 'wasm backend: worker threads (default: every core)', positiveInt)
    .addOption(new Option('--device <name>', 'gpu backend: where its kernels run (auto picks the best that works and says which)').choices(['auto', 'headlessgl', 'webgpu', 'webgl2']))
    .option('--runs <n>', 'random graphs to try (LLaMA variants: a tenth as many)', positiveInt, 100)
    .option('--seed <s>', 'seed of the run (the same seed replays it)', nonNegativeInt, 0)
    .action(async (opts: import('./fuzz.js').FuzzCliOptions) => {
      const { fuzzCommand } = await import('./fuzz.js');
      await fuzzCommand(opts);
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
  out?: string;
  dumpAfter?: string;
  dumpDir?: string;
  passes?: string;
  maxSeqLen?: number;
  batch?: number;
}

/** Run the CLI; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    return EXIT.ok;
  } catch (e) {
    // Help and --version end as "errors" under exitOverride, with exit code 0.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    // The fuzz report is already on stdout.
    if (e instanceof Error && e.name === 'FuzzMismatch') return EXIT.user;
    return reportError(e);
  }
}
