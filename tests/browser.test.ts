/**
 * End to end in a browser: scripts/build-web.ts compiles a seeded tiny model into a temp folder,
 * a local server serves examples/web with it, Debian's Chromium (headless, via playwright-core)
 * runs the page on each backend and device it has, and the greedy tokens must equal the js
 * backend's in Node — computed here by a Session of its own, not read from the build.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsBackend } from '../backends/js/index.js';
import { Session } from '../src/runtime/session.js';
import { buildWeb, type WebBuild } from '../scripts/build-web.js';
import { type Browser, launchChromium } from './browser/chromium.js';
import { type PageServer, startServer } from './browser/server.js';
import { needs, stackProblem } from './stacks.js';

const PROMPT = [3, 1, 4, 1, 5];
const STEPS = 32;
// WebGL2 on SwiftShader takes ~17 s for 32 tokens here, most of it compiling ~100 shaders twice.
const PAGE_TIMEOUT_MS = 50_000;

interface KilnResult {
  ok: boolean;
  error?: string;
  backend: string;
  device: string | null;
  kernel: string | null;
  ranOn?: string | null;
  oneMemory?: boolean | null;
  tokens: number[];
  perTokenMs: number;
}

let dir: string;
let build: WebBuild;
let server: PageServer;
let browser: Browser;
let expected: number[];
/** The median decode step of each page run that succeeded, by query: printed at the end. */
const perToken: Record<string, number> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-web-'));
  build = await buildWeb({ model: 'preset:tiny', out: dir, seed: 7, prompt: PROMPT, steps: STEPS, backends: ['js', 'gpu', 'wasm'] });
  // The reference, independently of the build: a Session on the js backend with the same weights.
  const session = await Session.create(build.graph, { backend: jsBackend, weights: build.weights, maxSeqLen: build.manifest.maxSeqLen });
  expected = [];
  for await (const s of session.generate(PROMPT, { maxTokens: STEPS })) expected.push(s.token);
  server = await startServer({ dist: dir });
  if (!(await stackProblem('chromium'))) browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  if (Object.keys(perToken).length) console.log(`browser ms/token (median decode step), preset:tiny: ${Object.entries(perToken).map(([q, v]) => `${q} ${v.toFixed(2)}`).join(', ')}`);
  await browser?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Open the page with `query` and wait (bounded) for window.kilnResult. */
async function runPage(query: string, initScript?: string): Promise<{ result: KilnResult; logs: string[] }> {
  const page = await browser.context.newPage();
  if (initScript) await page.addInitScript(initScript);
  const logs: string[] = [];
  // SwiftShader's WebGL notes every readPixels as a stall: noise here.
  page.on('console', (m) => {
    if (!m.text().includes('GPU stall due to ReadPixels')) logs.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  try {
    await page.goto(`${server.url}/index.html?${query}`, { timeout: PAGE_TIMEOUT_MS });
    try {
      await page.waitForFunction(() => (globalThis as { kilnResult?: unknown }).kilnResult !== undefined, undefined, { timeout: PAGE_TIMEOUT_MS });
    } catch {
      throw new Error(`the page (?${query}) set no window.kilnResult within ${PAGE_TIMEOUT_MS} ms; status: ${await page.textContent('#status')}; console:\n${logs.join('\n')}`);
    }
    const result = (await page.evaluate(() => (globalThis as { kilnResult?: unknown }).kilnResult)) as KilnResult;
    if (result.ok) perToken[query] = result.perTokenMs;
    return { result, logs };
  } finally {
    await page.close();
  }
}

describe('examples/web in headless Chromium', () => {
  it('the build holds the programs, weights and prompt the page loads', () => {
    const m = build.manifest;
    expect(m.prompt).toEqual(PROMPT);
    expect(m.backends['js']).toEqual({ prefill: 'js/prefill.js', decode: 'js/decode.js' });
    expect(m.backends['gpu']).toEqual({ prefill: 'gpu/prefill.js', decode: 'gpu/decode.js' });
    expect(m.backends['wasm']).toEqual({ prefill: 'wasm/prefill.js', decode: 'wasm/decode.js' });
    for (const f of ['host.js', 'prefill.json', 'prefill.wasm', 'prefill.relaxed.wasm', 'decode.json', 'decode.wasm', 'decode.relaxed.wasm']) expect(existsSync(join(dir, 'wasm', f)), f).toBe(true);
    // the host is the platform-free host.ts, bundled: nothing of Node's survives in it
    expect(readFileSync(join(dir, 'wasm', 'host.js'), 'utf8')).not.toMatch(/from ["']node:/);
    expect(m.weights.length).toBe(Object.keys(build.weights).length);
    expect(m.states.map((s) => s.name)).toEqual(['cache.k.0', 'cache.v.0', 'cache.k.1', 'cache.v.1']);
    expect(m.reference).toEqual(expected);
  });

  it('js backend: the same greedy tokens as the js backend in Node', async (ctx) => {
    await needs(ctx, 'chromium');
    const { result, logs } = await runPage('backend=js');
    expect(result.ok, `${result.error}\n${logs.join('\n')}`).toBe(true);
    expect(result.tokens).toEqual(expected);
    expect(result.tokens).toHaveLength(STEPS);
    expect(server.missing).toEqual([]);
  });

  // gpu.js's kernels through its browser bundle; the page itself fails on any other kernel class.
  it.for([
    ['webgl2', 'WebGL2Kernel'],
    ['webgpu', 'WebGPUKernel'],
  ] as const)('gpu backend on %s: the same greedy tokens, on %s kernels only', async ([device, kernel], ctx) => {
    await needs(ctx, 'chromium');
    const { result, logs } = await runPage(`backend=gpu&device=${device}`);
    expect(result.ok, `${result.error}\n${logs.join('\n')}`).toBe(true);
    expect(result.device).toBe(device);
    expect(result.kernel).toBe(kernel);
    expect(result.tokens).toEqual(expected);
    expect(server.missing).toEqual([]);
  });

  it('wasm backend: the same greedy tokens, through the shared host with one thread and one memory', async (ctx) => {
    await needs(ctx, 'chromium');
    const { result, logs } = await runPage('backend=wasm');
    expect(result.ok, `${result.error}\n${logs.join('\n')}`).toBe(true);
    // Chromium has relaxed SIMD, so the page takes the relaxed module
    expect(result.ranOn).toBe('relaxed SIMD, 1 thread');
    // the decode program over the prefill program's memory: the weights held once
    expect(result.oneMemory).toBe(true);
    expect(result.tokens).toEqual(expected);
    expect(server.missing).toEqual([]);
  });

  it('gpu backend: a browser without WebGL2 makes the page fail loudly, never run on CPU kernels', async (ctx) => {
    await needs(ctx, 'chromium');
    // gpu.js's automatic mode would quietly take its CPU kernels here; the page asks for webgl2
    // explicitly and checks the kernel class it got.
    const noWebgl2 = `{ const get = HTMLCanvasElement.prototype.getContext;
      HTMLCanvasElement.prototype.getContext = function (kind, ...rest) { return kind === 'webgl2' ? null : get.call(this, kind, ...rest); }; }`;
    const { result } = await runPage('backend=gpu&device=webgl2&steps=2', noWebgl2);
    expect(result.ok).toBe(false);
    expect(result.tokens).toBeUndefined();
    expect(result.error).toMatch(/webgl2|WebGL2Kernel/);
  });

  it('a backend the build lacks is reported on the page, not hung on', async (ctx) => {
    await needs(ctx, 'chromium');
    const { result } = await runPage('backend=nosuch');
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^this build has no nosuch backend; it has js, gpu, wasm/);
  });
});
