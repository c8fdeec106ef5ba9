/**
 * The gpu backend on each Node device: the conformance suite against the interpreter, and greedy
 * decoding equal to the js backend's for 32 steps. A device that is missing here fails its tests
 * with the reason (run under `xvfb-run -a` for headless-gl; WebGPU needs Dawn's adapter), unless
 * KILN_GPU_TESTS=skip says that this environment has no GPU devices on purpose.
 *
 * Tolerance: relative 1e-4 with checkBackend's floor 1e-2 (see backends/gpu/index.ts): float32 on
 * the device like the js backend, but the GPU's exp/log/sin/pow are not the host's.
 */
import { describe, expect, it } from 'vitest';
import { checkBackend, conformanceCases } from '../backends/conformance.js';
import { GPU_TOLERANCE, gpuBackend, pickDevice } from '../backends/gpu/index.js';
import { jsBackend } from '../backends/js/index.js';
import { KilnError } from '../graph/errors.js';
import { presetModel } from '../src/dsl/presets.js';
import { Session } from '../src/runtime/session.js';
import { randomWeights } from '../src/runtime/weights.js';

const SKIP = process.env['KILN_GPU_TESTS'] === 'skip';
const CASES = conformanceCases();

async function available(device: 'headlessgl' | 'webgpu'): Promise<string | undefined> {
  try {
    await pickDevice(device);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

describe.each(['headlessgl', 'webgpu'] as const)('gpu backend on %s', (device) => {
  const backend = gpuBackend({ device });

  it('the device is available (or KILN_GPU_TESTS=skip)', async () => {
    const why = await available(device);
    if (why && SKIP) return expect(why).toMatch(/not available/);
    expect(why, `${why} — set KILN_GPU_TESTS=skip only where this environment has no such device`).toBeUndefined();
  });

  it('conformance against the interpreter', async () => {
    const why = await available(device);
    if (why && SKIP) return expect(why).toMatch(/not available/);
    expect(why).toBeUndefined();
    const bad: string[] = [];
    for (const c of CASES) {
      const r = await checkBackend(backend, c.graph, { seed: 1, ...(c.symbols ? { symbols: c.symbols } : {}) });
      // SwiftShader's WGSL sin/cos are ~1e-6 absolute off the host's (measured 1.4e-6, 1.9e-6)
      const tol = device === 'webgpu' && /^(sin|cos) /.test(c.name) ? 1e-3 : GPU_TOLERANCE.rel;
      if (!(r.maxRelError <= tol)) bad.push(r.summary);
    }
    expect(bad).toEqual([]);
  }, 600_000);

  it('greedy tokens equal the js backend for 32 steps on a seeded tiny model', async () => {
    const why = await available(device);
    if (why && SKIP) return expect(why).toMatch(/not available/);
    expect(why).toBeUndefined();
    const g = presetModel('tiny').build();
    const weights = randomWeights(g, 7);
    const gen = async (b: typeof backend) => {
      const s = await Session.create(g, { backend: b, weights, maxSeqLen: 40 });
      const got: number[] = [];
      for await (const step of s.generate([1, 2, 3], { maxTokens: 32 })) got.push(step.token);
      return got;
    };
    const want = await gen(jsBackend);
    expect(await gen(backend)).toEqual(want);
    expect(new Set(want).size).toBeGreaterThan(1);
  }, 600_000);

  it('reports its device and refuses a missing one by name', async () => {
    const why = await available(device);
    if (why && SKIP) return expect(why).toMatch(/not available/);
    const g = presetModel('tiny').build();
    const exe = await backend.compile(g);
    expect(exe.device).toBe(device);
    expect(exe.source).toContain('function createModel(options = {})');
    exe.dispose?.();
    await expect(gpuBackend({ device: 'webgl2' }).compile(g)).rejects.toThrow(KilnError);
  }, 120_000);
});
