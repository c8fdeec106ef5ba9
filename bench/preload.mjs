// Loaded before tsx registers (`node --import ./bench/preload.mjs --import tsx bench/run.ts`):
// binaryen's 10 MB module takes about a minute to import through tsx's loader hooks on this
// machine, and a couple of seconds without them; once loaded, the wasm backend's own import of
// it is a cache hit.
await import('binaryen');
