/** Number formatting shared by the commands: exact counts with separators, sizes for humans. */

/** `8030261248` → `8,030,261,248`. */
export function commas(n: number): string {
  // By hand: the first toLocaleString call loads ICU data, tens of milliseconds at startup.
  // BigInt keeps every digit where String() would switch to 1e+21 notation
  const digits = BigInt(Math.round(Math.abs(n))).toString();
  return (n < 0 ? '-' : '') + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

const BYTE_UNITS = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1073741824` → `1.00 GiB`; small sizes stay in bytes. */
export function humanBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < BYTE_UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(2)} ${BYTE_UNITS[u]}`;
}

const FLOP_UNITS = ['FLOP', 'kFLOP', 'MFLOP', 'GFLOP', 'TFLOP', 'PFLOP', 'EFLOP', 'ZFLOP', 'YFLOP'];

/** `16060522496` → `16.06 GFLOP` (decimal prefixes, as FLOP rates are quoted). */
export function humanFlops(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1000 && u < FLOP_UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${n} FLOP` : `${v.toFixed(2)} ${FLOP_UNITS[u]}`;
}

/** Rows of [key, value] as aligned `key  value` lines, indented. */
export function table(rows: readonly (readonly [string, string])[], indent = '  '): string {
  const w = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(w)}  ${v}`.trimEnd()).join('\n');
}

/** `1 token`, `3 tokens`: a count with its noun, plural when it is not one. */
export const plural = (n: number, noun: string, nouns = `${noun}s`): string => `${n} ${n === 1 ? noun : nouns}`;
