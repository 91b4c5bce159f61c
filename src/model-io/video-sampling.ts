/**
 * Which frames of a video SmolVLM2 looks at (VIDEO.md §2): transformers' SmolVLMVideoProcessor.sample_frames with
 * do_sample_frames on, as apply_chat_template sets it. Pure arithmetic on the track's facts (native average frame
 * rate, frame count), so the browser's demuxer and the CLI's ffprobe get the same indices for the same file.
 */

/** What a container reader tells of a video track. */
export interface VideoTrackFacts {
  /** The track's average frame rate (frames per second), e.g. 29.97. */
  nativeFps: number;
  /** Frames in the track. */
  totalFrames: number;
}

/** The sampling settings (`video_sampling` of preprocessor_config.json: fps 1, max_frames 64). */
export interface VideoSamplingSettings {
  fps: number;
  maxFrames: number;
  /** Seconds skipped at each end of a long clip (transformers' skip_secs, 1). */
  skipSecs?: number;
}

export interface SampledFrames {
  /** Indices of the chosen frames, ascending and distinct. */
  frameIndices: number[];
  /** Seconds of each chosen frame: index / nativeFps. */
  timestamps: number[];
  /** totalFrames / nativeFps. */
  durationSeconds: number;
}

export class VideoSamplingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VideoSamplingError';
  }
}

/** Python's round() on a float: to the nearest integer, halves to the even one (round(2.5) == 2, Math.round gives 3). */
export function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor; // exact for doubles: the bits below the unit
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * numpy's `linspace(start, stop, count, dtype=int)`: start + i * ((stop - start) / (count - 1)) in float64, the last
 * value set to exactly stop, then truncated toward zero; `[start]` when count is 1.
 */
export function linspaceInt(start: number, stop: number, count: number): number[] {
  if (count === 1) return [Math.trunc(start)];
  const step = (stop - start) / (count - 1);
  return Array.from({ length: count }, (_, i) => Math.trunc(i === count - 1 ? stop : start + i * step));
}

function checkFacts({ nativeFps, totalFrames }: VideoTrackFacts): void {
  if (!(Number.isFinite(nativeFps) && nativeFps > 0)) {
    throw new VideoSamplingError(`The video's frame rate must be a positive number of frames per second (got ${nativeFps}).`);
  }
  if (!(Number.isInteger(totalFrames) && totalFrames >= 1)) {
    throw new VideoSamplingError(`The video has no frames to sample (frame count ${totalFrames}).`);
  }
}

/** Checks sampling settings as the app and the CLI take them (fps > 0, whole maxFrames >= 1). */
export function checkSamplingSettings({ fps, maxFrames, skipSecs = 1 }: VideoSamplingSettings): void {
  if (!(Number.isFinite(fps) && fps > 0)) throw new VideoSamplingError(`Frames per second must be a positive number (got ${fps}).`);
  if (!(Number.isInteger(maxFrames) && maxFrames >= 1)) throw new VideoSamplingError(`The maximum number of frames must be a whole number of at least 1 (got ${maxFrames}).`);
  if (!(Number.isFinite(skipSecs) && skipSecs >= 0)) throw new VideoSamplingError(`Seconds skipped at each end must be >= 0 (got ${skipSecs}).`);
}

/** How many frames sampling keeps (before duplicates are dropped): round(fps * duration) within [1, maxFrames]. */
export function desiredFrameCount(facts: VideoTrackFacts, settings: VideoSamplingSettings): number {
  const duration = facts.totalFrames / facts.nativeFps;
  return Math.max(1, Math.min(roundHalfToEven(settings.fps * duration), settings.maxFrames));
}

/** The frames transformers samples from a track with these facts (VIDEO.md §2), with their timestamps. */
export function sampleVideoFrames(facts: VideoTrackFacts, settings: VideoSamplingSettings): SampledFrames {
  checkFacts(facts);
  checkSamplingSettings(settings);
  const { nativeFps, totalFrames } = facts;
  const { fps, maxFrames, skipSecs = 1 } = settings;
  const durationSeconds = totalFrames / nativeFps;
  const desired = desiredFrameCount(facts, settings);

  let start = 0;
  let end = totalFrames - 1;
  // A clip longer than what max_frames covers at fps (plus the two skipped ends) loses its first and last skipSecs.
  if (skipSecs > 0 && durationSeconds - 2 * skipSecs > maxFrames * fps) {
    start = Math.trunc(skipSecs * nativeFps);
    end = Math.trunc(totalFrames - skipSecs * nativeFps);
  }
  start = Math.max(0, start);
  end = Math.min(end, totalFrames - 1);
  if (start >= end) {
    start = 0;
    end = totalFrames - 1;
  }
  // np.unique: sorted, distinct (linspace is already ascending).
  const frameIndices = [...new Set(linspaceInt(start, end, desired))];
  return { frameIndices, timestamps: frameIndices.map((index) => index / nativeFps), durationSeconds };
}
