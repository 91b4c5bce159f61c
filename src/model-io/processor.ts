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
import { idefics3Grid, idefics3TileCount } from './image-grid';
import { ProcessorError } from './processor-error';

export { ProcessorError };

/** What the processor needs of a loaded model (a LoadedModel or weight-less LoadedModelFiles both fit). */
export interface ProcessorSource {
  config: ModelConfig;
  files: Map<string, ArrayBuffer>;
}

export interface ChatMessage {
  role: 'user' | 'assistant';
  text: string;
  /**
   * Pictures that go before this message's text, one image entry each in the chat template (as the model card and
   * transformers' Idefics3 processor do it). The pictures handed to prepare() are taken in message order.
   */
  imageCount?: number;
  /** Shorthand for imageCount: 1. */
  hasImage?: boolean;
}

/** How many pictures a message carries (imageCount, or 1 for hasImage). */
export function messageImageCount(message: ChatMessage): number {
  return message.imageCount ?? (message.hasImage ? 1 : 0);
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

/** Where one picture of a prompt went: its tiles and its run of `<image>` tokens. */
export interface PreparedImage {
  /** Tiles of this picture (local tiles, then its global one). */
  numTiles: number;
  /** Grid of local tiles (0 x 0 when the picture was not split). */
  rows: number;
  cols: number;
  /** Index of its first tile in pixelValues (the pictures' tiles follow each other in prompt order). */
  firstTile: number;
  /** Number of its `<image>` tokens (numTiles * imageSeqLen). */
  imageTokenCount: number;
  /** Index of its first `<image>` token among all image tokens of the prompt (imageTokenPositions). */
  firstImageToken: number;
}

export interface PreparedInputs {
  inputIds: Uint32Array;
  /** [numTiles, 3, tileHeight, tileWidth], normalised as the model expects. Empty without an image. */
  pixelValues: Float32Array;
  numTiles: number;
  tileHeight: number;
  tileWidth: number;
  /** Grid of local tiles of the first picture (0 x 0 when it was not split); a global tile always comes last. */
  imageRows: number;
  imageCols: number;
  /** Each picture in prompt order; numTiles and imageTokenCount are their sums. */
  images: PreparedImage[];
  /** Number of `<image>` tokens in inputIds (numTiles * imageSeqLen). */
  imageTokenCount: number;
  /** Position of every `<image>` token in inputIds, in order (tile-major, as the connector emits them). */
  imageTokenPositions: Uint32Array;
}

export interface PrepareOptions {
  /**
   * Longest picture edge after the first resize (the processor's size.longest_edge; default the model's own). Lower
   * means fewer tiles, hence fewer image tokens. At least one tile (max_image_size.longest_edge).
   */
  longestEdge?: number;
}

export interface VlmProcessor {
  /** `images`: the pictures of every message, in message order (a single picture or null for one or none). */
  prepare(images: ProcessorImage | readonly ProcessorImage[] | null, messages: ChatMessage[], options?: PrepareOptions): Promise<PreparedInputs>;
  /** The model's own longest picture edge (preprocessor_config size.longest_edge) and the tile size (the lowest allowed). */
  defaultLongestEdge: number;
  tileSize: number;
  /**
   * Image tokens a width x height picture takes (tiles x imageSeqLen) at `longestEdge` (default the model's own),
   * computed from the processor's resize rules without touching pixels (for the context meter before a question).
   */
  imageTokensFor(width: number, height: number, longestEdge?: number): number;
  /** Prompt tokens the picture's `<image>` entry expands to: its image tokens plus the markers around its tiles. */
  imagePromptTokensFor(width: number, height: number, longestEdge?: number): number;
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

function perImageCounts(value: unknown, what: string, images: number): number[] {
  // rows/cols come back per batch and per image: [[n, ...]] (one batch here).
  const inner = Array.isArray(value) && Array.isArray(value[0]) ? (value[0] as unknown[]) : [];
  if (inner.length !== images || inner.some((n) => typeof n !== 'number')) {
    throw new ProcessorError(`The image processor returned ${inner.length} ${what} counts for ${images} pictures.`);
  }
  return inner as number[];
}

/**
 * transformers.js' Idefics3 image processor, with each side kept at least 1 px (and one tile) as transformers' Python
 * processor does: a 2000x6 picture otherwise resizes to 0 px high and the resize op throws ("Expected positive
 * integer ... for height but received 0").
 */
class SideKeepingIdefics3ImageProcessor extends Idefics3ImageProcessor {
  override get_resize_output_image_size(image: RawImage, size: unknown): [number, number] {
    const [width, height] = super.get_resize_output_image_size(image, size as Parameters<Idefics3ImageProcessor['get_resize_output_image_size']>[1]);
    return [Math.max(1, width), Math.max(1, height)];
  }

  override get_resize_for_vision_encoder(pixelValues: Tensor, visionEncoderMaxSize: number): { height: number; width: number } {
    const { height, width } = super.get_resize_for_vision_encoder(pixelValues, visionEncoderMaxSize);
    return { height: Math.max(visionEncoderMaxSize, height), width: Math.max(visionEncoderMaxSize, width) };
  }
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

  const defaultLongestEdge = (preprocessorConfig.size as { longest_edge?: unknown } | undefined)?.longest_edge;
  if (typeof defaultLongestEdge !== 'number' || !Number.isInteger(defaultLongestEdge) || defaultLongestEdge < tileSize) {
    throw new ProcessorError(`preprocessor_config.json size.longest_edge (${String(defaultLongestEdge)}) must be a whole number of at least one tile (${tileSize}).`);
  }

  const splitting = preprocessorConfig.do_image_splitting !== false;
  const tokenizer = createTokenizer(tokenizerJson, tokenizerConfig);
  // One processor per longest edge asked for (the edge is part of the image processor's config).
  const processors = new Map<number, Idefics3Processor>();
  const processorFor = (longestEdge: number): Idefics3Processor => {
    let made = processors.get(longestEdge);
    if (!made) {
      const imageProcessor = new SideKeepingIdefics3ImageProcessor({ ...preprocessorConfig, size: { longest_edge: longestEdge } });
      made = new Idefics3Processor({ ...processorConfig, image_seq_len: imageSeqLen }, { tokenizer, image_processor: imageProcessor }, chatTemplate);
      processors.set(longestEdge, made);
    }
    return made;
  };
  const processor = processorFor(defaultLongestEdge);

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
      content: [...Array.from({ length: messageImageCount(message) }, () => ({ type: 'image' })), { type: 'text', text: message.text }],
    }));
    const text = processor.apply_chat_template(chat, { add_generation_prompt: true, tokenize: false });
    if (typeof text !== 'string') throw new ProcessorError('The chat template did not produce text.');
    return text;
  };

  const prepare = async (
    given: RawImage | RawImageLike | readonly (RawImage | RawImageLike)[] | null,
    messages: ChatMessage[],
    options: PrepareOptions = {},
  ): Promise<PreparedInputs> => {
    const images: readonly (RawImage | RawImageLike)[] = given === null ? [] : Array.isArray(given) ? given : [given as RawImage | RawImageLike];
    const wanted = messages.reduce((n, m) => n + messageImageCount(m), 0);
    if (messages.some((m) => !Number.isInteger(messageImageCount(m)) || messageImageCount(m) < 0)) {
      throw new ProcessorError('A message\'s imageCount must be a whole number >= 0.');
    }
    if (images.length > 0 && wanted === 0) throw new ProcessorError('An image was given but no message has hasImage: true (or an imageCount).');
    if (images.length === 0 && wanted > 0) throw new ProcessorError('A message has hasImage: true but no image was given.');
    if (images.length !== wanted) throw new ProcessorError(`The messages carry ${wanted} pictures but ${images.length} were given.`);
    const longestEdge = options.longestEdge ?? defaultLongestEdge;
    if (!Number.isInteger(longestEdge) || longestEdge < tileSize) {
      throw new ProcessorError(`The longest image edge must be a whole number of at least one tile (${tileSize} px), got ${longestEdge}.`);
    }
    const prompt = chatPrompt(messages);

    let inputIds: number[];
    let pixelValues: Float32Array = new Float32Array(0);
    let numTiles = 0;
    let tileHeight = 0;
    let tileWidth = 0;
    const prepared: PreparedImage[] = [];
    if (images.length > 0) {
      // One batch holding every picture: transformers.js expands the prompt's <image> entries in order, one per picture.
      const result = (await processorFor(longestEdge)._call(prompt, [images.map(toRawImage)])) as {
        input_ids: Tensor;
        pixel_values: Tensor;
        rows: unknown;
        cols: unknown;
      };
      inputIds = tensorToNumbers(result.input_ids);
      const dims = result.pixel_values.dims; // [batch 1, tiles, 3, H, W]
      [numTiles, , tileHeight, tileWidth] = dims.slice(1);
      pixelValues = result.pixel_values.data as Float32Array;
      const rows = perImageCounts(result.rows, 'row', images.length);
      const cols = perImageCounts(result.cols, 'column', images.length);
      let firstTile = 0;
      for (let i = 0; i < images.length; i++) {
        const tiles = rows[i] * cols[i] + 1;
        prepared.push({ numTiles: tiles, rows: rows[i], cols: cols[i], firstTile, imageTokenCount: tiles * imageSeqLen, firstImageToken: firstTile * imageSeqLen });
        firstTile += tiles;
      }
      if (firstTile !== numTiles) throw new ProcessorError(`The image processor made ${numTiles} tiles, but the pictures' grids give ${firstTile}.`);
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
      imageRows: prepared[0]?.rows ?? 0,
      imageCols: prepared[0]?.cols ?? 0,
      images: prepared,
      imageTokenCount: positions.length,
      imageTokenPositions: Uint32Array.from(positions),
    };
  };

  /** Tokens of one picture's expansion, per grid (the same string transformers.js' Idefics3Processor puts in). */
  const expansionTokens = new Map<string, number>();
  const imagePromptTokensFor = (width: number, height: number, longestEdge = defaultLongestEdge): number => {
    const { rows, cols } = idefics3Grid(width, height, longestEdge, tileSize, splitting);
    const key = `${rows}x${cols}`;
    let tokens = expansionTokens.get(key);
    if (tokens === undefined) {
      const { fake_image_token: around, image_token: image, global_img_token: global } = processor;
      const tile = image.repeat(imageSeqLen);
      let text = '';
      for (let r = 1; r <= rows; r++) {
        for (let c = 1; c <= cols; c++) text += `${around}<row_${r}_col_${c}>${tile}`;
        text += '\n';
      }
      text += `${rows > 0 ? '\n' : ''}${around}${global}${tile}${around}`;
      tokens = tokenizer.encode(text, { add_special_tokens: false }).length;
      expansionTokens.set(key, tokens);
    }
    return tokens;
  };

  return {
    prepare,
    imagePromptTokensFor,
    defaultLongestEdge,
    tileSize,
    imageTokensFor: (width, height, longestEdge = defaultLongestEdge) =>
      idefics3TileCount(width, height, longestEdge, tileSize, splitting) * imageSeqLen,
    chatPrompt,
    tokenize: (text) => tokenizer.encode(text),
    decode: (ids, options) => tokenizer.decode(ids, { skip_special_tokens: options?.skipSpecialTokens ?? false }),
    eosTokenIds,
    imageTokenId,
    imageSeqLen,
    vocabSize: config.text.vocabSize,
  };
}
