/**
 * The gpu backend: a Program becomes gpu.js kernels (emit.ts) on a device chosen by `device`
 * (device.ts). `executable.source` is the standalone module; `executable.device` names the device
 * in use. On headless-gl the module runs in-process; on WebGPU it runs in a worker (webgpu-host.ts),
 * since its kernels are asynchronous and run() is not. Fused rope_qk and swiglu nodes run as one
 * kernel each (kernels/fused-*.ts).
 *
 * Weights and the KV caches live on the device. A state array goes up only when this executable
 * did not synchronise it last or a gpu run has written it since; after a run only the non-state
 * outputs (logits) and the rows each update_slice wrote into a state come back, and those rows are
 * written into the caller's array, which is the returned `state:<name>`. So the caller's arrays
 * always hold the state, and must change only through gpu runs: to reset a cache, hand in a new
 * array (state.ts has the contract; `stateTraffic(exe)` counts what moved).
 *
 * Precision: float32 on the device. GL and WebGPU round after each multiply and add, like the js
 * backend's float32 loops, but the order of some sums and the exp/sqrt/pow implementations
 * differ, so logits agree with the js backend within a relative 1e-4 (absolute 1e-4 near zero),
 * not bit for bit. i32 values are carried as exact floats (|v| < 2^24).
 */
import { KilnError, type ErrorCode } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import type { Backend, CompileOptions, DebugRun, Executable, HostArray, RunArgs } from '../backend.js';
import { DEVICES, type DeviceChoice, type DeviceName, KERNEL_CLASS, deviceError, headlessGlProblem, loadGpuJs, webgpuProblem } from './device.js';
import { BACKEND, EXPORT_LINE, emitModule } from './emit.js';
import { FUSED_KERNELS, INLINED_PATTERNS } from './kernels/index.js';
import { type ModelArgs, StateSync, type StateTraffic } from './state.js';
import { WebGpuHost, WebGpuModel } from './webgpu-host.js';

export { DEVICES, type DeviceChoice } from './device.js';
export type { StateTraffic } from './state.js';

const TRAFFIC = new WeakMap<Executable, StateTraffic>();
/** How much state a gpu executable has moved between host and device so far (undefined for other executables). */
export function stateTraffic(exe: Executable): Readonly<StateTraffic> | undefined {
  return TRAFFIC.get(exe);
}

/** The gpu backend's tolerance against the js backend (and the interpreter): |a − b| ≤ ABS + REL·|b|. */
export const GPU_TOLERANCE = { rel: 1e-4, abs: 1e-4 } as const;

interface GeneratedModel {
  setWeights(params: Readonly<Record<string, HostArray>>): unknown;
  run(args: ModelArgs, dbg?: Map<number, HostArray>): Record<string, HostArray>;
  kernelKinds(): string[];
  destroy(): void;
}

export function loadModule(source: string): (o: object) => GeneratedModel {
  const at = source.lastIndexOf(EXPORT_LINE);
  return new Function(`'use strict';\n${source.slice(0, at)}\nreturn createModel;`)() as (o: object) => GeneratedModel;
}

const makeError = (code: string, message: string) => new KilnError(code as ErrorCode, message);
const rethrow = (e: unknown): never => {
  const code = (e as { code?: string }).code;
  if (code && !(e instanceof KilnError) && /^K1\d{3}$/.test(code)) throw new KilnError(code as ErrorCode, (e as Error).message);
  throw e;
};

/** A device that runs here, and a note when `auto` passed one over (which, and why). */
export interface PickedDevice {
  readonly device: DeviceName;
  readonly note?: string;
}

/** Which device `choice` means here; a device that cannot run is a one-line K1022 that names what would. */
export async function pickDevice(choice: DeviceChoice): Promise<PickedDevice> {
  if (!DEVICES.includes(choice)) throw new KilnError('K1016', `gpu backend: unknown device '${choice}'; devices are ${DEVICES.join(', ')}`);
  if (choice === 'webgl2') throw deviceError('webgl2', 'WebGL2 exists only in browsers; load the compiled module there (examples/web/), or use headlessgl or webgpu in Node');
  if (choice === 'headlessgl') {
    const why = headlessGlProblem();
    if (why) throw deviceError('headlessgl', `${why}; ${otherDevices('webgpu', webgpuProblem)}`);
    return { device: 'headlessgl' };
  }
  if (choice === 'webgpu') {
    const why = webgpuProblem();
    if (why) throw deviceError('webgpu', `${why}; ${otherDevices('headlessgl', headlessGlProblem)}`);
    return { device: 'webgpu' };
  }
  const gl = headlessGlProblem();
  if (!gl) return { device: 'headlessgl' };
  const wg = webgpuProblem();
  if (!wg) return { device: 'webgpu', note: `--device auto: headlessgl skipped (${gl})` };
  throw deviceError('auto', `neither Node device works here. headlessgl: ${gl}. webgpu: ${wg}. The js and wasm backends need no device`);
}

/** The other Node device, said as a choice when it works here. */
function otherDevices(other: DeviceName, problem: () => string | undefined): string {
  const why = problem();
  return why === undefined
    ? `--device ${other} works here`
    : `no other gpu device works here either (${other}: ${why}); the js and wasm backends need none`;
}

function checkKinds(device: DeviceName, kinds: string[]): void {
  const bad = kinds.filter((k) => k !== KERNEL_CLASS[device]);
  if (bad.length) throw deviceError(device, `gpu.js fell back to ${bad.join(', ')} instead of ${KERNEL_CLASS[device]} (kiln never falls back silently)`);
}

export function gpuBackend(opts: { device?: DeviceChoice } = {}): Backend {
  const choice = opts.device ?? 'auto';
  return {
    name: BACKEND,
    caps: { fusedPatterns: [...Object.keys(FUSED_KERNELS), ...INLINED_PATTERNS], simd: false, threads: 1, maxTextureSize: 8192 },
    async compile(program: Graph, copts: CompileOptions = {}): Promise<Executable> {
      const { source, stateOuts } = emitModule(program, copts);
      const { device, note } = await pickDevice(choice);
      const states = program.nodes.filter((n) => n.op === 'state').map((n) => String(n.attrs['name']));
      const sync = new StateSync(states, stateOuts, copts.specialize ?? {});
      let call: (args: ModelArgs, dbg?: Map<number, HostArray>) => Record<string, HostArray>;
      let setWeights: (p: Readonly<Record<string, HostArray>>) => void;
      let dispose: () => void;
      if (device === 'headlessgl') {
        const model = loadModule(source)({ GPU: loadGpuJs().GPU, mode: 'headlessgl', makeError });
        let checked = false;
        const verify = () => {
          if (checked) return;
          checkKinds(device, model.kernelKinds());
          checked = true;
        };
        setWeights = (p) => {
          model.setWeights(p);
          verify();
        };
        call = (args, dbg) => {
          const out = model.run(args, dbg);
          checked = false;
          verify();
          return out;
        };
        dispose = () => model.destroy();
      } else {
        let host: WebGpuModel;
        try {
          host = new WebGpuModel(WebGpuHost.shared(), source);
        } catch (e) {
          return rethrow(e);
        }
        const verify = () => checkKinds(device, host.call('kinds') as string[]);
        setWeights = (p) => {
          try {
            host.call('setWeights', p);
          } catch (e) {
            rethrow(e);
          }
          verify();
        };
        call = (args, dbg) => {
          if (dbg) throw new KilnError('K1017', 'gpu backend: runDebug is not available on webgpu in Node; use headlessgl');
          try {
            return host.call('run', args) as Record<string, HostArray>;
          } catch (e) {
            return rethrow(e);
          }
        };
        dispose = () => host.dispose();
      }
      const run = (args: RunArgs, dbg?: Map<number, HostArray>): Record<string, HostArray> => {
        const sent = sync.prepare(args);
        let out: Record<string, HostArray>;
        try {
          out = call(sent, dbg);
        } catch (e) {
          sync.forget();
          throw e;
        }
        return sync.finish(args, sent, out);
      };
      const exe: Executable & { device: string } = { backend: BACKEND, device, ...(note ? { deviceNote: note } : {}), source, setWeights, run: (a) => run(a), dispose };
      const full: Executable = !copts.debugValues
        ? exe
        : {
            ...exe,
            runDebug(args: RunArgs): DebugRun {
              const values = new Map<number, HostArray>();
              const outputs = run(args, values);
              return { outputs, values };
            },
          };
      TRAFFIC.set(full, sync.traffic);
      return full;
    },
  };
}
