import { KilnError } from '../../graph/errors.js';
import { writeFileAtomic, writeStdout } from './io.js';
import { loadGraph } from './load.js';

export interface DumpOptions {
  readonly format: 'text' | 'json' | 'dot';
  /** Whether --format was given (with --svg alone, nothing goes to stdout). */
  readonly formatGiven?: boolean;
  readonly svg?: string;
  readonly fold?: boolean;
  readonly out?: string;
  readonly typecheck?: boolean;
}

/** Write a whole file or nothing; a path we cannot write to is the user's to fix. */
/** `kiln dump`: the graph as text (default), JSON or DOT, to stdout or --out; --svg renders it. */
export async function dump(spec: string, opts: DumpOptions): Promise<void> {
  const g = await loadGraph(spec, { typecheck: opts.typecheck !== false });
  const print = await import('../../graph/print/index.js');
  const fold = opts.fold === true;
  // JSON is the graph itself, for reading back: folding it would drop nodes
  if (fold && opts.format === 'json' && opts.svg === undefined) process.stderr.write('kiln: --fold applies to the text, dot and svg pictures; JSON is always the whole graph\n');
  // `-` is stdout, as it is stdin for <model>; only one of them may take it
  if (opts.svg === '-' && (opts.out === undefined ? opts.formatGiven : opts.out === '-'))
    throw new KilnError('K1016', '--svg - and the text dump would both go to stdout: give one of them a file (--out FILE or --svg FILE)');
  if (opts.svg !== undefined) {
    const svg = await print.renderSvg(print.printDot(g, { fold }));
    if (opts.svg === '-') await writeStdout(svg.endsWith('\n') ? svg : `${svg}\n`);
    else {
      writeFileAtomic(opts.svg, svg);
      process.stderr.write(`wrote ${opts.svg} (${g.nodes.length} nodes)\n`);
    }
    if (!opts.formatGiven && opts.out === undefined) return;
  }
  let text = opts.format === 'json' ? print.stringifyGraph(g) : opts.format === 'dot' ? print.printDot(g, { fold }) : print.printText(g, { fold });
  if (!text.endsWith('\n')) text += '\n';
  if (opts.out !== undefined && opts.out !== '-') {
    writeFileAtomic(opts.out, text);
    process.stderr.write(`wrote ${opts.out} (${g.nodes.length} nodes)\n`);
  } else {
    await writeStdout(text);
  }
}
