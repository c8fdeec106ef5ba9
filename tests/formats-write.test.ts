import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import { convertCommand } from '../src/cli/convert.js';
import type { LlamaConfig } from '../src/dsl/llama.js';
import { loadCheckpoint } from '../src/formats/checkpoint.js';
import { writeFilesAtomic } from '../src/formats/file.js';
import { writeSafetensors } from '../src/formats/safetensors-write.js';
import { seededTensors } from './formats-helpers.js';
import { captureStdout } from './helpers.js';

/**
 * Writing checkpoints whole or not at all, without spoiling what is already in the folder:
 * another model's config.json, a shard index the write would not replace, a failure part way,
 * and a process stopped (SIGINT/SIGTERM, process.exit) while a temporary is being written.
 */

const dir = mkdtempSync(join(tmpdir(), 'kiln-formats-write-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(dir, `d${n++}`);
  mkdirSync(d);
  return d;
};

const CFG: LlamaConfig = { name: 'tiny', vocabSize: 40, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 16, ropeBase: 10000, normEps: 1e-5 };
const OTHER: LlamaConfig = { ...CFG, name: 'other', nLayers: 1 };
const f32 = (c: LlamaConfig, seed = 1) => seededTensors(c, seed).map((t) => ({ ...t, dtype: 'f32' as const }));

/** The K1016 error `f` throws: one line, matching `re`, never naming a temporary. */
function expectK1016(f: () => unknown, re: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KilnError);
  expect((err as KilnError).code).toBe('K1016');
  expect((err as KilnError).message).toMatch(re);
  expect((err as KilnError).message).not.toContain('\n');
  expect((err as KilnError).message).not.toContain('.tmp-');
}

const noTemps = (d: string) => expect(readdirSync(d).filter((f) => f.includes('.tmp-'))).toEqual([]);

describe('config.json beside safetensors', () => {
  it("refuses to replace another model's config.json, and leaves the folder as it was", async () => {
    const d = fresh();
    writeSafetensors(join(d, 'model.safetensors'), f32(CFG), CFG);
    const before = readFileSync(join(d, 'config.json'), 'utf8');
    expectK1016(() => writeSafetensors(join(d, 'other.safetensors'), f32(OTHER), OTHER), /config\.json' describes a different model.*another folder/);
    expect(readFileSync(join(d, 'config.json'), 'utf8')).toBe(before);
    expect(readdirSync(d).sort()).toEqual(['config.json', 'model.safetensors']);
    expect((await loadCheckpoint(d)).config.nLayers).toBe(2);
  });

  it('writes over an identical config.json, and returns config.json among the files written', () => {
    const d = fresh();
    expect(writeSafetensors(join(d, 'model.safetensors'), f32(CFG), CFG)).toEqual([join(d, 'model.safetensors'), join(d, 'config.json')]);
    expect(writeSafetensors(join(d, 'again.safetensors'), f32(CFG, 2), CFG)).toEqual([join(d, 'again.safetensors'), join(d, 'config.json')]);
  });

  it('kiln convert lists config.json among the files it wrote', async () => {
    const out = join(fresh(), 'model.safetensors');
    const printed = await captureStdout(() => convertCommand('preset:tiny', out, {}));
    expect(printed).toContain(`files: ${out}, ${join(resolve(out, '..'), 'config.json')}`);
  });
});

describe('a shard index in the target folder', () => {
  it('refuses to write weights that readers of the folder would not load', async () => {
    const d = fresh();
    writeSafetensors(d, f32(CFG, 1), CFG, { shardBytes: 20000 });
    const files = readdirSync(d).sort();
    expectK1016(() => writeSafetensors(join(d, 'model.safetensors'), f32(CFG, 2), CFG), /'.*model\.safetensors\.index\.json' is in the way/);
    expectK1016(() => writeSafetensors(d, f32(CFG, 2), CFG), /model\.safetensors\.index\.json' is in the way/);
    expect(readdirSync(d).sort()).toEqual(files);
    const old = f32(CFG, 1).find((t) => t.name === 'output.weight')!;
    expect((await loadCheckpoint(d)).tensors.get('output.weight')!.toFloat32()).toEqual(old.data);
    // …but a sharded write replaces the index it writes itself
    writeSafetensors(d, f32(CFG, 2), CFG, { shardBytes: 20000 });
    const now = f32(CFG, 2).find((t) => t.name === 'output.weight')!;
    expect((await loadCheckpoint(d)).tensors.get('output.weight')!.toFloat32()).toEqual(now.data);
  });
});

describe('whole or not at all', () => {
  it('a config.json folder in the way: one line naming it, and no weights left behind', () => {
    const d = fresh();
    mkdirSync(join(d, 'config.json'));
    expectK1016(() => writeSafetensors(join(d, 'new.safetensors'), f32(CFG), CFG), /cannot write '.*config\.json': it is a folder/);
    expect(readdirSync(d)).toEqual(['config.json']);
  });

  it('writeFilesAtomic: a writer that throws leaves no file and no temporary, and existing files untouched', () => {
    const d = fresh();
    writeFileSync(join(d, 'b'), 'old b');
    const text = (s: string) => (put: (c: Uint8Array) => void) => put(Buffer.from(s));
    expect(() =>
      writeFilesAtomic([
        { path: join(d, 'a'), write: text('new a') },
        { path: join(d, 'b'), write: text('new b') },
        { path: join(d, 'c'), write: () => { throw new Error('boom'); } },
      ]),
    ).toThrow('boom');
    expect(readdirSync(d)).toEqual(['b']);
    expect(readFileSync(join(d, 'b'), 'utf8')).toBe('old b');
    // a folder in the way of a later file is found before any file is replaced
    mkdirSync(join(d, 'c'));
    expectK1016(() => writeFilesAtomic([{ path: join(d, 'b'), write: text('new b') }, { path: join(d, 'c'), write: text('c') }]), /cannot write '.*[\\/]c': it is a folder$/);
    expect(readFileSync(join(d, 'b'), 'utf8')).toBe('old b');
    noTemps(d);
    writeFilesAtomic([{ path: join(d, 'a'), write: text('new a') }, { path: join(d, 'b'), write: text('new b') }]);
    expect([readFileSync(join(d, 'a'), 'utf8'), readFileSync(join(d, 'b'), 'utf8')]).toEqual(['new a', 'new b']);
  });

  it('a missing folder is one line naming the file', () => {
    expectK1016(() => writeFilesAtomic([{ path: join(dir, 'nowhere', 'x'), write: () => {} }]), /cannot write '.*nowhere[\\/]x': its folder '.*nowhere' does not exist/);
  });
});

describe('a process stopped while a temporary is being written', () => {
  const FILE_TS = resolve(import.meta.dirname, '..', 'src', 'formats', 'file.ts');
  /** A child that writes `out` in two chunks and does `stop` between them (then waits 300 ms). */
  function child(out: string, stop: string) {
    const script = join(dir, `child${n++}.ts`);
    writeFileSync(
      script,
      `import { writeAtomic } from ${JSON.stringify(FILE_TS)};
writeAtomic(${JSON.stringify(out)}, (put) => {
  put(new Uint8Array(1000).fill(1));
  ${stop};
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
  put(new Uint8Array(1000).fill(2));
});
setTimeout(() => {}, 2000);
`,
    );
    return spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
  }

  it('SIGINT and SIGTERM: the file is finished, no temporary is left, and the exit code is 130/143', () => {
    for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const d = fresh();
      const r = child(join(d, 'out.bin'), `process.kill(process.pid, '${sig}')`);
      expect([r.signal, r.status, r.stderr]).toEqual([null, code, '']);
      noTemps(d);
      expect(readFileSync(join(d, 'out.bin')).length).toBe(2000);
    }
  });

  it('process.exit during a write removes the temporary', () => {
    const d = fresh();
    const r = child(join(d, 'out.bin'), 'process.exit(7)');
    expect([r.signal, r.status]).toEqual([null, 7]);
    noTemps(d);
    expect(existsSync(join(d, 'out.bin'))).toBe(false);
  });
});
