import { KilnError } from '../graph/errors.js';

/** The KilnError `fn` throws, for its code, message and headline; any other error is rethrown. */
export function thrown(fn: () => unknown): KilnError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KilnError) return e;
    throw e;
  }
  throw new Error('expected a KilnError, none was thrown');
}
