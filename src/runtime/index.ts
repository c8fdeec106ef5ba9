/**
 * kiln's runtime entry, `import { Session, jsBackend, loadCheckpoint } from 'kiln/runtime'`:
 * what runs a model. Kept apart from `kiln` (the DSL), which every model file imports, so that
 * declaring a model loads no backend. Run scripts with `node --import kiln/register script.ts`
 * (TypeScript sources, and the wasm backend's emitter loaded the fast way).
 */
import type { Backend } from '../../backends/backend.js';
import type { DeviceChoice } from '../../backends/gpu/device.js';

export { Session, DEFAULT_BATCH, type SessionOptions, type GenerateOptions, type GenerateStep } from './session.js';
export { REPEAT_LAST_N, type SamplingOptions } from './sampling.js';
export { randomWeights, type Weights } from './weights.js';
export { interpretBackend } from './interpret-backend.js';
export { jsBackend } from '../../backends/js/index.js';
export { createWasmBackend, type WasmBackendOptions } from '../../backends/wasm/index.js';
export { shutdown } from '../../backends/shutdown.js';
export type { Backend, Executable, HostArray, RunArgs } from '../../backends/backend.js';
export { loadCheckpoint, checkpointWeights, type Checkpoint, type TokenizerData } from '../formats/checkpoint.js';
export { Tokenizer, tokenizerFromHfJson, tokenizerFromLlama2cBin } from '../tokenizer/index.js';
export { KilnError } from '../../graph/errors.js';
// training: the loop, its data, fresh weights, and the trained model's files (README, Training)
export { train, type TrainRun, type TrainSettings, type TrainResult, type TrainHooks } from '../train/run.js';
export { TrainingPrograms } from '../train/step.js';
export { lossGraph, trainingGraph } from '../train/loss-graph.js';
export { readTokens, splitData, DataCursor, type TrainingData } from '../train/data.js';
export { trainingInit } from '../train/init.js';
export { saveTrainedModel } from '../train/save.js';
export type { Graph } from '../../graph/graph.js';

/**
 * The gpu backend (gpu.js on WebGL through headless-gl, or WebGPU through Dawn), loaded on first
 * use. Call `shutdown()` before the process ends: native devices must be released first.
 */
export async function gpuBackend(opts: { device?: DeviceChoice } = {}): Promise<Backend> {
  return (await import('../../backends/gpu/index.js')).gpuBackend(opts);
}
