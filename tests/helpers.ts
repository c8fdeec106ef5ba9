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

/** What `fn` writes to stdout while it runs (the CLI's commands write their reports there). */
export async function captureStdout(fn: () => Promise<unknown>): Promise<string> {
  const printed: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string, cb?: () => void) => {
    printed.push(s);
    cb?.();
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return printed.join('');
}
