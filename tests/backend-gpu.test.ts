/**
 * The gpu backend on each Node device: the conformance suite against the interpreter, and greedy
 * decoding equal to the js backend's for 32 steps. A device whose system stack is missing here
 * skips its tests loudly (tests/stacks.ts), and fails them under KILN_REQUIRE_STACKS=1 (CI).
 *
 * Tolerance: relative 1e-4 with checkBackend's floor 1e-2 (see backends/gpu/index.ts): float32 on
 * the device like the js backend, but the GPU's exp/log/sin/pow are not the host's.
 */
import { describe, expect, it } from 'vitest';
import { checkBackend, conformanceCases } from '../backends/conformance.js';
import { emitModule } from '../backends/gpu/emit.js';
import { GPU_TOLERANCE, gpuBackend, pickDevice } from '../backends/gpu/index.js';
import { NO_KERNEL } from '../backends/gpu/kernels/index.js';
import { jsBackend } from '../backends/js/index.js';
import { GraphBuilder } from '../graph/builder.js';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { needs, stackProblem } from './stacks.js';
import { presetModel } from '../src/dsl/presets.js';
import { Session } from '../src/runtime/session.js';
import { randomWeights } from '../src/runtime/weights.js';

const CASES = conformanceCases();

describe.each(['headlessgl', 'webgpu'] as const)('gpu backend on %s', (device) => {
  const backend = gpuBackend({ device });

  it('the device is available, or refused in one line naming what to install', async (ctx) => {
    if (await stackProblem(device)) {
      // what a user sees: one line, the device, what to install
      const e = await pickDevice(device).then(() => undefined, (e: unknown) => e as Error);
      expect(e).toBeInstanceOf(KilnError);
      expect(e!.message).toMatch(new RegExp(`^gpu backend: device '${device}' is not available: [^\\n]+$`));
    }
    await needs(ctx, device);
    expect((await pickDevice(device)).device).toBe(device);
  });

  it('conformance against the interpreter', async (ctx) => {
    await needs(ctx, device);
    const bad: string[] = [];
    for (const c of CASES) {
      // an op without a kernel here (NO_KERNEL: dropout_mask) is refused at compile, naming it
      const missing = c.graph.nodes.find((n) => NO_KERNEL[n.op] !== undefined);
      if (missing) {
        const e = await backend.compile(c.graph).then(() => undefined, (e: unknown) => e);
        if (!(e instanceof KilnError && e.code === 'K1019' && e.message.includes(`'${missing.op}'`))) bad.push(`${c.name}: not refused with K1019 (${String(e)})`);
        continue;
      }
      const r = await checkBackend(backend, c.graph, { seed: 1, ...(c.symbols ? { symbols: c.symbols } : {}) });
      // SwiftShader's WGSL sin/cos are ~1e-6 absolute off the host's (measured 1.4e-6, 1.9e-6)
      const tol = device === 'webgpu' && /^(sin|cos) /.test(c.name) ? 1e-3 : GPU_TOLERANCE.rel;
      if (!(r.maxRelError <= tol)) bad.push(r.summary);
    }
    expect(bad).toEqual([]);
  }, 600_000);

  it('greedy tokens equal the js backend for 32 steps on a seeded tiny model', async (ctx) => {
    await needs(ctx, device);
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

  it('reports its device and refuses a missing one by name', async (ctx) => {
    await needs(ctx, device);
    const g = presetModel('tiny').build();
    const exe = await backend.compile(g);
    expect(exe.device).toBe(device);
    expect(exe.source).toContain('function createModel(options = {})');
    exe.dispose?.();
    await expect(gpuBackend({ device: 'webgl2' }).compile(g)).rejects.toThrow(KilnError);
  }, 120_000);
});

describe('gpu backend: what it refuses at compile (no device needed)', () => {
  const backend = gpuBackend({ device: 'headlessgl' });
  const refusal = async (g: Graph) => backend.compile(g).then(() => undefined, (e: unknown) => e as KilnError);

  it('dropout_mask: K1019 naming the op and why', async () => {
    const b = new GraphBuilder('dropout');
    b.output('y', b.add('dropout_mask', [b.add('input', [], { name: 'key', dtype: 'i32', shape: [2] })], { shape: [4], p: 0.5, stream: 0 }));
    const e = await refusal(b.build());
    expect(e).toBeInstanceOf(KilnError);
    expect([e!.code, e!.message]).toEqual(['K1019', expect.stringMatching(/no kernel for op 'dropout_mask'.*32-bit integer/)]);
  });

  it('scatter_add and cross_entropy over indices computed on the device: K1019; from an input, checked on the host', async () => {
    const b = new GraphBuilder('computed ids');
    const ids = b.add('input', [], { name: 'ids', dtype: 'i32', shape: [3] });
    const moved = b.add('add', [ids, b.add('const', [], { dtype: 'i32', shape: [], value: [1] })]);
    b.output('y', b.add('scatter_add', [moved, b.add('input', [], { name: 'g', dtype: 'f32', shape: [3, 2] })], { rows: 5 }));
    const e = await refusal(b.build());
    expect([e?.code, e?.message]).toEqual(['K1019', expect.stringMatching(/no kernel for op 'scatter_add'.*computed on the device/)]);
    const c = new GraphBuilder('input targets');
    c.output('y', c.add('cross_entropy', [c.add('input', [], { name: 'x', dtype: 'f32', shape: [3, 7] }), c.add('input', [], { name: 't', dtype: 'i32', shape: [3] })]));
    expect(emitModule(c.build()).source).toMatch(/checkIndices\(h\d+, 7, "%\d+ cross_entropy", "target"\);/);
  });
});

