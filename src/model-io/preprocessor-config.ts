/** The preprocessor_config.json settings the processor's own code reads (the video path's sampling and pixel normalisation). */
import { ProcessorError } from './processor-error';
import type { VideoSamplingDefaults } from './processor-types';
import type { PixelNormalisation } from './video-frames';

type JsonObject = Record<string, unknown>;

function positiveNumber(value: unknown, what: string, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new ProcessorError(`preprocessor_config.json ${what} must be a positive ${integer ? 'whole number' : 'number'} (got ${JSON.stringify(value)}).`);
  }
  return value;
}

/** video_sampling {fps, max_frames, video_size} of a SmolVLM2 preprocessor config; null without one. */
export function readVideoSampling(preprocessorConfig: JsonObject, tileSize: number): VideoSamplingDefaults | null {
  const sampling = preprocessorConfig.video_sampling;
  if (sampling === undefined || sampling === null) return null;
  if (typeof sampling !== 'object' || Array.isArray(sampling)) throw new ProcessorError('preprocessor_config.json video_sampling must be an object.');
  const { fps, max_frames: maxFrames } = sampling as JsonObject;
  // Frames end as one square tile of max_image_size (video_size.longest_edge is only the first, aspect-keeping resize).
  return { fps: positiveNumber(fps, 'video_sampling.fps', false), maxFrames: positiveNumber(maxFrames, 'video_sampling.max_frames', true), frameSize: tileSize };
}

export function readNormalisation(preprocessorConfig: JsonObject): PixelNormalisation {
  const triple = (value: unknown, fallback: number): [number, number, number] => {
    if (typeof value === 'number') return [value, value, value];
    if (Array.isArray(value) && value.length === 3 && value.every((x) => typeof x === 'number')) return value as [number, number, number];
    return [fallback, fallback, fallback];
  };
  const rescale = preprocessorConfig.do_rescale === false ? 1 : typeof preprocessorConfig.rescale_factor === 'number' ? preprocessorConfig.rescale_factor : 1 / 255;
  const normalize = preprocessorConfig.do_normalize !== false;
  return {
    rescaleFactor: rescale,
    mean: normalize ? triple(preprocessorConfig.image_mean, 0.5) : [0, 0, 0],
    std: normalize ? triple(preprocessorConfig.image_std, 0.5) : [1, 1, 1],
  };
}
