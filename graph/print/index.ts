/** The graph printers: text dumps, JSON (read and write), Graphviz DOT and SVG. */
export { printText, type TextOptions } from './text.js';
export {
  graphToJSON,
  stringifyGraph,
  parseGraph,
  GRAPH_FORMAT,
  GRAPH_VERSION,
  type GraphJSON,
  type NodeJSON,
  type TensorTypeJSON,
  type AttrJSON,
  type DimJSON,
  type FloatJSON,
} from './json.js';
export { printDot, dotString, type DotOptions } from './dot.js';
export { renderSvg } from './svg.js';
export { planFold, foldLine, blockOf, type FoldPlan, type FoldRun, type BlockOf } from './fold.js';
