import { dimToString, type Dim } from '../dim.js';
import type { Graph, Node } from '../graph.js';
import { type FusedBody, OPS } from '../ops.js';
import { typeToString } from '../types.js';

/**
 * Folding repeated blocks in dumps. A scope `<family>.<int>` (`layers.3`, `model.blocks.7.attn`)
 * makes its nodes members of block 3 of the family `layers`. A block is folded when it computes
 * the same function of its external operands as the family's first block: the same ops, attributes,
 * types and relative scopes in the same order, the same wiring inside the block, and the same
 * pattern of external operands (two uses of one outside value in block 0 must be two uses of one
 * outside value in block N). Which outside values they are does not matter: block 0 reads the
 * embedding where block 1 reads block 0's output, and per-block weights differ by design. Names
 * in string attributes are compared with the block's own index replaced (`layers.3.wq` ≈
 * `layers.0.wq`).
 */

export interface BlockOf {
  readonly family: string;
  readonly index: number;
}

/** The outermost `<name>.<int>` in a scope; undefined for scopes outside any repeated block. */
export function blockOf(scope: string): BlockOf | undefined {
  const segs = scope.split('.');
  for (let i = 1; i < segs.length; i++) {
    if (/^(0|[1-9]\d*)$/.test(segs[i]!) && /^[A-Za-z_]/.test(segs[i - 1]!))
      return { family: segs.slice(0, i).join('.'), index: Number(segs[i]) };
  }
  return undefined;
}

/** A run of consecutive blocks identical to the family's first block, shown as one line. */
export interface FoldRun {
  readonly family: string;
  readonly reference: number;
  readonly first: number;
  readonly last: number;
  /** Blocks in the run (`last - first + 1`). */
  readonly count: number;
  readonly nodesEach: number;
  /** Ids of the nodes hidden by this run, in graph order. */
  readonly nodes: readonly number[];
}

export interface FoldPlan {
  readonly runs: readonly FoldRun[];
  /** Node id → the run that hides it. */
  readonly hidden: ReadonlyMap<number, FoldRun>;
}

/** `… layers.1–31: 31 more layers identical to layers.0 (812 nodes each)`. */
export function foldLine(r: FoldRun): string {
  const range = r.count === 1 ? `${r.family}.${r.first}` : `${r.family}.${r.first}–${r.last}`;
  const what = r.count === 1 ? `1 more block` : `${r.count} more blocks`;
  const noun = r.family.split('.').at(-1)!;
  // Say "layers" when the family is called that, "blocks" otherwise.
  const text = /s$/.test(noun) ? what.replace('block', noun.slice(0, -1)) : what;
  return `… ${range}: ${text} identical to ${r.family}.${r.reference} (${r.nodesEach} nodes${r.count === 1 ? '' : ' each'})`;
}

/** `layers.3.wq` → `layers.#.wq` for block 3: the block's index as a whole segment only (`w3` stays). */
function loosen(s: string, index: number): string {
  return s.replace(new RegExp(`(?<![A-Za-z0-9])${index}(?![A-Za-z0-9])`, 'g'), '#');
}

function canonicalAttrs(n: Node, index: number): string {
  const def = OPS[n.op];
  const out: string[] = [];
  for (const k of Object.keys(n.attrs).sort()) {
    const v = n.attrs[k];
    const kind = def.attrs[k];
    let s: string;
    if (kind === 'dim') s = dimToString(v as Dim);
    else if (kind === 'dims') s = (v as Dim[]).map(dimToString).join(',');
    else if (kind === 'graph') s = `{${bodySignature(v as FusedBody, index)}}`;
    else if (typeof v === 'string') s = JSON.stringify(loosen(v, index));
    else s = JSON.stringify(v, (_, x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x));
    out.push(`${k}=${s}`);
  }
  return out.join(';');
}

/** A fused op's body: its nodes and wiring, without positions (its ids are its own). */
function bodySignature(body: FusedBody, index: number): string {
  const nodes = body.nodes.map((n) => `%${n.id}=${n.op}(${n.inputs.join(',')})[${canonicalAttrs(n, index)}]:${typeToString(n.type)}@${loosen(n.scope, index)}`);
  return `${nodes.join(';')}->${body.outputs.map((o) => `${o.name}=%${o.value}`).join(',')}`;
}

/** One string that is equal for two blocks exactly when they are structurally identical. */
function signature(nodes: readonly Node[], block: BlockOf, typeOf: (id: number) => string): string {
  const local = new Map(nodes.map((n, k) => [n.id, k]));
  const external = new Map<number, number>();
  const lines: string[] = [];
  const prefixLen = `${block.family}.${block.index}`.length;
  for (const n of nodes) {
    const operands = n.inputs.map((i) => {
      const k = local.get(i);
      if (k !== undefined) return `L${k}`;
      if (!external.has(i)) external.set(i, external.size);
      return `E${external.get(i)}:${typeOf(i)}`;
    });
    lines.push([n.op, n.scope.slice(prefixLen), typeToString(n.type), canonicalAttrs(n, block.index), operands.join(',')].join('|'));
  }
  return lines.join('\n');
}

/** Which blocks to fold. Families with one block, or with no block like the first, fold nothing. */
export function planFold(g: Graph): FoldPlan {
  const types = new Map(g.nodes.map((n) => [n.id, typeToString(n.type)]));
  const typeOf = (id: number) => types.get(id) ?? '?';
  const families = new Map<string, Map<number, Node[]>>();
  for (const n of g.nodes) {
    const b = blockOf(n.scope);
    if (!b) continue;
    let fam = families.get(b.family);
    if (!fam) families.set(b.family, (fam = new Map()));
    let list = fam.get(b.index);
    if (!list) fam.set(b.index, (list = []));
    list.push(n);
  }
  const runs: FoldRun[] = [];
  const hidden = new Map<number, FoldRun>();
  for (const [family, blocks] of families) {
    const indices = [...blocks.keys()].sort((a, b) => a - b);
    const reference = indices[0]!;
    const refNodes = blocks.get(reference)!;
    const refSig = signature(refNodes, { family, index: reference }, typeOf);
    let current: number[] = [];
    const flush = () => {
      if (current.length === 0) return;
      const nodes = current.flatMap((i) => blocks.get(i)!.map((n) => n.id));
      const run: FoldRun = {
        family,
        reference,
        first: current[0]!,
        last: current.at(-1)!,
        count: current.length,
        nodesEach: refNodes.length,
        nodes,
      };
      runs.push(run);
      for (const id of nodes) hidden.set(id, run);
      current = [];
    };
    for (const index of indices.slice(1)) {
      const same = signature(blocks.get(index)!, { family, index }, typeOf) === refSig;
      const consecutive = current.length === 0 || current.at(-1) === index - 1;
      if (!same || !consecutive) flush();
      if (same) current.push(index);
    }
    flush();
  }
  return { runs, hidden };
}
