/**
 * The EngineApi the UI talks to, as a thin shell around one ChatSession, put together from three parts that each read
 * on their own: the model lifecycle (GPU device and its loss, loading, caches: model-lifecycle.ts), the conversation's
 * pictures and context (conversation-state.ts) and the jobs (questions, search, benchmark: jobs.ts). Everything a
 * question does is the session's. What differs between the browser worker and a Node test (device, cache, image
 * decoder, probe canvas) comes in as an {@link EnginePlatform}.
 */
import type { GpuContext } from '../engine/gpu';
import type { ModelCache } from '../model-io/cache';
import type { ProbeRenderer } from '../sparsemm/probe-set';
import { ChatSession } from '../session/chat-session';
import type { EngineApi, EngineEvent, EngineEventCallback, EngineFeatures } from './api';
import { releaseCallback } from './callbacks';
import { createConversationState } from './conversation-state';
import { createConversationVideos, type VideoSession } from './conversation-videos';
import type { DecodedImage } from './image-input';
import { createJobs } from './jobs';
import { createModelLifecycle, saveScoresTo } from './model-lifecycle';

/** What the engine needs from where it runs. */
export interface EnginePlatform {
  /** Makes a GPU device; rejects with WebGpuUnavailableError when there is none. */
  createGpu(): Promise<GpuContext>;
  modelCache: ModelCache;
  /** Decodes a picture file to pixels of at most `maxEdge` on the longer side, plus a thumbnail. */
  decodeImage(image: Blob, name: string, maxEdge: number): Promise<DecodedImage>;
  /** Measures and draws the visual-head probes. */
  probeRenderer(): ProbeRenderer;
}

export function createEngineApi(platform: EnginePlatform): EngineApi {
  const session = new ChatSession({ noScoresHint: 'Find or import visual heads first.', saveScores: saveScoresTo(platform.modelCache) });
  let eventCallback: EngineEventCallback | null = null;
  const emit = (event: EngineEvent): void => {
    if (eventCallback) void eventCallback(event);
  };

  // The weight copy stays off the comlink API: only the sweep job uses it.
  const { loadWeightCopy, ...lifecycle } = createModelLifecycle(session, platform, emit);
  return {
    ...lifecycle,
    ...createConversationState(session, (image, name, maxEdge) => platform.decodeImage(image, name, maxEdge)),
    ...createConversationVideos(videoSessionOf(session)),
    ...createJobs(session, () => platform.probeRenderer(), loadWeightCopy),

    onEvent(callback) {
      if (eventCallback && eventCallback !== callback) releaseCallback(eventCallback);
      eventCallback = callback;
    },

    features(): EngineFeatures {
      return { visualHeadSearch: true, attentionMaps: true, benchmark: true };
    },
  };
}

/** The session's videos as the worker's video flow sees them (the model's video path, its prompt tokens, the videos). */
function videoSessionOf(session: ChatSession): VideoSession {
  return {
    checkIdle: (what) => session.checkIdle(what),
    videoSampling: () => {
      const found = session.videoSampling();
      return found ? { fps: found.fps, maxFrames: found.maxFrames, frameSize: found.frameSize } : null;
    },
    videoPromptTokens: (sample) => session.videoPromptTokens(sample),
    contextUsage: () => session.contextUsage(),
    addVideo: (video) => session.addVideo(video).id,
    removeVideo: (id) => session.removeVideo(id),
    videos: () => session.videos(),
  };
}
