/**
 * The worker's model lifecycle around one ChatSession: the GPU device (made once, re-made after a loss), model loading
 * (cache, progress throttling, kernels compiled at load), the browser cache of models and of visual-head scores, and
 * the recovery after a device loss (the model is reloaded from the cache; the conversation and its pictures stay).
 */
import { GpuContext, WebGpuUnavailableError } from '../engine/gpu';
import { VlmModel } from '../engine/model';
import { GpuOutOfMemoryError } from '../engine/allocator';
import { checkPlannedFit, WeightTooLargeError } from '../engine/weights';
import type { WeightFormat } from '../model-io/quantize';
import { planWeights, weightBytesFromConfig } from '../model-io/weight-plan';
import type { ModelCache } from '../model-io/cache';
import { loadModel as loadModelFiles, readModelConfig, type LoadedModel } from '../model-io/loader';
import { createProcessor } from '../model-io/processor';
import { parseScoreFile, serializeScoreFile, type HeadScoreFile } from '../sparsemm/score-file';
import type { ChatSession, RowsModelLoader } from '../session/chat-session';
import { errorMessage } from '../errors';
import type { CachedModelInfo, EngineApi, EngineEvent, InitResult, LoadStepCallback, ModelSourceSpec, ModelSummary } from './api';
import { releasingAfter } from './callbacks';
import { sourceDisplayName, summarizeModel } from './model-summary';
import { throttleProgress } from './progress-throttle';

const scoresCacheFile = '.visual-head-scores.json';
const manifestSuffix = '/.manifest.json';

/** Where visual-head scores of a model are cached (beside its files). */
export function saveScoresTo(modelCache: ModelCache): (sourceId: string, file: HeadScoreFile) => Promise<void> {
  return (sourceId, file) => modelCache.put(`${sourceId}/${scoresCacheFile}`, new TextEncoder().encode(serializeScoreFile(file)));
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

export type ModelLifecycleApi = Pick<EngineApi, 'init' | 'loadModel' | 'cancelLoad' | 'weightFormatSizes' | 'loadedModelId' | 'listCachedModels' | 'removeCachedModel' | 'simulateDeviceLoss'>;

/** Beside the API: the loaded model's copy in another weight format, for the Budget sweep's rows (jobs.ts). */
export interface ModelCopies {
  loadWeightCopy: RowsModelLoader;
}

/** What a sweep says when the loaded model's copy in `format` cannot be made on this GPU (nothing was swept). */
export function weightCopyMessage(format: WeightFormat, loaded: { format: WeightFormat; bytes: number; bytesByFormat: Record<WeightFormat, number> }, cause: string): string {
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `The ${format} copy of the model (${mib(loaded.bytesByFormat[format])}) does not fit on this GPU beside the loaded ${loaded.format} ` +
    `weights (${mib(loaded.bytes)}), so nothing was swept: ${cause} Sweep on the loaded weights, or compare the formats with ` +
    `the CLI (fidelity --weights ${format}) on a GPU with more memory.`;
}

export function createModelLifecycle(
  session: ChatSession,
  platform: { createGpu(): Promise<GpuContext>; modelCache: ModelCache },
  emit: (event: EngineEvent) => void,
): ModelLifecycleApi & ModelCopies {
  const { modelCache } = platform;
  let gpu: GpuContext | null = null;
  let initResult: Promise<InitResult> | null = null;
  /** Where the loaded model came from, to reload it after a device loss. */
  let loadedSource: ModelSourceSpec | null = null;
  // The weight format of the loaded model (a device loss reloads it in the same one).
  let loadedFormat: WeightFormat = 'bf16';

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
   * The pictures and the conversation live on the CPU and stay.
   */
  function handleDeviceLoss(reason: string): Promise<void> {
    console.error(`WebGPU device lost: ${reason}`);
    session.interruptForDeviceLoss(reason);
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
        const model = await VlmModel.load(ctx, loaded.weights, loaded.config, { weightFormat: loadedFormat });
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

  /**
   * Uploads the weights in `weightFormat` and builds the processor; a model that cannot fit is refused before the old
   * one is freed. Returns what the weights became.
   */
  async function activateModel(loaded: LoadedModel, source: ModelSourceSpec, weightFormat: WeightFormat, onStep?: LoadStepCallback): Promise<ModelSummary['weights']> {
    const ctx = await requireGpu();
    const processor = await createProcessor(loaded);
    let model: VlmModel;
    try {
      // Refused before the old model is freed (GpuWeights.uploadPlan applies the same rule), so the loaded one survives.
      const shapeOf = (name: string): readonly number[] | undefined => (loaded.weights.has(name) ? loaded.weights.get(name).shape : undefined);
      checkPlannedFit(ctx.device.limits, planWeights(loaded.config, shapeOf, weightFormat).tensors);
      // Free the old model's buffers first: two models may not fit the GPU together.
      session.detachModel()?.model.destroy();
      loadedSource = null;
      model = await VlmModel.load(ctx, loaded.weights, loaded.config, { onStep: (step) => void onStep?.(step), weightFormat });
    } catch (error) {
      if (error instanceof WeightTooLargeError) throw new Error(`This model cannot run on this GPU: ${error.message}`);
      throw error;
    }
    const ready = { sourceId: loaded.sourceId, model, processor, processorLongestEdge: readLongestEdge(loaded.files) };
    loadedSource = source;
    loadedFormat = weightFormat;
    session.attachModel(ready, await readCachedScores(loaded.sourceId));
    const weights = model.loadedWeights;
    return { format: weights.format, gpuBytes: weights.bytes, bytesByFormat: weights.bytesByFormat, note: weights.note };
  }

  /**
   * The loaded model's weights in `format`, a second model on the same device: its files read again as a device loss
   * reads them (the browser cache the load filled; a picked folder's files), then VlmModel.load as the CLI's
   * `fidelity --weights` does. The caller frees it. Out of memory, or above a buffer limit: a message saying so.
   */
  async function loadWeightCopy(format: WeightFormat, signal: AbortSignal, onStep: (step: string) => void): Promise<VlmModel> {
    const source = loadedSource;
    const current = session.current;
    if (!source || !current) throw new Error('Load a model first.');
    const stopped = (): Error => new Error(`Stopped while the ${format} copy of the model was loading; nothing was swept.`);
    const ctx = await requireGpu();
    onStep(`${format} copy: reading the model's files`);
    let loaded: LoadedModel;
    try {
      loaded = await loadModelFiles(source, { cache: modelCache, signal });
    } catch (error) {
      throw signal.aborted ? stopped() : error;
    }
    if (signal.aborted) throw stopped();
    let model: VlmModel;
    try {
      model = await VlmModel.load(ctx, loaded.weights, loaded.config, {
        weightFormat: format,
        onStep: (step) => onStep(`${format} copy: ${step.step}${step.step === 'compiling kernels' ? ` ${step.done}/${step.total}` : ''}`),
      });
    } catch (error) {
      if (error instanceof GpuOutOfMemoryError || error instanceof WeightTooLargeError) throw new Error(weightCopyMessage(format, current.model.loadedWeights, errorMessage(error)));
      throw error;
    }
    if (signal.aborted) {
      model.destroy();
      throw stopped();
    }
    return model;
  }

  return {
    loadWeightCopy,

    init() {
      initResult ??= createGpu();
      return initResult;
    },

    loadModel(source, onProgress, onStep, weightFormat = 'bf16') {
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
          return { ...summary, weights: await activateModel(model, source, weightFormat, onStep) };
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

    async weightFormatSizes(source, download) {
      const read = await readModelConfig(source, { cache: modelCache, download });
      return read && { sourceId: read.sourceId, bytesByFormat: weightBytesFromConfig(read.config) };
    },

    loadedModelId() {
      return session.current?.sourceId ?? null;
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

    async simulateDeviceLoss() {
      const lost = gpu;
      if (!lost) throw new Error('There is no GPU device to lose.');
      lost.device.destroy();
      // The lost promise resolves asynchronously; wait for the recovery it starts.
      await lost.device.lost;
      await Promise.resolve();
      await session.reloaded();
    },
  };
}
