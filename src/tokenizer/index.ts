/** The LLaMA tokenizer: the class, its loaders, and the synthetic vocabularies for tests. */
export { Tokenizer, type TokenizerData, type StreamDecoder, type StreamDecoderOptions } from './tokenizer.js';
export { tokenizerFromHfJson, parseHfTokenizerJson } from './hf-json.js';
export { tokenizerFromLlama2cBin, parseLlama2cTokenizer, encodeLlama2cTokenizer, writeLlama2cTokenizerBin } from './llama2c-bin.js';
export { syntheticVocab, trainSyntheticVocab, type SyntheticVocabOptions } from './synthetic.js';
export { TokenType, SPACE_MARK, byteTokenName, parseByteToken } from './data.js';
