/**
 * Worker threads for a wasm executable: `threads − 1` workers over the same shared memory, each
 * running worker.ts's program. They are unref'd (they never keep the process alive) and stopped
 * by `dispose()`: the stop word is set and the generation bumped, so a sleeping or spinning
 * worker wakes, sees it and exits; then it is terminated.
 */
import { Worker } from 'node:worker_threads';
import type { JobArea } from './emit.js';
import type { WasmMemory, WasmModule } from './wasm-api.js';
import { WORKER_SOURCE } from './worker.js';

/** Spins (Atomics.load rounds, ~1 ms here) before a waiting worker sleeps. */
export const SPIN = 200_000;

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly words: Int32Array;

  constructor(
    module: WasmModule,
    private readonly memory: WasmMemory,
    count: number,
    private readonly job: JobArea,
  ) {
    this.words = new Int32Array(memory.buffer, 0, 1024);
    for (let i = 0; i < count; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, gen: job.gen, stop: job.stop, spin: SPIN } });
      w.unref();
      // A worker that dies would leave every chunk to the caller in silence: keep the error for run() to raise.
      w.on('error', (e) => (this.failure ??= e));
      this.workers.push(w);
    }
  }

  /** The first error a worker died of, if one did. */
  failure: Error | undefined;

  get size(): number {
    return this.workers.length;
  }

  dispose(): void {
    Atomics.store(this.words, this.job.stop / 4, 1);
    Atomics.add(this.words, this.job.gen / 4, 1);
    Atomics.notify(this.words, this.job.gen / 4);
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
    void this.memory;
  }
}
