/**
 * One answer of a chat session: the prepared prompt through VlmModel.generate with one KV policy, the streamed text,
 * the allocator's KV and total bytes sampled while the cache is alive, the timings, and (on full-cache answers about
 * a picture) where each head looked at the last token.
 */
import { AttentionMapRecorder } from '../engine/attention-map';
import type { KvPolicy } from '../engine/kv-policy';
import type { GenerateOptions, GenerateResult, VlmModel } from '../engine/model';
import type { PreparedInputs, VlmProcessor } from '../model-io/processor';
import type { PictureInputs } from './conversation-pictures';
import { PeakSampler, prefixCapacities, stepRecords, textDelta } from './run-metrics';
import type { AskOptions, AttentionSnapshot, ImageTokenLayout, RunResult, TokenCallback } from './types';

/** The model as a session holds it: on the GPU, plus the processor (the weights file is not kept). */
export interface SessionModel {
  /** The loader's stable id of the source (also the key of its cached scores). */
  sourceId: string;
  model: VlmModel;
  processor: VlmProcessor;
  /** Longest picture edge the image processor uses (preprocessor_config size.longest_edge). */
  processorLongestEdge: number;
}

/** Options of one answer: the person's knobs plus, for the CLI, sampling (greedy when absent) and inspection hooks. */
export interface SessionAskOptions extends AskOptions {
  sampling?: GenerateOptions['sampling'];
  /** Called with the processor's inputs of the prompt, before the model runs. */
  onPrepared?: (inputs: PreparedInputs) => void;
  /** The engine's per-step logits hook (a copy per step: leave it out unless something reads them). */
  onLogits?: GenerateOptions['onLogits'];
}

/** One answer as the session computed it: what the app shows, and the engine's own result (for the CLI's report). */
export interface SessionAnswer {
  result: RunResult;
  generation: GenerateResult;
}

export interface AnswerRunRequest {
  ready: SessionModel;
  prepared: PreparedInputs;
  /** The prompt's pictures: their features (cached or just computed) and what the result reports of them. */
  pictures: PictureInputs;
  options: SessionAskOptions;
  kvPolicy: KvPolicy | undefined;
  /** What the person should be told about the policy (passed through to the result). */
  warnings: string[];
  /** 0 for a plain answer and the full-cache run of a comparison, 1 for the policy run. */
  run: 0 | 1;
  onToken: TokenCallback;
  signal: AbortSignal;
  /** performance.now() when the question arrived (time to first token of run 0 counts from there). */
  askedAt: number;
  /** Record the attention of the last token over the image (full cache only: slots must be prompt positions). */
  recordAttention: boolean;
}

/** Answer text without special tokens; the tokenizer refuses an empty list (Stop during the prefill makes none). */
function decodeAnswer(processor: VlmProcessor, ids: number[]): string {
  return ids.length === 0 ? '' : processor.decode(ids, { skipSpecialTokens: true });
}

/** The first picture's layout (what a one-picture overlay shows), or null without pictures. */
function imageLayout(pictures: PictureInputs): ImageTokenLayout | null {
  return pictures.images[0]?.layout ?? null;
}

/** One run's answer streamed as text: each token decoded with the ones before it, the stop token not shown. */
export class AnswerStream {
  private readonly eos: Set<number>;
  private readonly shownIds: number[] = [];
  private shownText = '';
  private tokens = 0;
  /** performance.now() of the first token, null before it. */
  firstTokenAt: number | null = null;

  constructor(
    private readonly processor: VlmProcessor,
    private readonly run: 0 | 1,
    private readonly onToken: TokenCallback,
  ) {
    this.eos = new Set(processor.eosTokenIds);
  }

  push(tokenId: number): void {
    this.firstTokenAt ??= performance.now();
    this.tokens += 1;
    if (this.eos.has(tokenId)) return; // the stop token is not shown
    this.shownIds.push(tokenId);
    const nextText = decodeAnswer(this.processor, this.shownIds);
    const delta = textDelta(this.shownText, nextText);
    this.shownText = nextText;
    void this.onToken({ run: this.run, delta, text: nextText, tokens: this.tokens });
  }
}

/** What an answer's RunResult needs of its run, besides the measurements. */
export interface RunOutcome {
  tokenIds: number[];
  stoppedBy: RunResult['stoppedBy'];
  compressed: boolean;
  keptPerHead: number[][];
  promptTokens: number;
}

/** An answer as the app shows it: the text, the policy and its options, what was kept, the pictures, the metrics. */
export function runResultOf(
  processor: VlmProcessor,
  options: SessionAskOptions,
  pictures: PictureInputs,
  warnings: string[],
  outcome: RunOutcome,
  metrics: RunResult['metrics'],
): RunResult {
  const { sampling: _sampling, onPrepared: _onPrepared, onLogits: _onLogits, ...askOptions } = options;
  const eos = new Set(processor.eosTokenIds);
  const windowLength = Math.min(options.window, outcome.promptTokens);
  return {
    answer: decodeAnswer(processor, outcome.tokenIds.filter((id) => !eos.has(id))),
    tokenIds: outcome.tokenIds,
    policy: options.policy,
    options: { ...askOptions },
    stoppedBy: outcome.stoppedBy,
    compressed: outcome.compressed,
    capacities: prefixCapacities(outcome.keptPerHead, windowLength),
    windowLength,
    imageLayout: imageLayout(pictures),
    images: pictures.images,
    warnings,
    metrics,
  };
}

/** One answer with one policy on a prepared prompt; streams text as `run`, measures memory and time. */
export async function runAnswer(request: AnswerRunRequest): Promise<SessionAnswer & { attention: AttentionSnapshot | null }> {
  const { ready, prepared, pictures, options, kvPolicy, warnings, run, onToken, signal, askedAt } = request;
  const { model, processor } = ready;
  const { text } = model.config;
  const { sampling, onLogits } = options;
  const allocator = model.ctx.allocator;
  const kvPeak = new PeakSampler();
  const totalPeak = new PeakSampler();
  const stream = new AnswerStream(processor, run, onToken);
  const startedAt = performance.now();
  const recorder =
    request.recordAttention && prepared.numTiles > 0 ? new AttentionMapRecorder(model.ctx, text.numLayers, text.numHeads, prepared.imageTokenPositions) : null;

  let result: GenerateResult;
  let attention: AttentionSnapshot | null = null;
  try {
    result = await model.generate({
      inputIds: prepared.inputIds,
      pixelValues: prepared.pixelValues,
      numTiles: prepared.numTiles,
      imageFeatures: pictures.features.length > 0 ? pictures.features : undefined,
      maxNewTokens: options.maxNewTokens,
      eosTokenIds: processor.eosTokenIds,
      sampling,
      onLogits,
      signal,
      kvPolicy,
      attentionHooks: recorder ?? undefined,
      onToken: (tokenId) => {
        // The cache is alive while tokens come: this is the measured KV and total GPU memory of the run.
        kvPeak.sample(allocator.bytesByCategory().kv);
        totalPeak.sample(allocator.totalBytes());
        stream.push(tokenId);
      },
    });
    const layout = imageLayout(pictures);
    if (recorder && layout && recorder.recordedStep !== null) {
      attention = { layers: text.numLayers, heads: text.numHeads, weights: await recorder.read(), layout, images: pictures.images };
    }
  } finally {
    recorder?.destroy();
  }

  const decodeMsPerToken = result.decodeMsPerToken;
  // The pictures' vision tower ran before generate (ConversationPictures.inputsFor, timed by the session); generate's
  // own vision figure is then only the join of their features.
  const visionMs = pictures.visionMs + result.visionMs;
  const runResult = runResultOf(processor, options, pictures, warnings, result, {
    promptTokens: result.promptTokens,
    textTokens: result.promptTokens - result.imageTokens,
    imageTokens: result.imageTokens,
    prefillMs: pictures.visionMs + result.prefillMs,
    visionMs,
    textPrefillMs: result.textPrefillMs,
    // Preprocessing (image processor, tokenizer) happens once per question, before the first run starts.
    timeToFirstTokenMs: (stream.firstTokenAt ?? performance.now()) - (run === 0 ? askedAt : startedAt),
    decodeMsPerToken,
    tokensPerSecond: decodeMsPerToken > 0 ? 1000 / decodeMsPerToken : 0,
    kvBytes: kvPeak.peak,
    engineKvBytes: result.kvBytes,
    fullCacheKvBytes: result.fullCacheKvBytes,
    totalGpuBytes: totalPeak.peak,
    weightBytes: result.weightBytes,
    generatedTokens: result.tokenIds.length,
    imagesEncoded: pictures.encoded,
    imagesReused: pictures.reused,
    framesEncoded: pictures.framesEncoded,
    framesReused: pictures.framesReused,
    perStep: stepRecords(result.decodeStepMs, result.keptPerHead, text.headDim),
  });
  // The engine's figures with the vision tower counted, as the CLI reports them.
  const generation = { ...result, prefillMs: pictures.visionMs + result.prefillMs, visionMs };
  return { result: runResult, generation, attention };
}
