/**
 * TensorFlow.js's wasm backend (XNNPACK) as the kernel peer. In Node it runs single-threaded.
 * Weights are stored [K, N] and multiplied without a transpose flag: with transposeB, tf.matMul
 * leaves XNNPACK for a scalar loop about ten times slower, which would flatter kiln.
 */
import { gflopsSampler, type KernelSpec, randomArray } from '../kernels.js';

export interface TfjsPeer {
  readonly version: string;
  kernel(k: KernelSpec, targetMs: number): Promise<() => Promise<number>>;
}

export async function loadTfjs(): Promise<TfjsPeer> {
  // Its import prints advice about tfjs-node to the console; keep stdout for the table.
  const { log, warn, info } = console;
  console.log = console.warn = console.info = () => {};
  try {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
    await tf.ready();
    return {
      version: `TensorFlow.js ${tf.version_core} wasm`,
      async kernel(k, targetMs) {
        const x = tf.tensor2d(randomArray(k.M * k.K, 3), [k.M, k.K]);
        const w = tf.tensor2d(randomArray(k.K * k.N, 2), [k.K, k.N]);
        // The wasm backend computes at the call; y stays in its heap, as kiln's result stays in a
        // reused array (y.dataSync() would time a new 2 MB array per call: 0.3–2.7 ms of page faults).
        return gflopsSampler(
          () => {
            const y = tf.matMul(x, w);
            y.dispose();
          },
          k,
          targetMs,
        );
      },
    };
  } finally {
    Object.assign(console, { log, warn, info });
  }
}
