/** The check made before any GPU work that a prompt and its answer fit the model's context, with what to do if not. */
import type { VlmModel } from '../engine/model';
import type { PreparedInputs, VlmProcessor } from '../model-io/processor';
import { desiredFrameCount, sampleVideoFrames } from '../model-io/video-sampling';

/** A prompt the model's context cannot hold; thrown before any GPU work. */
export class ContextOverflowError extends Error {
  constructor(
    message: string,
    readonly neededTokens: number,
    readonly contextTokens: number,
    /** With a video in the prompt: how many frames of its last video would fit (0: none); null without a video. */
    readonly framesThatFit: number | null = null,
  ) {
    super(message);
    this.name = 'ContextOverflowError';
  }
}

/**
 * How many frames of the prompt's last video fit: the most m for which the prompt, with that video sampled at
 * max_frames = m (at the model's fps, or more when that gives fewer than m), plus the answer fits. Exact: the
 * video's entry is swapped for the m-frame one's, whose first and last words meet the same neighbours.
 */
function framesThatFit(prepared: PreparedInputs, processor: VlmProcessor, room: number): number | null {
  const video = prepared.videos.at(-1);
  if (!video) return null;
  const current = processor.videoPromptTokensFor(video);
  const fps = processor.videoSampling?.fps ?? 1;
  const tokensWith = (m: number): number => {
    const facts = { nativeFps: video.nativeFps, totalFrames: video.totalFrames };
    const enough = desiredFrameCount(facts, { fps, maxFrames: m }) >= m ? fps : video.nativeFps;
    return prepared.inputIds.length - current + processor.videoPromptTokensFor(sampleVideoFrames(facts, { fps: enough, maxFrames: m }));
  };
  // Binary search for the largest m in [0, frames - 1] that fits (0: none does).
  let lo = 0;
  let hi = video.frameIndices.length - 1;
  while (lo < hi) {
    const m = Math.ceil((lo + hi) / 2);
    if (tokensWith(m) <= room) lo = m;
    else hi = m - 1;
  }
  return lo;
}

/** Refuses a prompt that with its answer would not fit the model's context, saying by how much and what to do. */
export function checkContext(model: VlmModel, prepared: PreparedInputs, maxNewTokens: number, processor?: VlmProcessor): void {
  const context = model.config.text.maxPositionEmbeddings;
  const promptTokens = prepared.inputIds.length;
  const needed = promptTokens + maxNewTokens;
  if (needed <= context) return;
  const imageTokens = prepared.imageTokenCount;
  const overBy = `This prompt needs ${promptTokens} tokens (${promptTokens - imageTokens} text, ${imageTokens} image) plus ${maxNewTokens} for the answer: ` +
    `${needed - context} more than the model's context of ${context} tokens.`;
  const fit = processor ? framesThatFit(prepared, processor, context - maxNewTokens) : null;
  if (fit !== null) {
    const video = prepared.videos[prepared.videos.length - 1];
    const advice = fit > 0
      ? `${fit} of the ${video.frameIndices.length} frames of ${video.file} fit: set "max frames" to ${fit} (or lower the frames per second)`
      : `no frame of ${video.file} fits: remove it`;
    throw new ContextOverflowError(`${overBy} ${advice}, start a new chat, or ask for fewer new tokens.`, needed, context, fit);
  }
  throw new ContextOverflowError(
    `${overBy} Remove an image, start a new chat, set "longest image edge" lower, or ask for fewer new tokens.`,
    needed,
    context,
  );
}
