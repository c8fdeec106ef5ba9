/**
 * The worker thread's program, as source (run with `eval: true`, so that it needs no loader for
 * TypeScript): instantiate the module over the shared memory, then wait for jobs — spin on the
 * generation word a bounded time (a hand-off by spinning costs ~0.2 µs, by Atomics.wait ~50 µs),
 * then sleep in Atomics.wait — and run `work(gen)`, which claims chunks until none are left.
 */
export const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, gen: GEN, stop: STOP, spin: SPIN } = workerData;
const env = {
  mem: memory,
  exp: Math.exp, log: Math.log, sin: Math.sin, cos: Math.cos, tanh: Math.tanh, pow: Math.pow,
  powi: (a, b) => Math.pow(a, b) | 0,
  fail: () => { throw new Error('kiln wasm worker: a kernel failed'); },
  dbg: () => {},
  prof: () => {}, // only run() (the calling thread) times kernels
};
const { exports } = new WebAssembly.Instance(module, { env });
const words = new Int32Array(memory.buffer, 0, 1024);
let seen = Atomics.load(words, GEN / 4);
for (;;) {
  let g = Atomics.load(words, GEN / 4);
  let spins = 0;
  while (g === seen) {
    if (++spins > SPIN) {
      Atomics.wait(words, GEN / 4, seen, 1000);
      spins = 0;
    }
    g = Atomics.load(words, GEN / 4);
  }
  seen = g;
  if (Atomics.load(words, STOP / 4) !== 0) break;
  exports.work(g);
}
`;
