import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from './io.js';

/**
 * Remembers model files that type-checked clean, with the size and mtime of every source file the
 * check read (the model, the files it imports, kiln's own sources; not node_modules or TypeScript's
 * lib files). While none of them changed, the check is skipped: loading the TypeScript compiler and
 * checking costs a few seconds, and `kiln` is often run many times on the same model. Only clean
 * results are kept; errors are always recomputed. `KILN_NO_CACHE=1` turns it off.
 */

interface Entry {
  readonly files: readonly (readonly [path: string, size: number, mtimeMs: number])[];
}

function cacheFile(): string {
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'kiln', 'typecheck.json');
}

function enabled(): boolean {
  return process.env['KILN_NO_CACHE'] !== '1';
}

function readCache(): Record<string, Entry> {
  try {
    return JSON.parse(readFileSync(cacheFile(), 'utf8')) as Record<string, Entry>;
  } catch {
    return {};
  }
}

function stamp(path: string): readonly [string, number, number] | undefined {
  try {
    const s = statSync(path);
    return [path, s.size, s.mtimeMs];
  } catch {
    return undefined;
  }
}

/** Whether `model` type-checked clean before and none of the files that check read has changed since. */
export function knownClean(model: string): boolean {
  if (!enabled()) return false;
  const entry = readCache()[resolve(model)];
  if (!entry || entry.files.length === 0) return false;
  return entry.files.every(([p, size, mtime]) => {
    const now = stamp(p);
    return now !== undefined && now[1] === size && now[2] === mtime;
  });
}

/** Record a clean check of `model` that read `files`. Failing to write the cache is harmless. */
export function rememberClean(model: string, files: readonly string[]): void {
  if (!enabled()) return;
  const stamps = files.map(stamp).filter((s) => s !== undefined);
  const cache = readCache();
  cache[resolve(model)] = { files: stamps };
  try {
    mkdirSync(join(cacheFile(), '..'), { recursive: true });
    writeFileAtomic(cacheFile(), JSON.stringify(cache));
  } catch {
    // A read-only home or cache directory only costs speed.
  }
}
