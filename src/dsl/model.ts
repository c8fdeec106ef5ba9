import type { Graph } from '../../graph/graph.js';

/**
 * What a model file exports (as its default export, or as `model`): a named, lazily built graph.
 * Building is deferred so that the CLI can type-check the file first and report a shape mistake
 * as a clean `file(line,col)` error instead of a crash at import time.
 */
export interface Model {
  readonly kind: 'kiln.model';
  readonly name: string;
  build(): Graph;
}

export function isModel(x: unknown): x is Model {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'kiln.model' && typeof (x as Model).build === 'function';
}

export function defineModel(name: string, build: () => Graph): Model {
  return { kind: 'kiln.model', name, build };
}
