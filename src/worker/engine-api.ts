/**
 * The EngineApi the UI talks to, as a thin shell around one ChatSession: it makes the GPU device and recovers from its
 * loss, loads models (cache, progress throttling) and caches visual-head scores, and frees the comlink callbacks.
 * Everything a question does is the session's. What differs between the browser worker and a Node test (device,
 * cache, image decoder, probe canvas) comes in as an {@link EnginePlatform}.
 *
 * A lost device is reported to the UI, a new one is made and the model is reloaded from the cache; the conversation
 * (and the picture) stay.
 */
import { releaseProxy } from 'comlink';
import { GpuContext, WebGpuUnavailableError } from '../engine/gpu';
import { VlmModel } from '../engine/model';
import { checkTensorsFit, WeightTooLargeError } from '../engine/weights';
import type { ModelCache } from '../model-io/cache';
import { loadModel as loadModelFiles, type LoadedModel } from '../model-io/loader';
import { createProcessor, type ProcessorImage } from '../model-io/processor';
import type { ProbeRenderer } from '../sparsemm/probe-set';
import { parseScoreFile, serializeScoreFile, type HeadScoreFile } from '../sparsemm/score-file';
import { ChatSession } from '../session/chat-session';
import { errorMessage } from '../errors';
import type { CachedModelInfo, EngineApi, EngineEvent, EngineEventCallback, EngineFeatures, InitResult, LoadStepCallback, ModelSourceSpec, ModelSummary } from './api';
import type { DecodedImage } from './image-input';
import { sourceDisplayName, summarizeModel } from './model-summary';
import { throttleProgress } from './progress-throttle';

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

const scoresCacheFile = '.visual-head-scores.json';
const manifestSuffix = '/.manifest.json';

/** Callbacks arrive as comlink proxies, each holding a MessagePort; free it once the call is over. */
function releaseCallback(callback: unknown): void {
  const release = (callback as { [releaseProxy]?: () => void })[releaseProxy];
  if (typeof release === 'function') release.call(callback);
}

function readLongestEdge(files: Map<string, ArrayBuffer>): number {
  const bytes = files.get('preprocessor_config.json');
  try {
    const parsed = bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as { size?: { longest_edge?: unknown } }) : null;
    const edge = parsed?.size?.longest_edge;
    return typeof edge === 'number' && edge > 0 ? edge : 2048;
  } catch {
    return 2048; // createProcessor reports a broken file itself
  }
}

function groupCachedModels(entries: { key: string; bytes: number }[]): CachedModelInfo[] {
  const sourceIds = entries.filter((e) => e.key.endsWith(manifestSuffix)).map((e) => e.key.slice(0, -manifestSuffix.length));
  return sourceIds
    .map((sourceId) => {
      const own = entries.filter((e) => e.key.startsWith(`${sourceId}/`));
      return { sourceId, bytes: own.reduce((sum, e) => sum + e.bytes, 0), files: own.filter((e) => !e.key.endsWith(manifestSuffix)).length };
    })
    .sort((a, b) => a.sourceId.localeCompare(b.sourceId));
}

/** Runs `body`, then frees the comlink callback it was given. */
async function releasingAfter<T>(callback: unknown, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    releaseCallback(callback);
  }
}

export function createEngineApi(platform: EnginePlatform): EngineApi {
  const { modelCache } = platform;
  const session = new ChatSession({
    noScoresHint: 'Find or import visual heads first.',
    saveScores: (sourceId, file) => modelCache.put(`${sourceId}/${scoresCacheFile}`, new TextEncoder().encode(serializeScoreFile(file))),
  });
  let gpu: GpuContext | null = null;
  let initResult: Promise<InitResult> | null = null;
  /** Where the loaded model came from, to reload it after a device loss. */
  let loadedSource: ModelSourceSpec | null = null;
  let eventCallback: EngineEventCallback | null = null;
  /** The picture the app set last (setImage); New chat starts over with it. */
  let chatPicture: { pixels: ProcessorImage; name: string } | null = null;

  const emit = (event: EngineEvent): void => {
    if (eventCallback) void eventCallback(event);
  };

  async function createGpu(): Promise<InitResult> {
    try {
      const created = await platform.createGpu();
      gpu = created;
      void created.device.lost.then((info) => {
        if (gpu !== created) return; // an old device we replaced on purpose
        void handleDeviceLoss(`${info.reason === 'destroyed' ? 'The device was destroyed' : 'The GPU reset'}${info.message ? `: ${info.message}` : ''}`);
      });
      return { ok: true, adapter: created.adapter };
    } catch (error) {
      // The page lists how to enable WebGPU itself; it only needs what is missing.
      return { ok: false, error: error instanceof WebGpuUnavailableError ? error.reason : errorMessage(error) };
    }
  }

  async function requireGpu(): Promise<GpuContext> {
    initResult ??= createGpu();
    const result = await initResult;
    if (!result.ok || !gpu) throw new Error(result.ok ? 'The GPU device is not available.' : result.error);
    return gpu;
  }

  /**
   * A lost device invalidates every buffer: stop what runs, make a new device and reload the model from the cache.
   * The picture and the conversation live on the CPU and stay.
   */
  function handleDeviceLoss(reason: string): Promise<void> {
    console.error(`WebGPU device lost: ${reason}`);
    session.stop();
    const lostModel = session.detachModel();
    gpu = null;
    initResult = null;
    emit({ type: 'device-lost', message: `The GPU device was lost (${reason}). Reloading the model on a new device…` });
    const source = loadedSource;
    if (!lostModel || !source) return Promise.resolve();
    const reload = (async () => {
      try {
        const ctx = await requireGpu();
        const loaded = await loadModelFiles(source, { cache: modelCache });
        const model = await VlmModel.load(ctx, loaded.weights, loaded.config);
        session.restoreModel({ ...lostModel, model });
        emit({ type: 'device-restored', message: 'A new GPU device is ready and the model was reloaded from the cache; the chat is kept.' });
      } catch (error) {
        emit({ type: 'device-restore-failed', message: `The model could not be reloaded after the device loss: ${errorMessage(error)}` });
      }
    })();
    session.whileReloading(reload);
    return reload;
  }

  async function readCachedScores(sourceId: string): Promise<HeadScoreFile | null> {
    try {
      const bytes = await modelCache.get(`${sourceId}/${scoresCacheFile}`);
      return bytes ? parseScoreFile(new TextDecoder().decode(bytes)) : null;
    } catch (error) {
      console.warn(`Ignoring the cached visual-head scores of ${sourceId}: ${errorMessage(error)}`);
      return null;
    }
  }

  /** Uploads the weights and builds the processor; a model that cannot fit is refused before the old one is freed. */
  async function activateModel(loaded: LoadedModel, source: ModelSourceSpec, onStep?: LoadStepCallback): Promise<void> {
    const ctx = await requireGpu();
    const processor = await createProcessor(loaded);
    let model: VlmModel;
    try {
      // Refused before the old model is freed (GpuWeights.upload applies the same rule), so the loaded one survives.
      checkTensorsFit(ctx.device.limits, loaded.weights.tensors);
      // Free the old model's buffers first: two models may not fit the GPU together.
      session.detachModel()?.model.destroy();
      loadedSource = null;
      model = await VlmModel.load(ctx, loaded.weights, loaded.config, { onStep: (step) => void onStep?.(step) });
    } catch (error) {
      if (error instanceof WeightTooLargeError) throw new Error(`This model cannot run on this GPU: ${error.message}`);
      throw error;
    }
    const ready = { sourceId: loaded.sourceId, model, processor, processorLongestEdge: readLongestEdge(loaded.files) };
    loadedSource = source;
    session.attachModel(ready, await readCachedScores(loaded.sourceId));
  }

  return {
    init() {
      initResult ??= createGpu();
      return initResult;
    },

    loadModel(source, onProgress, onStep) {
      const controller = session.beginLoad();
      let finished = false; // progress that arrives after the end (e.g. from an aborted read) is dropped
      const load = (): Promise<ModelSummary> => releasingAfter(onProgress, async () => {
        try {
          session.checkIdle('loading another model');
          await requireGpu();
          const model = await loadModelFiles(source, {
            cache: modelCache,
            onProgress: throttleProgress((progress) => {
              if (!finished) void onProgress(progress);
            }),
            signal: controller.signal,
          });
          if (controller.signal.aborted) throw controller.signal.reason ?? new DOMException('The load was cancelled.', 'AbortError');
          const summary = summarizeModel(model, sourceDisplayName(source));
          await activateModel(model, source, onStep);
          return summary;
        } finally {
          session.endLoad(controller);
          finished = true;
        }
      });
      return onStep ? releasingAfter(onStep, load) : load();
    },

    cancelLoad() {
      session.cancelLoad();
    },

    async listCachedModels() {
      return groupCachedModels(await modelCache.list());
    },

    async removeCachedModel(sourceId) {
      let freed = 0;
      for (const entry of await modelCache.list()) {
        if (!entry.key.startsWith(`${sourceId}/`)) continue;
        await modelCache.delete(entry.key);
        freed += entry.bytes;
      }
      return freed;
    },

    onEvent(callback) {
      if (eventCallback && eventCallback !== callback) releaseCallback(eventCallback);
      eventCallback = callback;
    },

    features(): EngineFeatures {
      return { visualHeadSearch: true, attentionMaps: true, benchmark: true };
    },

    async setImage(image, name) {
      session.checkIdle('changing the picture');
      // The processor uses at most size.longest_edge; keep a bit more for a sharp thumbnail, never the full 12000 px.
      const decoded = await platform.decodeImage(image, name, session.imageEdgeLimit);
      const conversationReset = session.setImage(decoded.pixels, name);
      // The one-picture app keeps its picture across New chat.
      chatPicture = { pixels: decoded.pixels, name };
      return {
        name,
        bytes: image.size,
        originalWidth: decoded.originalWidth,
        originalHeight: decoded.originalHeight,
        width: decoded.pixels.width,
        height: decoded.pixels.height,
        scaledDown: decoded.scaledDown,
        thumbnail: decoded.thumbnail,
        conversationReset,
      };
    },

    ask(question, options, onToken) {
      return releasingAfter(onToken, () => session.ask(question, options, onToken));
    },

    compare(question, options, onToken) {
      return releasingAfter(onToken, () => session.compare(question, options, onToken));
    },

    stop() {
      session.stop();
    },

    newChat() {
      session.newChat();
      if (chatPicture) session.addImage(chatPicture.pixels, chatPicture.name);
    },

    planBudgets(options) {
      return session.planBudgets(options);
    },

    headScores() {
      return session.headScores();
    },

    importHeadScores(json) {
      return session.importHeadScores(json);
    },

    exportHeadScores() {
      return session.exportHeadScores();
    },

    findVisualHeads(options, onProgress) {
      return releasingAfter(onProgress, () => session.findVisualHeads(options, () => platform.probeRenderer(), onProgress));
    },

    lastAttention() {
      return session.lastAttention();
    },

    async simulateDeviceLoss() {
      const lost = gpu;
      if (!lost) throw new Error('There is no GPU device to lose.');
      lost.device.destroy();
      // The lost promise resolves asynchronously; wait for the recovery it starts.
      await lost.device.lost;
      await Promise.resolve();
      await session.reloaded();
    },

    runBenchmark(request, onProgress) {
      return releasingAfter(onProgress, () => session.runBenchmark(request, onProgress));
    },
  };
}
