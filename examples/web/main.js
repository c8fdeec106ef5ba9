// kiln in the browser: load a compiled model (scripts/build-web.ts wrote it into dist/), run the
// prompt through the prefill program, then one decode step per token, greedily. Plain JavaScript
// with no build step; js and gpu's modules are the ones `kiln compile` writes, wasm's load their
// module and its manifest through the shared host (dist/wasm/host.js).
//
// URL query: ?backend=js | ?backend=gpu&device=webgl2|webgpu | ?backend=wasm, &steps=N, &dist=PATH
// The result (or the error) is put on window.kilnResult, which the end-to-end test waits for.

const query = new URLSearchParams(location.search);
const backend = query.get('backend') ?? 'js';
const device = backend === 'gpu' ? query.get('device') ?? 'webgl2' : null;
const dist = (query.get('dist') ?? 'dist').replace(/\/?$/, '/');

const $ = (id) => document.getElementById(id);
const status = (text) => ($('status').textContent = text);
const ms = (x) => `${x.toFixed(1)} ms`;

function argmax(xs) {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

async function fetchOk(path, kind) {
  const r = await fetch(dist + path);
  if (!r.ok) throw new Error(`cannot load ${dist}${path} (${r.status}); did scripts/build-web.ts run?`);
  return kind === 'json' ? r.json() : r.arrayBuffer();
}

/** The weights by name: views into weights.bin at the manifest's offsets. */
function weightViews(manifest, bytes) {
  const out = {};
  for (const w of manifest.weights) {
    const T = w.dtype === 'i32' ? Int32Array : Float32Array;
    out[w.name] = new T(bytes, w.offset, w.length);
  }
  return out;
}

/** gpu.js's browser bundle, served from the project's node_modules (never the network). */
// A browser with WebGPU has a global `GPU` of its own (WebGPU's interface); gpu.js's is the one with createKernel.
const gpuJs = () => (window.GPU?.prototype?.createKernel ? window.GPU : undefined);
function loadGpuJs() {
  if (gpuJs()) return Promise.resolve(gpuJs());
  return new Promise((ok, fail) => {
    const s = document.createElement('script');
    s.src = 'vendor/gpu-browser.min.js';
    s.onload = () => (gpuJs() ? ok(gpuJs()) : fail(new Error('gpu.js loaded but defines no GPU class')));
    s.onerror = () => fail(new Error('cannot load vendor/gpu-browser.min.js'));
    document.head.append(s);
  });
}

/** The options each backend's createModel takes in a browser. */
async function modelOptions() {
  if (backend !== 'gpu') return {};
  if (device === 'webgpu' && !navigator.gpu) throw new Error('this browser has no WebGPU (navigator.gpu); Chromium needs --enable-unsafe-webgpu here');
  return { GPU: await loadGpuJs(), device, mode: device };
}

/** The gpu.js kernel class each device must run on. */
const KERNEL_CLASS = { webgl2: 'WebGL2Kernel', webgl: 'WebGLKernel', webgpu: 'WebGPUKernel' };

/**
 * The kinds of kernel a gpu model really ran. gpu.js falls back to its CPU kernels with only a
 * console warning; this page fails instead.
 */
function checkKernels(models) {
  if (backend !== 'gpu') return null;
  const kinds = [...new Set(models.flatMap((m) => m.kernelKinds()))];
  const want = KERNEL_CLASS[device];
  const bad = kinds.filter((k) => k !== want);
  if (!want || bad.length) throw new Error(`gpu.js ran ${bad.join(', ') || 'no kernels'} instead of ${want ?? `a known kind (device '${device}' is not one of ${Object.keys(KERNEL_CLASS).join(', ')})`}: no silent fallback`);
  return kinds.join(', ');
}

function showTokens(manifest, tokens) {
  const ref = manifest.reference;
  $('tokens').replaceChildren(
    ...tokens.map((t, i) => {
      const span = document.createElement('span');
      span.textContent = t;
      span.className = ref[i] === t ? 'tok same' : 'tok differs';
      span.title = `step ${i + 1}${ref[i] === t ? '' : `: the js backend in Node gave ${ref[i]}`}`;
      return span;
    }),
  );
}

async function main() {
  const t0 = performance.now();
  status('loading the manifest and weights…');
  const manifest = await fetchOk('manifest.json', 'json');
  const steps = Number(query.get('steps') ?? manifest.steps);
  const room = manifest.maxSeqLen - manifest.prompt.length + 1;
  if (!Number.isInteger(steps) || steps < 1 || steps > room) throw new Error(`steps must be an integer in [1, ${room}] (the context holds ${manifest.maxSeqLen} positions), got ${query.get('steps')}`);
  const files = manifest.backends[backend];
  if (!files && manifest.unavailable?.[backend]) throw new Error(`this build has no ${backend} backend: ${manifest.unavailable[backend]}`);
  if (!files) throw new Error(`this build has no ${backend} backend; it has ${Object.keys(manifest.backends).join(', ')} (rebuild with scripts/build-web.ts --backends ${backend})`);
  const weights = weightViews(manifest, await fetchOk('weights.bin'));
  $('model').textContent = `${manifest.model}, seed ${manifest.seed}, vocab ${manifest.vocabSize}, context ${manifest.maxSeqLen}`;
  $('prompt').textContent = manifest.prompt.join(' ');

  status(`compiling the ${backend}${device ? ` (${device})` : ''} programs…`);
  const base = new URL(dist, location.href);
  const [pre, dec] = await Promise.all([import(new URL(files.prefill, base).href), import(new URL(files.decode, base).href)]);
  const opts = await modelOptions();
  // The wasm backend's createModel fetches and compiles its module: it returns a promise.
  const prefill = await pre.createModel(opts);
  // wasm: the decode program runs over the prefill program's memory, so the weights are held once.
  const decode = await dec.createModel(backend === 'wasm' ? { shareWith: prefill } : opts);
  await prefill.setWeights(weights);
  // Over the prefill model's memory, the decode model's weights are bound already.
  if (!decode.sharesWeights) await decode.setWeights(weights);
  const tLoad = performance.now();

  // The KV caches: one buffer per state, handed to every step and replaced by its `state:` outputs.
  const state = {};
  for (const s of manifest.states) state[s.name] = new (s.dtype === 'i32' ? Int32Array : Float32Array)(s.shape.reduce((a, d) => a * d, 1));
  let pos = 0;
  // A gpu model on WebGPU reads its results back asynchronously: run may return a promise.
  const step = async (model, tokens) => {
    const out = await model.run({ inputs: { tokens: Int32Array.from(tokens) }, symbols: { [manifest.seqSymbol]: tokens.length, [manifest.posSymbol]: pos }, state });
    for (const [name, value] of Object.entries(out)) if (name.startsWith('state:')) state[name.slice(6)] = value;
    pos += tokens.length;
    return out.logits.subarray(out.logits.length - manifest.vocabSize);
  };

  status('generating…');
  const tokens = [];
  let t = performance.now();
  let logits = await step(manifest.prompt.length === 1 ? decode : prefill, manifest.prompt);
  tokens.push(argmax(logits));
  const prefillMs = performance.now() - t;
  // The last token is not run: steps tokens take steps − 1 decode steps.
  const times = [];
  for (let i = 1; i < steps; i++) {
    t = performance.now();
    logits = await step(decode, [tokens[tokens.length - 1]]);
    tokens.push(argmax(logits));
    times.push(performance.now() - t);
  }
  const decodeMs = times.reduce((a, x) => a + x, 0);
  // The median: a gpu model builds its kernels during its first run, which the mean would carry.
  const perToken = times.length ? [...times].sort((a, b) => a - b)[times.length >> 1] : 0;
  // Read after running, for the same reason.
  const kernel = checkKernels([prefill, decode]);
  // The wasm host says what it runs on: relaxed SIMD or plain SIMD128, and its threads.
  const ranOn = backend === 'wasm' ? prefill.device : null;

  const matches = tokens.every((x, i) => x === manifest.reference[i]);
  showTokens(manifest, tokens);
  $('backend').textContent = `${backend}${device ? ` on ${device}` : ''}${kernel ? ` — kernels: ${kernel}` : ''}${ranOn ? ` — ${ranOn}` : ''}`;
  const built = backend === 'gpu' ? ', building its kernels' : '';
  $('timings').textContent = `load ${ms(tLoad - t0)} · prefill of ${manifest.prompt.length} tokens ${ms(prefillMs)}${built} · decode ${ms(perToken)}/token, median (${(perToken ? 1000 / perToken : 0).toFixed(1)} tokens/s) · ${steps - 1} decode steps ${ms(decodeMs)} in all${backend === 'gpu' ? ' (the first builds its kernels)' : ''}`;
  $('verdict').textContent = matches ? `✓ same ${tokens.length} tokens as the js backend in Node` : '✗ differs from the js backend in Node (marked in red)';
  $('verdict').className = matches ? 'ok' : 'bad';
  status('done');
  // wasm: whether prefill and decode ran over one memory (the weights held once)
  const oneMemory = backend === 'wasm' ? prefill.share.memory === decode.share.memory : null;
  window.kilnResult = { ok: true, backend, device, kernel, ranOn, oneMemory, tokens, reference: manifest.reference, matches, prefillMs, decodeMs, perTokenMs: perToken, loadMs: tLoad - t0 };
}

for (const a of document.querySelectorAll('nav a')) if (a.search === location.search || (!location.search && a.search === '?backend=js')) a.className = 'current';

main().catch((e) => {
  console.error(e);
  status(`failed: ${e?.message ?? e}`);
  $('status').className = 'bad';
  window.kilnResult = { ok: false, backend, device, error: String(e?.message ?? e), code: e?.code ?? null };
});
