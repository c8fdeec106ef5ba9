import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { KilnError } from '../graph/errors.js';
import { stringifyGraph } from '../graph/print/index.js';
import { loadGraph } from '../src/cli/load.js';
import { userThrowSite } from '../src/cli/report.js';
import { typecheckModelFile } from '../src/cli/typecheck.js';

const FIX = 'tests/fixtures/cli';
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-loader-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function loadError(spec: string, typecheck = false): Promise<KilnError> {
  const err: unknown = await loadGraph(spec, { typecheck }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof KilnError)) throw new Error(`expected a KilnError from ${spec}, got ${String(err)}`);
  return err;
}

describe('loadGraph', () => {
  it('builds a preset', async () => {
    const g = await loadGraph('preset:tiny');
    expect(g.name).toBe('tiny');
    expect(g.outputs.map((o) => o.name)).toEqual(['logits']);
  });

  it('reports an unknown preset without pointing into kiln', async () => {
    const e = await loadError('preset:llama9');
    expect(e.code).toBe('K1012');
    expect(e.loc).toBeUndefined();
    expect(e.message).toContain("unknown preset 'llama9'");
  });

  it('names a missing file, a directory, and a file of the wrong kind', async () => {
    expect((await loadError(`${FIX}/absent.ts`)).headline).toBe(`error K1013: cannot find model file '${FIX}/absent.ts'`);
    const dir = await loadError(FIX);
    expect(dir.code).toBe('K1013');
    expect(dir.message).toContain(`'${FIX}' is a directory`);
    const txt = await loadError(`${FIX}/type-error.ts.txt`);
    expect(txt.message).toContain('is not a model file');
  });

  it('a model that throws a value that is not an Error is the file\'s mistake (K1013), not an internal error', async () => {
    const e = await loadError(`${FIX}/throws-value.ts`);
    expect(e.code).toBe('K1013');
    expect(e.message).toContain('the model code threw "no weights yet", not an Error');
  });

  it('rejects a module without a model export', async () => {
    const e = await loadError(`${FIX}/no-model.ts`);
    expect(e.code).toBe('K1013');
    expect(e.message).toContain(`'${FIX}/no-model.ts' exports no model (it has no default export; it exports answer)`);
    expect(e.message).toContain("write `export default model('name', (m) => { … })` or `export default llama({ … })`");
  });

  it('accepts a named `model` export', async () => {
    const g = await loadGraph(`${FIX}/mlp.ts`, { typecheck: false });
    expect(g.name).toBe('mlp');
    expect(g.nodes.length).toBe(6);
  });

  it('turns a shape mistake into K1003 at the fixture line', async () => {
    const e = await loadError(`${FIX}/shape-mistake.ts`);
    expect(e.code).toBe('K1003');
    expect(e.loc?.file).toBe(`${FIX}/shape-mistake.ts`);
    expect(e.loc?.line).toBe(10);
    expect(e.message).toBe('matmul inner dims differ: [seq, 64] @ [32, 16] (64 vs 32)');
  });

  it("blames the model's own code when it throws while building", async () => {
    const e = await loadError(`${FIX}/throws.ts`);
    expect(e.code).toBe('K1013');
    expect(e.message).toMatch(/^building '.*throws\.ts' failed: /);
    expect(e.loc?.file).toBe(`${FIX}/throws.ts`);
    expect(e.loc?.line).toBe(10);
  });

  it('reads a JSON graph back', async () => {
    const g = await loadGraph('preset:tiny');
    const path = join(tmp, 'tiny.json');
    writeFileSync(path, stringifyGraph(g));
    const back = await loadGraph(path);
    expect(back.nodes.length).toBe(g.nodes.length);
    expect(back.meta).toEqual(g.meta);
  });

  it('reports malformed JSON as K1014', async () => {
    const path = join(tmp, 'bad.json');
    writeFileSync(path, '{"format": ');
    expect((await loadError(path)).code).toBe('K1014');
  });
});

describe('typecheckModelFile', () => {
  it('reports type errors as tsc does, relative to the working directory', () => {
    const target = join(tmp, 'type-error.ts');
    copyFileSync(`${FIX}/type-error.ts.txt`, target);
    const { diagnostics } = typecheckModelFile(target);
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ line: 4, col: 7, code: 2322, message: "Type 'string' is not assignable to type 'number'." });
  });

  it('passes a correct model and lists the files it read', () => {
    const { diagnostics, files } = typecheckModelFile(`${FIX}/mlp.ts`);
    expect(diagnostics).toEqual([]);
    expect(files.some((f) => f.endsWith('mlp.ts'))).toBe(true);
    expect(files.some((f) => f.endsWith('tsconfig.json'))).toBe(true);
  });
});

describe('userThrowSite', () => {
  const thrown = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (e) {
      return e;
    }
    throw new Error('expected a throw');
  };

  it("points at the user's line, skipping frames without a file", () => {
    // JSON.parse's own frame has no file; the next one is this test file, outside kiln's library
    const site = userThrowSite(thrown(() => JSON.parse('{')));
    expect(site?.file).toBe('tests/loader.test.ts');
  });

  it('gives nothing for an error thrown inside kiln', () => {
    expect(userThrowSite(thrown(() => new GraphBuilder('g').typeOf(3)))).toBeUndefined();
  });
});
