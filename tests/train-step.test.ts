/**
 * The compiled training step (src/train/step.ts) against the interpreter: the training graph
 * (loss and every gradient, with and without dropout) through TRAIN_PIPELINE and a backend gives
 * the float64 interpreter's values of the graph as built, to float32 precision. Dropout sits on
 * every residual branch, draws its masks from the key, and leaves validation alone.
 */
import { describe, expect, it } from 'vitest';
import type { Backend } from '../backends/backend.js';
import { jsBackend } from '../backends/js/index.js';
import { createWasmBackend } from '../backends/wasm/index.js';
import { interpret } from '../graph/interpret.js';
import { hostTensor } from '../graph/tensor.js';
import { llama } from '../src/dsl/llama.js';
import { randomWeights, weightsToHost } from '../src/runtime/weights.js';
import { DROPOUT_KEY, lossGraph, residualBranches, trainingGraph } from '../src/train/loss-graph.js';
import { TrainingPrograms } from '../src/train/step.js';
import { gpuBackend } from '../backends/gpu/index.js';
import { KilnError } from '../graph/errors.js';
import { needs } from './stacks.js';

const model = llama({ name: 'step-test', vocabSize: 29, dim: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 24, maxSeqLen: 16 }).build();
const weights = randomWeights(model, 3, 0.2);
const T = 6;
const row = { inputs: Int32Array.from([1, 5, 9, 2, 28, 7]), targets: Int32Array.from([5, 9, 2, 28, 7, 3]) };
/** float32 against float64 through ~40 ops: the js backend's own bound (backends/js/index.ts) */
const TOL = 1e-4;

function reference(dropout: number, key: [number, number]) {
  const g = trainingGraph(model, { dropout });
  const inputs = { tokens: hostTensor('i32', [T], [...row.inputs]), targets: hostTensor('i32', [T], [...row.targets]), ...(dropout > 0 ? { [DROPOUT_KEY]: hostTensor('i32', [2], key) } : {}) };
  return interpret(g, { inputs, params: weightsToHost(model, weights) });
}

function worst(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i]! - want[i]!) / Math.max(scale, 1e-12));
  return w;
}

describe('the training step', () => {
  it('dropout masks every residual branch, two per layer, and only in the training graph', () => {
    expect(residualBranches(model).size).toBe(4);
    expect(trainingGraph(model, { dropout: 0.1 }).nodes.filter((n) => n.op === 'dropout_mask')).toHaveLength(4);
    expect(lossGraph(model).nodes.some((n) => n.op === 'dropout_mask')).toBe(false);
    const withKey = (k: [number, number]) => reference(0.3, k)['loss']!.data[0]!;
    expect(withKey([1, 2])).toBe(withKey([1, 2]));
    expect(withKey([1, 2])).not.toBe(withKey([1, 3]));
    expect(withKey([1, 2])).not.toBe(reference(0, [0, 0])['loss']!.data[0]);
  });

  const backends: [string, () => Backend][] = [
    ['js', () => jsBackend],
    ['wasm', () => createWasmBackend({ threads: 1 })],
  ];
  for (const [name, make] of backends)
    for (const dropout of [0, 0.25])
      it(`${name}, dropout ${dropout}: the loss and every gradient equal the interpreter's (relative ${TOL}); validation is the loss without dropout`, async () => {
        const p = await TrainingPrograms.create(model, make(), T, { dropout });
        try {
          p.setWeights(weights);
          const key: [number, number] = [7, 11];
          const want = reference(dropout, key);
          const acc = Object.fromEntries(p.params.map((q) => [q.name, new Float32Array(weights[q.name]!.length)]));
          const loss = p.accumulate(row, acc, key);
          expect(Math.abs(loss - want['loss']!.data[0]!) / want['loss']!.data[0]!).toBeLessThan(TOL);
          for (const q of p.params) expect(worst(acc[q.name]!, want[`grad:${q.name}`]!.data), q.name).toBeLessThan(TOL);
          const plain = interpret(lossGraph(model), { inputs: { tokens: hostTensor('i32', [T], [...row.inputs]), targets: hostTensor('i32', [T], [...row.targets]) }, params: weightsToHost(model, weights) });
          expect(Math.abs(p.rowLoss(row) - plain['loss']!.data[0]!)).toBeLessThan(TOL);
          // the plan covers what the backward pass keeps
          expect(p.grad.plan.arenaBytes).toBeGreaterThan(p.loss.plan.arenaBytes);
        } finally {
          p.dispose();
        }
      }, 60_000);

  // the gpu backend computes in float32 with the device's own exp and sums: GPU_TOLERANCE's 1e-4 per
  // op, through a backward pass of ~80 ops
  for (const device of ['headlessgl', 'webgpu'] as const)
    it(`gpu on ${device}: the loss and every gradient equal the interpreter's (relative 1e-3); dropout is refused by name`, async (ctx) => {
      await needs(ctx, device);
      const backend = gpuBackend({ device });
      const p = await TrainingPrograms.create(model, backend, T);
      try {
        p.setWeights(weights);
        const want = reference(0, [0, 0]);
        const acc = Object.fromEntries(p.params.map((q) => [q.name, new Float32Array(weights[q.name]!.length)]));
        const loss = p.accumulate(row, acc);
        expect(Math.abs(loss - want['loss']!.data[0]!) / want['loss']!.data[0]!).toBeLessThan(1e-3);
        for (const q of p.params) expect(worst(acc[q.name]!, want[`grad:${q.name}`]!.data), q.name).toBeLessThan(1e-3);
      } finally {
        p.dispose();
      }
      const refused = await TrainingPrograms.create(model, backend, T, { dropout: 0.1 }).then(() => undefined, (e: unknown) => e);
      expect(refused).toBeInstanceOf(KilnError);
      expect((refused as KilnError).code).toBe('K1019');
      expect((refused as KilnError).message).toMatch(/dropout_mask/);
    }, 300_000);
});
