/** The backends the CLI can name, loaded only when a command needs one. */
import type { Backend } from '../../backends/backend.js';
import { KilnError } from '../../graph/errors.js';

/** Compiled backends (what `compile` and `fuzz` target). */
export const BACKENDS = ['js'];
/** Named for the user but not written yet. */
export const PLANNED_BACKENDS = ['wasm', 'gpu'];
/** What `run` and `logits` may also use: the reference interpreter. */
export const RUN_BACKENDS = [...BACKENDS, 'interpret'];

export async function loadBackend(name: string): Promise<Backend> {
  if (name === 'js') return (await import('../../backends/js/index.js')).jsBackend;
  if (name === 'interpret') return (await import('../runtime/interpret-backend.js')).interpretBackend;
  throw new KilnError('K1016', `there is no backend '${name}'; available: ${RUN_BACKENDS.join(', ')}`);
}
