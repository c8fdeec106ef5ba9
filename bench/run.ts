/**
 * `npm run bench`: kiln beside llama.cpp (models) and TensorFlow.js wasm (kernels), in the same
 * process, interleaved. Prints a markdown table on stdout, progress on stderr, and writes
 * bench/results/bench.json and bench.md.
 *
 *   npm run bench                      the full bench (about 10 minutes on 2 cores)
 *   npm run bench -- --quick           one short round of stories15M and the kernels
 *   npm run bench -- --rounds 7        more rounds
 *   options: --models a,b  --threads 1,2  --backends js,wasm  --warmup N (unrecorded rounds first, default 1)
 *            --no-kernels  --no-models  --no-peers  --no-training  --out DIR
 *
 * The npm script preloads binaryen before tsx registers (see preload.mjs); run directly with
 * `node --import tsx bench/run.ts` it works the same but the wasm backend's first compile waits
 * about a minute for binaryen to come through tsx's loader.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Cell, type Row, runRounds } from './harness.js';
import { flops, KERNELS, kilnKernel } from './kernels.js';
import { firstLine, kilnContestants } from './kiln-backends.js';
import { describeMachine, loadAverage } from './machine.js';
import { benchTokens, kilnRunner, type LmRunner, modelSpec } from './models.js';
import { type LlamaCppModel, loadLlamaCpp } from './peers/llama-cpp.js';
import { loadTfjs } from './peers/tfjs.js';
import { runTrainingBench } from './training.js';
import { type BenchReport, markdown } from './report.js';

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    models: { type: 'string' },
    threads: { type: 'string', default: '1,2' },
    backends: { type: 'string', default: 'js,wasm' },
    'no-kernels': { type: 'boolean', default: false },
    'no-models': { type: 'boolean', default: false },
    'no-peers': { type: 'boolean', default: false },
    'no-training': { type: 'boolean', default: false },
    out: { type: 'string', default: join('bench', 'results') },
  },
});

const log = (line: string): void => void process.stderr.write(`[bench ${((performance.now() - T0) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);
const T0 = performance.now();
const quick = opt.quick;
const rounds = opt.rounds !== undefined ? Number(opt.rounds) : quick ? 1 : 5;
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${opt.rounds}`);
const warmup = opt.warmup !== undefined ? Number(opt.warmup) : quick ? 0 : 1;
if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be a whole number of rounds, got ${opt.warmup}`);
const threadCounts = opt.threads.split(',').map(Number);
if (!threadCounts.every((t) => Number.isInteger(t) && t >= 1)) throw new Error(`--threads must list positive integers, got ${opt.threads}`);
const presets = (opt.models ?? (quick ? 'stories15M' : 'stories15M,stories110M')).split(',').filter(Boolean);

/**
 * Counts. The full bench measures what the issue asks; stories110M on the js backend (plain JS
 * loops, ~1/10 of wasm) decodes fewer tokens per sample, and stories110M rows run fewer rounds,
 * so that the whole bench stays near 10 minutes on 2 cores.
 */
const COUNTS = quick ? { prefill: 32, prompt: 16, decode: 16 } : { prefill: 128, prompt: 16, decode: 200 };
const SLOW_JS_DECODE = quick ? 8 : 24;
const BIG_ROUNDS = Math.max(1, Math.min(rounds, Math.ceil(rounds * 0.6)));
const KERNEL_MS = quick ? 60 : 250;
/**
 * A decode sample stops after this long (tokens/s then counts the tokens done). It bounds the
 * pathological case: llama.cpp's spinning workers, with another process on the second core, can
 * fall to a few tokens a second.
 */
const DECODE_BUDGET_MS = quick ? 2000 : 10_000;

const machine = describeMachine();
const loadBefore = loadAverage();
const startedAt = new Date().toISOString();
log(`${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, kiln ${machine.kilnCommit}; load ${loadBefore.join(' ')}`);
if (loadBefore[0] > machine.cores / 2) log(`note: the load average (${loadBefore[0]}) is above half the core count before the bench starts: another process is using the CPU`);

const labels: Record<string, string> = {};
const config: Record<string, unknown> = { rounds, warmup, quick, threads: threadCounts, presets, counts: COUNTS, slowJsDecode: SLOW_JS_DECODE, kernelSampleMs: KERNEL_MS, decodeBudgetMs: DECODE_BUDGET_MS };
const notes: string[] = [];
const rows: Row[] = [];
const cleanups: (() => Promise<void>)[] = [];

const kilnBackends = opt.backends.split(',').filter(Boolean);
const kiln = await kilnContestants(threadCounts, kilnBackends);
for (const k of kiln) labels[k.id] = k.label;
for (const k of kiln) if (k.unavailable) log(`${k.label}: not available — ${k.unavailable}`);

// Kernels: kiln's backends beside TF.js wasm.
if (!opt['no-kernels']) {
  let tf: Awaited<ReturnType<typeof loadTfjs>> | undefined;
  let tfWhy = 'not run (--no-peers)';
  if (!opt['no-peers'])
    try {
      tf = await loadTfjs();
      config['tfjs'] = tf.version;
    } catch (e) {
      tfWhy = `TensorFlow.js wasm failed to load: ${firstLine(e)}`;
    }
  labels['tfjs-wasm'] = 'TF.js wasm 1t';
  for (const k of KERNELS) {
    log(`setting up ${k.label} (${(flops(k) / 1e9).toFixed(2)} GFLOP a call)`);
    const cells: Cell[] = [];
    for (const c of kiln) {
      if (!c.backend) {
        cells.push({ contestant: c.id, unavailable: c.unavailable! });
        continue;
      }
      try {
        cells.push({ contestant: c.id, measure: await kilnKernel(c.backend, k, KERNEL_MS), baseline: 'tfjs-wasm' });
      } catch (e) {
        cells.push({ contestant: c.id, unavailable: `${k.label} failed: ${firstLine(e)}` });
      }
    }
    cells.push(tf ? { contestant: 'tfjs-wasm', measure: await tf.kernel(k, KERNEL_MS) } : { contestant: 'tfjs-wasm', unavailable: tfWhy });
    rows.push({ id: k.id, group: 'kernel', subject: k.label, metric: k.note, unit: 'GFLOP/s', cells });
  }
}

// Models: kiln sessions beside llama.cpp with the same weights.
const bigRows = new Set<string>();
if (!opt['no-models']) {
  for (const preset of presets) {
    log(`${preset}: making seeded random weights`);
    const spec = modelSpec(preset, 1);
    const maxSeq = Math.min(256, spec.config.maxSeqLen);
    const promptLen = Math.min(COUNTS.prompt, Math.floor(maxSeq / 2));
    const n = { prefill: Math.min(COUNTS.prefill, maxSeq), prompt: promptLen, decode: Math.min(COUNTS.decode, maxSeq - promptLen) };
    const big = spec.weightBytes > 200e6;
    const prefillTokens = benchTokens(n.prefill, spec.vocabSize, 11);
    const prompt = benchTokens(n.prompt, spec.vocabSize, 12);
    const decodeTokens = benchTokens(n.decode, spec.vocabSize, 13);
    const runners: { id: string; runner?: LmRunner; unavailable?: string; baseline?: string; threads: number }[] = [];
    for (const c of kiln) {
      if (!c.backend) {
        runners.push({ id: c.id, unavailable: c.unavailable!, threads: c.threads });
        continue;
      }
      log(`${preset}: compiling a session on ${c.label}`);
      try {
        const runner = await kilnRunner(c.backend, spec, maxSeq);
        cleanups.push(() => runner.dispose());
        runners.push({ id: c.id, runner, threads: c.threads, baseline: `llama-cpp-${c.threads}t` });
      } catch (e) {
        runners.push({ id: c.id, unavailable: `${preset} session failed: ${firstLine(e)}`, threads: c.threads });
      }
    }
    let lc: LlamaCppModel | undefined;
    let lcWhy = 'not run (--no-peers)';
    if (!opt['no-peers'])
      try {
        log(`${preset}: writing the GGUF and loading it into llama.cpp`);
        lc = await loadLlamaCpp(spec, maxSeq);
        config['llamaCpp'] = lc.version;
        const m = lc;
        cleanups.push(() => m.dispose());
      } catch (e) {
        lcWhy = `llama.cpp could not load ${preset}: ${firstLine(e)}`;
      }
    for (const t of threadCounts) {
      const id = `llama-cpp-${t}t`;
      labels[id] = `llama.cpp ${t}t`;
      if (!lc) runners.push({ id, unavailable: lcWhy, threads: t });
      else
        try {
          runners.push({ id, runner: await lc.runner(t), threads: t });
        } catch (e) {
          runners.push({ id, unavailable: `llama.cpp context with ${t} threads: ${firstLine(e)}`, threads: t });
        }
    }
    const cells = (phase: 'prefill' | 'decode'): Cell[] =>
      runners.map((r): Cell => {
        if (!r.runner) return { contestant: r.id, unavailable: r.unavailable! };
        const runner = r.runner;
        const slow = phase === 'decode' && big && r.id === 'kiln-js';
        const tokens = slow ? decodeTokens.slice(0, SLOW_JS_DECODE) : decodeTokens;
        const measure =
          phase === 'prefill'
            ? async () => (prefillTokens.length * 1000) / (await runner.prefill(prefillTokens))
            : async () => {
                const d = await runner.decode(prompt, tokens, DECODE_BUDGET_MS);
                const value = (d.tokens * 1000) / d.ms;
                return d.tokens < tokens.length ? { value, detail: `${d.tokens} of ${tokens.length} tokens in the ${(DECODE_BUDGET_MS / 1000).toFixed(0)} s` } : value;
              };
        return {
          contestant: r.id,
          measure,
          ...(r.baseline && runners.some((x) => x.id === r.baseline && x.runner) ? { baseline: r.baseline } : {}),
          ...(slow ? { note: `decodes ${tokens.length} tokens per sample, not ${decodeTokens.length} (plain JS loops; the full count would take minutes)` } : {}),
        };
      });
    // Warm every runner before the timed rounds (JIT, first touch of caches and buffers) with one
    // whole prefill: its first full-length run is slower (kiln's wasm by a quarter), for everyone.
    for (const r of runners) if (r.runner) {
      await r.runner.prefill(prefillTokens);
      await r.runner.decode(prompt.slice(0, 4), decodeTokens.slice(0, 2), DECODE_BUDGET_MS);
    }
    const pre = { id: `${preset}-prefill`, group: 'model' as const, subject: preset, metric: `prefill ${n.prefill}`, unit: 'tokens/s' as const, cells: cells('prefill') };
    const dec = { id: `${preset}-decode`, group: 'model' as const, subject: preset, metric: `decode ${n.decode} after ${n.prompt}`, unit: 'tokens/s' as const, cells: cells('decode') };
    rows.push(pre, dec);
    if (big) {
      // Only the decode row is cut short: a prefill sample lasts about a second, and the machine's
      // slow and fast spells make three samples too few for a median.
      bigRows.add(dec.id);
      notes.push(`${preset} decode runs ${BIG_ROUNDS} of the ${rounds} rounds (the slow part of the bench); its prefill runs all ${rounds}.`);
    }
    notes.push(`${preset}: ${(spec.weightBytes / 1e6).toFixed(0)} MB of f32 weights (seed 1, std 0.1); KV cache of ${maxSeq} positions, f32, on every contestant.`);
  }
}

log(`measuring: ${rows.length} rows, ${rounds} rounds`);
const { results, rounds: roundInfo } = await runRounds(rows, rounds, machine.cores, log, (r) => (bigRows.has(r.id) ? BIG_ROUNDS : rounds), warmup);
if (warmup) notes.push(`${warmup} unrecorded warm-up round${warmup > 1 ? 's' : ''} ran first (the first round after the setup measured every contestant slower).`);
for (const c of cleanups) await c().catch(() => {});

// Training: kiln and PyTorch in processes of their own, after everything above (none runs beside them).
if (!opt['no-training']) {
  const tr = runTrainingBench({ quick, rounds: quick ? 1 : 3, threads: threadCounts, backends: kilnBackends, peers: !opt['no-peers'], log });
  results.push(...tr.results);
  Object.assign(labels, tr.labels);
  notes.push(...tr.notes);
}

const loadAfter = loadAverage();
const report: BenchReport = { machine, startedAt, seconds: (performance.now() - T0) / 1000, loadBefore, loadAfter, config, labels, rounds: roundInfo, results, notes };
if (loadBefore[0] > machine.cores / 2) notes.unshift(`The load average was ${loadBefore[0]} before the bench began (above half the ${machine.cores} cores): another process was using the CPU.`);
const md = markdown(report);
mkdirSync(opt.out, { recursive: true });
writeFileSync(join(opt.out, 'bench.json'), JSON.stringify(report, null, 1) + '\n');
writeFileSync(join(opt.out, 'bench.md'), md);
process.stdout.write(md);
log(`wrote ${join(opt.out, 'bench.json')} and bench.md`);
// The wasm backend's workers and llama.cpp's threads would keep the process alive.
process.exit(0);
