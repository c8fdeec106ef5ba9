import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InternalError, KilnError } from '../graph/errors.js';
import { buildProgram } from '../src/cli/main.js';
import { withStatus, writeFileAtomic } from '../src/cli/io.js';
import { DiagnosticsError, reportError } from '../src/cli/report.js';

/**
 * End to end through `node bin/kiln.js`. Each spawn costs about a second (tsx, and the first
 * type-check of a model file a few more), so each test here checks several things of one run.
 */

const ROOT = resolve(import.meta.dirname, '..');
const KILN = join(ROOT, 'bin', 'kiln.js');
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // a private type-check cache, so runs do not depend on (or touch) the user's
  return { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache'), KILN_DEBUG: '', ...extra };
}

function kiln(args: string[], opts: { input?: string; cwd?: string; env?: Record<string, string> } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [KILN, ...args], { cwd: opts.cwd ?? ROOT, input: opts.input, encoding: 'utf8', env: env(opts.env) });
}

function sh(script: string, extra: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync('bash', ['-c', script], { cwd: ROOT, encoding: 'utf8', env: env({ KILN, ...extra }) });
}

describe('kiln info', () => {
  it('prints the parameter count of llama3-8b with separators', () => {
    const r = kiln(['info', 'preset:llama3-8b']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/parameters\s+8,030,261,248 in 291 tensors/);
    expect(r.stdout).toContain('262,144 bytes/token');
    expect(r.stdout).toMatch(/maxSeqLen\s+8,192/);
  });

  it('--json gives the same facts as data', () => {
    const r = kiln(['info', 'preset:llama2-7b', '--json', '--context', '1024']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { context: number; params: { count: number }; llama: { kvBytesPerToken: number; decodeFlopsPerToken: { total: number } } };
    expect(j.context).toBe(1024);
    expect(j.params.count).toBe(6_738_415_616);
    expect(j.llama.kvBytesPerToken).toBe(1_048_576);
    expect(j.llama.decodeFlopsPerToken.total).toBe(13_214_154_752 + 2 * 2 * 32 * 1024 * 32 * 128);
  });
});

describe('kiln dump', () => {
  it('pipes JSON into a second kiln that prints text, and stops quietly when the reader goes away', () => {
    const r = sh(
      'node "$KILN" dump preset:tiny --format json | node "$KILN" dump - --format text > "$OUT"; echo "${PIPESTATUS[*]}"; ' +
        'node "$KILN" dump preset:llama3-8b | head -n 1; echo "${PIPESTATUS[0]}"',
      { OUT: join(tmp, 'tiny.txt') },
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('0 0');
    expect(lines[1]).toMatch(/^graph llama3-8b/);
    expect(lines[2]).toBe('0');
    expect(r.stderr).toBe('');
    const text = readFileSync(join(tmp, 'tiny.txt'), 'utf8');
    expect(text).toMatch(/^graph tiny/);
    expect(text).toContain('input "tokens"');
  });

  it('--svg writes the rendering atomically and says so', () => {
    const out = join(tmp, 'svg');
    spawnSync('mkdir', ['-p', out]);
    const r = kiln(['dump', 'preset:tiny', '--fold', '--svg', join(out, 'graph.svg')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^wrote .*graph\.svg \(\d+ nodes\)\n$/);
    expect(readFileSync(join(out, 'graph.svg'), 'utf8')).toMatch(/^<svg/);
    expect(readdirSync(out)).toEqual(['graph.svg']); // no temporary file left behind
  });

  it('malformed JSON on stdin is one line of error, exit 1', () => {
    const r = kiln(['dump', '-'], { input: '{"format": "kiln.graph", ' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error K1014: <stdin>: /);
  });
});

describe('model files', () => {
  it('a shape mistake is reported at the fixture line, with the dims, and no stack', () => {
    const r = kiln(['compile', 'tests/fixtures/cli/shape-mistake.ts']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'tests/fixtures/cli/shape-mistake.ts(10,15): error K1003: matmul inner dims differ: [seq, 64] @ [32, 16] (64 vs 32)\n' +
        "10 |   const y = b.add('matmul', [x, w], { transB: false });\n" +
        '                   ^\n',
    );
  });

  it('KILN_DEBUG=1 adds the stack to a user error', () => {
    const r = kiln(['compile', 'tests/fixtures/cli/shape-mistake.ts'], { env: { KILN_DEBUG: '1' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^tests\/fixtures\/cli\/shape-mistake\.ts\(10,15\): error K1003/);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  it('a TypeScript type error is reported as tsc does', () => {
    copyFileSync(join(ROOT, 'tests/fixtures/cli/type-error.ts.txt'), join(tmp, 'type-error.ts'));
    const r = kiln(['compile', 'type-error.ts'], { cwd: tmp });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("type-error.ts(4,7): error TS2322: Type 'string' is not assignable to type 'number'.\n");
  });

  it('a model in a folder without "type": "module" loads as CommonJS and still reports K1003', () => {
    // kiln's modules load twice there (ESM for the CLI, CommonJS for the model): errors must still be recognised
    const dir = join(tmp, 'cjs');
    mkdirSync(dir, { recursive: true });
    const src = readFileSync(join(ROOT, 'tests/fixtures/cli/shape-mistake.ts'), 'utf8').replaceAll("'../../../", `'${ROOT}/`);
    writeFileSync(join(dir, 'model.ts'), src);
    const r = kiln(['compile', '--no-typecheck', 'model.ts'], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^model\.ts\(10,15\): error K1003: matmul inner dims differ/);
  });

  it('compile prints the summary of a valid model', () => {
    const r = kiln(['compile', 'tests/fixtures/cli/mlp.ts']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('graph mlp: 6 nodes');
    expect(r.stdout).toContain('params: 192 in 2 tensors, 768 bytes');
    expect(r.stdout).toMatch(/inputs:\n {2}x {2}f32\[seq, 8\]\noutputs:\n {2}y {2}f32\[seq, 4\]\nsymbols: seq\n$/);
    expect(r.stderr).toContain('no code generated');
  });

  it('an unknown preset is one line, exit 1', () => {
    const r = kiln(['info', 'preset:llama9']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error K1012: unknown preset 'llama9'; known presets: .*tiny\n$/);
  });
});

describe('usage', () => {
  it('bad option values and unknown backends exit 2', () => {
    const r = sh(
      'node "$KILN" dump preset:tiny --format yaml; echo "rc=$?"; node "$KILN" compile preset:tiny --backend gpu; echo "rc=$?"; ' +
        'node "$KILN" info; echo "rc=$?"',
    );
    expect(r.stdout).toBe('rc=2\nrc=2\nrc=2\n');
    expect(r.stderr).toContain("argument 'yaml' is invalid. Allowed choices are text, json, dot.");
    expect(r.stderr).toContain('The gpu backend does not exist yet; available: js.');
    expect(r.stderr).toContain("missing required argument 'model'");
  });

  it('--help of every command exits 0 and lists its options; --version prints the version', () => {
    const r = sh(
      'for c in "" dump info compile; do node "$KILN" $c --help; echo "rc=$?"; done; node "$KILN" --version',
    );
    const parts = r.stdout.split(/rc=(\d+)\n/);
    expect([parts[1], parts[3], parts[5], parts[7]]).toEqual(['0', '0', '0', '0']);
    expect(parts[0]).toMatch(/Commands:[\s\S]*dump[\s\S]*info[\s\S]*compile/);
    for (const o of ['--format', '--svg', '--fold', '--out']) expect(parts[2]).toContain(o);
    for (const o of ['--context', '--json']) expect(parts[4]).toContain(o);
    expect(parts[6]).toContain('--backend');
    expect(parts[8]).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe('in process', () => {
  it('every command has help text naming its argument', () => {
    for (const c of buildProgram().commands) expect(c.helpInformation()).toContain('<model>');
  });

  it('reportError: exit codes and what reaches stderr', () => {
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => written.push(s) > 0) as typeof process.stderr.write;
    try {
      expect(reportError(new KilnError('K1016', 'bad value'))).toBe(1);
      expect(reportError(new DiagnosticsError(['a.ts(1,1): error TS1: x', 'a.ts(2,1): error TS2: y']))).toBe(1);
      expect(reportError(new InternalError('pass fuse-swiglu broke %3'))).toBe(70);
      expect(reportError(new TypeError('undefined is not a function'))).toBe(70);
    } finally {
      process.stderr.write = write;
    }
    const all = written.join('');
    expect(all).toContain('error K1016: bad value\n');
    expect(all).toContain('a.ts(1,1): error TS1: x\na.ts(2,1): error TS2: y\n');
    expect(all).toContain('kiln: internal error: pass fuse-swiglu broke %3\n');
    expect(all).not.toContain('internal error: internal error');
    expect(all).toContain('kiln: internal error: undefined is not a function\n');
    expect(all).toMatch(/Please report it/);
  });

  it('writeFileAtomic replaces a file whole, and leaves nothing behind when it cannot', () => {
    const dir = join(tmp, 'atomic');
    mkdirSync(join(dir, 'taken'), { recursive: true });
    writeFileAtomic(join(dir, 'a.txt'), 'first');
    writeFileAtomic(join(dir, 'a.txt'), 'second');
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('second');
    expect(() => writeFileAtomic(join(dir, 'taken'), 'x')).toThrow(); // a directory stands there
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'taken']);
  });

  it('withStatus shows a status line only on a terminal, and clears it', async () => {
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    const tty = process.stderr.isTTY;
    process.stderr.write = ((s: string) => written.push(s) > 0) as typeof process.stderr.write;
    try {
      process.stderr.isTTY = false;
      expect(await withStatus('type-checking m.ts', () => 1)).toBe(1);
      expect(written).toEqual([]);
      process.stderr.isTTY = true;
      await expect(withStatus('building m', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    } finally {
      process.stderr.write = write;
      process.stderr.isTTY = tty;
    }
    expect(written).toEqual(['kiln: building m…', '\r\x1b[K']);
  });
});
