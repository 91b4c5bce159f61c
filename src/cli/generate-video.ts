/**
 * The video side of `generate`: --fps / --max-frames over the model's video_sampling, the videos of the JSON report,
 * and --dry-run, which runs only the processor (the model's config, tokenizer and processor files: no weights, no GPU)
 * and prints the prompt it makes, so a prompt is checked in a second.
 */
import type { RawImage } from '@huggingface/transformers';
import { errorMessage } from '../errors';
import { loadModelFilesFromPathOrUrl } from '../model-io/node-loader';
import { createProcessor, noVideoPathMessage, ProcessorError, type PreparedInputs, type PreparedVideo, type PromptMedia, type VlmProcessor } from '../model-io/processor';
import { checkSamplingSettings, type VideoSamplingSettings } from '../model-io/video-sampling';
import { integerOption, numberOption, UsageError } from './args';
import { probeVideoFile, readVideoInput, type VideoFileFacts } from './video-file';

/** --fps and --max-frames; null where the model's video_sampling applies. */
export interface VideoSamplingOverrides {
  fps: number | null;
  maxFrames: number | null;
}

export const mixingMessage =
  'a question holds pictures or videos, not both (transformers\' SmolVLM processor refuses images and videos in one call): ask about them in separate turns';

export function videoSamplingOption(fps: string | undefined, maxFrames: string | undefined): VideoSamplingOverrides {
  const overrides = {
    fps: fps === undefined ? null : numberOption('fps', fps, 0),
    maxFrames: maxFrames === undefined ? null : integerOption('max-frames', maxFrames),
  };
  if (overrides.fps !== null && !(overrides.fps > 0)) throw new UsageError(`--fps must be a positive number of frames per second, got ${fps}`);
  if (overrides.maxFrames !== null && overrides.maxFrames < 1) throw new UsageError(`--max-frames must be at least 1, got ${maxFrames}`);
  return overrides;
}

/** The sampling settings for this model: its video_sampling with the command line's overrides. Refuses a model without a video path. */
export function samplingFor(processor: VlmProcessor, overrides: VideoSamplingOverrides): VideoSamplingSettings {
  const defaults = processor.videoSampling;
  if (!defaults) throw new UsageError(noVideoPathMessage);
  const settings = { fps: overrides.fps ?? defaults.fps, maxFrames: overrides.maxFrames ?? defaults.maxFrames };
  checkSamplingSettings(settings);
  return settings;
}

/** ffprobe's facts of every turn's videos, read before the model loads (a missing or unreadable file is a usage error). */
export async function probeTurnVideos(turns: { videos: string[] }[]): Promise<VideoFileFacts[][]> {
  const probed: VideoFileFacts[][] = [];
  for (const turn of turns) {
    const facts: VideoFileFacts[] = [];
    for (const file of turn.videos) facts.push(await probeVideoFile(file));
    probed.push(facts);
  }
  return probed;
}

/** A video of the prompt as the JSON report gives it: the processor's, less where its frames sit among the tiles. */
export type VideoReport = Omit<PreparedVideo, 'firstImage'>;

export function videoReports(prepared: PreparedInputs | null): VideoReport[] {
  return (prepared?.videos ?? []).map(({ firstImage: _firstImage, ...report }) => report);
}

/** What --dry-run prints with --json. */
export interface DryRunReport {
  dryRun: true;
  prompt: string;
  promptText: string;
  promptTokens: number;
  imageTokens: number;
  /** The pictures (not the video frames) in order, with their tiles and image tokens. */
  images: { file: string; tiles: number; imageTokens: number }[];
  videos: VideoReport[];
}

export interface DryRunRequest {
  model: string;
  prompt: string;
  images: { file: string; image: RawImage }[];
  videos: VideoFileFacts[];
  overrides: VideoSamplingOverrides;
  longestEdge: number | null;
  json: boolean;
}

/**
 * --dry-run: the processor alone on the question, its pictures and its videos (frames decoded by ffmpeg at the tile
 * size), as generate would prepare them; prints the report (JSON, or the prompt text and a summary).
 */
export async function runDryRun(request: DryRunRequest): Promise<void> {
  const files = await loadModelFilesFromPathOrUrl(request.model, { includeWeights: false });
  const processor = await createProcessor(files);
  const media: PromptMedia[] = request.images.map(({ image }) => image);
  if (request.videos.length > 0) {
    const settings = samplingFor(processor, request.overrides);
    const tileSize = processor.videoSampling?.frameSize ?? processor.tileSize;
    for (const facts of request.videos) media.push(await readVideoInput(facts, settings, tileSize));
  }
  let prepared: PreparedInputs;
  try {
    prepared = await processor.prepare(
      media,
      [{ role: 'user', text: request.prompt, imageCount: request.images.length, videoCount: request.videos.length }],
      request.longestEdge === null ? {} : { longestEdge: request.longestEdge },
    );
  } catch (error) {
    if (error instanceof ProcessorError) throw new UsageError(errorMessage(error));
    throw error;
  }
  const pictures = prepared.images.filter((image) => !image.frameOf);
  const report: DryRunReport = {
    dryRun: true,
    prompt: request.prompt,
    promptText: prepared.promptText,
    promptTokens: prepared.inputIds.length,
    imageTokens: prepared.imageTokenCount,
    images: pictures.map((image, i) => ({ file: request.images[i].file, tiles: image.numTiles, imageTokens: image.imageTokenCount })),
    videos: videoReports(prepared),
  };
  if (request.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  process.stdout.write(`${report.promptText}\n`);
  for (const video of report.videos) {
    process.stderr.write(
      `[${video.file}: ${video.totalFrames} frames at ${video.nativeFps.toFixed(3)} fps (${video.durationSeconds.toFixed(2)} s), ` +
        `${video.frameIndices.length} sampled (indices ${video.frameIndices.join(', ')}), ${video.imageTokens} image tokens]\n`,
    );
  }
  process.stderr.write(`[dry run: ${report.promptTokens} prompt tokens (${report.imageTokens} image), no weights read, nothing generated]\n`);
}
