import { instance, type Viz } from '@viz-js/viz';
import { InternalError } from '../errors.js';

/**
 * DOT → SVG with Graphviz compiled to WebAssembly (@viz-js/viz), so no system Graphviz is
 * needed. The instance is made once (compiling the module takes a moment) and reused. The XML
 * prologue is dropped so the result starts with `<svg` and can be inlined in HTML as it is.
 */
let viz: Promise<Viz> | undefined;

export async function renderSvg(dot: string): Promise<string> {
  viz ??= instance();
  const result = (await viz).render(dot, { format: 'svg', engine: 'dot' });
  if (result.status !== 'success') {
    // kiln writes the DOT it renders, so a failure here is kiln's bug, not the user's.
    const why = result.errors.map((e) => e.message.trim()).join('; ');
    throw new InternalError(`graphviz could not render the graph: ${why || 'no reason given'}`);
  }
  const start = result.output.indexOf('<svg');
  return start < 0 ? result.output : result.output.slice(start);
}
