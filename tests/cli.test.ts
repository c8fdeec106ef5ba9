import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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
    expect(r.stdout).toContain('graph mlp as declared (before the passes): 6 nodes');
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
      'node "$KILN" dump preset:tiny --format yaml; echo "rc=$?"; node "$KILN" compile preset:tiny --backend cuda; echo "rc=$?"; ' +
        'node "$KILN" info; echo "rc=$?"',
    );
    expect(r.stdout).toBe('rc=2\nrc=2\nrc=2\n');
    expect(r.stderr).toContain("argument 'yaml' is invalid. Allowed choices are text, json, dot.");
    expect(r.stderr).toContain("There is no backend 'cuda'; available: js, wasm, gpu.");
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

describe('kiln run, logits, compile --out, fuzz', () => {
  it('run --json gives 32 greedy ids; a seeded temperature run repeats itself', () => {
    const r = kiln(['run', 'preset:tiny', '--tokens', '1,2,3', '--max-tokens', '32', '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { tokens: number[]; prompt: number[]; timings: Record<string, number> };
    expect(j.tokens).toHaveLength(32);
    expect(j.tokens.every((t) => Number.isInteger(t) && t >= 0 && t < 64)).toBe(true);
    expect(j.prompt).toEqual([1, 2, 3]);
    expect(Object.keys(j.timings).sort()).toEqual(['decodeMsPerToken', 'prefillMs', 'tokensPerSecond']);
    const sampled = sh(
      'for i in 1 2; do node "$KILN" run preset:tiny --tokens 1,2,3 --max-tokens 32 --temperature 0.8 --seed 7 --json; done; ' +
        'node "$KILN" run preset:tiny --tokens 1,2,3 --max-tokens 32 --temperature 0.8 --seed 8 --json',
    );
    const [a, b, c] = sampled.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { tokens: number[] }).tokens);
    expect(a).toHaveLength(32);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('run --profile prints the time per op of both programs; the tokens do not change', () => {
    const plain = JSON.parse(kiln(['run', 'preset:tiny', '--backend', 'wasm', '--tokens', '1,2,3', '--max-tokens', '8', '--json']).stdout) as { tokens: number[] };
    const r = kiln(['run', 'preset:tiny', '--backend', 'wasm', '--tokens', '1,2,3', '--max-tokens', '8', '--json', '--profile']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { tokens: number[]; profile: Record<'prefill' | 'decode', { runs: number; ops: { op: string; ms: number; nodes: number; share: number }[] }> };
    expect(j.tokens).toEqual(plain.tokens);
    expect(j.profile.prefill.runs).toBe(1);
    expect(j.profile.decode.runs).toBe(7);
    const ops = j.profile.decode.ops;
    expect(ops.map((o) => o.op)).toEqual(expect.arrayContaining(['matmul', 'fused:swiglu', 'fused:rope_qk', 'fused:causal_softmax', 'rmsnorm']));
    expect(ops.reduce((a, o) => a + o.share, 0)).toBeCloseTo(1, 6);
    expect(ops.every((o) => o.ms >= 0 && o.nodes > 0)).toBe(true);
    const text = kiln(['run', 'preset:tiny', '--backend', 'js', '--tokens', '1,2,3', '--max-tokens', '4', '--profile']);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stderr).toMatch(/kiln: decode kernels, per run \(3 runs\):\nop +per run +share\n/);
    expect(text.stderr).toMatch(/\nmatmul +[\d.]+ ms +[\d.]+% +\d+ nodes\n/);
    const gpu = kiln(['run', 'preset:tiny', '--backend', 'gpu', '--tokens', '1,2,3', '--profile']);
    expect(gpu.status).toBe(2);
    expect(gpu.stderr).toContain('error K1016: --profile times the js and wasm backends');
  });

  it('a gpu device that cannot run here is one line naming it, what to install and what works, exit 1', () => {
    // without a display headless-gl cannot run whether or not npm gl was built, so this holds everywhere
    const r = kiln(['run', 'preset:tiny', '--backend', 'gpu', '--device', 'headlessgl', '--tokens', '1,2', '--max-tokens', '4'], { env: { DISPLAY: '' } });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error K1022: gpu backend: device 'headlessgl' is not available: headless-gl .*(xvfb|setup:headlessgl).*; (--device webgpu works here|no other gpu device works here either \(webgpu: .*\); the js and wasm backends need none)$/);
  });

  it('usage mistakes: one line, exit 2, and no folder left behind; a flag another backend takes is named', () => {
    const out = join(tmp, 'never');
    const r = sh(
      [
        'node "$KILN" run preset:tiny; echo "rc=$?"',
        'node "$KILN" run preset:tiny --tokens 1 --top-p 2; echo "rc=$?"',
        'node "$KILN" fuzz --backends "" --runs 1; echo "rc=$?"',
        `node "$KILN" compile preset:tiny --dump-after nope --out ${out}; echo "rc=$?"`,
        'node "$KILN" compile preset:tiny --out README.md/x; echo "rc=$?"',
        'node "$KILN" dump preset:tiny --out README.md/x.txt; echo "rc=$?"',
        'node "$KILN" run preset:tiny --tokens 1 --max-tokens 1 --threads 2; echo "rc=$?"',
      ].join('; '),
    );
    expect(r.stdout.split('\n').filter((l) => l.startsWith('rc='))).toEqual(['rc=2', 'rc=2', 'rc=2', 'rc=2', 'rc=2', 'rc=2', 'rc=0']);
    expect(r.stderr).toContain('kiln: --threads applies to the wasm backend; js ignores it\n');
    expect(r.stderr).toContain('error K1016: give a prompt: as text (--prompt "...") or as token ids (--tokens 1,2,3)\n');
    expect(r.stderr).toContain('error K1016: --top-p must be in [0, 1] (0 keeps the most likely token), got 2\n');
    expect(r.stderr).toContain('error K1016: --backends: name at least one backend');
    expect(r.stderr).toContain("error K1016: cannot create the folder 'README.md/x': 'README.md' is a file\n");
    expect(r.stderr).toContain("error K1016: cannot write 'README.md/x.txt': a part of the path is a file, not a folder\n");
    expect(r.stderr).not.toContain('.tmp');
    expect(readdirSync(tmp)).not.toContain('never');
  });

  it('run --batch cuts the prompt into steps with the same tokens; --svg - is stdout; --dump-dir alone and a 33-bit seed are usage errors', () => {
    const ids = '1,5,9,13,17,21,25,29,33,37,41';
    const r = sh(
      [
        `node "$KILN" run preset:tiny --tokens ${ids} --max-tokens 6 --batch 4`,
        `node "$KILN" run preset:tiny --tokens ${ids} --max-tokens 6`,
        'node "$KILN" dump preset:tiny --fold --svg - | head -c 4; echo',
        `node "$KILN" compile preset:tiny --dump-dir ${join(tmp, 'dd')}; echo "rc=$?"`,
        'node "$KILN" run preset:tiny --tokens 1 --seed 4294967296; echo "rc=$?"',
        // plain SIMD128 modules load in an engine without relaxed SIMD (this node, no flags)
        `node "$KILN" compile preset:tiny --backend wasm --threads 1 --no-relaxed-simd --out ${join(tmp, 'plain')} >/dev/null`,
        `node -e "console.log(WebAssembly.validate(require('fs').readFileSync('${join(tmp, 'plain', 'tiny.prefill.wasm')}')))"`,
        `node "$KILN" compile preset:tiny --passes ''; echo "rc=$?"`,
        'node "$KILN" fuzz --runs abc; echo "rc=$?"',
        'node "$KILN" dump preset:tiny --format json --fold >/dev/null',
        // a second compile into the same folder names what the first left there
        `node "$KILN" compile preset:tiny --out ${join(tmp, 'twice')} --dump-after all >/dev/null 2>&1`,
        `node "$KILN" compile preset:tiny --out ${join(tmp, 'twice')} --passes cse,dce --dump-after cse >/dev/null`,
      ].join('; '),
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\d+( \d+){5}$/);
    expect(lines[1]).toBe(lines[0]);
    expect(lines.slice(2)).toEqual(['<svg', 'rc=2', 'rc=2', 'true', 'rc=2', 'rc=2']);
    expect(r.stderr).toContain('error K1016: --passes: name at least one pass (comma-separated); the pipeline is constant-fold, cse');
    // the option parser's errors carry the usage code too
    expect(r.stderr).toContain("error K1016: option '--runs <n>' argument 'abc' is invalid. Expected a positive integer.\n");
    expect(r.stderr).toContain('kiln: --fold applies to the text, dot and svg pictures; JSON is always the whole graph\n');
    expect(r.stderr).toContain(`kiln: ${join(tmp, 'twice')} also holds 2 files an earlier compile wrote, not part of this one: tiny.decode.js, tiny.prefill.js\n`);
    expect(r.stderr).toContain(`kiln: ${join(tmp, 'twice', 'dumps')} also holds 10 files an earlier compile wrote, not part of this one: 001_constant-fold.ir, 002_cse.ir,`);
    expect(r.stderr).not.toContain('relaxed-SIMD fused multiply-add');
    expect(r.stderr).toContain("error K1016: --dump-dir says where dumps go; --dump-after says which passes to dump (names, or 'all'): give it too\n");
    expect(r.stderr).toContain("error K1016: --seed must be an integer in [0, 4294967295] (the sampler's generator has 32 bits of state), got 4294967296\n");
    expect(readdirSync(tmp)).not.toContain('dd');
  });

  it('run streams ids as text; bad tokens are one error line, exit 2 (a usage error)', () => {
    const r = sh('node "$KILN" run preset:tiny --tokens 1,2,3 --max-tokens 5; echo "rc=$?"; node "$KILN" run preset:tiny --tokens 1,64; echo "rc=$?"; node "$KILN" run preset:tiny --tokens a,b; echo "rc=$?"');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\d+( \d+){4}$/);
    expect(lines.slice(1)).toEqual(['rc=0', 'rc=2', 'rc=2']);
    expect(r.stderr).toMatch(/kiln: 5 tokens on js; prefill [\d.]+ ms \(3 tokens\), decode [\d.]+ ms\/token/);
    expect(r.stderr).toContain('error K1016: --tokens: token 64 (at 1) is outside the vocabulary of tiny: ids are 0 to 63\n');
    expect(r.stderr).toContain("error K1016: --tokens: expected comma-separated token ids like 1,2,3, got 'a,b'\n");
  });

  it('logits agree between the js backend and the interpreter', () => {
    const r = sh('node "$KILN" logits preset:tiny --tokens 1,2,3 --json; node "$KILN" logits preset:tiny --tokens 1,2,3 --backend interpret --json; node "$KILN" logits preset:tiny --tokens 5');
    const [js, ref] = r.stdout.split('\n').slice(0, 2).map((l) => (JSON.parse(l) as { logits: number[] }).logits);
    expect(js).toHaveLength(64);
    js!.forEach((v, i) => expect(Math.abs(v - ref![i]!)).toBeLessThan(1e-4));
    expect(r.stdout).toMatch(/logits at position 0 \(js\), top 10 of 64:\n( +\d+ +-?\d+\.\d{6}\n){10}min /);
  });

  it('compile --backend wasm --out writes each module, its text and manifest, and says when it needs shared memory', () => {
    for (const threads of [2, 1]) {
      const out = join(tmp, `wasm${threads}`);
      const r = kiln(['compile', 'preset:tiny', '--backend', 'wasm', '--threads', String(threads), '--out', out]);
      expect(r.status, r.stderr).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['tiny.decode.json', 'tiny.decode.wasm', 'tiny.decode.wat', 'tiny.prefill.json', 'tiny.prefill.wasm', 'tiny.prefill.wat']);
      const [pre, dec] = ['prefill', 'decode'].map((p) => JSON.parse(readFileSync(join(out, `tiny.${p}.json`), 'utf8')) as { threads: number; jobArea?: number });
      expect([pre!.threads, dec!.threads]).toEqual([threads, threads]);
      expect([pre!.jobArea ?? 0, dec!.jobArea ?? 0]).toEqual([0, 1]);
      const note = /the modules run 2 threads over a shared memory: a browser allows that only on a cross-origin isolated page .*--threads 1/;
      if (threads > 1) expect(r.stderr).toMatch(note);
      else expect(r.stderr).not.toMatch(/shared memory/);
    }
  });

  it('compile --out writes runnable modules and one dump per pass showing the fusions and the cache', async () => {
    const out = join(tmp, 'compiled');
    const r = kiln(['compile', 'examples/llama.ts', '--backend', 'js', '--out', out, '--dump-after', 'all']);
    expect(r.status).toBe(0);
    for (const pass of ['constant-fold', 'insert-kv-cache', 'fuse-rope-qk', 'fuse-swiglu', 'fuse-causal-softmax', 'plan-memory']) expect(r.stdout).toMatch(new RegExp(`\n${pass} +\\d+\\.\\d+ +\\d+ → \\d+`));
    expect(r.stdout).toMatch(/memory plan \(pos ≤ 2048, seq ≤ 2048, maxSeqLen 2048\):\n {2}arena +[\d,]+ bytes/);
    expect(readdirSync(out).sort()).toEqual(['dumps', 'llama.decode.js', 'llama.prefill.js']);
    const dumps = readdirSync(join(out, 'dumps'));
    expect(dumps).toEqual(['001_constant-fold.ir', '002_cse.ir', '003_dce.ir', '004_insert-kv-cache.ir', '005_fuse-rope-qk.ir', '006_fuse-swiglu.ir', '007_fuse-causal-softmax.ir', '008_fuse-elementwise.ir', '009_dce.ir', '010_plan-memory.ir']);
    const last = readFileSync(join(out, 'dumps', '010_plan-memory.ir'), 'utf8');
    expect(last).toMatch(/= fused .*\{pattern="rope_qk"\}/);
    expect(last).toMatch(/= fused .*\{pattern="swiglu"\}/);
    expect(last).toMatch(/= fused .*\{pattern="causal_softmax"\}/);
    expect(last).toMatch(/= state "cache\.k\.0" +f32\[2048, 6, 48\]/);
    expect(readFileSync(join(out, 'dumps', '003_dce.ir'), 'utf8')).not.toContain('fused');
    // the decode module runs on its own: import it, bind zero weights, run one token
    const src = readFileSync(join(out, 'llama.decode.js'), 'utf8');
    expect(src).toMatch(/^\/\/ llama\.decode\.js — kiln compile examples\/llama\.ts --backend js\n/);
    const mod = (await import(pathToFileURL(join(out, 'llama.decode.js')).href)) as { createModel: () => { setWeights(w: object): void; run(a: object): Record<string, Float32Array>; params: { name: string; size: number }[] } };
    const m = mod.createModel();
    m.setWeights(Object.fromEntries(m.params.map((p) => [p.name, new Float32Array(p.size)])));
    const state = Object.fromEntries(Array.from({ length: 6 }, (_, l) => [`cache.k.${l}`, `cache.v.${l}`]).flat().map((n) => [n, new Float32Array(2048 * 6 * 48)]));
    const o = m.run({ inputs: { tokens: Int32Array.of(1) }, symbols: { pos: 0 }, state });
    expect(o['logits']).toHaveLength(32000);
  });

  it('fuzz passes on the js backend; --help of the new commands lists their options', () => {
    const r = kiln(['fuzz', '--backends', 'js', '--runs', '40', '--seed', '1']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^kiln fuzz: ok — 38 random graphs and 4 tiny LLaMA variants agree with the interpreter on js \(2 more graphs skipped/);
    expect(r.stderr).toContain('kiln fuzz: random graphs 40/40');
    const h = sh('for c in run logits fuzz; do node "$KILN" $c --help; echo "rc=$?"; done');
    const parts = h.stdout.split(/rc=(\d+)\n/);
    expect([parts[1], parts[3], parts[5]]).toEqual(['0', '0', '0']);
    for (const o of ['--tokens', '--max-tokens', '--temperature', '--top-k', '--top-p', '--repeat-penalty', '--seed', '--json']) expect(parts[0]).toContain(o);
    for (const o of ['--tokens', '--backend', '--json']) expect(parts[2]).toContain(o);
    for (const o of ['--backends', '--runs', '--seed']) expect(parts[4]).toContain(o);
  });
});

describe('kiln as a library', () => {
  it('another project imports the DSL from kiln and runs it with kiln/runtime under node --import kiln/register, and exits by itself', () => {
    // what `npm install path/to/kiln` makes: node_modules/kiln is the package folder
    const proj = join(tmp, 'lib-user');
    mkdirSync(join(proj, 'node_modules'), { recursive: true });
    spawnSync('ln', ['-s', ROOT, join(proj, 'node_modules', 'kiln')]);
    writeFileSync(join(proj, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      join(proj, 'app.ts'),
      [
        "import { presetModel } from 'kiln';",
        "import { KilnError, Session, createWasmBackend, jsBackend, randomWeights, splitData, train, trainingInit, saveTrainedModel } from 'kiln/runtime';",
        "const g = presetModel('tiny').build();",
        'const weights = randomWeights(g, 1);',
        'const out: number[][] = [];',
        'for (const backend of [jsBackend, createWasmBackend({ threads: 2 })]) {',
        '  const s = await Session.create(g, { backend, weights });',
        '  const ids: number[] = [];',
        '  for await (const step of s.generate([1, 2, 3], { maxTokens: 8 })) ids.push(step.token);',
        '  out.push(ids);',
        '  s.dispose();',
        '}',
        'try { await Session.create(g, { backend: jsBackend, weights: {} }); } catch (e) { out.push([e instanceof KilnError ? 1 : 0]); }',
        // and it trains: five steps on a repeating stream, the model saved where it says
        "const data = splitData(Int32Array.from({ length: 200 }, (_, i) => (i * 7) % 64), { seq: 16, valFraction: 0 });",
        "const settings = { batch: 2, seq: 16, gradAccum: 1, steps: 5, lr: 3e-3, minLr: 3e-4, warmup: 1, weightDecay: 0.1, clip: 1, beta1: 0.9, beta2: 0.95, eps: 1e-8, dropout: 0, seed: 0, shuffle: false, evalEvery: 0, evalBatches: 1, saveEvery: 0 };",
        "const res = await train({ model: g, weights: trainingInit(g, 0), backend: createWasmBackend({ threads: 2 }), data, settings, identity: {}, outDir: 'run' });",
        "out.push(res.steps.map((r) => (Number.isFinite(r.loss) ? 1 : 0)), saveTrainedModel('run', g, res.weights, undefined).map((f) => f.length));",
        'console.log(JSON.stringify(out));',
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, ['--import', 'kiln/register', 'app.ts'], { cwd: proj, encoding: 'utf8', env: env(), timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [js, wasm, err, losses, saved] = JSON.parse(r.stdout) as number[][];
    expect(js).toHaveLength(8);
    expect(wasm).toEqual(js);
    expect(err).toEqual([1]);
    expect(losses).toEqual([1, 1, 1, 1, 1]);
    expect(saved).toHaveLength(3); // model.gguf and the safetensors folder's weights and config.json (no tokenizer)
    expect(existsSync(join(proj, 'run', 'model.gguf'))).toBe(true);
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
      expect(reportError(new KilnError('K1016', 'bad value'))).toBe(2);
      expect(reportError(new KilnError('K1021', 'bad file'))).toBe(1);
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
