/**
 * dce — dead-code elimination.
 *
 * Drops every node that no graph output reaches. `input` and `state` nodes stay even when
 * unused: they are the graph's interface (what a caller binds each step, and what a runtime
 * keeps between steps), and removing one would change what running the graph asks for. Unused
 * params and consts go.
 *
 * Runs after constant-fold and cse (which leave the nodes they replace behind) and again after the
 * fusions (whose absorbed values may still be read by nothing), before plan-memory, so that no
 * buffer is planned for a value nobody reads.
 */
import type { Pass } from './pass.js';
import { dropDead } from './rewrite.js';

export const dce: Pass = {
  name: 'dce',
  reason: 'drop values no output reaches',
  run(g) {
    const { graph, removed } = dropDead(g, 'dce', (n) => n.op === 'input' || n.op === 'state');
    return { graph, stats: { removed } };
  },
};
