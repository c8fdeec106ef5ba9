import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsBackend } from '../backends/js/index.js';
import { interpret } from '../graph/interpret.js';
import { hostTensor } from '../graph/tensor.js';
import { type LlamaConfig, llama, normalizeLlamaConfig } from '../src/dsl/llama.js';
import { type Checkpoint, checkpointWeights, loadCheckpoint } from '../src/formats/checkpoint.js';
import { Session } from '../src/runtime/session.js';
import { weightsToHost } from '../src/runtime/weights.js';
import { argmaxOf, logSoftmaxRows, maxLogProbError } from './oracle/compare.js';
import { ORACLE_CASES, type OracleCase } from './oracle/configs.js';
import { writeOracleGguf } from './oracle/fixture.js';
import { type PositionResult, disposeLlamaCpp, llamaCppGreedy, llamaCppLogProbs } from './oracle/llama-cpp.js';

/**
 * kiln against llama.cpp (prebuilt in node-llama-cpp): an implementation we did not write.
 * Each case writes a seeded random-weight GGUF with kiln's writer, loads it back with kiln's
 * reader (config from the file's metadata), and compares per-position log-probabilities over the
 * whole vocabulary — from the float64 reference interpreter and from a js-backend Session — and
 * 32 greedy tokens.
 *
 * TOLERANCE 1e-5 (error = |Δ log p| / max(|log p|, 1), see oracle/compare.ts). llama.cpp computes
 * in f32 with its own summation order (flash attention off, f32 KV cache); measured against
 * kiln's float64 interpreter the error is 3e-7…5e-7 on these cases, so 1e-5 leaves ~20×
 * headroom for other CPUs' kernels. It is still tight enough to catch real mistakes: RMSNorm eps
 * off by only 1.5× moves log-probs by 4e-5…3e-4 (greedy tokens do not change), the wrong RoPE
 * layout by 0.4…1.2 — the last test of each f32 case checks that the bound keeps this margin.
 * The js backend runs in f32 too, so it gets the same bound.
 *
 * Q8_TOLERANCE 5e-2 for the q8_0 case. kiln dequantises q8_0 weights and multiplies in float;
 * llama.cpp also quantises each activation row to q8_0 (blocks of 32, scale amax/127) before
 * every matmul, an error of up to 1/254 of a block's largest value per element. Measured: 1.1e-2…
 * 1.7e-2 on three seeds. The bound still catches a broken dequantiser (a wrong scale, block order
 * or sign is an error of order 1, like the wrong RoPE layout), not a wrong eps — the f32 cases do
 * that. Greedy decoding is not compared for q8_0: llama.cpp's activation rounding flips near ties
 * (1 token in 32 on two of three seeds).
 */
const TOLERANCE = 1e-5;
const Q8_TOLERANCE = 5e-2;
const PROMPT_LENGTH = 16;
const GREEDY_PROMPT = 4;
const GREEDY_STEPS = 32;

interface Row {
  config: string;
  shape: string;
  interpret: number;
  session: number;
  greedy: string;
}
const rows: Row[] = [];

/** kiln's float64 reference: log-softmax of the interpreter's logits at every position. */
function interpretLogProbs(config: LlamaConfig, weights: Record<string, Float32Array>, tokens: readonly number[]): Float64Array[] {
  const g = llama(config).build();
  const out = interpret(g, { inputs: { tokens: hostTensor('i32', [tokens.length], tokens) }, params: weightsToHost(g, weights) });
  return logSoftmaxRows(out['logits']!.data, config.vocabSize);
}

function tokensFor(c: OracleCase, vocab: number): number[] {
  // Spread over the vocabulary: control, byte and piece tokens alike.
  return Array.from({ length: PROMPT_LENGTH }, (_, i) => (i * 37 + c.seed * 11 + 1) % vocab);
}

function describeShape(c: OracleCase): string {
  const n = normalizeLlamaConfig(c.config);
  const att = n.nKvHeads === n.nHeads ? 'MHA' : n.nKvHeads === 1 ? 'MQA' : 'GQA';
  return `${att} ${n.nHeads}/${n.nKvHeads}×${n.headDim} d${n.dim} h${n.hiddenDim} L${n.nLayers} V${n.vocabSize} θ${n.ropeBase} ε${n.normEps} ${n.tiedEmbeddings ? 'tied' : 'untied'} ${c.matrixDtype ?? 'f32'}`;
}

const dir = mkdtempSync(join(tmpdir(), 'kiln-oracle-'));
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(dir, { recursive: true, force: true });
  const fmt = (e: number) => e.toExponential(2);
  const table = [
    `kiln vs llama.cpp — max relative log-prob error per config (bound ${TOLERANCE}; q8_0 ${Q8_TOLERANCE})`,
    ...rows.map((r) => `  ${r.config.padEnd(9)} ${r.shape.padEnd(66)} interpret ${fmt(r.interpret)}  js session ${fmt(r.session)}  greedy ${r.greedy}`),
  ];
  console.log(table.join('\n'));
});

for (const c of ORACLE_CASES) {
  describe(`oracle ${c.config.name}`, () => {
    let ckpt: Checkpoint;
    let tokens: number[];
    let cpp: PositionResult[];
    let row: Row;
    const bound = c.matrixDtype === 'q8_0' ? Q8_TOLERANCE : TOLERANCE;

    beforeAll(async () => {
      const fx = writeOracleGguf(c, dir);
      ckpt = await loadCheckpoint(fx.path);
      tokens = tokensFor(c, ckpt.config.vocabSize);
      cpp = await llamaCppLogProbs(fx.path, tokens);
      row = { config: c.config.name, shape: describeShape(c), interpret: NaN, session: NaN, greedy: c.matrixDtype === 'q8_0' ? 'not compared' : '—' };
      rows.push(row);
    });

    it('the GGUF reads back as the config written', () => {
      const want = normalizeLlamaConfig(c.config);
      const got = normalizeLlamaConfig(ckpt.config);
      // Floats are stored as f32 in GGUF.
      expect({ ...got, normEps: Math.fround(got.normEps), ropeBase: Math.fround(got.ropeBase) }).toEqual({
        ...want,
        normEps: Math.fround(want.normEps),
        ropeBase: Math.fround(want.ropeBase),
      });
      expect(ckpt.tensors.get('blk.0.attn_q.weight')?.dtype).toBe(c.matrixDtype ?? 'f32');
    });

    it(`interpreter log-probs match llama.cpp within ${bound} at every position`, () => {
      const lp = interpretLogProbs(ckpt.config, checkpointWeights(ckpt), tokens);
      const errs = lp.map((r, p) => maxLogProbError(r, cpp[p]!.logProbs));
      row.interpret = Math.max(...errs);
      if (bound === TOLERANCE) expect(lp.map((r) => argmaxOf(r))).toEqual(cpp.map((r) => r.token));
      expect(row.interpret).toBeLessThan(bound);
    });

    it(`js-backend Session log-probs match llama.cpp within ${bound} (prefill, then decode)`, async () => {
      const g = llama(ckpt.config).build();
      const s = await Session.create(g, { backend: jsBackend, weights: checkpointWeights(ckpt) });
      // A multi-token prefill gives the last position's logits; each decode step one more.
      const half = PROMPT_LENGTH / 2;
      const logits = [s.prefill(tokens.slice(0, half))];
      for (const t of tokens.slice(half)) logits.push(s.decode(t));
      const errs = logits.map((l, i) => maxLogProbError(logSoftmaxRows(l, s.vocabSize)[0]!, cpp[half - 1 + i]!.logProbs));
      row.session = Math.max(...errs);
      expect(row.session).toBeLessThan(bound);
    });

    if (c.matrixDtype === 'q8_0') return;
    it(`greedy decoding gives llama.cpp's ${GREEDY_STEPS} tokens`, async () => {
      const prompt = tokens.slice(0, GREEDY_PROMPT);
      const want = await llamaCppGreedy(ckpt.file, prompt, GREEDY_STEPS);
      const g = llama(ckpt.config).build();
      const s = await Session.create(g, { backend: jsBackend, weights: checkpointWeights(ckpt) });
      const got: number[] = [];
      for await (const step of s.generate(prompt, { maxTokens: GREEDY_STEPS, temperature: 0 })) got.push(step.token);
      // The interpreter, fed llama.cpp's tokens, must pick each next one (teacher forcing).
      const seq = [...prompt, ...want.slice(0, -1)];
      const picks = interpretLogProbs(ckpt.config, checkpointWeights(ckpt), seq).slice(GREEDY_PROMPT - 1).map((r) => argmaxOf(r));
      row.greedy = got.join(',') === want.join(',') && picks.join(',') === want.join(',') ? `${GREEDY_STEPS}/${GREEDY_STEPS} same` : 'DIFFERENT';
      expect(got).toEqual(want);
      expect(picks).toEqual(want);
      // A constant stream would make this check weak: the weights must give varied tokens.
      expect(new Set(want).size).toBeGreaterThan(3);
    });

    it('the bound has teeth: a 1.5× eps or the other RoPE layout in kiln would fail it', () => {
      const w = checkpointWeights(ckpt);
      const worst = (config: LlamaConfig) => Math.max(...interpretLogProbs(config, w, tokens).map((r, p) => maxLogProbError(r, cpp[p]!.logProbs)));
      expect(worst({ ...ckpt.config, normEps: (ckpt.config.normEps ?? 1e-5) * 1.5 })).toBeGreaterThan(2 * TOLERANCE);
      expect(worst({ ...ckpt.config, ropeLayout: 'half' })).toBeGreaterThan(1e-2);
    });
  });
}
