import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { typeToString } from '../graph/types.js';
import { validate } from '../graph/validate.js';
import { isModel } from '../src/dsl/model.js';
import { PRESETS, presetModel } from '../src/dsl/presets.js';

describe('presets', () => {
  it('lists the published shapes', () => {
    expect(Object.keys(PRESETS)).toEqual(['llama2-7b', 'llama2-13b', 'llama3-8b', 'tinyllama-1.1b', 'stories15M', 'stories110M', 'tiny']);
    expect(PRESETS['llama3-8b']).toMatchObject({ nHeads: 32, nKvHeads: 8, ropeBase: 500000, vocabSize: 128256, hiddenDim: 14336 });
  });

  it.each(Object.keys(PRESETS))('%s builds a valid graph named after it', (name) => {
    const m = presetModel(name);
    expect(isModel(m)).toBe(true);
    const g = m.build();
    expect(g.name).toBe(name);
    expect(() => validate(g)).not.toThrow();
  });

  it('names the known presets for an unknown one', () => {
    let err: unknown;
    try {
      presetModel('llama4');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('K1012');
    expect((err as KilnError).message).toBe(
      "unknown preset 'llama4'; known presets: llama2-7b, llama2-13b, llama3-8b, tinyllama-1.1b, stories15M, stories110M, tiny",
    );
    expect(() => presetModel('toString')).toThrow(/unknown preset 'toString'/);
  });
});

/** Structure without positions or names: op, attrs, type, scope per node. */
function structure(g: Graph): string[] {
  return g.nodes.map((n) => `${n.scope} ${n.op}(${n.inputs.join(',')}) ${JSON.stringify(n.attrs)} ${typeToString(n.type)}`);
}

describe('examples', () => {
  const files = readdirSync(new URL('../examples/', import.meta.url)).filter((f) => f.endsWith('.ts'));

  it('are the four documented ones', () => {
    expect(files.sort()).toEqual(['custom-activation.ts', 'gpt-layernorm.ts', 'llama-gqa.ts', 'llama.ts']);
  });

  it.each(files)('%s builds and validates, giving logits [seq, vocab]', async (file) => {
    const mod = (await import(/* @vite-ignore */ `../examples/${file}`)) as { default: unknown };
    expect(isModel(mod.default)).toBe(true);
    const g = (mod.default as { build(): Graph }).build();
    validate(g);
    const out = g.outputs.find((o) => o.name === 'logits');
    expect(out).toBeDefined();
    expect(typeToString(g.nodes[out!.value]!.type)).toMatch(/^f32\[seq, \d+\]$/);
    expect(g.nodes.filter((n) => n.op === 'input').map((n) => typeToString(n.type))).toEqual(['i32[seq]']);
    expect(g.nodes.every((n) => n.loc !== undefined)).toBe(true);
  });

  it('llama.ts declares exactly the stories15M preset', async () => {
    const mod = (await import('../examples/llama.js')) as { default: { build(): Graph } };
    expect(structure(mod.default.build())).toEqual(structure(presetModel('stories15M').build()));
  });

  it('custom-activation.ts puts its arrow in the gate', async () => {
    const mod = (await import('../examples/custom-activation.js')) as { default: { build(): Graph }; quickGelu: (x: number) => number };
    expect(mod.quickGelu(1)).toBeCloseTo(1 / (1 + Math.exp(-1.702)), 15);
    const g = mod.default.build();
    const act = g.nodes.filter((n) => n.scope === 'layers.0.ffn.act').map((n) => n.op);
    expect(act).toEqual(['const', 'mul', 'sigmoid', 'mul']);
  });
});
