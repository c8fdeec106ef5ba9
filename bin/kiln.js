#!/usr/bin/env node
// The `kiln` command. Plain JavaScript so that it runs without a build step: it registers tsx,
// which compiles kiln's TypeScript (and the user's model files) on import. The CommonJS hook is
// for model files in folders whose package.json does not say "type": "module".
import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';

// binaryen (the wasm backend's emitter) is one 10 MB module that tsx's loader takes a minute to
// pass through; loaded before tsx registers, it takes under a second. Only wasm commands need it.
if (process.argv.some((a) => /\bwasm\b/.test(a))) await import('binaryen');

register();
registerCjs();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv);
// Native devices (WebGPU's Dawn) must be released before the process exits.
await (await import('../backends/shutdown.ts')).shutdown();
process.exit(code);
