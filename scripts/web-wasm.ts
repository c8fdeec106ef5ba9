/**
 * The wasm backend's files for examples/web (scripts/build-web.ts), per program `<stem>`:
 *   <stem>.json           the manifest host.ts runs the module by (manifest.ts)
 *   <stem>.wasm           the module with plain SIMD128 mul + add
 *   <stem>.relaxed.wasm   the same with relaxed-SIMD fused multiply-add (same layout, same manifest)
 *   <stem>.js             what the page imports: createModel() fetches the three above through host.js
 * and once, host.js: backends/wasm/host.ts bundled for the browser — the one host the Node backend
 * runs too. One thread: a shared memory needs cross-origin isolation, which a plain page lacks.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CompileOptions } from '../backends/backend.js';
import { emitModule } from '../backends/wasm/emit.js';
import { loadBinaryen } from '../backends/wasm/fn.js';
import { wasmManifest } from '../backends/wasm/manifest.js';
import { InternalError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';

const HOST = join(dirname(fileURLToPath(import.meta.url)), '..', 'backends', 'wasm', 'host.ts');

export async function webWasmFiles(program: Graph, opts: CompileOptions, stem: string): Promise<Record<string, string | Uint8Array>> {
  const b = await loadBinaryen();
  const [plain, relaxed] = [false, true].map((r) => emitModule(b, program, { ...opts, threads: 1, relaxed: r }));
  const manifest = JSON.stringify(wasmManifest(program, plain!, { threads: 1, ...(opts.specialize ? { specialize: opts.specialize } : {}) }));
  if (JSON.stringify(wasmManifest(program, relaxed!, { threads: 1, ...(opts.specialize ? { specialize: opts.specialize } : {}) })) !== manifest)
    throw new InternalError('wasm backend: the relaxed-SIMD module has another layout than the plain one');
  const entry = `// ${stem}.js — the wasm backend's ${stem} program for the page (scripts/build-web.ts)
import { fetchWasmModel } from './host.js';
// { shareWith: the prefill model } runs the decode program over its memory (one copy of the weights)
export const createModel = (opts = {}) => fetchWasmModel(new URL('${stem}', import.meta.url).href, opts);
`;
  return { [`${stem}.js`]: entry, [`${stem}.json`]: manifest, [`${stem}.wasm`]: plain!.binary, [`${stem}.relaxed.wasm`]: relaxed!.binary };
}

/**
 * host.ts and what it imports as one browser ES module. The only node: import on the way is
 * graph/errors.ts's readFileSync (source excerpts of compile errors, never called at run time):
 * it becomes a stub that throws; any other would mean the host is not platform-free, and fails.
 */
export async function bundleWasmHost(): Promise<string> {
  const esbuild = await import('esbuild');
  const r = await esbuild.build({
    entryPoints: [HOST],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'no-node',
        setup(build) {
          build.onResolve({ filter: /^node:/ }, (a) => {
            if (a.path !== 'node:fs' || !a.importer.endsWith(join('graph', 'errors.ts'))) throw new InternalError(`the wasm host must run in a browser, but ${a.importer} imports ${a.path}`);
            return { path: a.path, namespace: 'browser-stub' };
          });
          build.onLoad({ filter: /.*/, namespace: 'browser-stub' }, () => ({ contents: 'export const readFileSync = () => { throw new Error("no file system in a browser"); };', loader: 'js' }));
        },
      },
    ],
  });
  return `// host.js — backends/wasm/host.ts for the browser, bundled by scripts/build-web.ts\n${r.outputFiles[0]!.text}`;
}
