/**
 * The manifest of an emitted module: what host.ts needs to run it, from the emitter's output,
 * as plain JSON (so that a module compiled here can be loaded in a browser or anywhere else).
 */
import type { Graph } from '../../graph/graph.js';
import type { Emitted } from './emit.js';
import { encodeNumber, MANIFEST_FORMAT, type WasmManifest, type WasmNode } from './host.js';
import { SCRATCH_ID } from './layout.js';

export function wasmManifest(g: Graph, e: Emitted, opts: { readonly threads: number; readonly specialize?: Readonly<Record<string, number>>; readonly jobArea?: number }): WasmManifest {
  const byId = new Map(e.nodes.map((n) => [n.id, n]));
  const rankOf = (id: number | undefined) => (id === undefined ? 0 : byId.get(id)!.type.shape.length);
  const nodes = e.nodes.map((n): WasmNode => {
    const ax = n.attrs['axis'];
    return {
      id: n.id,
      op: n.op === 'fused' ? `fused:${String(n.attrs['pattern'])}` : n.op,
      dtype: n.type.dtype,
      shape: n.type.shape,
      home: e.layout.homes.get(n.id)!,
      ...(n.op === 'input' || n.op === 'param' || n.op === 'state' ? { name: String(n.attrs['name']) } : {}),
      ...(n.scope ? { scope: n.scope } : {}),
      ...(typeof ax === 'number' ? { axis: ax < 0 ? ax + rankOf(n.inputs[0]) : ax } : {}),
    };
  });
  const inPlace = [...e.layout.inPlace].map((id) => {
    const n = byId.get(id)!;
    const rank = rankOf(n.inputs[0]);
    const raw = n.attrs['axis'] as number;
    const axis = raw < 0 ? raw + rank : raw;
    return { id, state: n.inputs[0]!, axis, start: n.attrs['start'] as WasmManifest['inPlace'][number]['start'], len: byId.get(n.inputs[1]!)!.type.shape[axis]! };
  });
  return {
    format: MANIFEST_FORMAT,
    threads: opts.threads,
    ...(opts.jobArea ? { jobArea: opts.jobArea } : {}),
    symbols: e.symbols,
    specialize: { ...opts.specialize },
    bounds: { ...e.plan?.bounds },
    staticBytes: e.staticBytes,
    arenaAt: e.layout.arenaAt,
    nodes,
    // rope tables have ids below the scratch's (rope-table.ts ROPE_ID0)
    slots: e.layout.slots.map((id) => (id === SCRATCH_ID ? 'scratch' : id < SCRATCH_ID ? 'rope' : id)),
    scratch: e.layout.scratch?.elems ?? [],
    params: [...e.layout.params].map(([id, p]) => ({ id, ...(p.raw !== undefined ? { raw: p.raw } : {}), ...(p.packed ? { packed: p.packed } : {}), ...(p.packedNN ? { packedNN: p.packedNN } : {}) })),
    inPlace,
    ropeTables: [...e.layout.ropeTables.values()],
    consts: e.consts.map((c) => ({ at: c.at, dtype: c.dtype, count: c.count, values: c.values.map(encodeNumber) })),
    outputs: g.outputs.map((o) => ({ name: o.name, value: o.value })),
  };
}
