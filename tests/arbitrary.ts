/** The random-graph generator lives in src/fuzz (`kiln fuzz` draws from it at run time). */
export * from '../src/fuzz/arbitrary.js';
