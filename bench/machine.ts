/**
 * What the bench ran on, and whether something else was using the CPU while it ran.
 *
 * Load average alone cannot tell: it counts the bench's own threads. So each round is also
 * accounted from /proc/stat: CPU time spent by the whole machine minus the time this process
 * spent (process.cpuUsage covers all its threads — kiln's workers and llama.cpp's too) is the
 * time other processes took; the hypervisor's `steal` column is time the VM did not get at all.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  /** `git rev-parse --short HEAD`, with `+dirty` when the work tree has changes. */
  readonly kilnCommit: string;
}

export function describeMachine(): Machine {
  return {
    cpu: cpuModel(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    kilnCommit: kilnCommit(),
  };
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // not Linux: os.cpus() below
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function kilnCommit(): string {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain') ? '+dirty' : '');
  } catch {
    return 'unknown';
  }
}

export const loadAverage = (): [number, number, number] => os.loadavg().map((x) => Math.round(x * 100) / 100) as [number, number, number];

/** What other processes did during an interval. */
export interface CpuShare {
  readonly seconds: number;
  /** Average number of cores other processes kept busy (null where /proc/stat is missing). */
  readonly othersCores: number | null;
  /** Fraction of the machine's CPU time stolen by the hypervisor. */
  readonly steal: number | null;
  readonly load1: number;
  /** Average number of cores this process kept busy, all its threads together (the contestant's, and any other work in the process: GC, compiler, idle peers' threads). */
  readonly selfCores: number;
  /** Another process was using the CPU: othersCores > cores/4 or steal > 10% (without /proc/stat: load1 > cores/2). */
  readonly busy: boolean;
}

interface Ticks {
  readonly busy: number;
  readonly steal: number;
}

/** USER_HZ: the unit of /proc/stat (100 on every Linux the bench is meant for). */
const HZ = 100;

function readTicks(): Ticks | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
    return { busy: user + nice + system + irq + softirq, steal };
  } catch {
    return null;
  }
}

/** Start accounting; call the result to close the interval. */
export function watchCpu(cores: number): () => CpuShare {
  const t0 = performance.now();
  const ticks0 = readTicks();
  const self0 = process.cpuUsage();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const ticks1 = readTicks();
    const self = process.cpuUsage(self0);
    const load1 = loadAverage()[0];
    const selfSeconds = (self.user + self.system) / 1e6;
    const r2 = (x: number) => Math.round(x * 100) / 100;
    const selfCores = seconds > 0 ? r2(selfSeconds / seconds) : 0;
    if (!ticks0 || !ticks1 || seconds <= 0) return { seconds, othersCores: null, steal: null, load1, selfCores, busy: load1 > cores / 2 };
    const allBusy = (ticks1.busy - ticks0.busy) / HZ;
    const othersCores = Math.max(0, allBusy - selfSeconds) / seconds;
    const steal = (ticks1.steal - ticks0.steal) / HZ / (seconds * cores);
    return { seconds: r2(seconds), othersCores: r2(othersCores), steal: r2(steal), load1, selfCores, busy: othersCores > cores / 4 || steal > 0.1 };
  };
}
