/** What the video parts of the chat say: pure text and file sorting from the worker's video facts, for the UI and its tests. */
import type { ChatVideoInfo, VideoFrameInfo, VideoProgress } from '../worker/api';
import { formatCount } from './format';

/** Containers the demuxer reads, by file extension (a file without a type still goes the right way). */
const videoExtensions = /\.(mp4|m4v|mov|webm|mkv|ogv|ts|mts)$/i;

/** A video file by its type, or by its extension when the browser gave none. Audio-only containers count too (refused with their reason). */
export function isVideoFile(file: { type: string; name: string }): boolean {
  if (file.type) return file.type.startsWith('video/');
  return videoExtensions.test(file.name);
}

/** Splits what was dropped, pasted or picked at once into pictures and videos, each in the given order. */
export function splitMediaFiles<T extends { type: string; name: string }>(files: readonly T[]): { pictures: T[]; videos: T[] } {
  const pictures: T[] = [];
  const videos: T[] = [];
  for (const file of files) (isVideoFile(file) ? videos : pictures).push(file);
  return { pictures, videos };
}

/** "4.0 s", "1 min 05 s": a video's length for people. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`;
}

/** "29.97 fps", "24 fps". */
export function formatFps(fps: number): string {
  return `${Number.isInteger(fps) ? fps : Number(fps.toFixed(3))} fps`;
}

/** "H.264 (AVC) in MP4 · 256 x 192 · 4.0 s, 96 frames at 24 fps · 4 sampled at 1 fps (max 64) · 290 tokens" */
export function videoFacts(video: ChatVideoInfo): string {
  const file = `${video.codec} in ${video.container} · ${video.width} x ${video.height}`;
  const track = `${formatDuration(video.durationSeconds)}, ${formatCount(video.totalFrames)} frames at ${formatFps(video.nativeFps)}`;
  const sampled = `${video.frames.length} sampled at ${formatFps(video.sampling.fps)} (max ${video.sampling.maxFrames})`;
  const tokens = video.promptTokens !== null ? ` · ${formatCount(video.promptTokens)} tokens` : '';
  return `${file} · ${track} · ${sampled}${tokens}`;
}

/** A frame's caption in the strip: its time as the prompt writes it, and its index in the file. */
export function frameCaption(frame: VideoFrameInfo): { time: string; index: string } {
  return { time: frame.label, index: `frame ${frame.index}` };
}

/** "Reading clip.mp4…" / "Decoding clip.mp4: 3 / 10 frames". */
export function progressText(progress: VideoProgress): string {
  return progress.stage === 'reading' ? `Reading ${progress.name}…` : `Decoding ${progress.name}: ${progress.decoded} / ${progress.total} frames`;
}
