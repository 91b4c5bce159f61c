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

/** One answer with one policy on a prepared prompt; streams text as `run`, measures memory and time. */
export async function runAnswer(request: AnswerRunRequest): Promise<SessionAnswer & { attention: AttentionSnapshot | null }> {
  const { ready, prepared, pictures, options, kvPolicy, warnings, run, onToken, signal, askedAt } = request;
  const { model, processor } = ready;
  const { text } = model.config;
  const { sampling, onPrepared: _onPrepared, onLogits, ...askOptions } = options;
  const allocator = model.ctx.allocator;
  const kvPeak = new PeakSampler();
  const totalPeak = new PeakSampler();
  const eos = new Set(processor.eosTokenIds);
  const shownIds: number[] = [];
  let shownText = '';
  let firstTokenAt: number | null = null;
  const startedAt = performance.now();
  let tokens = 0;
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
    const layout = imageLayout(pictures);
    if (recorder && layout && recorder.recordedStep !== null) {
      attention = { layers: text.numLayers, heads: text.numHeads, weights: await recorder.read(), layout, images: pictures.images };
    }
  } finally {
    recorder?.destroy();
  }

  const windowLength = Math.min(options.window, result.promptTokens);
  const decodeMsPerToken = result.decodeMsPerToken;
  const runResult: RunResult = {
    answer: decodeAnswer(processor, result.tokenIds.filter((id) => !eos.has(id))),
    tokenIds: result.tokenIds,
    policy: options.policy,
    options: { ...askOptions },
    stoppedBy: result.stoppedBy,
    compressed: result.compressed,
    capacities: prefixCapacities(result.keptPerHead, windowLength),
    windowLength,
    imageLayout: imageLayout(pictures),
    images: pictures.images,
    warnings,
    metrics: {
      promptTokens: result.promptTokens,
      textTokens: result.promptTokens - result.imageTokens,
      imageTokens: result.imageTokens,
      prefillMs: result.prefillMs,
      visionMs: result.visionMs,
      textPrefillMs: result.textPrefillMs,
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
      imagesEncoded: pictures.encoded,
      imagesReused: pictures.reused,
      perStep: stepRecords(result.decodeStepMs, result.keptPerHead, text.headDim),
    },
  };
  return { result: runResult, generation: result, attention };
}
