/**
 * The host's side of the state (KV caches) a gpu executable keeps on the device between runs.
 *
 * The generated module keeps each `state:<name>` output on the device and reads it as state
 * `<name>` in the next run when told it is current (`resident`). This side decides that: a state
 * array is sent (uploaded) only when it is not the array this executable last synchronised, or
 * when any gpu executable has written into it since (a version per array, bumped on every write).
 * The caller's array always holds the state's value after a run, as the Executable contract says:
 * when the output is an update_slice of the state (the KV cache's form), only the updated rows come
 * back and are written into it; any other state output comes back whole.
 *
 * So a state array must change only through gpu runs: to reset a cache or put other values in it,
 * hand in a new array (what Session does: it keeps the arrays the runs return, and its rollback
 * only moves the position). An array shared by prefill and decode executables goes up once each
 * time the other one has written into it. After a failed run, every state goes up again.
 */
import { type Dim, evalDim } from '../../graph/dim.js';
import type { HostArray, RunArgs } from '../backend.js';
import type { StateOut } from './emit.js';

/** State traffic of one executable: arrays sent whole, outputs read back whole, outputs read back as their updated rows. */
export interface StateTraffic {
  uploads: number;
  downloads: number;
  rowReads: number;
}

/** The run arguments of the generated module (see emit.ts). */
export interface ModelArgs {
  readonly inputs: RunArgs['inputs'];
  readonly symbols: RunArgs['symbols'];
  readonly state: Record<string, HostArray>;
  /** States whose device copy is current: not sent. */
  readonly resident: string[];
  /** State outputs wanted as their updated rows only. */
  readonly rows: string[];
}

/** Bumped whenever a gpu run writes a state array (shared by every gpu executable in the process). */
const VERSION = new WeakMap<HostArray, number>();
const versionOf = (a: HostArray) => VERSION.get(a) ?? 0;

type Rows = NonNullable<StateOut['rows']>;

function rowsGeometry(r: Rows, env: Readonly<Record<string, number>>) {
  const shape = r.base.map((d: Dim) => evalDim(d, env));
  const start = evalDim(r.start, env);
  const len = evalDim(r.upd[r.axis]!, env);
  return { shape, start, len, ok: start >= 0 && len >= 0 && start + len <= shape[r.axis]! };
}

/** Write an update's rows (row-major in the update's shape) into the state array at their place. */
function scatter(arr: HostArray, rows: HostArray, r: Rows, env: Readonly<Record<string, number>>): void {
  const { shape, start, len } = rowsGeometry(r, env);
  const inner = shape.slice(r.axis + 1).reduce((a, d) => a * d, 1);
  const outer = shape.slice(0, r.axis).reduce((a, d) => a * d, 1);
  const block = len * inner;
  for (let o = 0; o < outer; o++) (arr as Float32Array).set((rows as Float32Array).subarray(o * block, (o + 1) * block), (o * shape[r.axis]! + start) * inner);
}

export class StateSync {
  private readonly resident = new Map<string, { arr: HostArray; ver: number }>();
  readonly traffic: StateTraffic = { uploads: 0, downloads: 0, rowReads: 0 };

  constructor(
    private readonly states: readonly string[],
    private readonly outs: readonly StateOut[],
    private readonly spec: Readonly<Record<string, number>>,
  ) {}

  /** What the module gets for `args`: only the state arrays the device does not hold. */
  prepare(args: RunArgs): ModelArgs {
    const env = { ...args.symbols, ...this.spec };
    const state: Record<string, HostArray> = {};
    const resident: string[] = [];
    for (const name of this.states) {
      const arr = args.state?.[name];
      const r = this.resident.get(name);
      if (arr && r && r.arr === arr && r.ver === versionOf(arr)) resident.push(name);
      else if (arr) {
        state[name] = arr;
        this.traffic.uploads++;
      }
    }
    const rows = this.outs.filter((o) => o.rows && args.state?.[o.name] && rowsGeometry(o.rows, env).ok).map((o) => o.name);
    return { inputs: args.inputs, symbols: args.symbols, state, resident, rows };
  }

  /** After a run: the state outputs written into the caller's arrays, which they become. */
  finish(args: RunArgs, sent: ModelArgs, out: Record<string, HostArray>): Record<string, HostArray> {
    const env = { ...args.symbols, ...this.spec };
    const written = new Set<string>();
    for (const o of this.outs) {
      const key = `state:${o.name}`;
      const arr = args.state?.[o.name];
      const val = out[key];
      if (!arr || !val) continue;
      if (sent.rows.includes(o.name)) {
        scatter(arr, val, o.rows!, env);
        this.traffic.rowReads++;
      } else {
        if (val !== arr) (arr as Float32Array).set(val as Float32Array);
        this.traffic.downloads++;
      }
      out[key] = arr;
      const ver = versionOf(arr) + 1;
      VERSION.set(arr, ver);
      written.add(o.name);
      if (o.keep) this.resident.set(o.name, { arr, ver });
      else this.resident.delete(o.name);
    }
    // states the run only read: the device copy is the array as it was sent
    for (const name of this.states) {
      const arr = args.state?.[name];
      if (arr && !written.has(name)) this.resident.set(name, { arr, ver: versionOf(arr) });
    }
    return out;
  }

  /** After a failed run the device copies are unknown: send everything next time. */
  forget(): void {
    this.resident.clear();
  }
}
