/** The backends the CLI can name, loaded only when a command needs one. */
import type { Backend } from '../../backends/backend.js';
import { KilnError } from '../../graph/errors.js';

/** Compiled backends (what `compile` and `fuzz` target). */
export const BACKENDS = ['js', 'wasm', 'gpu'];
/** What `run` and `logits` may also use: the reference interpreter. */
export const RUN_BACKENDS = [...BACKENDS, 'interpret'];

/** `device` is the gpu backend's `--device` (auto, headlessgl, webgpu, webgl2); other backends ignore it. */
export async function loadBackend(name: string, device?: string): Promise<Backend> {
  if (name === 'gpu') return (await import('../../backends/gpu/index.js')).gpuBackend({ device: ((typeof device === 'string' ? device : undefined) ?? process.env['KILN_GPU_DEVICE'] ?? 'auto') as 'auto' });
  if (name === 'js') return (await import('../../backends/js/index.js')).jsBackend;
  if (name === 'wasm') return (await import('../../backends/wasm/index.js')).createWasmBackend({ threads: wasmThreads(), ...(process.env['KILN_WASM_RELAXED'] === '0' ? { relaxedSimd: false } : {}) });
  if (name === 'interpret') return (await import('../runtime/interpret-backend.js')).interpretBackend;
  throw new KilnError('K1016', `there is no backend '${name}'; available: ${RUN_BACKENDS.join(', ')}`);
}

/** `KILN_THREADS` (set by `--threads`) or, by default, every core the machine has. */
function wasmThreads(): number | undefined {
  const raw = process.env['KILN_THREADS'];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new KilnError('K1016', `--threads must be a whole number from 1 to 64, got '${raw}'`);
  return n;
}
