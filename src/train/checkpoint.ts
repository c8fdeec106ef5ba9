/**
 * Training checkpoints: everything a run needs to continue exactly where it stopped. One folder
 * per save, `checkpoints/step-NNNNNN/`, holding
 *   - `state.bin`: every param, then the optimizer's first and second moments, as float32 bits
 *     (so the resumed weights are the very bits the run had, whatever the model's file format);
 *   - `trainer.json`: the step, the run's settings that must match to resume, the data cursor
 *     and RNG state, the byte layout and a checksum of `state.bin`.
 * Both files of a save are written whole or not at all (formats/file.ts); a save then removes
 * the older ones but the previous one. Resuming takes the newest folder whose files check out,
 * so a run killed mid-save (SIGKILL included) resumes from the save before.
 */
import { existsSync, readdirSync, readFileSync, rmSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../../graph/errors.js';
import { writeFilesAtomic } from '../formats/file.js';

export const CHECKPOINT_FORMAT = 'kiln-train-checkpoint/1';
const KEEP = 2;

export interface TensorEntry {
  readonly name: string;
  readonly shape: readonly number[];
}

export interface CheckpointState {
  /** Steps completed: the resumed run starts at this step. */
  readonly step: number;
  /** Settings that must equal the resuming run's (model config, batch, seq, schedule, …). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Anything else the trainer restores (data cursor, RNG, tokens seen, metrics lines). */
  readonly progress: Readonly<Record<string, unknown>>;
}

export interface SavedTensors {
  readonly params: Readonly<Record<string, Float32Array>>;
  readonly m: Readonly<Record<string, Float32Array>>;
  readonly v: Readonly<Record<string, Float32Array>>;
}

interface TrainerJson extends CheckpointState {
  readonly format: string;
  readonly tensors: readonly TensorEntry[];
  readonly bytes: number;
  readonly checksum: string;
}

/** FNV-1a over the bytes, 32-bit, as hex: enough to tell a torn or foreign state.bin. */
function checksum(chunks: readonly Uint8Array[]): string {
  let h = 0x811c9dc5;
  for (const c of chunks) for (let i = 0; i < c.length; i++) h = Math.imul(h ^ c[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function stepFolder(root: string, step: number): string {
  return join(root, 'checkpoints', `step-${String(step).padStart(6, '0')}`);
}

/** Save a checkpoint under `root`/checkpoints; returns its folder. */
export function saveCheckpoint(root: string, tensors: readonly TensorEntry[], saved: SavedTensors, state: CheckpointState): string {
  const dir = stepFolder(root, state.step);
  mkdirSync(dir, { recursive: true });
  const chunks: Uint8Array[] = [];
  for (const part of [saved.params, saved.m, saved.v]) for (const t of tensors) chunks.push(bytesOf(part[t.name]!));
  const bytes = chunks.reduce((a, c) => a + c.length, 0);
  const json: TrainerJson = { format: CHECKPOINT_FORMAT, ...state, tensors, bytes, checksum: checksum(chunks) };
  writeFilesAtomic([
    { path: join(dir, 'state.bin'), write: (put) => chunks.forEach(put) },
    { path: join(dir, 'trainer.json'), write: (put) => put(new TextEncoder().encode(`${JSON.stringify(json, null, 1)}\n`)) },
  ]);
  // keep the newest KEEP saves
  const all = listSteps(root);
  for (const s of all.slice(0, Math.max(0, all.length - KEEP))) rmSync(stepFolder(root, s), { recursive: true, force: true });
  return dir;
}

function listSteps(root: string): number[] {
  const dir = join(root, 'checkpoints');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => /^step-(\d+)$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

export interface LoadedCheckpoint extends CheckpointState {
  readonly dir: string;
  readonly tensors: SavedTensors;
}

/** Read one checkpoint folder; undefined (with `why`) when it is incomplete or torn. */
function readFolder(dir: string, why: string[]): LoadedCheckpoint | undefined {
  const jsonPath = join(dir, 'trainer.json');
  const binPath = join(dir, 'state.bin');
  if (!existsSync(jsonPath) || !existsSync(binPath)) {
    why.push(`${dir}: incomplete (no trainer.json or state.bin)`);
    return undefined;
  }
  let j: TrainerJson;
  try {
    j = JSON.parse(readFileSync(jsonPath, 'utf8')) as TrainerJson;
  } catch (e) {
    why.push(`${jsonPath}: not JSON (${(e as Error).message})`);
    return undefined;
  }
  if (j.format !== CHECKPOINT_FORMAT) {
    why.push(`${jsonPath}: not a kiln training checkpoint (format ${JSON.stringify(j.format)}, expected '${CHECKPOINT_FORMAT}')`);
    return undefined;
  }
  if (statSync(binPath).size !== j.bytes) {
    why.push(`${binPath}: ${statSync(binPath).size} bytes, trainer.json says ${j.bytes}`);
    return undefined;
  }
  const buf = readFileSync(binPath);
  const all = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (checksum([all]) !== j.checksum) {
    why.push(`${binPath}: checksum differs from trainer.json's (torn or replaced)`);
    return undefined;
  }
  let at = 0;
  const part = (): Record<string, Float32Array> => {
    const out: Record<string, Float32Array> = {};
    for (const t of j.tensors) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      out[t.name] = new Float32Array(all.slice(at, at + 4 * n).buffer);
      at += 4 * n;
    }
    return out;
  };
  const params = part();
  const m = part();
  const v = part();
  return { dir, step: j.step, settings: j.settings, progress: j.progress, tensors: { params, m, v } };
}

/**
 * The newest usable checkpoint of a run folder (or one checkpoint folder itself). A folder with
 * none is a K1025 naming what it found.
 */
export function loadLatestCheckpoint(path: string): LoadedCheckpoint {
  if (!existsSync(path)) throw new KilnError('K1025', `--resume ${path}: no such folder`);
  const why: string[] = [];
  if (existsSync(join(path, 'trainer.json'))) {
    const one = readFolder(path, why);
    if (one) return one;
    throw new KilnError('K1025', `--resume ${path}: ${why.join('; ')}`);
  }
  for (const s of listSteps(path).reverse()) {
    const c = readFolder(stepFolder(path, s), why);
    if (c) return c;
  }
  throw new KilnError('K1025', `--resume ${path}: no usable checkpoint${why.length ? ` (${why.join('; ')})` : ` (no ${join(path, 'checkpoints', 'step-N')} folders: was it written by kiln train --save-every?)`}`);
}

/** The settings a checkpoint was made with that differ from this run's, as "key: saved → now". */
export function settingsDiffer(saved: Readonly<Record<string, unknown>>, now: Readonly<Record<string, unknown>>): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
  const out: string[] = [];
  for (const k of keys) {
    const a = JSON.stringify(saved[k]);
    const b = JSON.stringify(now[k]);
    if (a !== b) out.push(`${k}: ${a ?? 'absent'} → ${b ?? 'absent'}`);
  }
  return out;
}
