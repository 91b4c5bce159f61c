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
import { idefics3Grid, idefics3TileCount } from './image-grid';
import { expandPrompt, imagePromptString, type PromptMediaShape } from './prompt-expansion';
import { ProcessorError } from './processor-error';
import { readNormalisation, readVideoSampling } from './preprocessor-config';
import type { ChatMessage, PreparedImage, PreparedInputs, PreparedVideo, PrepareOptions, ProcessorImage, ProcessorSource, PromptMedia, PromptMediaSize, VlmProcessor } from './processor-types';
import { messageImageCount, messageVideoCount } from './processor-types';
import { checkVideoInput, frameTile, isVideoInput, resizeFrame, type RawImageLike, type VideoInput } from './video-frames';
import { smolVlmVideoChatTemplate, videoPromptExpansion, type FrameTokens } from './video-prompt';

export { ProcessorError };
export type { RawImageLike, VideoInput };
export type {
  ChatMessage,
  PreparedFrameSource,
  PreparedImage,
  PreparedInputs,
  PreparedVideo,
  PrepareOptions,
  ProcessorImage,
  ProcessorSource,
  PromptMedia,
  PromptMediaSize,
  VideoSamplingDefaults,
  VlmProcessor,
} from './processor-types';
export { messageImageCount, messageVideoCount } from './processor-types';

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

const mixingMessage =
  'A question can carry pictures or videos, not both: transformers\' SmolVLM processor refuses images and videos in one call. ' +
  'Ask about the pictures first, or remove them (or the video) from this question.';
export const noVideoPathMessage =
  'This model has no video path (its preprocessor_config.json has no video_sampling): load a SmolVLM2 model ' +
  '(e.g. HuggingFaceTB/SmolVLM2-256M-Video-Instruct) to ask about videos.';

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
  // One image processor per longest edge asked for (the edge is part of its config).
  const imageProcessors = new Map<number, SideKeepingIdefics3ImageProcessor>();
  const imageProcessorFor = (longestEdge: number): SideKeepingIdefics3ImageProcessor => {
    let made = imageProcessors.get(longestEdge);
    if (!made) {
      made = new SideKeepingIdefics3ImageProcessor({ ...preprocessorConfig, size: { longest_edge: longestEdge } });
      imageProcessors.set(longestEdge, made);
    }
    return made;
  };
  // The chat template and the special tokens' names; the expansion itself is ours (prompt-expansion.ts).
  const processor = new Idefics3Processor({ ...processorConfig, image_seq_len: imageSeqLen }, { tokenizer, image_processor: imageProcessorFor(defaultLongestEdge) }, chatTemplate);

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

  const videoSampling = readVideoSampling(preprocessorConfig, tileSize);
  const normalisation = readNormalisation(preprocessorConfig);
  const frameTokens: FrameTokens = {
    fakeImageToken: processor.fake_image_token,
    globalImageToken: processor.global_img_token,
    imageToken: processor.image_token,
    imageSeqLen,
  };
  const chatPrompt = (messages: ChatMessage[]): string => {
    if (messages.length === 0) throw new ProcessorError('A prompt needs at least one message.');
    const withVideo = messages.some((m) => messageVideoCount(m) > 0);
    const chat = messages.map((message) => ({
      role: message.role,
      content: [
        ...Array.from({ length: messageImageCount(message) }, () => ({ type: 'image' })),
        ...Array.from({ length: messageVideoCount(message) }, () => ({ type: 'video' })),
        { type: 'text', text: message.text },
      ],
    }));
    // transformers' SmolVLMProcessor renders any conversation holding a video with its DEFAULT_CHAT_TEMPLATE (the hub
    // template has no video branch); pictures render the same in both.
    const text = processor.apply_chat_template(chat, { add_generation_prompt: true, tokenize: false, ...(withVideo ? { chat_template: smolVlmVideoChatTemplate } : {}) });
    if (typeof text !== 'string') throw new ProcessorError('The chat template did not produce text.');
    return text;
  };

  /** The kinds of media the messages carry, in order; refuses a message with both pictures and videos. */
  const mediaKinds = (messages: ChatMessage[]): ('image' | 'video')[] =>
    messages.flatMap((m) => {
      const images = messageImageCount(m);
      const videos = messageVideoCount(m);
      if (![images, videos].every((n) => Number.isInteger(n) && n >= 0)) throw new ProcessorError('A message\'s imageCount and videoCount must be whole numbers >= 0.');
      if (images > 0 && videos > 0) throw new ProcessorError(mixingMessage);
      return [...Array<'image'>(images).fill('image'), ...Array<'video'>(videos).fill('video')];
    });

  const checkEdge = (longestEdge: number): void => {
    if (!Number.isInteger(longestEdge) || longestEdge < tileSize) {
      throw new ProcessorError(`The longest image edge must be a whole number of at least one tile (${tileSize} px), got ${longestEdge}.`);
    }
  };

  /** Every frame of a video as one normalised tile, [frames, 3, tile, tile] (frames not tile-sized are resized first). */
  const videoTiles = (video: VideoInput): Float32Array => {
    const tileValues = 3 * tileSize * tileSize;
    const out = new Float32Array(video.frames.length * tileValues);
    video.frames.forEach((frame, i) => {
      const tile = frame.width === tileSize && frame.height === tileSize ? frame : resizeFrame(frame, tileSize);
      out.set(frameTile(tile, tileSize, normalisation), i * tileValues);
    });
    return out;
  };

  const prepare = async (given: PromptMedia | readonly PromptMedia[] | null, messages: ChatMessage[], options: PrepareOptions = {}): Promise<PreparedInputs> => {
    const media: readonly PromptMedia[] = given === null ? [] : Array.isArray(given) ? given : [given as PromptMedia];
    const kinds = mediaKinds(messages);
    const givenKinds = media.map((m) => (isVideoInput(m) ? 'video' : 'image'));
    const wanted = kinds.filter((k) => k === 'image').length;
    const pictures = media.filter((m): m is ProcessorImage => !isVideoInput(m));
    const videos = media.filter(isVideoInput);
    if (pictures.length > 0 && wanted === 0 && videos.length === 0) throw new ProcessorError('An image was given but no message has hasImage: true (or an imageCount).');
    if (media.length === 0 && wanted > 0) throw new ProcessorError('A message has hasImage: true but no image was given.');
    if (givenKinds.join() !== kinds.join()) {
      const count = (list: string[], kind: string): number => list.filter((k) => k === kind).length;
      throw new ProcessorError(
        count(kinds, 'video') === 0 && count(givenKinds, 'video') === 0
          ? `The messages carry ${wanted} pictures but ${pictures.length} were given.`
          : `The messages carry ${wanted} pictures and ${count(kinds, 'video')} videos (in order: ${kinds.join(', ') || 'none'}), but ${givenKinds.join(', ') || 'none'} were given.`,
      );
    }
    if (videos.length > 0 && !videoSampling) throw new ProcessorError(noVideoPathMessage);
    videos.forEach(checkVideoInput);
    const longestEdge = options.longestEdge ?? defaultLongestEdge;
    checkEdge(longestEdge);
    const prompt = chatPrompt(messages);

    // Pictures: transformers.js' Idefics3 image processor, all in one batch (rows and cols per picture).
    let pictureValues: Float32Array = new Float32Array(0);
    let rows: number[] = [];
    let cols: number[] = [];
    if (pictures.length > 0) {
      const result = (await imageProcessorFor(longestEdge)._call([pictures.map(toRawImage)], { return_row_col_info: true })) as { pixel_values: Tensor; rows: unknown; cols: unknown };
      pictureValues = result.pixel_values.data as Float32Array;
      rows = perImageCounts(result.rows, 'row', pictures.length);
      cols = perImageCounts(result.cols, 'column', pictures.length);
    }
    const frameValues = videos.map(videoTiles);

    // Tiles and image-token runs in prompt order (which is media order: a message's entries precede its text).
    const tileValues = 3 * tileSize * tileSize;
    const totalTiles = rows.reduce((n, r, i) => n + r * cols[i] + 1, 0) + videos.reduce((n, v) => n + v.frames.length, 0);
    const pixelValues = new Float32Array(totalTiles * tileValues);
    const prepared: PreparedImage[] = [];
    const preparedVideos: PreparedVideo[] = [];
    const shapes: PromptMediaShape[] = [];
    let firstTile = 0;
    let picture = 0;
    let pictureTile = 0;
    const place = (image: Omit<PreparedImage, 'firstTile' | 'imageTokenCount' | 'firstImageToken'>, values: Float32Array): void => {
      pixelValues.set(values, firstTile * tileValues);
      prepared.push({ ...image, firstTile, imageTokenCount: image.numTiles * imageSeqLen, firstImageToken: firstTile * imageSeqLen });
      firstTile += image.numTiles;
    };
    media.forEach((item) => {
      if (isVideoInput(item)) {
        const v = preparedVideos.length;
        const { file, nativeFps, totalFrames, durationSeconds, frameIndices, timestamps } = item;
        preparedVideos.push({ file, nativeFps, totalFrames, durationSeconds, frameIndices: [...frameIndices], timestamps: [...timestamps], imageTokens: frameIndices.length * imageSeqLen, firstImage: prepared.length });
        frameIndices.forEach((frameIndex, frame) => {
          place({ numTiles: 1, rows: 0, cols: 0, frameOf: { video: v, frame, frameIndex, timestamp: timestamps[frame] } }, frameValues[v].subarray(frame * tileValues, (frame + 1) * tileValues));
        });
        shapes.push({ kind: 'video', timestamps, durationSeconds });
      } else {
        const tiles = rows[picture] * cols[picture] + 1;
        place({ numTiles: tiles, rows: rows[picture], cols: cols[picture] }, pictureValues.subarray(pictureTile * tileValues, (pictureTile + tiles) * tileValues));
        shapes.push({ kind: 'image', rows: rows[picture], cols: cols[picture] });
        pictureTile += tiles;
        picture += 1;
      }
    });
    if (pictureTile * tileValues !== pictureValues.length) {
      throw new ProcessorError(`The image processor made ${pictureValues.length / tileValues} tiles, but the pictures' grids give ${pictureTile}.`);
    }

    const promptText = expandPrompt(prompt, shapes, frameTokens);
    const inputIds = tokenizer.encode(promptText);
    const positions: number[] = [];
    inputIds.forEach((id, index) => {
      if (id === imageTokenId) positions.push(index);
    });
    if (positions.length !== totalTiles * imageSeqLen) {
      throw new ProcessorError(`The prompt has ${positions.length} image tokens, expected ${totalTiles} tiles x ${imageSeqLen}.`);
    }
    return {
      inputIds: Uint32Array.from(inputIds),
      pixelValues,
      numTiles: totalTiles,
      tileHeight: totalTiles > 0 ? tileSize : 0,
      tileWidth: totalTiles > 0 ? tileSize : 0,
      imageRows: prepared[0]?.rows ?? 0,
      imageCols: prepared[0]?.cols ?? 0,
      images: prepared,
      videos: preparedVideos,
      promptText,
      imageTokenCount: positions.length,
      imageTokenPositions: Uint32Array.from(positions),
    };
  };

  const shapeOf = (item: PromptMediaSize, longestEdge: number): PromptMediaShape =>
    item.kind === 'video' ? item : { kind: 'image', ...idefics3Grid(item.width, item.height, longestEdge, tileSize, splitting) };

  /** Tokens of one entry's expansion, by its text (special tokens cut the text there, so it counts alone). */
  const expansionTokens = new Map<string, number>();
  const tokensOfExpansion = (text: string): number => {
    let tokens = expansionTokens.get(text);
    if (tokens === undefined) {
      tokens = tokenizer.encode(text, { add_special_tokens: false }).length;
      if (expansionTokens.size > 256) expansionTokens.clear();
      expansionTokens.set(text, tokens);
    }
    return tokens;
  };

  return {
    prepare,
    videoSampling,
    imagePromptTokensFor: (width, height, longestEdge = defaultLongestEdge) => {
      const { rows, cols } = idefics3Grid(width, height, longestEdge, tileSize, splitting);
      return tokensOfExpansion(imagePromptString(rows, cols, frameTokens));
    },
    videoPromptTokensFor: (video) => tokensOfExpansion(videoPromptExpansion(video, frameTokens)),
    promptTokensFor: (messages, media, longestEdge = defaultLongestEdge) => {
      checkEdge(longestEdge);
      return tokenizer.encode(expandPrompt(chatPrompt(messages), media.map((item) => shapeOf(item, longestEdge)), frameTokens)).length;
    },
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
