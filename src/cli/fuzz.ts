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
  // each backend once: `js,js` would check js twice
  const names = [...new Set(opts.backends.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
  if (names.length === 0) throw new KilnError('K1016', `--backends: name at least one backend to hold to the interpreter: ${BACKENDS.join(', ')}`);
  for (const n of names) if (!BACKENDS.includes(n)) throw new KilnError('K1016', `--backends: there is no backend '${n}'; available: ${BACKENDS.join(', ')}`);
  if (!Number.isInteger(opts.seed) || opts.seed > 0xffffffff) throw new KilnError('K1016', `--seed must be an integer in [0, 4294967295] (the generator has 32 bits of state), got ${opts.seed}`);
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
  // the flags that shape the backends too (threads, device), so that the line replays this run
  const threads = process.env['KILN_THREADS'] !== undefined && names.includes('wasm') ? ` --threads ${process.env['KILN_THREADS']}` : '';
  const device = process.env['KILN_GPU_DEVICE'] !== undefined && names.includes('gpu') ? ` --device ${process.env['KILN_GPU_DEVICE']}` : '';
  const replay = `kiln fuzz --backends ${names.join(',')} --runs ${opts.runs} --seed ${opts.seed}${threads}${device}`;
  await writeStdout(formatFailure(result.failure!, replay));
  throw new FuzzMismatch();
}
