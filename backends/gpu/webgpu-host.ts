/**
 * The WebGPU device for synchronous callers. gpu.js's WebGPU kernels return Promises, and the
 * Executable's run() is synchronous, so the model lives in a worker thread: the caller posts a
 * request and sleeps on an Atomics word until the worker has answered, then takes the answer
 * with receiveMessageOnPort.
 */
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onShutdown } from '../shutdown.js';

interface Request {
  readonly op: 'probe' | 'load' | 'setWeights' | 'run' | 'kinds' | 'destroy';
  readonly arg?: unknown;
}
type Reply = { ok: true; value: unknown } | { ok: false; code?: string; message: string };

export class WebGpuHost {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));

  constructor() {
    // Vulkan's loader complains on stderr about every start without a runtime dir (headless
    // machines have none); a private one (mode 0700, as it expects) keeps the output clean.
    process.env['XDG_RUNTIME_DIR'] ??= mkdtempSync(join(tmpdir(), 'kiln-xdg-'));
    const ch = new MessageChannel();
    this.port = ch.port1;
    this.worker = new Worker(WORKER, { eval: true, workerData: { port: ch.port2, flag: this.flag, base: import.meta.url }, transferList: [ch.port2] });
    this.worker.unref();
    onShutdown(() => this.close());
  }

  /**
   * Release every model and let the worker end by itself: terminating it while Dawn still polls
   * for events aborts the whole process ("napi_throw" in Dawn's AsyncRunner).
   */
  close(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 5_000);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.worker.postMessage({ op: 'shutdown' });
    });
  }

  call(op: Request['op'], arg?: unknown, id?: number): unknown {
    Atomics.store(this.flag, 0, 0);
    this.worker.postMessage({ op, arg, id });
    for (;;) {
      if (Atomics.wait(this.flag, 0, 0, 120_000) === 'timed-out') throw new Error(`webgpu worker: no answer to '${op}' in 120 s`);
      const got = receiveMessageOnPort(this.port);
      if (got) {
        const r = got.message as Reply;
        if (r.ok) return r.value;
        throw Object.assign(new Error(r.message), { code: r.code });
      }
    }
  }

  /** Dawn allows one user per process: every WebGPU model of this process lives in this one worker. */
  static shared(): WebGpuHost {
    return (shared ??= new WebGpuHost());
  }
}
let shared: WebGpuHost | undefined;

/** One model in the shared worker. */
export class WebGpuModel {
  private readonly id: number;
  constructor(private readonly host: WebGpuHost, source: string) {
    this.id = host.call('load', source) as number;
  }
  call(op: 'setWeights' | 'run' | 'kinds', arg?: unknown): unknown {
    return this.host.call(op, arg, this.id);
  }
  dispose(): void {
    try {
      this.host.call('destroy', undefined, this.id);
    } catch {
      // nothing more to release
    }
  }
}

/** The worker, as plain JavaScript (a worker cannot load TypeScript through the parent's loader). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createRequire } = require('node:module');
const req = createRequire(workerData.base);
const { port, flag } = workerData;
const models = new Map();
let nextId = 1, GPU;
const answer = (r) => { port.postMessage(r); Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); };
parentPort.on('message', async (m) => {
  if (m.op === 'shutdown') {
    for (const model of models.values()) try { model.destroy(); } catch {}
    models.clear();
    // Destroy the shared GPUDevice: while it lives, its pending 'lost' promise keeps Dawn polling
    // and the thread alive. Then let Dawn run the callbacks it has queued before the thread ends.
    try { await req('gpu.js').WebGPUContext.destroy(); } catch {}
    await new Promise((r) => setTimeout(r, 50));
    parentPort.close();
    port.close();
    return;
  }
  try {
    let value;
    if (!GPU) {
      const { create, globals } = req('webgpu');
      Object.assign(globalThis, globals);
      Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });
      GPU = req('gpu.js').GPU;
      GPU.available = await GPU.isWebGPUAvailable();
    }
    if (!GPU.available) throw Object.assign(new Error('no adapter'), { code: 'K1022' });
    const model = models.get(m.id);
    if (m.op === 'probe') value = true;
    else if (m.op === 'load') {
      const at = m.arg.lastIndexOf('export { createModel };');
      const createModel = new Function("'use strict';\\n" + m.arg.slice(0, at) + '\\nreturn createModel;')();
      value = nextId++;
      models.set(value, createModel({ GPU, mode: 'webgpu', makeError: (code, message) => Object.assign(new Error(message), { code }) }));
    } else if (m.op === 'setWeights') await model.setWeights(m.arg);
    else if (m.op === 'run') value = await model.run(m.arg);
    else if (m.op === 'kinds') value = model.kernelKinds();
    else if (m.op === 'destroy') { model?.destroy(); models.delete(m.id); }
    answer({ ok: true, value });
  } catch (e) {
    answer({ ok: false, code: e.code, message: e.message });
  }
});
`;
