/**
 * Video files for the CLI, read with Debian's ffmpeg (npm test's system check installs it): ffprobe gives the video
 * track's frame count (packets counted) and average frame rate, the numbers the app's container reader (mediabunny,
 * src/worker/video-input.ts) gives for the same file (tests/unit/video-input.test.ts checks they agree), so the
 * sampler (VIDEO.md §2) picks the same frame indices in both; ffmpeg then decodes only those frames, each resized to
 * one square tile (aspect not kept, VIDEO.md §3), as raw RGB.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import type { RawImageLike, VideoInput } from '../model-io/processor';
import { sampleVideoFrames, type VideoSamplingSettings, type VideoTrackFacts } from '../model-io/video-sampling';
import { UsageError } from './args';

/** A file ffprobe or ffmpeg could not use as a video (reported as a usage error, exit code 2). */
export class VideoFileError extends UsageError {}

const installHint = 'install ffmpeg (Debian: apt-get install -y ffmpeg; npm test\'s system check does it)';

/** Runs an ffmpeg tool and gives its stdout; a missing tool or a failure is a VideoFileError naming the file. */
function runTool(tool: 'ffprobe' | 'ffmpeg', args: string[], file: string, what: string): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    execFile(tool, args, { encoding: 'buffer', maxBuffer: 2 ** 31 - 1 }, (error, stdout, stderr) => {
      if (!error) return resolvePromise(stdout);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new VideoFileError(`${tool} is not installed, so ${file} cannot be read: ${installHint}.`));
      const detail = stderr.toString('utf8').trim().split('\n').at(-1) ?? error.message;
      reject(new VideoFileError(`${file}: ${what} (${tool}: ${detail || error.message}). Choose a complete MP4 or WebM video.`));
    });
  });
}

/** What ffprobe says of a file's first video track, before any decoding. */
export interface VideoFileFacts extends VideoTrackFacts {
  file: string;
  /** totalFrames / nativeFps. */
  durationSeconds: number;
  /** ffmpeg's codec name ("h264", "vp9", ...). */
  codec: string;
  width: number;
  height: number;
}

/** "30000/1001" -> 29.97...; null for "0/0" or anything that is not a positive rate. */
function parseRate(text: string | undefined): number | null {
  const [num, den] = (text ?? '').split('/').map(Number);
  const rate = den === undefined ? num : num / den;
  return Number.isFinite(rate) && rate > 0 ? rate : null;
}

/**
 * The frame count (ffprobe -count_packets: every packet of the track, read without decoding) and average frame rate
 * (avg_frame_rate) of `file`'s first video track.
 */
export async function probeVideoFile(file: string): Promise<VideoFileFacts> {
  if (!existsSync(file) || !statSync(file).isFile()) throw new VideoFileError(`the video ${file} does not exist`);
  if (statSync(file).size === 0) throw new VideoFileError(`the video ${file} is an empty file`);
  const stdout = await runTool(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,nb_read_packets', '-of', 'json', file],
    file,
    'not a video file ffprobe can read',
  );
  const streams = (JSON.parse(stdout.toString('utf8')) as { streams?: Record<string, unknown>[] }).streams ?? [];
  const stream = streams[0];
  if (!stream) throw new VideoFileError(`${file} has no video track. Choose a file with video in it.`);
  const totalFrames = Number(stream.nb_read_packets);
  if (!(Number.isInteger(totalFrames) && totalFrames > 0)) throw new VideoFileError(`${file} has a video track but no frames: the file is cut short or empty.`);
  // An MP4 cut short still lists every frame in its index (nb_frames); the frames it lost cannot be decoded, and the
  // app's reader (which counts the index) would sample other frames: refuse it as the app does.
  const listed = Number(stream.nb_frames);
  if (Number.isInteger(listed) && listed > totalFrames) {
    throw new VideoFileError(`${file} is damaged or cut short: its index lists ${listed} frames but only ${totalFrames} are in the file. Choose a complete video.`);
  }
  // avg_frame_rate is 0/0 when the container gives no duration; the stream's base rate is what ffprobe falls back on.
  const nativeFps = parseRate(stream.avg_frame_rate as string | undefined) ?? parseRate(stream.r_frame_rate as string | undefined);
  if (nativeFps === null) throw new VideoFileError(`${file}: its frames have no usable timing (avg_frame_rate ${String(stream.avg_frame_rate)}).`);
  return {
    file,
    nativeFps,
    totalFrames,
    durationSeconds: totalFrames / nativeFps,
    codec: String(stream.codec_name ?? 'unknown'),
    width: Number(stream.width),
    height: Number(stream.height),
  };
}

/**
 * Decodes the frames `frameIndices` (presentation order, as ffmpeg's select filter counts them) of `file`, each
 * resized to tileSize x tileSize RGB (bicubic; swscale widens the filter when shrinking, so it is antialiased as
 * transformers' resize is). A file that yields fewer frames (cut short, corrupt) is refused, naming how many.
 */
export async function decodeVideoFrames(file: string, frameIndices: readonly number[], tileSize: number): Promise<RawImageLike[]> {
  if (frameIndices.length === 0) return [];
  const select = frameIndices.map((index) => `eq(n\\,${index})`).join('+');
  const stdout = await runTool(
    'ffmpeg',
    [
      '-v', 'error', '-nostdin', '-i', file, '-map', '0:v:0', '-an',
      '-vf', `select='${select}',scale=${tileSize}:${tileSize}:flags=bicubic+accurate_rnd+full_chroma_int`,
      '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-',
    ],
    file,
    'its frames could not be decoded',
  );
  const frameBytes = tileSize * tileSize * 3;
  const decoded = Math.floor(stdout.length / frameBytes);
  if (decoded < frameIndices.length) {
    throw new VideoFileError(`${file} is damaged or cut short: only ${decoded} of the ${frameIndices.length} chosen frames could be decoded. Choose a complete video.`);
  }
  return frameIndices.map((_, i) => ({ data: new Uint8Array(stdout.buffer, stdout.byteOffset + i * frameBytes, frameBytes), width: tileSize, height: tileSize, channels: 3 }));
}

/** A probed file sampled at `settings` (VIDEO.md §2) and its chosen frames decoded at `tileSize`: what the processor takes. */
export async function readVideoInput(facts: VideoFileFacts, settings: VideoSamplingSettings, tileSize: number): Promise<VideoInput> {
  const sampled = sampleVideoFrames(facts, settings);
  const frames = await decodeVideoFrames(facts.file, sampled.frameIndices, tileSize);
  return { file: facts.file, nativeFps: facts.nativeFps, totalFrames: facts.totalFrames, durationSeconds: sampled.durationSeconds, frameIndices: sampled.frameIndices, timestamps: sampled.timestamps, frames };
}
