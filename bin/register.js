// `node --import kiln/register script.ts`: run a script that imports kiln from plain Node. kiln
// ships TypeScript sources, so this registers tsx (ESM and CommonJS), as the `kiln` command does.
// binaryen, the wasm backend's emitter, is one 10 MB module that tsx's hooks take a minute to pass
// through; imported first, it takes about a second.
await import('binaryen');
const { register } = await import('tsx/esm/api');
const { register: registerCjs } = await import('tsx/cjs/api');
register();
registerCjs();
