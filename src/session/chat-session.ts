/**
 * One chat with one model, in process: the model on the GPU and its processor, the picture, the conversation, the
 * visual-head scores, the KV policy of each answer, its measurements, and Stop. The web worker wraps it (device
 * creation and loss, comlink, caches, progress throttling); the CLI commands use it directly, so an answer is
 * computed by the same code in both.
 *
 * One job runs at a time (a question, a search or a benchmark): a second one is refused, never interleaved.
 */
import { runBenchmark, type BenchmarkProgress, type BenchmarkReport } from '../engine/benchmark';
import { findVisualHeads } from '../engine/visual-heads';
import type { VlmModel } from '../engine/model';
import type { WeightFormat } from '../model-io/quantize';
import { noVideoPathMessage, type ChatMessage, type PreparedInputs, type ProcessorImage, type VideoInput, type VideoSamplingDefaults } from '../model-io/processor';
import { sampleVideoFrames, type VideoSamplingSettings, type VideoTrackFacts } from '../model-io/video-sampling';
import type { ProbeRenderer } from '../sparsemm/probe-set';
import type { HeadScoreFile } from '../sparsemm/score-file';
import { runAnswer, type SessionAnswer, type SessionAskOptions, type SessionModel } from './answer-run';
import { runComparison } from './compare-run';
import { checkContext, ContextOverflowError, ConversationPictures, type PictureInputs } from './conversation-pictures';
import { HeadScoreStore } from './head-score-store';
import { deviceLostInterruption, DeviceLostInterruption, JobGuard } from './job-guard';
import { answerFidelity, checkSweepRequest, runFidelitySweep } from './fidelity';
import type { FidelitySweepProgress, FidelitySweepRequest, FidelitySweepResult, OcrEvalRequest, OcrEvalResult } from './fidelity-types';
import { runOcrEval, type OcrEvalRun } from './ocr-eval';
import { benchmarkHeadScores, budgetPlan, choosePolicy } from './policy';
import type {
  AskOptions,
  AttentionSnapshot,
  BenchmarkRequestData,
  BudgetPlan,
  CompareResult,
  ContextUsage,
  ConversationImageInfo,
  ConversationVideoInfo,
  HeadScoresInfo,
  HeadSearchOptions,
  HeadSearchProgress,
  RunResult,
  TokenCallback,
  VideoTokenEstimate,
} from './types';

export type { SessionAnswer, SessionAskOptions, SessionModel };
export { ContextOverflowError };

export interface ChatSessionOptions {
  /** Appended to the uniform-scores warning: how to get visual-head scores in this front end. */
  noScoresHint: string;
  /** Called after the session adopts new scores (search or import), e.g. to cache them; failures are only logged. */
  saveScores?: (sourceId: string, file: HeadScoreFile) => Promise<void>;
  /** Record where each head looks on full-cache answers about a picture (the app's overlay); default true. */
  recordAttention?: boolean;
}

function checkAskOptions(options: AskOptions): void {
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 1 || options.maxNewTokens > 4096) {
    throw new Error(`maxNewTokens must be a whole number from 1 to 4096 (got ${options.maxNewTokens}).`);
  }
}

/** Resolves when `device` is lost, or after a short wait when it is not (the loss handler runs before this resolves). */
/**
 * Makes the loaded model's copy in another weight format for a fidelity sweep's rows (on the same device), telling
 * its steps ("q4 copy: uploading weights"); rejects, having freed what it made, when `signal` aborts or it cannot fit.
 */
export type RowsModelLoader = (format: WeightFormat, signal: AbortSignal, onStep: (step: string) => void) => Promise<VlmModel>;

function lostSoon(device: GPUDevice): Promise<unknown> {
  return Promise.race([device.lost, new Promise((resolve) => setTimeout(resolve, 250))]);
}

/** The error an answer ends with when its GPU device was lost during it (null when it was not). */
function interruptedAnswer(signal: AbortSignal): Error | null {
  const lost = deviceLostInterruption(signal);
  if (!lost) return null;
  return new Error(
    `The GPU device was lost (${lost.deviceReason}) and this answer was interrupted; the conversation does not keep it. ` +
      'Ask again once the model is back on a new device.',
  );
}

export class ChatSession {
  private ready: SessionModel | null = null;
  /** The pictures of the conversation and their vision-tower features. */
  private readonly pictures = new ConversationPictures();
  /** Tokens of the conversation so far: the last prompt and its kept answer (0 before the first question). */
  private conversationTokens = 0;
  /** Messages of the conversation so far (user messages carry their pictures' and videos' counts). */
  private history: ChatMessage[] = [];
  /** Tokens the last prompt's pictures expanded to (image tokens and their markers); the rest of conversationTokens is text. */
  private conversationPictureTokens = 0;
  private readonly scores: HeadScoreStore;
  /** Prompt length of the last question (for budget plans between runs). */
  private lastPromptLength: number | null = null;
  /** Where each head looked at the last token of the last full-cache answer about a picture. */
  private attention: AttentionSnapshot | null = null;
  private readonly jobs = new JobGuard();

  constructor(private readonly options: ChatSessionOptions) {
    this.scores = new HeadScoreStore(options.saveScores);
  }

  /** The loaded model, or null. */
  get current(): SessionModel | null {
    return this.ready;
  }

  /** Largest picture edge worth keeping: what the processor uses, with a bit more for a sharp thumbnail. */
  get imageEdgeLimit(): number {
    return Math.max(this.ready?.processorLongestEdge ?? 2048, 1024);
  }

  // --- Model lifecycle -------------------------------------------------------------------------------------------

  /** Starts a model load: cancels the one running, if any; the caller passes the signal to the loader. */
  beginLoad(): AbortController {
    return this.jobs.beginLoad();
  }

  endLoad(controller: AbortController): void {
    this.jobs.endLoad(controller);
  }

  cancelLoad(): void {
    this.jobs.cancelLoad();
  }

  /** Takes the model out (to free it before a new one is uploaded, or because its device is gone); the chat stays. */
  detachModel(): SessionModel | null {
    // Features belong to this model (and its device): a later question computes them again.
    this.pictures.freeFeatures(this.ready?.model ?? null);
    const ready = this.ready;
    this.ready = null;
    return ready;
  }

  /** A newly loaded model: a new conversation (the pictures stay, for its first question), with the model's cached scores if any. */
  attachModel(ready: SessionModel, cachedScores: HeadScoreFile | null): void {
    this.pictures.requeueAll(this.ready?.model ?? null);
    this.ready = ready;
    this.resetConversationState();
    this.scores.reset(ready.sourceId, ready.model.config.text, cachedScores);
  }

  /** The same model re-made on a new device: the conversation, picture and scores stay. */
  restoreModel(ready: SessionModel): void {
    // The old device's features are gone with it; the next question computes them again.
    this.pictures.freeFeatures(null);
    this.ready = ready;
  }

  /** Questions asked while `reload` runs wait for it (and then find the model, or "Load a model first"). */
  whileReloading(reload: Promise<void>): void {
    this.jobs.whileReloading(reload);
  }

  /** Resolves once a reload after a device loss (if one runs) has finished. */
  reloaded(): Promise<void> {
    return this.jobs.waitForReload();
  }

  // --- The one-job rule ------------------------------------------------------------------------------------------

  /** Throws, with a message for people, when a load or another job runs. */
  checkIdle(what: string): void {
    this.jobs.checkIdle(what);
  }

  /** Aborts the running job (an answer then resolves with stoppedBy 'cancel'). */
  stop(): void {
    this.jobs.stop();
  }

  /**
   * The GPU device is gone: the running job is aborted, and a question then fails with a message that says its answer
   * was interrupted (not "Stopped", and no timings of work that never finished); the conversation does not keep it.
   */
  interruptForDeviceLoss(reason: string): void {
    this.jobs.stop(new DeviceLostInterruption(reason));
  }

  private async requireReady(): Promise<SessionModel> {
    await this.jobs.waitForReload();
    if (!this.ready) throw new Error('Load a model first.');
    return this.ready;
  }

  // --- Pictures and conversation ---------------------------------------------------------------------------------

  /** Adds a picture to the next question (after the ones already added). */
  addImage(pixels: ProcessorImage, name: string): ConversationImageInfo {
    this.checkIdle('adding a picture');
    const { id } = this.pictures.add(pixels, name);
    const info = this.images().find((image) => image.id === id);
    if (!info) throw new Error('The picture was not added.');
    return info;
  }

  /** Takes a picture (or a video: ids are shared) that has not been asked about yet off the next question. */
  removeImage(id: number): void {
    this.checkIdle('removing a picture');
    this.pictures.remove(id);
  }

  /** The pictures of the conversation in prompt order, the ones waiting for the next question last. */
  images(): ConversationImageInfo[] {
    return this.pictures.info(this.ready);
  }

  /**
   * Adds a video (its sampled frames decoded) to the next question. A question carries pictures or videos, not both;
   * a loaded model without a video path (SmolVLM) refuses it here, and one loaded later at the question.
   */
  addVideo(video: VideoInput): ConversationVideoInfo {
    this.checkIdle('adding a video');
    if (this.ready && !this.ready.processor.videoSampling) throw new Error(noVideoPathMessage);
    const { id } = this.pictures.addVideo(video);
    const info = this.videos().find((v) => v.id === id);
    if (!info) throw new Error('The video was not added.');
    return info;
  }

  /** Takes a video that has not been asked about yet off the next question. */
  removeVideo(id: number): void {
    this.checkIdle('removing a video');
    this.pictures.remove(id);
  }

  /** The videos of the conversation in prompt order, the ones waiting for the next question last. */
  videos(): ConversationVideoInfo[] {
    return this.pictures.videoInfo(this.ready?.processor ?? null);
  }

  /** The loaded model's video_sampling (fps, max frames, the tile a frame becomes); null without a model or a video path. */
  videoSampling(): VideoSamplingDefaults | null {
    return this.ready?.processor.videoSampling ?? null;
  }

  /** Prompt tokens the `<video>` entry of a video sampled so expands to; null without a model. */
  videoPromptTokens(sample: { timestamps: readonly number[]; durationSeconds: number }): number | null {
    return this.ready?.processor.videoPromptTokensFor(sample) ?? null;
  }

  /**
   * The frames a video with these track facts would give at `settings` (default the model's video_sampling) and the
   * tokens its entry would add to the prompt: for the context meter before anything is decoded. Null without a model.
   */
  videoTokens(facts: VideoTrackFacts, settings?: Partial<VideoSamplingSettings>): VideoTokenEstimate | null {
    const processor = this.ready?.processor;
    if (!processor) return null;
    const defaults = processor.videoSampling;
    if (!defaults) throw new Error(noVideoPathMessage);
    const sampled = sampleVideoFrames(facts, { fps: settings?.fps ?? defaults.fps, maxFrames: settings?.maxFrames ?? defaults.maxFrames, skipSecs: settings?.skipSecs });
    return { ...sampled, imageTokens: sampled.frameIndices.length * processor.imageSeqLen, promptTokens: processor.videoPromptTokensFor(sampled) };
  }

  /** Drops the conversation and its pictures, and frees their features. */
  newChat(): void {
    this.checkIdle('starting a new chat');
    this.clearConversation();
  }

  private clearConversation(): void {
    this.pictures.clear(this.ready?.model ?? null);
    this.resetConversationState();
  }

  /** The messages and what was measured of them; the pictures are the caller's. */
  private resetConversationState(): void {
    this.history = [];
    this.attention = null;
    this.lastPromptLength = null;
    this.conversationTokens = 0;
    this.conversationPictureTokens = 0;
  }

  /** Longest picture edge the processor resizes to (null: the model's own); features made at another edge are dropped. */
  setLongestImageEdge(edge: number | null): void {
    this.checkIdle('changing the image size');
    this.pictures.setLongestEdge(edge, this.ready?.processor ?? null, this.ready?.model ?? null);
  }

  /** Vision-tower runs of this session so far (a picture found in the feature cache adds none). */
  get visionPasses(): number {
    return this.pictures.visionPasses;
  }

  /**
   * Tokens the conversation holds, what the pictures waiting for the next question add, and the model's context; with
   * `question` (the one being typed), the whole next prompt as the check at send time counts it.
   */
  contextUsage(question = ''): ContextUsage | null {
    const ready = this.ready;
    if (!ready) return null;
    const usage = this.pictures.usage({ tokens: this.conversationTokens, pictureTokens: this.conversationPictureTokens }, ready.model, ready.processor);
    const typed = question.trim();
    return typed === '' ? usage : this.pictures.withQuestion(usage, this.nextMessages(typed), ready.processor);
  }

  /** The messages of the next prompt: the conversation so far plus the new question with the pictures added for it. */
  private nextMessages(question: string): ChatMessage[] {
    const messages: ChatMessage[] = this.history.map((m) => ({ ...m }));
    const { images, videos } = this.pictures.pendingCounts;
    messages.push({ role: 'user', text: question, ...(images > 0 ? { imageCount: images } : {}), ...(videos > 0 ? { videoCount: videos } : {}) });
    return messages;
  }

  /** Answers `question` about the picture, following the conversation; streams text through onToken. */
  async answer(question: string, options: SessionAskOptions, onToken: TokenCallback): Promise<SessionAnswer> {
    return this.asQuestion(
      question,
      options,
      (ready, prepared, signal, askedAt, pictures) => this.runOnce(ready, prepared, pictures, options, 0, onToken, signal, askedAt),
      (a) => a.result,
    );
  }

  async ask(question: string, options: SessionAskOptions, onToken: TokenCallback): Promise<RunResult> {
    return (await this.answer(question, options, onToken)).result;
  }

  /**
   * The question with the full cache and with options.policy side by side (session/compare-run.ts: one vision pass,
   * prefills in A B B A order, the caches decoded in lockstep), then the policy's fidelity; the conversation keeps the
   * policy's answer.
   */
  compare(question: string, options: SessionAskOptions, onToken: TokenCallback): Promise<CompareResult> {
    return this.asQuestion(question, options, async (ready, prepared, signal, askedAt, pictures) => {
      const { onPrepared: _onPrepared, sampling: _sampling, onLogits: _onLogits, ...askOptions } = options;
      const { kvPolicy, warnings } = this.policyOn(askOptions, ready);
      const recordAttention = this.options.recordAttention ?? true;
      const { full, policy, measurements, attention } = await runComparison({
        ready, prepared, pictures, options, kvPolicy, warnings, onToken, signal, askedAt, recordAttention,
      });
      if (attention) this.attention = attention;
      if (options.sampling || signal.aborted || options.policy === 'full') return { full, policy, measurements }; // greedy choices compared
      const fidelity = await answerFidelity({ ready, prepared, pictures, policyOf: (o) => this.policyOn(o, ready), signal }, options, full, policy);
      return { full, policy: fidelity ? { ...policy, fidelity } : policy, measurements };
    },
    (result) => result.policy ?? result.full);
  }

  /**
   * The question about the pictures with the full cache and with each policy x budget (session/fidelity.ts): how far
   * each policy's answer drifts from the full cache's. A measurement: the conversation is left as it was.
   */
  async fidelitySweep(
    question: string,
    request: FidelitySweepRequest,
    onProgress?: (progress: FidelitySweepProgress) => void,
    /**
     * With request.weightFormat: the loaded model in that format (same device), the caller's to free; or a loader of
     * such a copy (the app's worker), called inside the job (after the one-job check; Stop reaches it) and freed here
     * when the sweep ends, however it ends. The rows run on it.
     */
    rowsModel?: VlmModel | RowsModelLoader,
  ): Promise<FidelitySweepResult> {
    checkSweepRequest(request, this.current?.model.weightFormat);
    const { window, ratio, maxNewTokens } = request;
    return this.asQuestion(question, { policy: 'full', budget: request.budgets[0] ?? 0, window, ratio, maxNewTokens }, async (ready, prepared, signal, _askedAt, pictures) => {
      const format = request.weightFormat;
      const loads = typeof rowsModel === 'function' && format !== undefined && format !== ready.model.weightFormat;
      const copy = loads ? await rowsModel(format, signal, (step) => onProgress?.({ done: 0, total: 1, step })) : undefined;
      try {
        return await runFidelitySweep({
          ready, prepared, pictures, request, policyOf: (o) => this.policyOn(o, ready), signal, onProgress,
          rowsModel: copy ?? (typeof rowsModel === 'function' ? undefined : rowsModel),
        });
      } finally {
        copy?.destroy();
      }
    }, null);
  }

  /** Runs `body` as the one running question: refuses a second, prepares the prompt, records the exchange. */
  private async asQuestion<T>(
    question: string,
    options: SessionAskOptions,
    body: (ready: SessionModel, prepared: PreparedInputs, signal: AbortSignal, askedAt: number, pictures: PictureInputs) => Promise<T>,
    /** The answer the conversation keeps; null for a measurement that leaves the conversation as it was. */
    answerOf: ((result: T) => RunResult) | null,
  ): Promise<T> {
    this.checkIdle('asking another question');
    const trimmed = question.trim();
    if (trimmed === '') throw new Error('Type a question first.');
    checkAskOptions(options);
    return this.jobs.run('answering a question', 'asking another question', async (signal) => {
      const askedAt = performance.now();
      const ready = await this.requireReady();
      const messages = this.nextMessages(trimmed);
      const units = this.pictures.featureUnits;
      const edge = this.pictures.longestEdge;
      // The processor checks the media against the messages' counts (pictures and videos, in order).
      const prepared = await ready.processor.prepare(this.pictures.media, messages, edge === null ? {} : { longestEdge: edge });
      // Before any GPU work: a prompt the context cannot hold is refused with what to do (for a video: how many frames fit).
      checkContext(ready.model, prepared, options.maxNewTokens, ready.processor);
      this.lastPromptLength = prepared.inputIds.length;
      options.onPrepared?.(prepared);
      const visionStarted = performance.now();
      const inputs = this.pictures.inputsFor(ready.model, prepared, units);
      // The vision tower runs once per new picture, before any run of the question: timed here, once.
      const timedBody = async (): Promise<T> => {
        if (inputs.encoded > 0) {
          await ready.model.ctx.finish();
          inputs.visionMs = performance.now() - visionStarted;
        }
        return body(ready, prepared, signal, askedAt, inputs);
      };
      const result = await timedBody().catch(async (error: unknown) => {
        // A lost device fails the GPU work at once (mapAsync rejects) and reports the loss a moment later: wait for it.
        await lostSoon(ready.model.ctx.device);
        throw interruptedAnswer(signal) ?? error;
      });
      const interrupted = interruptedAnswer(signal);
      if (interrupted) throw interrupted;
      if (!answerOf) return result;
      const kept = answerOf(result);
      this.history = [...messages.map((m) => ({ ...m })), { role: 'assistant', text: kept.answer }];
      this.pictures.markSent();
      this.conversationTokens = prepared.inputIds.length + kept.tokenIds.length;
      this.conversationPictureTokens = this.pictures.promptTokens(ready.processor);
      return result;
    });
  }

  /** The engine policy for `options` on the loaded model and what the person should be told about it. */
  policyFor(options: AskOptions): ReturnType<typeof choosePolicy> {
    if (!this.ready) throw new Error('Load a model first.');
    return this.policyOn(options, this.ready);
  }

  private policyOn(options: AskOptions, ready: SessionModel): ReturnType<typeof choosePolicy> {
    return choosePolicy(options, this.scores.current?.matrix ?? null, ready.model.config.text, this.options.noScoresHint);
  }

  /** One answer with one policy; streams text as `run`. Does not touch the conversation. */
  private async runOnce(
    ready: SessionModel,
    prepared: PreparedInputs,
    pictures: PictureInputs,
    options: SessionAskOptions,
    run: 0 | 1,
    onToken: TokenCallback,
    signal: AbortSignal,
    askedAt: number,
  ): Promise<SessionAnswer> {
    const { onPrepared: _onPrepared, sampling: _sampling, onLogits: _onLogits, ...askOptions } = options;
    const { kvPolicy, warnings } = this.policyOn(askOptions, ready);
    // The attention probe reads cache slots as prompt positions: only true of the full cache.
    const recordAttention = (this.options.recordAttention ?? true) && options.policy === 'full';
    const { attention, ...answer } = await runAnswer({ ready, prepared, pictures, options, kvPolicy, warnings, run, onToken, signal, askedAt, recordAttention });
    if (attention) this.attention = attention;
    return answer;
  }

  /** KV budgets the policy would give the last prompt; null before the first question. */
  planBudgets(options: AskOptions): BudgetPlan | null {
    const ready = this.ready;
    const promptLength = this.lastPromptLength;
    if (!ready || promptLength === null) return null;
    return budgetPlan(options, promptLength, ready.model.config.text, this.policyOn(options, ready));
  }

  /** Attention of the last full-cache answer's last token over the image, or null when none was recorded. */
  lastAttention(): AttentionSnapshot | null {
    return this.attention;
  }

  // --- Visual-head scores ----------------------------------------------------------------------------------------

  headScores(): HeadScoresInfo | null {
    return this.ready ? this.scores.info(this.ready.model.config.text) : null;
  }

  /** The current scores as official JSON text, or null. */
  exportHeadScores(): string | null {
    return this.scores.exportJson();
  }

  /** Validates a score file (official JSON) against the loaded model and uses it. */
  async importHeadScores(json: string): Promise<HeadScoresInfo> {
    const ready = await this.requireReady();
    return this.useHeadScores(HeadScoreStore.parseFor(json, ready.model.config.text), 'import');
  }

  /** Uses `file` (checked against the model) from now on, and hands it to saveScores. */
  async useHeadScores(file: HeadScoreFile, origin: HeadScoresInfo['origin']): Promise<HeadScoresInfo> {
    const ready = await this.requireReady();
    return this.scores.use(file, origin, ready.sourceId, ready.model.config.text);
  }

  /** Runs the visual-head search on probes drawn by `renderer` and uses its scores. */
  findVisualHeads(options: HeadSearchOptions, renderer: () => ProbeRenderer, onProgress: (progress: HeadSearchProgress) => void): Promise<HeadScoresInfo> {
    return this.jobs.run('finding visual heads', 'finding visual heads', async (signal) => {
      const ready = await this.requireReady();
      const file = await findVisualHeads(ready.model, ready.processor, {
        samples: options.samples,
        seed: options.seed,
        maxNewTokens: options.maxNewTokens,
        ...renderer(),
        signal,
        onProgress: (done, total) => void onProgress({ done, total }),
      });
      return this.useHeadScores(file, 'search');
    });
  }

  /** OCR accuracy (ANLS, word accuracy) of the full cache and each policy x budget on probes drawn by `renderer`. */
  ocrEval(request: OcrEvalRequest, renderer: () => ProbeRenderer, onProgress?: OcrEvalRun['onProgress']): Promise<OcrEvalResult> {
    return this.jobs.run('evaluating OCR accuracy', 'evaluating OCR accuracy', async (signal) => {
      checkSweepRequest(request);
      const ready = await this.requireReady();
      return runOcrEval({ ready, request, renderer: renderer(), policyOf: (o) => this.policyOn(o, ready), signal, onProgress });
    });
  }

  /** Decode speed and KV memory against prompt length on the loaded model, with its scores (or uniform ones). */
  runBenchmark(request: BenchmarkRequestData, onProgress: (progress: BenchmarkProgress) => void): Promise<BenchmarkReport> {
    return this.jobs.run('running the benchmark', 'running the benchmark', async (signal) => {
      const ready = await this.requireReady();
      const scores = benchmarkHeadScores(this.scores.current, ready.model.config.text);
      return runBenchmark(ready.model.ctx, { model: ready.model, config: ready.model.config, ...request, ...scores, signal }, (progress) => void onProgress(progress));
    });
  }
}
