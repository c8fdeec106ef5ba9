/**
 * kiln's contestants: the js backend (one thread), and the wasm backend at each thread count.
 * The wasm backend is loaded by path at run time so that the bench runs — showing it as not
 * available, with the reason — on a tree that does not have it.
 */
import type { Backend } from '../backends/backend.js';

export interface KilnContestant {
  readonly id: string;
  readonly label: string;
  readonly threads: number;
  readonly backend?: Backend;
  readonly unavailable?: string;
}

const WASM_MODULE = '../backends/wasm/index.js';

/** The ways a backend module may offer a backend with a thread count. */
type Maker = (threads: number) => Backend | Promise<Backend>;

function wasmMaker(mod: Record<string, unknown>): Maker | undefined {
  for (const name of ['createWasmBackend', 'makeWasmBackend', 'wasmBackendWith']) {
    const f = mod[name];
    if (typeof f === 'function') return (threads) => (f as (o: { threads: number }) => Backend | Promise<Backend>)({ threads });
  }
  const b = mod['wasmBackend'] as (Backend & { withThreads?: (n: number) => Backend }) | ((o: { threads: number }) => Backend) | undefined;
  if (typeof b === 'function') return (threads) => b({ threads });
  if (b && typeof b.withThreads === 'function') return (threads) => b.withThreads!(threads);
  return undefined;
}

/** `which` names the backends to load (js, wasm); others are left out of the tables. */
export async function kilnContestants(threadCounts: readonly number[], which: readonly string[] = ['js', 'wasm']): Promise<KilnContestant[]> {
  for (const w of which) if (w !== 'js' && w !== 'wasm') throw new Error(`bench: no kiln backend '${w}' to measure (js, wasm)`);
  const out: KilnContestant[] = [];
  if (which.includes('js')) out.push({ id: 'kiln-js', label: 'kiln js', threads: 1, backend: (await import('../backends/js/index.js')).jsBackend });
  if (!which.includes('wasm')) return out;
  let maker: Maker | undefined;
  let why = '';
  try {
    const mod = (await import(WASM_MODULE)) as Record<string, unknown>;
    maker = wasmMaker(mod);
    if (!maker) why = `backends/wasm exports no backend factory taking a thread count (exports: ${Object.keys(mod).join(', ')})`;
  } catch (e) {
    why = isMissing(e) ? 'backends/wasm is not written yet' : `backends/wasm failed to load: ${firstLine(e)}`;
  }
  for (const threads of threadCounts) {
    const id = `kiln-wasm-${threads}t`;
    const label = `kiln wasm ${threads}t`;
    if (!maker) {
      out.push({ id, label, threads, unavailable: why });
      continue;
    }
    try {
      out.push({ id, label, threads, backend: await maker(threads) });
    } catch (e) {
      out.push({ id, label, threads, unavailable: `wasm backend with ${threads} threads: ${firstLine(e)}` });
    }
  }
  return out;
}

function isMissing(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((e as Error).message).includes('backends/wasm/index');
}

export const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
