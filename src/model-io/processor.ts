/**
 * Tokenizer, chat template and Idefics3 image processor from @huggingface/transformers, built directly from the
 * JSON files of a loaded model (constructors instead of from_pretrained: no hub lookups, no second cache, works
 * the same in Node and in the browser worker).
 *
 * transformers.js runs the image resize/crop through ONNX Runtime ops (onnxruntime-node in Node, onnxruntime-web
 * in the browser). onnxruntime-web fetches its .wasm from a CDN unless told otherwise; call configureOnnxWasm()
 * (onnx-wasm-assets.ts does it with files bundled by Vite) before the first prepare() in the browser.
 */
import {
  env,
  GPT2Tokenizer,
  Idefics3ImageProcessor,
  Idefics3Processor,
  PreTrainedTokenizer,
  RawImage,
  type Tensor,
} from '@huggingface/transformers';
import { type ModelConfig } from './config';

/** What the processor needs of a loaded model (a LoadedModel or weight-less LoadedModelFiles both fit). */
export interface ProcessorSource {
  config: ModelConfig;
  files: Map<string, ArrayBuffer>;
}

export interface ChatMessage {
  role: 'user' | 'assistant';
  text: string;
  /** The image goes before this message's text (at most one message may have it). */
  hasImage?: boolean;
}

/** Raw pixels, row-major, interleaved channels (ImageData-like). */
export interface RawImageLike {
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** What the processor takes as a picture: a transformers RawImage (the CLI's decoder) or plain pixels (the worker's). */
export type ProcessorImage = RawImage | RawImageLike;

export interface PreparedInputs {
  inputIds: Uint32Array;
  /** [numTiles, 3, tileHeight, tileWidth], normalised as the model expects. Empty without an image. */
  pixelValues: Float32Array;
  numTiles: number;
  tileHeight: number;
  tileWidth: number;
  /** Grid of local tiles (0 x 0 when the image was not split); a global tile always comes last. */
  imageRows: number;
  imageCols: number;
  /** Number of `<image>` tokens in inputIds (numTiles * imageSeqLen). */
  imageTokenCount: number;
  /** Position of every `<image>` token in inputIds, in order (tile-major, as the connector emits them). */
  imageTokenPositions: Uint32Array;
}

export interface VlmProcessor {
  prepare(image: ProcessorImage | null, messages: ChatMessage[]): Promise<PreparedInputs>;
  /** The prompt text after the chat template (before `<image>` expansion). */
  chatPrompt(messages: ChatMessage[]): string;
  tokenize(text: string): number[];
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Token ids that end generation (`<end_of_utterance>`, the tokenizer's and config's EOS). */
  eosTokenIds: number[];
  imageTokenId: number;
  imageSeqLen: number;
  vocabSize: number;
}

export class ProcessorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProcessorError';
  }
}

type JsonObject = Record<string, unknown>;

function readJson(files: Map<string, ArrayBuffer>, name: string, required: true): JsonObject;
function readJson(files: Map<string, ArrayBuffer>, name: string, required: false): JsonObject | null;
function readJson(files: Map<string, ArrayBuffer>, name: string, required: boolean): JsonObject | null {
  const bytes = files.get(name);
  if (!bytes) {
    if (required) throw new ProcessorError(`The model has no ${name}; the tokenizer/image processor need it.`);
    return null;
  }
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as JsonObject;
  } catch (error) {
    throw new ProcessorError(`${name} is not a valid JSON object: ${(error as Error).message}`);
  }
}

let onnxWasmConfigured = false;

/**
 * Points onnxruntime-web at locally served wasm files (the default is a CDN, unreachable offline). Node ignores
 * this (it uses onnxruntime-node). Single-threaded: we already run inside a worker, and threads would need
 * cross-origin isolation.
 */
export function configureOnnxWasm(paths: { mjs: string; wasm: string }): void {
  const wasm = env.backends.onnx.wasm;
  if (!wasm) return;
  wasm.wasmPaths = paths;
  // Otherwise transformers.js imports the wasm factory from a blob: URL (its "wasm cache"), which the app's
  // Content-Security-Policy (script-src 'self') refuses; the factory is served from our own origin instead.
  env.useWasmCache = false;
  wasm.numThreads = 1;
  wasm.proxy = false;
  onnxWasmConfigured = true;
}

export function isOnnxWasmConfigured(): boolean {
  return onnxWasmConfigured;
}

function createTokenizer(tokenizerJson: JsonObject, tokenizerConfig: JsonObject): PreTrainedTokenizer {
  // AutoTokenizer picks the class from tokenizer_class; Idefics3/SmolVLM use GPT2Tokenizer (byte-level BPE).
  const className = String(tokenizerConfig.tokenizer_class ?? '').replace(/Fast$/, '');
  return className === 'GPT2Tokenizer'
    ? new GPT2Tokenizer(tokenizerJson, tokenizerConfig)
    : new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);
}

function toRawImage(image: RawImage | RawImageLike): RawImage {
  if (image instanceof RawImage) return image;
  const { data, width, height, channels } = image;
  if (data.length !== width * height * channels) {
    throw new ProcessorError(`Image data has ${data.length} values; ${width}x${height}x${channels} needs ${width * height * channels}.`);
  }
  return new RawImage(data, width, height, channels);
}

function tensorToNumbers(tensor: Tensor): number[] {
  const data = tensor.data as ArrayLike<number | bigint>;
  return Array.from(data, (x) => Number(x));
}

function singleCount(value: unknown, what: string): number {
  // rows/cols come back per batch and per image: [[n]].
  const inner = Array.isArray(value) && Array.isArray(value[0]) ? (value[0] as unknown[])[0] : undefined;
  if (typeof inner !== 'number') throw new ProcessorError(`The image processor returned no ${what} count.`);
  return inner;
}

/** Builds the tokenizer and Idefics3 processor from the model's files (no network). */
export async function createProcessor(model: ProcessorSource): Promise<VlmProcessor> {
  const { files, config } = model;
  const tokenizerJson = readJson(files, 'tokenizer.json', true);
  const tokenizerConfig = readJson(files, 'tokenizer_config.json', true);
  const preprocessorConfig = readJson(files, 'preprocessor_config.json', true);
  const processorConfig = readJson(files, 'processor_config.json', false) ?? {};
  const chatTemplateFile = readJson(files, 'chat_template.json', false);
  const generationConfig = readJson(files, 'generation_config.json', false);

  const chatTemplate =
    typeof chatTemplateFile?.chat_template === 'string'
      ? chatTemplateFile.chat_template
      : typeof tokenizerConfig.chat_template === 'string'
        ? tokenizerConfig.chat_template
        : null;
  if (!chatTemplate) throw new ProcessorError('The model has no chat template (chat_template.json or tokenizer_config.json).');

  const imageSeqLen = processorConfig.image_seq_len ?? config.imageSeqLen;
  if (imageSeqLen !== config.imageSeqLen) {
    throw new ProcessorError(
      `processor_config.json says image_seq_len ${String(imageSeqLen)}, but config.json gives ${config.imageSeqLen} tokens per tile ` +
        '((image_size / patch_size)^2 / scale_factor^2).',
    );
  }
  const tileSize = (preprocessorConfig.max_image_size as { longest_edge?: unknown } | undefined)?.longest_edge;
  if (tileSize !== config.vision.imageSize) {
    throw new ProcessorError(
      `preprocessor_config.json max_image_size.longest_edge (${String(tileSize)}) must equal the vision image_size (${config.vision.imageSize}).`,
    );
  }

  const tokenizer = createTokenizer(tokenizerJson, tokenizerConfig);
  const imageProcessor = new Idefics3ImageProcessor(preprocessorConfig);
  const processor = new Idefics3Processor({ ...processorConfig, image_seq_len: imageSeqLen }, { tokenizer, image_processor: imageProcessor }, chatTemplate);

  const imageTokenId = tokenizer.convert_tokens_to_ids(processor.image_token);
  if (imageTokenId !== config.imageTokenId) {
    throw new ProcessorError(`The tokenizer maps ${processor.image_token} to ${String(imageTokenId)}, config.json says image_token_id ${config.imageTokenId}.`);
  }

  const eosCandidates: unknown[] = [
    tokenizer.convert_tokens_to_ids('<end_of_utterance>'),
    tokenizer.eos_token_id,
    ...config.text.eosTokenIds,
    ...(Array.isArray(generationConfig?.eos_token_id) ? generationConfig.eos_token_id : [generationConfig?.eos_token_id]),
  ];
  const eosTokenIds = [...new Set(eosCandidates.filter((id): id is number => typeof id === 'number' && Number.isInteger(id)))];

  const chatPrompt = (messages: ChatMessage[]): string => {
    if (messages.length === 0) throw new ProcessorError('A prompt needs at least one message.');
    const chat = messages.map((message) => ({
      role: message.role,
      content: [...(message.hasImage ? [{ type: 'image' }] : []), { type: 'text', text: message.text }],
    }));
    const text = processor.apply_chat_template(chat, { add_generation_prompt: true, tokenize: false });
    if (typeof text !== 'string') throw new ProcessorError('The chat template did not produce text.');
    return text;
  };

  const prepare = async (image: RawImage | RawImageLike | null, messages: ChatMessage[]): Promise<PreparedInputs> => {
    const imageMessages = messages.filter((m) => m.hasImage).length;
    if (imageMessages > 1) throw new ProcessorError('Only one message can carry the image.');
    if (image && imageMessages === 0) throw new ProcessorError('An image was given but no message has hasImage: true.');
    if (!image && imageMessages > 0) throw new ProcessorError('A message has hasImage: true but no image was given.');
    const prompt = chatPrompt(messages);

    let inputIds: number[];
    let pixelValues: Float32Array = new Float32Array(0);
    let numTiles = 0;
    let tileHeight = 0;
    let tileWidth = 0;
    let imageRows = 0;
    let imageCols = 0;
    if (image) {
      const result = (await processor._call(prompt, toRawImage(image))) as {
        input_ids: Tensor;
        pixel_values: Tensor;
        rows: unknown;
        cols: unknown;
      };
      inputIds = tensorToNumbers(result.input_ids);
      const dims = result.pixel_values.dims; // [batch 1, tiles, 3, H, W]
      [numTiles, , tileHeight, tileWidth] = dims.slice(1);
      pixelValues = result.pixel_values.data as Float32Array;
      imageRows = singleCount(result.rows, 'row');
      imageCols = singleCount(result.cols, 'column');
    } else {
      inputIds = tokenizer.encode(prompt);
    }

    const positions: number[] = [];
    inputIds.forEach((id, index) => {
      if (id === imageTokenId) positions.push(index);
    });
    if (positions.length !== numTiles * imageSeqLen) {
      throw new ProcessorError(`The prompt has ${positions.length} image tokens, expected ${numTiles} tiles x ${imageSeqLen}.`);
    }
    return {
      inputIds: Uint32Array.from(inputIds),
      pixelValues,
      numTiles,
      tileHeight,
      tileWidth,
      imageRows,
      imageCols,
      imageTokenCount: positions.length,
      imageTokenPositions: Uint32Array.from(positions),
    };
  };

  return {
    prepare,
    chatPrompt,
    tokenize: (text) => tokenizer.encode(text),
    decode: (ids, options) => tokenizer.decode(ids, { skip_special_tokens: options?.skipSpecialTokens ?? false }),
    eosTokenIds,
    imageTokenId,
    imageSeqLen,
    vocabSize: config.text.vocabSize,
  };
}
