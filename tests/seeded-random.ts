/** The tests' seeded PRNG and normal samples are the runtime's own, so weights repeat the same way. */
export { mulberry32, normalSampler } from '../src/runtime/rng.js';
