import { KilnError } from '../../graph/errors.js';
import { writeStdout } from './io.js';

export interface FuzzCliOptions {
  readonly backends: string;
  readonly runs: number;
  readonly seed: number;
}

/** The exit code for a mismatch: the run itself worked, the compiler did not. */
export class FuzzMismatch extends Error {
  constructor() {
    super('kiln fuzz found a mismatch');
    this.name = 'FuzzMismatch';
  }
}

/** `kiln fuzz`: random graphs and tiny LLaMAs through passes and backends, judged by the interpreter. */
export async function fuzzCommand(opts: FuzzCliOptions): Promise<void> {
  const { BACKENDS, loadBackend } = await import('./backends.js');
  const names = opts.backends.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new KilnError('K1016', `--backends: name at least one backend to hold to the interpreter: ${BACKENDS.join(', ')}`);
  for (const n of names) if (!BACKENDS.includes(n)) throw new KilnError('K1016', `--backends: there is no backend '${n}'; available: ${BACKENDS.join(', ')}`);
  const backends = await Promise.all(names.map((n) => loadBackend(n)));
  const { fuzz } = await import('../fuzz/fuzz.js');
  const { formatFailure, formatSuccess } = await import('../fuzz/report.js');
  const tty = process.stderr.isTTY === true;
  const result = await fuzz({
    backends,
    runs: opts.runs,
    seed: opts.seed,
    onProgress: (kind, done, total) => {
      const what = kind === 'graph' ? 'random graphs' : 'tiny LLaMA variants';
      if (tty) process.stderr.write(`\r\x1b[Kkiln fuzz: ${what} ${done}/${total}`);
      else if (done === total || done % 50 === 0) process.stderr.write(`kiln fuzz: ${what} ${done}/${total}\n`);
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  if (result.ok) {
    await writeStdout(formatSuccess(result, names));
    return;
  }
  const replay = `kiln fuzz --backends ${names.join(',')} --runs ${opts.runs} --seed ${opts.seed}`;
  await writeStdout(formatFailure(result.failure!, replay));
  throw new FuzzMismatch();
}
