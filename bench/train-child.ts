/**
 * One training-bench sample in a process of its own (bench/training.ts spawns it), so that its
 * peak memory is its own: compiles the training step of a shape for a backend, runs warm-up steps,
 * then times whole optimizer steps (every window's forward and backward, the gradient sum,
 * clipping, AdamW and binding the new weights) on seeded random tokens. Prints one JSON line:
 * { tokens_per_s, step_s, peak_rss_bytes, arena_bytes, compile_s }.
 *
 *   node --import ./bench/preload.mjs --import tsx bench/train-child.ts CONFIG_JSON BATCH SEQ BACKEND THREADS STEPS WARMUP
 */
import type { LlamaConfig } from '../src/dsl/llama.js';
import { llama } from '../src/dsl/llama.js';
import { mulberry32 } from '../src/runtime/rng.js';
import { splitData } from '../src/train/data.js';
import { trainingInit } from '../src/train/init.js';
import { train } from '../src/train/run.js';
import { TrainingPrograms } from '../src/train/step.js';

const [configJson, batchS, seqS, backendName, threadsS, stepsS, warmupS] = process.argv.slice(2);
const config = JSON.parse(configJson!) as LlamaConfig;
const [batch, seq, threads, steps, warmup] = [batchS, seqS, threadsS, stepsS, warmupS].map(Number) as [number, number, number, number, number];
const g = llama(config).build();
const backend = backendName === 'js' ? (await import('../backends/js/index.js')).jsBackend : (await import('../backends/wasm/index.js')).createWasmBackend({ threads });
const t0 = performance.now();
const programs = await TrainingPrograms.create(g, backend, seq);
const compileS = (performance.now() - t0) / 1000;
const r = mulberry32(5);
const ids = Int32Array.from({ length: (warmup + steps) * batch * seq + 1 }, () => Math.floor(r() * config.vocabSize));
const data = splitData(ids, { seq, valFraction: 0 });
const settings = { batch, seq, gradAccum: 1, steps: warmup + steps, lr: 1e-4, minLr: 1e-5, warmup: 0, weightDecay: 0.1, clip: 1, beta1: 0.9, beta2: 0.95, eps: 1e-8, dropout: 0, seed: 0, shuffle: false, evalEvery: 0, evalBatches: 1, saveEvery: 0 };
const res = await train({ model: g, weights: trainingInit(g, 0), backend, data, settings, identity: {}, outDir: '.', programs });
const timed = res.steps.slice(warmup);
const ms = timed.reduce((a, s) => a + (s.ms ?? 0), 0);
const computeMs = timed.reduce((a, s) => a + (s['compute_ms'] ?? 0), 0);
programs.dispose();
process.stdout.write(
  `${JSON.stringify({ tokens_per_s: (timed.length * batch * seq * 1000) / ms, step_s: ms / timed.length / 1000, peak_rss_bytes: process.resourceUsage().maxRSS * 1024, arena_bytes: programs.grad.plan.arenaBytes, compile_s: compileS, update_share: 1 - computeMs / ms })}\n`,
);
process.exit(0);
