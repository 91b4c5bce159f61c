/// <reference lib="webworker" />
/**
 * The single engine worker. It owns the GPUDevice, the model on the GPU, the processor, the current picture and the
 * conversation; the UI reaches it only through comlink (see api.ts for the contract).
 *
 * One question runs at a time: a second one is refused, never interleaved. A lost device is reported to the UI, a
 * new one is made and the model is reloaded from the browser cache; the conversation (and the picture) stay.
 */
import '../model-io/onnx-wasm-assets';
import { expose, releaseProxy } from 'comlink';
import { AttentionMapRecorder } from '../engine/attention-map';
import { runBenchmark } from '../engine/benchmark';
import { GpuContext, WebGpuUnavailableError } from '../engine/gpu';
import { findVisualHeads } from '../engine/visual-heads';
import { probeRenderer } from '../sparsemm/probe-set';
import { VlmModel, type GenerateResult, type KvPolicy } from '../engine/model';
import { browserShaderSource } from '../engine/shaders-browser';
import { packedBf16Bytes, WeightTooLargeError } from '../engine/weights';
import { CacheStorageModelCache } from '../model-io/cache';
import { loadModel as loadModelFiles, type LoadedModel } from '../model-io/loader';
import { createProcessor, type ChatMessage, type PreparedInputs, type RawImageLike, type VlmProcessor } from '../model-io/processor';
import { defaultBudgetParams, headCapacities, type BudgetParams } from '../sparsemm/budgets';
import { headScoreMatrix, parseScoreFile, scoreFileShape, serializeScoreFile, type HeadScoreFile } from '../sparsemm/score-file';
import type {
  AskOptions,
  AttentionSnapshot,
  BenchmarkProgress,
  BenchmarkReport,
  BenchmarkRequestData,
  BudgetPlan,
  CachedModelInfo,
  CompareResult,
  EngineApi,
  EngineEvent,
  EngineEventCallback,
  EngineFeatures,
  HeadScoresInfo,
  HeadSearchOptions,
  HeadSearchProgress,
  ImageInfo,
  ImageTokenLayout,
  InitResult,
  ModelSourceSpec,
  ModelSummary,
  ProgressCallback,
  RunResult,
  TokenCallback,
} from './api';
import { decodeImage } from './image-input';
import { sourceDisplayName, summarizeModel } from './model-summary';
import { throttleProgress } from './progress-throttle';
import { PeakSampler, prefixCapacities, stepRecords, textDelta } from './run-metrics';

/** The model as the worker keeps it: on the GPU, plus the small files the processor needs (the weights file is dropped). */
interface ReadyModel {
  source: ModelSourceSpec;
  sourceId: string;
  model: VlmModel;
  processor: VlmProcessor;
  /** Longest picture edge the image processor uses (preprocessor_config size.longest_edge). */
  processorLongestEdge: number;
}

interface CurrentImage {
  pixels: RawImageLike;
  name: string;
}

interface HeadScores {
  file: HeadScoreFile;
  matrix: number[][];
  origin: HeadScoresInfo['origin'];
}

const state: {
  gpu: GpuContext | null;
  ready: ReadyModel | null;
  image: CurrentImage | null;
  /** Messages of the conversation so far (the picture sits on the first user message). */
  history: ChatMessage[];
  scores: HeadScores | null;
  /** Prompt length of the last question (for budget plans between runs). */
  lastPromptLength: number | null;
  /** Where each head looked at the last token of the last full-cache answer about a picture. */
  lastAttention: AttentionSnapshot | null;
} = { gpu: null, ready: null, image: null, history: [], scores: null, lastPromptLength: null, lastAttention: null };


let initResult: Promise<InitResult> | null = null;
let loadController: AbortController | null = null;
/** The running question (or search); null when idle. */
let runController: AbortController | null = null;
/** What the running job is, for the message that refuses a second one. */
let runningJob = '';
let eventCallback: EngineEventCallback | null = null;
/** Set while the worker re-creates the device and reloads the model after a loss. */
let recovering: Promise<void> | null = null;

const modelCache = new CacheStorageModelCache();
const scoresCacheFile = '.visual-head-scores.json';
const manifestSuffix = '/.manifest.json';

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function emit(event: EngineEvent): void {
  if (eventCallback) void eventCallback(event);
}

async function createGpu(): Promise<InitResult> {
  try {
    const gpu = await GpuContext.create(navigator.gpu, browserShaderSource);
    state.gpu = gpu;
    void gpu.device.lost.then((info) => {
      if (state.gpu !== gpu) return; // an old device we replaced on purpose
      void handleDeviceLoss(`${info.reason === 'destroyed' ? 'The device was destroyed' : 'The GPU reset'}${info.message ? `: ${info.message}` : ''}`);
    });
    return { ok: true, adapter: gpu.adapter };
  } catch (error) {
    // The page lists how to enable WebGPU itself; it only needs what is missing.
    return { ok: false, error: error instanceof WebGpuUnavailableError ? error.reason : errorMessage(error) };
  }
}

async function requireGpu(): Promise<GpuContext> {
  initResult ??= createGpu();
  const result = await initResult;
  if (!result.ok || !state.gpu) throw new Error(result.ok ? 'The GPU device is not available.' : result.error);
  return state.gpu;
}

/**
 * A lost device invalidates every buffer: stop what runs, make a new device and reload the model from the cache.
 * The picture and the conversation live on the CPU and stay.
 */
function handleDeviceLoss(reason: string): Promise<void> {
  console.error(`WebGPU device lost: ${reason}`);
  runController?.abort();
  const lostModel = state.ready;
  state.gpu = null;
  state.ready = null;
  initResult = null;
  emit({ type: 'device-lost', message: `The GPU device was lost (${reason}). Reloading the model on a new device…` });
  if (!lostModel) return Promise.resolve();
  recovering = (async () => {
    try {
      const gpu = await requireGpu();
      const loaded = await loadModelFiles(lostModel.source, { cache: modelCache });
      const model = await VlmModel.load(gpu, loaded.weights, loaded.config);
      state.ready = { ...lostModel, model };
      emit({ type: 'device-restored', message: 'A new GPU device is ready and the model was reloaded from the cache; the chat is kept.' });
    } catch (error) {
      emit({ type: 'device-restore-failed', message: `The model could not be reloaded after the device loss: ${errorMessage(error)}` });
    } finally {
      recovering = null;
    }
  })();
  return recovering;
}

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

async function requireReady(): Promise<ReadyModel> {
  if (recovering) await recovering;
  if (!state.ready) throw new Error('Load a model first.');
  return state.ready;
}

function checkIdle(what: string): void {
  if (loadController && what !== 'loading another model') throw new Error(`A model is loading: wait for it before ${what}.`);
  if (runController) throw new Error(`The engine is busy ${runningJob}: press Stop or wait for it to finish before ${what}.`);
}

/** Marks `controller` as the one running job. */
function startJob(controller: AbortController, description: string): void {
  runController = controller;
  runningJob = description;
}

/**
 * Refuses, before anything is freed or allocated, a model with a tensor that this GPU cannot bind (the same rule as
 * GpuWeights.upload, checked here too so that the loaded model survives the refusal).
 */
function checkTensorLimits(loaded: LoadedModel, gpu: GpuContext): void {
  const { maxStorageBufferBindingSize, maxBufferSize } = gpu.device.limits;
  const limit = Math.min(maxStorageBufferBindingSize, maxBufferSize);
  for (const [name, info] of loaded.weights.tensors) {
    const bytes = packedBf16Bytes(info.elementCount);
    if (bytes > limit) {
      const which = maxStorageBufferBindingSize <= maxBufferSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
      throw new Error(
        `This model cannot run on this GPU: tensor "${name}" [${info.shape.join(', ')}] needs ${bytes} bytes as bf16, above the adapter's ${which} (${limit} bytes).`,
      );
    }
  }
}

/** Uploads the weights and builds the processor; a model that cannot fit is refused before the old one is freed. */
async function activateModel(loaded: LoadedModel, source: ModelSourceSpec): Promise<void> {
  const gpu = await requireGpu();
  const processor = await createProcessor(loaded);
  checkTensorLimits(loaded, gpu);
  let model: VlmModel;
  try {
    // Free the old model's buffers first: two models may not fit the GPU together.
    state.ready?.model.destroy();
    state.ready = null;
    model = await VlmModel.load(gpu, loaded.weights, loaded.config);
  } catch (error) {
    if (error instanceof WeightTooLargeError) throw new Error(`This model cannot run on this GPU: ${error.message}`);
    throw error;
  }
  state.ready = { source, sourceId: loaded.sourceId, model, processor, processorLongestEdge: readLongestEdge(loaded.files) };
  state.history = [];
  state.lastPromptLength = null;
  state.lastAttention = null;
  state.scores = await readCachedScores(loaded.sourceId, loaded.config.text.numLayers, loaded.config.text.numHeads);
}

async function readCachedScores(sourceId: string, layers: number, heads: number): Promise<HeadScores | null> {
  try {
    const bytes = await modelCache.get(`${sourceId}/${scoresCacheFile}`);
    if (!bytes) return null;
    const file = parseScoreFile(new TextDecoder().decode(bytes));
    return { file, matrix: headScoreMatrix(file, layers, heads), origin: 'cache' };
  } catch (error) {
    console.warn(`Ignoring the cached visual-head scores of ${sourceId}: ${errorMessage(error)}`);
    return null;
  }
}

function scoresInfo(scores: HeadScores, ready: ReadyModel): HeadScoresInfo {
  const lists = Object.values(scores.file);
  return { matrix: scores.matrix, kvHeads: ready.model.config.text.numKvHeads, origin: scores.origin, samples: lists[0]?.length ?? 0 };
}

async function adoptScores(file: HeadScoreFile, origin: HeadScoresInfo['origin']): Promise<HeadScoresInfo> {
  const ready = await requireReady();
  const { text } = ready.model.config;
  const matrix = headScoreMatrix(file, text.numLayers, text.numHeads);
  state.scores = { file, matrix, origin };
  try {
    await modelCache.put(`${ready.sourceId}/${scoresCacheFile}`, new TextEncoder().encode(serializeScoreFile(file)));
  } catch (error) {
    console.warn(`The visual-head scores could not be cached: ${errorMessage(error)}`);
  }
  return scoresInfo(state.scores, ready);
}

function budgetParams(options: AskOptions): BudgetParams {
  return { ...defaultBudgetParams, budget: options.budget, window: options.window, ratio: options.ratio };
}

/** The policy for the engine plus what the person should be told about it. */
function kvPolicyFor(options: AskOptions, ready: ReadyModel): { kvPolicy: KvPolicy | undefined; warnings: string[] } {
  if (options.policy === 'full') return { kvPolicy: undefined, warnings: [] };
  const warnings: string[] = [];
  let headScores: number[][] | undefined;
  if (options.policy === 'sparsemm') {
    if (state.scores) {
      headScores = state.scores.matrix;
    } else {
      const { numLayers, numHeads } = ready.model.config.text;
      headScores = Array.from({ length: numLayers }, () => new Array<number>(numHeads).fill(1));
      warnings.push('No visual-head scores for this model: SparseMM uses uniform scores (every head the same budget). Find or import visual heads first.');
    }
  }
  return { kvPolicy: { policy: options.policy, params: budgetParams(options), headScores }, warnings };
}

function imageLayout(prepared: PreparedInputs, ready: ReadyModel): ImageTokenLayout | null {
  if (prepared.numTiles === 0) return null;
  const tile = ready.model.config.vision.imageSize;
  const split = prepared.imageRows > 0 && prepared.imageCols > 0;
  return {
    rows: prepared.imageRows,
    cols: prepared.imageCols,
    tokensPerSide: Math.round(Math.sqrt(ready.model.config.imageSeqLen)),
    resizedWidth: split ? prepared.imageCols * tile : tile,
    resizedHeight: split ? prepared.imageRows * tile : tile,
  };
}

function checkOptions(options: AskOptions): void {
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 1 || options.maxNewTokens > 4096) {
    throw new Error(`maxNewTokens must be a whole number from 1 to 4096 (got ${options.maxNewTokens}).`);
  }
}

/** The messages of the next prompt: the conversation so far plus the new question; the picture goes on the first user message. */
function nextMessages(question: string): ChatMessage[] {
  const messages: ChatMessage[] = state.history.map((m) => ({ ...m }));
  messages.push({ role: 'user', text: question });
  if (state.image) {
    const firstUser = messages.find((m) => m.role === 'user');
    if (firstUser) firstUser.hasImage = true;
  }
  return messages;
}

/** Answer text without special tokens; the tokenizer refuses an empty list (Stop during the prefill makes none). */
function decodeAnswer(processor: VlmProcessor, ids: number[]): string {
  return ids.length === 0 ? '' : processor.decode(ids, { skipSpecialTokens: true });
}

/** One answer with one policy; streams text as `run`. Does not touch the conversation. */
async function runOnce(
  ready: ReadyModel,
  prepared: PreparedInputs,
  options: AskOptions,
  run: 0 | 1,
  onToken: TokenCallback,
  signal: AbortSignal,
  askedAt: number,
): Promise<RunResult> {
  const { model, processor } = ready;
  const { text } = model.config;
  const { kvPolicy, warnings } = kvPolicyFor(options, ready);
  const allocator = model.ctx.allocator;
  const kvPeak = new PeakSampler();
  const totalPeak = new PeakSampler();
  const eos = new Set(processor.eosTokenIds);
  const shownIds: number[] = [];
  let shownText = '';
  let firstTokenAt: number | null = null;
  const startedAt = performance.now();
  let tokens = 0;
  // The attention probe reads cache slots as prompt positions: only true of the full cache.
  const recorder =
    options.policy === 'full' && prepared.numTiles > 0 ? new AttentionMapRecorder(model.ctx, text.numLayers, text.numHeads, prepared.imageTokenPositions) : null;

  let result: GenerateResult;
  try {
    result = await model.generate({
      inputIds: prepared.inputIds,
      pixelValues: prepared.pixelValues,
      numTiles: prepared.numTiles,
      maxNewTokens: options.maxNewTokens,
      eosTokenIds: processor.eosTokenIds,
      signal,
      kvPolicy,
      attentionHooks: recorder ?? undefined,
      onToken: (tokenId) => {
        firstTokenAt ??= performance.now();
        tokens += 1;
        // The cache is alive while tokens come: this is the measured KV and total GPU memory of the run.
        kvPeak.sample(allocator.bytesByCategory().kv);
        totalPeak.sample(allocator.totalBytes());
        if (eos.has(tokenId)) return; // the stop token is not shown
        shownIds.push(tokenId);
        const nextText = decodeAnswer(processor, shownIds);
        const delta = textDelta(shownText, nextText);
        shownText = nextText;
        void onToken({ run, delta, text: nextText, tokens });
      },
    });
    const layout = imageLayout(prepared, ready);
    if (recorder && layout && recorder.recordedStep !== null) {
      state.lastAttention = { layers: text.numLayers, heads: text.numHeads, weights: await recorder.read(), layout };
    }
  } finally {
    recorder?.destroy();
  }

  const windowLength = Math.min(options.window, result.promptTokens);
  const decodeMsPerToken = result.decodeMsPerToken;
  return {
    answer: decodeAnswer(processor, result.tokenIds.filter((id) => !eos.has(id))),
    tokenIds: result.tokenIds,
    policy: options.policy,
    options: { ...options },
    stoppedBy: result.stoppedBy,
    compressed: result.compressed,
    capacities: prefixCapacities(result.keptPerHead, windowLength),
    windowLength,
    imageLayout: imageLayout(prepared, ready),
    warnings,
    metrics: {
      promptTokens: result.promptTokens,
      textTokens: result.promptTokens - result.imageTokens,
      imageTokens: result.imageTokens,
      prefillMs: result.prefillMs,
      // Preprocessing (image processor, tokenizer) happens once per question, before the first run starts.
      timeToFirstTokenMs: (firstTokenAt ?? performance.now()) - (run === 0 ? askedAt : startedAt),
      decodeMsPerToken,
      tokensPerSecond: decodeMsPerToken > 0 ? 1000 / decodeMsPerToken : 0,
      kvBytes: kvPeak.peak,
      engineKvBytes: result.kvBytes,
      fullCacheKvBytes: result.fullCacheKvBytes,
      totalGpuBytes: totalPeak.peak,
      weightBytes: result.weightBytes,
      generatedTokens: result.tokenIds.length,
      perStep: stepRecords(result.decodeStepMs, result.keptPerHead, text.headDim),
    },
  };
}

/** Runs `body` as the one running question: refuses a second, prepares the prompt, records the exchange. */
async function asQuestion<T>(
  question: string,
  options: AskOptions,
  onToken: TokenCallback,
  body: (ready: ReadyModel, prepared: PreparedInputs, signal: AbortSignal, askedAt: number) => Promise<T>,
  answerOf: (result: T) => string,
): Promise<T> {
  try {
    checkIdle('asking another question');
    const trimmed = question.trim();
    if (trimmed === '') throw new Error('Type a question first.');
    checkOptions(options);
    const controller = new AbortController();
    startJob(controller, 'answering a question');
    try {
      const askedAt = performance.now();
      const ready = await requireReady();
      const messages = nextMessages(trimmed);
      const prepared = await ready.processor.prepare(state.image?.pixels ?? null, messages);
      state.lastPromptLength = prepared.inputIds.length;
      const result = await body(ready, prepared, controller.signal, askedAt);
      state.history = [...messages.map((m) => ({ ...m })), { role: 'assistant', text: answerOf(result) }];
      return result;
    } finally {
      if (runController === controller) runController = null;
    }
  } finally {
    releaseCallback(onToken);
  }
}

/** Runs a long GPU task (search, benchmark) as the one running job: Stop aborts it, questions wait their turn. */
async function asTask<T>(what: string, body: (ready: ReadyModel, signal: AbortSignal) => Promise<T>): Promise<T> {
  checkIdle(what);
  const controller = new AbortController();
  startJob(controller, what);
  try {
    return await body(await requireReady(), controller.signal);
  } finally {
    if (runController === controller) runController = null;
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

const engine: EngineApi = {
  init() {
    initResult ??= createGpu();
    return initResult;
  },

  async loadModel(source: ModelSourceSpec, onProgress: ProgressCallback): Promise<ModelSummary> {
    loadController?.abort();
    const controller = new AbortController();
    loadController = controller;
    let finished = false; // progress that arrives after the end (e.g. from an aborted read) is dropped
    try {
      checkIdle('loading another model');
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
      await activateModel(model, source);
      return summary;
    } finally {
      if (loadController === controller) loadController = null;
      finished = true;
      releaseCallback(onProgress);
    }
  },

  cancelLoad() {
    loadController?.abort();
  },

  async listCachedModels() {
    return groupCachedModels(await modelCache.list());
  },

  async removeCachedModel(sourceId: string) {
    let freed = 0;
    for (const entry of await modelCache.list()) {
      if (!entry.key.startsWith(`${sourceId}/`)) continue;
      await modelCache.delete(entry.key);
      freed += entry.bytes;
    }
    return freed;
  },

  onEvent(callback: EngineEventCallback) {
    if (eventCallback && eventCallback !== callback) releaseCallback(eventCallback);
    eventCallback = callback;
  },

  features(): EngineFeatures {
    return { visualHeadSearch: true, attentionMaps: true, benchmark: true };
  },

  async setImage(image: Blob, name: string): Promise<ImageInfo> {
    checkIdle('changing the picture');
    const ready = state.ready;
    // The processor uses at most size.longest_edge; keep a bit more for a sharp thumbnail, never the full 12000 px.
    const maxEdge = Math.max(ready?.processorLongestEdge ?? 2048, 1024);
    const decoded = await decodeImage(image, name, maxEdge);
    const conversationReset = state.history.length > 0;
    state.image = { pixels: decoded.pixels, name };
    state.lastAttention = null;
    // The old messages were about another picture.
    state.history = [];
    state.lastPromptLength = null;
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

  ask(question: string, options: AskOptions, onToken: TokenCallback): Promise<RunResult> {
    return asQuestion(
      question,
      options,
      onToken,
      (ready, prepared, signal, askedAt) => runOnce(ready, prepared, options, 0, onToken, signal, askedAt),
      (result) => result.answer,
    );
  },

  compare(question: string, options: AskOptions, onToken: TokenCallback): Promise<CompareResult> {
    return asQuestion(
      question,
      options,
      onToken,
      async (ready, prepared, signal, askedAt) => {
        const full = await runOnce(ready, prepared, { ...options, policy: 'full' }, 0, onToken, signal, askedAt);
        // Stopped during the full-cache run: the policy run never starts.
        if (signal.aborted) return { full, policy: null };
        const policy = await runOnce(ready, prepared, options, 1, onToken, signal, askedAt);
        return { full, policy };
      },
      (result) => (result.policy ?? result.full).answer,
    );
  },

  stop() {
    runController?.abort();
  },

  newChat() {
    checkIdle('starting a new chat');
    state.history = [];
    state.lastPromptLength = null;
  },

  planBudgets(options: AskOptions): BudgetPlan | null {
    const ready = state.ready;
    const promptLength = state.lastPromptLength;
    if (!ready || promptLength === null) return null;
    const { text } = ready.model.config;
    const { kvPolicy, warnings } = kvPolicyFor(options, ready);
    const params = budgetParams(options);
    const capacities = headCapacities(options.policy, {
      layers: text.numLayers,
      qHeads: text.numHeads,
      kvHeads: text.numKvHeads,
      promptLength,
      params,
      headScores: kvPolicy?.headScores,
    });
    if (options.policy === 'adakv' && capacities.compress) warnings.push('AdaKV splits each layer from the attention at prefill: the bars show the plan (every head the average).');
    return { promptLength, compressed: capacities.compress, capacities: capacities.capacity, windowLength: capacities.windowLength, warnings };
  },

  headScores() {
    return state.ready && state.scores ? scoresInfo(state.scores, state.ready) : null;
  },

  async importHeadScores(json: string) {
    const file = parseScoreFile(json);
    const ready = await requireReady();
    const { numLayers, numHeads } = ready.model.config.text;
    const shape = scoreFileShape(file);
    if (shape.layers !== numLayers || shape.heads !== numHeads) {
      throw new Error(`This file has scores for ${shape.layers} layers x ${shape.heads} heads, but the loaded model has ${numLayers} layers x ${numHeads} query heads: it was made for another model.`);
    }
    return adoptScores(file, 'import');
  },

  exportHeadScores() {
    return state.scores ? serializeScoreFile(state.scores.file) : null;
  },

  async findVisualHeads(options: HeadSearchOptions, onProgress: (progress: HeadSearchProgress) => void) {
    try {
      return await asTask('finding visual heads', async (ready, signal) => {
        const renderer = probeRenderer((width, height) => {
          const context = new OffscreenCanvas(width, height).getContext('2d');
          if (!context) throw new Error('This browser cannot draw the probe images (no OffscreenCanvas 2D context in workers).');
          return context;
        });
        const file = await findVisualHeads(ready.model, ready.processor, {
          samples: options.samples,
          seed: options.seed,
          maxNewTokens: options.maxNewTokens,
          ...renderer,
          signal,
          onProgress: (done, total) => void onProgress({ done, total }),
        });
        return adoptScores(file, 'search');
      });
    } finally {
      releaseCallback(onProgress);
    }
  },

  lastAttention() {
    return state.lastAttention;
  },

  async simulateDeviceLoss() {
    const gpu = state.gpu;
    if (!gpu) throw new Error('There is no GPU device to lose.');
    gpu.device.destroy();
    // The lost promise resolves asynchronously; wait for the recovery it starts.
    await gpu.device.lost;
    await Promise.resolve();
    if (recovering) await recovering;
  },

  async runBenchmark(request: BenchmarkRequestData, onProgress: (progress: BenchmarkProgress) => void): Promise<BenchmarkReport> {
    try {
      return await asTask('running the benchmark', (ready, signal) => {
        const { numLayers, numHeads } = ready.model.config.text;
        const headScores = state.scores?.matrix ?? Array.from({ length: numLayers }, () => new Array<number>(numHeads).fill(1));
        const headScoresSource = state.scores
          ? `this model's visual-head scores (${state.scores.origin})`
          : 'uniform scores (no visual-head scores for this model yet)';
        return runBenchmark(
          ready.model.ctx,
          { model: ready.model, config: ready.model.config, ...request, headScores, headScoresSource, signal },
          (progress) => void onProgress(progress),
        );
      });
    } finally {
      releaseCallback(onProgress);
    }
  },
};

expose(engine);
