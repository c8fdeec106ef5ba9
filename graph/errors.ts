import { readFileSync } from 'node:fs';

/** A position in a source file: 1-based line and column, as editors show them. */
export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/**
 * The catalogue of user-facing error codes. Codes are stable: tests pin them, and users can
 * search for them. Broken compiler invariants are not here: they are `InternalError`s.
 */
export const ERROR_CODES = {
  K1001: 'shapes do not broadcast',
  K1002: 'wrong rank',
  K1003: 'matmul inner dims differ',
  K1004: 'reshape changes the element count',
  K1005: 'axis out of range',
  K1006: 'dtype mismatch',
  K1007: 'bad attribute',
  K1008: 'dims differ',
  K1009: 'slice out of bounds',
  K1010: 'invalid model config',
  K1011: 'unsupported syntax in a custom activation',
  K1012: 'unknown preset',
  K1013: 'model file cannot be loaded',
  K1014: 'malformed graph JSON',
  K1015: 'invalid graph',
  K1016: 'bad command-line value',
  K1017: 'missing or malformed runtime value',
  K1018: 'the graph does not have what a pass needs',
  K1019: 'no kernel for this op on this backend',
  K1020: 'the context window is full',
  K1021: 'malformed checkpoint',
  K1022: 'the requested device is not available',
  K1023: 'unusable training data',
  K1024: 'training stopped',
  K1025: 'a checkpoint that does not resume this run',
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

/** A mistake of the user's: printed as one short message, exit code 1, never a stack. */
export class KilnError extends Error {
  readonly code: ErrorCode;
  readonly loc: SourceLoc | undefined;
  constructor(code: ErrorCode, message: string, loc?: SourceLoc) {
    super(message);
    this.name = 'KilnError';
    this.code = code;
    this.loc = loc;
  }

  /** `file(line,col): error K1003: message`, as TypeScript and MSBuild print it. */
  get headline(): string {
    const where = this.loc ? `${this.loc.file}(${this.loc.line},${this.loc.col}): ` : '';
    return `${where}error ${this.code}: ${this.message}`;
  }

  /** The headline, then the offending source line with a caret under the column. */
  format(): string {
    const excerpt = this.loc ? sourceExcerpt(this.loc) : undefined;
    return excerpt ? `${this.headline}\n${excerpt}` : this.headline;
  }
}

/** A broken invariant inside kiln: labelled as ours, with the pass or node it concerns. */
export class InternalError extends Error {
  constructor(message: string) {
    super(`internal error: ${message}`);
    this.name = 'InternalError';
  }
}

/** Thrown by shape rules; the builder attaches the op and the user's source position. */
export class ShapeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function sourceExcerpt(loc: SourceLoc): string | undefined {
  let text: string;
  try {
    text = readFileSync(loc.file, 'utf8');
  } catch {
    return undefined;
  }
  const line = text.split(/\r?\n/)[loc.line - 1];
  if (line === undefined) return undefined;
  const gutter = `${loc.line} | `;
  return `${gutter}${line}\n${' '.repeat(gutter.length + Math.max(0, loc.col - 1))}^`;
}
