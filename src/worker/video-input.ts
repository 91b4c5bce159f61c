/**
 * Turns a video file the person dropped into the frames SmolVLM2 looks at, inside the worker. Two steps, so the cost of
 * a video is known before anything is decoded:
 *
 * 1. `openVideo` reads the container with mediabunny (a demuxer: it reads MP4/MOV, WebM/Matroska, ... indexes and
 *    gives the video track's packets and their timing, which an HTMLVideoElement does not): the track's frame count
 *    and average frame rate (VIDEO.md §2 samples by frame index, so these must be the numbers ffprobe gives the CLI),
 *    its codec and whether this browser's WebCodecs can decode it. No frame is decoded.
 * 2. `decodeVideoFrames` decodes only the chosen frames with WebCodecs' VideoDecoder (mediabunny feeds it from the key
 *    frame before each one) and draws each into one tile (512 x 512 for SmolVLM2, aspect not kept: VIDEO.md §3) plus a
 *    small thumbnail for the frame strip.
 *
 * Every failure is a VideoInputError whose message names the file and says what to do.
 */
import { ALL_FORMATS, BlobSource, EncodedPacketSink, Input, UnsupportedInputFormatError, VideoSampleSink, type InputVideoTrack, type VideoCodec } from 'mediabunny';
import type { RawImageLike } from '../model-io/processor';

export class VideoInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VideoInputError';
  }
}

/** What the container says of the video track, before any decoding. */
export interface VideoTrackFacts {
  /** Average frame rate: frames / duration of the track (ffprobe's avg_frame_rate). */
  nativeFps: number;
  /** Frames (packets) in the track (ffprobe's packet count). */
  totalFrames: number;
  /** totalFrames / nativeFps, seconds. */
  durationSeconds: number;
  /** People's name of the codec, e.g. "H.264 (AVC)". */
  codec: string;
  /** The WebCodecs codec string, e.g. "avc1.4d400c"; null when the reader does not know the codec. */
  codecString: string | null;
  /** Container, e.g. "MP4" or "WebM". */
  container: string;
  /** Size of a frame as displayed. */
  width: number;
  height: number;
}

/** An opened video: its facts, and what decoding needs (the track and each frame's time in presentation order). */
export interface OpenedVideo {
  name: string;
  facts: VideoTrackFacts;
  track: InputVideoTrack;
  /** Seconds of frame i, in presentation order (frame index i of the sampler is this list's i-th entry). */
  frameTimes: number[];
  /** Frees the reader. */
  close(): void;
}

/** Progress of decoding one video's chosen frames. */
export interface VideoDecodeProgress {
  name: string;
  decoded: number;
  total: number;
}

/** One decoded frame: the tile's pixels (what the processor gets) and a thumbnail for the strip. */
export interface DecodedVideoFrame {
  index: number;
  /** Seconds (frame index / native frame rate, as the prompt's timestamps). */
  timestamp: number;
  pixels: RawImageLike;
  thumbnail: Blob;
}

const codecNames: Record<VideoCodec, string> = {
  avc: 'H.264 (AVC)',
  hevc: 'H.265 (HEVC)',
  vp8: 'VP8',
  vp9: 'VP9',
  av1: 'AV1',
  prores: 'Apple ProRes',
};

/**
 * Most pixels of a thumbnail's height (never more than the video's own): the strip shows it small, the attention
 * overlay draws the frame from it at up to 420 px. Its width follows the video's aspect ratio.
 */
const thumbnailMaxHeight = 240;

function quoted(name: string): string {
  return name ? `"${name}"` : 'The file';
}

/** Turns what the reader threw while reading packets into a message about a damaged file. */
function damaged(name: string, what: string, error: unknown): VideoInputError {
  const reason = error instanceof Error && error.message ? ` (${error.message})` : '';
  return new VideoInputError(`${quoted(name)} is damaged or cut short: ${what}${reason}. Choose a complete MP4 or WebM file.`);
}

/**
 * The track's average frame rate as ffprobe reports it (avg_frame_rate): MP4/MOV give it as frames / the sum of the
 * frame durations, which mediabunny's packet stats compute the same way. Matroska/WebM store times in whole
 * milliseconds, so frames / duration there is off (90 frames at 30 fps span 3.000333 s); ffprobe takes the track's
 * exact frame duration instead, and the rate that explains every rounded timestamp (mediabunny's underlying frame
 * rate) is that same number. A variable-rate track has no such rate: frames / duration then.
 */
async function averageFrameRate(track: InputVideoTrack, isobmff: boolean, packetRate: number): Promise<number> {
  if (isobmff) return packetRate;
  const metrics = await track.computeFrameRateMetrics({ targetPacketCount: Infinity });
  return metrics.underlyingFrameRate ?? packetRate;
}

/**
 * Reads the container of `blob` and its video track's facts. Decodes nothing. `checkDecodable` (the browser) refuses a
 * codec this browser's WebCodecs cannot decode, naming it.
 */
export async function openVideo(blob: Blob, name: string, checkDecodable = true): Promise<OpenedVideo> {
  if (blob.size === 0) throw new VideoInputError(`${quoted(name)} is empty (0 bytes). Choose an MP4 (H.264) or WebM (VP8/VP9) video.`);
  const input = new Input({ formats: ALL_FORMATS, source: new BlobSource(blob) });
  const fail = (error: VideoInputError): never => {
    input.dispose();
    throw error;
  };
  let container: string;
  let track: InputVideoTrack | null;
  try {
    container = (await input.getFormat()).name;
    track = await input.getPrimaryVideoTrack();
  } catch (error) {
    if (error instanceof UnsupportedInputFormatError) {
      return fail(new VideoInputError(`${quoted(name)} is not a video file this app can read (not MP4, MOV, WebM, MKV, Ogg or MPEG-TS). Choose an MP4 (H.264) or WebM (VP8/VP9) video.`));
    }
    return fail(damaged(name, 'its container could not be read', error));
  }
  if (!track) {
    const kinds = await input.getTracks().then((tracks) => tracks.map((t) => t.type)).catch(() => []);
    const holds = kinds.length > 0 ? `it holds ${[...new Set(kinds)].join(' and ')} only` : 'it holds no tracks';
    return fail(new VideoInputError(`${quoted(name)} has no video track (${holds}). Choose a file with video in it.`));
  }
  const codecId = await track.getCodec();
  const codecString = await track.getCodecParameterString().catch(() => null);
  const codec = codecId ? codecNames[codecId] : 'a codec this app does not know';
  let packetCount: number;
  let packetRate: number;
  const frameTimes: number[] = [];
  try {
    const sink = new EncodedPacketSink(track);
    for await (const packet of sink.packets(undefined, undefined, { metadataOnly: true })) frameTimes.push(packet.timestamp);
    const stats = await track.computePacketStats();
    packetCount = stats.packetCount;
    packetRate = stats.averagePacketRate;
  } catch (error) {
    return fail(damaged(name, 'its frame index could not be read', error));
  }
  if (packetCount === 0 || frameTimes.length === 0) {
    return fail(new VideoInputError(`${quoted(name)} has a video track (${codec}) but no frames: the file is cut short or empty. Choose a complete video.`));
  }
  if (!codecId) return fail(new VideoInputError(`${quoted(name)} uses ${codec} (not H.264, H.265, VP8, VP9, AV1 or ProRes). Convert it to MP4 (H.264) or WebM (VP9).`));
  if (checkDecodable && !(await track.canDecode())) {
    return fail(
      new VideoInputError(
        `${quoted(name)} is ${codec} video${codecString ? ` (${codecString})` : ''}, which this browser cannot decode. ` +
          `Convert it to H.264 (MP4) or VP9 (WebM), e.g. ffmpeg -i "${name || 'in.mp4'}" -c:v libx264 out.mp4.`,
      ),
    );
  }
  // Frame i of the sampler is the i-th frame shown: sort the times (B-frames arrive out of presentation order).
  frameTimes.sort((a, b) => a - b);
  let nativeFps: number;
  try {
    nativeFps = await averageFrameRate(track, container === 'MP4' || container === 'QuickTime File Format', packetRate);
  } catch (error) {
    return fail(damaged(name, 'its frame timing could not be read', error));
  }
  if (!(Number.isFinite(nativeFps) && nativeFps > 0)) return fail(damaged(name, 'its frames have no usable timing', null));
  return {
    name,
    facts: {
      nativeFps,
      totalFrames: packetCount,
      durationSeconds: packetCount / nativeFps,
      codec,
      codecString,
      container,
      width: track.displayWidth,
      height: track.displayHeight,
    },
    track,
    frameTimes,
    close: () => input.dispose(),
  };
}

/** Draws `source` into a width x height canvas and returns its RGB pixels (alpha dropped, as PIL's convert('RGB')). */
function rgbPixels(context: OffscreenCanvasRenderingContext2D, width: number, height: number): RawImageLike {
  const rgba = context.getImageData(0, 0, width, height).data;
  const rgb = new Uint8ClampedArray(width * height * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    rgb[q] = rgba[p];
    rgb[q + 1] = rgba[p + 1];
    rgb[q + 2] = rgba[p + 2];
  }
  return { data: rgb, width, height, channels: 3 };
}

/**
 * Decodes the frames `frameIndices` (ascending, presentation order) of `video` and draws each into a `tileSize` square
 * (aspect not kept, as transformers resizes a video frame) and a thumbnail. Reports each decoded frame through
 * `onProgress`; `signal` stops it between frames.
 */
export async function decodeVideoFrames(
  video: OpenedVideo,
  frameIndices: readonly number[],
  tileSize: number,
  onProgress?: (progress: VideoDecodeProgress) => void,
  signal?: AbortSignal,
): Promise<DecodedVideoFrame[]> {
  const { name, facts, frameTimes } = video;
  for (const index of frameIndices) {
    if (!Number.isInteger(index) || index < 0 || index >= frameTimes.length) {
      throw new VideoInputError(`Frame ${index} of ${quoted(name)} does not exist (it has ${frameTimes.length} frames).`);
    }
  }
  const tile = new OffscreenCanvas(tileSize, tileSize);
  const tileContext = tile.getContext('2d', { willReadFrequently: true });
  const thumbnailHeight = Math.max(1, Math.min(thumbnailMaxHeight, facts.height));
  const thumbWidth = Math.max(1, Math.round((thumbnailHeight * facts.width) / Math.max(1, facts.height)));
  const thumb = new OffscreenCanvas(thumbWidth, thumbnailHeight);
  const thumbContext = thumb.getContext('2d');
  if (!tileContext || !thumbContext) throw new VideoInputError('This browser cannot draw video frames in a worker (no OffscreenCanvas 2D context).');
  tileContext.imageSmoothingQuality = 'high';
  thumbContext.imageSmoothingQuality = 'high';

  const frames: DecodedVideoFrame[] = [];
  const sink = new VideoSampleSink(video.track);
  const total = frameIndices.length;
  onProgress?.({ name, decoded: 0, total });
  try {
    let i = 0;
    for await (const sample of sink.samplesAtTimestamps(frameIndices.map((index) => frameTimes[index]))) {
      const index = frameIndices[i];
      if (!sample) throw damaged(name, `frame ${index} could not be found`, null);
      try {
        sample.draw(tileContext, 0, 0, tileSize, tileSize);
        sample.draw(thumbContext, 0, 0, thumbWidth, thumbnailHeight);
      } finally {
        sample.close();
      }
      frames.push({
        index,
        timestamp: index / facts.nativeFps,
        pixels: rgbPixels(tileContext, tileSize, tileSize),
        thumbnail: await thumb.convertToBlob({ type: 'image/jpeg', quality: 0.85 }),
      });
      i += 1;
      onProgress?.({ name, decoded: i, total });
      if (signal?.aborted) throw new VideoInputError(`Decoding ${quoted(name)} was stopped.`);
    }
    if (frames.length < total) throw damaged(name, `only ${frames.length} of ${total} chosen frames could be decoded`, null);
  } catch (error) {
    if (error instanceof VideoInputError) throw error;
    const decodeError = error instanceof DOMException || (error instanceof Error && /decod/i.test(error.message));
    throw damaged(name, decodeError ? `the ${facts.codec} decoder failed at frame ${frameIndices[frames.length]}` : `frame ${frameIndices[frames.length]} could not be read`, error);
  }
  return frames;
}
