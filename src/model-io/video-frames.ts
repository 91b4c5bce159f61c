/**
 * A video as the processor takes it (its track facts, the frames sampled by VIDEO.md §2 and one decoded frame per
 * index), its checks, and a frame's pixels as one normalised tile (VIDEO.md §3: one tile per frame, never split).
 * Decoding is the caller's: WebCodecs in the worker, ffmpeg in the CLI.
 */
import { ProcessorError } from './processor-error';

/** Raw pixels, row-major, interleaved channels (ImageData-like). */
export interface RawImageLike {
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/**
 * One video of a question. `frames[i]` is the frame at `frameIndices[i]` (shown at `timestamps[i]` seconds); decoders
 * should deliver frames at the tile size (VlmProcessor.videoSampling.frameSize, 512 x 512 for SmolVLM2) to keep
 * memory small; the processor resizes any frame that is not that size.
 */
export interface VideoInput {
  /** The file's name, for messages and labels. */
  file: string;
  /** The track's average frame rate. */
  nativeFps: number;
  totalFrames: number;
  /** totalFrames / nativeFps. */
  durationSeconds: number;
  frameIndices: number[];
  /** Seconds of each sampled frame (frameIndices[i] / nativeFps). */
  timestamps: number[];
  frames: RawImageLike[];
}

/** Tells a video from a picture among a prompt's media. */
export function isVideoInput(value: unknown): value is VideoInput {
  return typeof value === 'object' && value !== null && Array.isArray((value as { frames?: unknown }).frames) && 'frameIndices' in value;
}

/** Refuses a video the processor cannot turn into a prompt, naming the file and what is wrong. */
export function checkVideoInput(video: VideoInput): void {
  const name = video.file || 'The video';
  const { frames, frameIndices, timestamps, durationSeconds, nativeFps, totalFrames } = video;
  if (frameIndices.length === 0) throw new ProcessorError(`${name}: no frames were sampled (the video has no frames).`);
  if (frames.length !== frameIndices.length || timestamps.length !== frameIndices.length) {
    throw new ProcessorError(`${name}: ${frames.length} frames and ${timestamps.length} timestamps were given for ${frameIndices.length} sampled frame indices.`);
  }
  if (!(Number.isFinite(nativeFps) && nativeFps > 0) || !(Number.isInteger(totalFrames) && totalFrames > 0)) {
    throw new ProcessorError(`${name}: frame rate ${nativeFps} and frame count ${totalFrames} do not describe a video track.`);
  }
  if (!(Number.isFinite(durationSeconds) && durationSeconds >= 0) || timestamps.some((t) => !(Number.isFinite(t) && t >= 0))) {
    throw new ProcessorError(`${name}: its duration and frame timestamps must be seconds >= 0.`);
  }
  frames.forEach((frame, i) => {
    const { data, width, height, channels } = frame;
    if (!(width >= 1 && height >= 1) || data.length !== width * height * channels) {
      throw new ProcessorError(`${name}: frame ${frameIndices[i]} has ${data.length} values for ${width} x ${height} x ${channels}.`);
    }
  });
}

/** The image processor's rescale and normalisation (preprocessor_config: rescale_factor, image_mean, image_std). */
export interface PixelNormalisation {
  rescaleFactor: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/**
 * A frame already at the tile size as the model's input: [3, size, size], channel-first RGB, value * rescale then
 * (x - mean) / std per channel (grey frames repeat their one channel, alpha is dropped: do_convert_rgb).
 */
export function frameTile(frame: RawImageLike, size: number, norm: PixelNormalisation): Float32Array {
  const { data, width, height, channels } = frame;
  if (width !== size || height !== size) throw new ProcessorError(`A frame tile must be ${size} x ${size}, got ${width} x ${height}.`);
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  const colour = channels >= 3;
  for (let p = 0; p < plane; p++) {
    const base = p * channels;
    for (let c = 0; c < 3; c++) {
      const value = data[colour ? base + c : base];
      out[c * plane + p] = (value * norm.rescaleFactor - norm.mean[c]) / norm.std[c];
    }
  }
  return out;
}

/**
 * Separable linear-filter weights from `from` samples to `to` (PIL's antialiased bilinear: the triangle filter widened
 * by the downscale factor, so shrinking averages every source pixel instead of skipping some).
 */
function resampleWeights(from: number, to: number): { first: Int32Array; count: Int32Array; weights: Float32Array; taps: number } {
  const scale = from / to;
  const support = Math.max(1, scale);
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(to);
  const count = new Int32Array(to);
  const weights = new Float32Array(to * taps);
  for (let x = 0; x < to; x++) {
    const centre = (x + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(from, Math.ceil(centre + support));
    let total = 0;
    let n = 0;
    for (let s = lo; s < hi && n < taps; s++, n++) {
      const w = Math.max(0, 1 - Math.abs((s + 0.5 - centre) / support));
      weights[x * taps + n] = w;
      total += w;
    }
    for (let k = 0; k < n; k++) weights[x * taps + k] /= total || 1;
    first[x] = lo;
    count[x] = n;
  }
  return { first, count, weights, taps };
}

/**
 * A frame resized to size x size RGB (aspect not kept, as transformers' video processor ends: VIDEO.md §3), with an
 * antialiased bilinear filter. transformers resizes bicubic; decoders normally deliver tile-sized frames already.
 */
export function resizeFrame(frame: RawImageLike, size: number): RawImageLike {
  const { data, width, height, channels } = frame;
  const colour = channels >= 3;
  const horizontal = resampleWeights(width, size);
  const vertical = resampleWeights(height, size);
  // Rows first: height x size x 3.
  const rows = new Float32Array(height * size * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < horizontal.count[x]; k++) {
          const sx = horizontal.first[x] + k;
          sum += horizontal.weights[x * horizontal.taps + k] * data[(y * width + sx) * channels + (colour ? c : 0)];
        }
        rows[(y * size + x) * 3 + c] = sum;
      }
    }
  }
  const out = new Uint8ClampedArray(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < vertical.count[y]; k++) sum += vertical.weights[y * vertical.taps + k] * rows[((vertical.first[y] + k) * size + x) * 3 + c];
        out[(y * size + x) * 3 + c] = Math.round(sum);
      }
    }
  }
  return { data: out, width: size, height: size, channels: 3 };
}
