/** kiln's public entry: what a model file imports (`import { model, nn, llama } from 'kiln'`). */
export { defineModel, isModel, type Model } from './dsl/model.js';
export { model, ModelBuilder, Tensor, type DimArg, type NamedDim, type Names, type NamesOf } from './dsl/tensor.js';
export * from './dsl/ops.js';
export * as nn from './dsl/nn.js';
export { activation, parseActivation, applyActivation, type Activation, type ActExpr } from './dsl/activation.js';
export { llama, normalizeLlamaConfig, type LlamaConfig, type LlamaActivation, type NormalizedLlamaConfig } from './dsl/llama.js';
export { PRESETS, presetModel } from './dsl/presets.js';
