/**
 * Compare: one question answered with the full cache and with the chosen policy, measured side by side under the same
 * conditions (engine/lockstep-decode.ts): the pictures' features made once before both runs, the prefills repeated in
 * A B B A order, the two caches decoded in lockstep one step each, the order of the pair reversed every step. Both
 * answers stream as they come (two streams interleaved); Stop ends both.
 *
 * What it reports beside the two answers: the shared vision figure (once), each run's text prefill and decode step
 * times with their spread and the verdict of sparsemm/timing-stats, and the bytes a decode step reads with each cache
 * (benchmark-bytes.ts) with the speedup those bytes allow.
 */
import { kvBytesRead } from '../engine/benchmark-bytes';
import { decodeInLockstep, type LockstepRunResult } from '../engine/lockstep-decode';
import { AttentionMapRecorder } from '../engine/attention-map';
import { compareStepTimes, median } from '../sparsemm/timing-stats';
import { AnswerStream, runResultOf, type AnswerRunRequest, type SessionAskOptions } from './answer-run';
import { PeakSampler, stepRecords } from './run-metrics';
import type { AttentionSnapshot, CompareMeasurements, DecodeBytes, RunResult } from './types';

/**
 * What one answer takes (answer-run.ts), less its run index: `kvPolicy` and `options.policy` are the compared policy
 * (the other run is the full cache), `pictures` come with their features made and timed, and `recordAttention` records
 * where the full-cache run's heads look, outside the timed steps.
 */
export type ComparisonRequest = Omit<AnswerRunRequest, 'run'>;

export interface ComparisonResult {
  full: RunResult;
  policy: RunResult;
  measurements: CompareMeasurements;
  attention: AttentionSnapshot | null;
}

/** Mean K/V bytes per decode step of a run; before any step, what the first one would read (kept tokens + 1). */
function meanKvRead(run: LockstepRunResult, headDim: number): number {
  if (run.kvReadPerStep.length > 0) return run.kvReadPerStep.reduce((a, b) => a + b, 0) / run.kvReadPerStep.length;
  return kvBytesRead(run.keptPerHead.map((row) => row.map((kept) => kept + 1)), headDim);
}

/** Bytes a decode step reads with each cache and the bound they set (the benchmark's bytes model). */
export function decodeBytes(weightBytes: number, fullKvBytes: number, policyKvBytes: number): DecodeBytes {
  const ratio = (weightBytes + policyKvBytes) / (weightBytes + fullKvBytes);
  return { weightBytes, fullKvBytes, policyKvBytes, ratio, bound: 1 / ratio };
}

export async function runComparison(request: ComparisonRequest): Promise<ComparisonResult> {
  const { ready, prepared, pictures, options, kvPolicy, warnings, onToken, signal, askedAt } = request;
  const { model, processor } = ready;
  const { text } = model.config;
  const allocator = model.ctx.allocator;
  const streams = [new AnswerStream(processor, 0, onToken), new AnswerStream(processor, 1, onToken)];
  const totalPeak = new PeakSampler();
  const recorder =
    request.recordAttention && prepared.numTiles > 0 ? new AttentionMapRecorder(model.ctx, text.numLayers, text.numHeads, prepared.imageTokenPositions) : null;
  let attention: AttentionSnapshot | null = null;
  let lockstep;
  try {
    lockstep = await decodeInLockstep(model, {
      inputIds: prepared.inputIds,
      pixelValues: prepared.pixelValues,
      numTiles: prepared.numTiles,
      imageFeatures: pictures.features.length > 0 ? pictures.features : undefined,
      maxNewTokens: options.maxNewTokens,
      eosTokenIds: processor.eosTokenIds,
      sampling: options.sampling,
      signal,
      policies: [undefined, kvPolicy],
      onToken: (run, tokenId) => {
        // Both caches are alive while tokens come: the total minus the other cache is this run's GPU memory.
        totalPeak.sample(allocator.totalBytes());
        streams[run].push(tokenId);
      },
      attention: recorder ? { run: 0, hooks: recorder } : undefined,
    });
    const layout = pictures.images[0]?.layout;
    if (recorder && layout && recorder.recordedStep !== null) {
      attention = { layers: text.numLayers, heads: text.numHeads, weights: await recorder.read(), layout, images: pictures.images };
    }
  } finally {
    recorder?.destroy();
  }

  const [fullRun, policyRun] = lockstep.runs;
  const visionMs = pictures.visionMs + lockstep.visionMs;
  const resultOf = (run: LockstepRunResult, index: 0 | 1, other: LockstepRunResult, runOptions: SessionAskOptions): RunResult => {
    const textPrefillMs = median(run.prefillMs);
    const decodeMsPerToken = run.decodeStepMs.length > 0 ? median(run.decodeStepMs) : 0;
    const outcome = { ...run, promptTokens: lockstep.promptTokens, stoppedBy: run.stoppedBy };
    return runResultOf(processor, runOptions, pictures, index === 0 ? [] : warnings, outcome, {
      promptTokens: lockstep.promptTokens,
      textTokens: lockstep.promptTokens - lockstep.imageTokens,
      imageTokens: lockstep.imageTokens,
      prefillMs: visionMs + (Number.isFinite(textPrefillMs) ? textPrefillMs : 0),
      visionMs,
      textPrefillMs: Number.isFinite(textPrefillMs) ? textPrefillMs : 0,
      timeToFirstTokenMs: (streams[index].firstTokenAt ?? performance.now()) - askedAt,
      decodeMsPerToken,
      tokensPerSecond: decodeMsPerToken > 0 ? 1000 / decodeMsPerToken : 0,
      kvBytes: run.kvBytes,
      engineKvBytes: run.kvBytes,
      fullCacheKvBytes: fullRun.kvBytes,
      // The weights, buffers and this run's cache: what the run would hold alone.
      totalGpuBytes: Math.max(0, totalPeak.peak - other.kvBytes),
      weightBytes: model.weightBytes,
      generatedTokens: run.tokenIds.length,
      imagesEncoded: pictures.encoded,
      imagesReused: pictures.reused,
      framesEncoded: pictures.framesEncoded,
      framesReused: pictures.framesReused,
      perStep: stepRecords(run.decodeStepMs, run.keptPerHead, text.headDim),
    });
  };
  const full = resultOf(fullRun, 0, policyRun, { ...options, policy: 'full' });
  const policy = resultOf(policyRun, 1, fullRun, options);
  const measurements: CompareMeasurements = {
    timing: lockstep.timing,
    softwareAdapter: model.ctx.adapter.software,
    vision: { encoded: pictures.encoded, reused: pictures.reused, framesEncoded: pictures.framesEncoded, framesReused: pictures.framesReused, ms: visionMs },
    prefill: compareStepTimes(fullRun.prefillMs, policyRun.prefillMs),
    prefillOrder: lockstep.prefillOrder.map((index) => (index === 0 ? 'full' : 'policy')),
    decode: compareStepTimes(fullRun.decodeStepMs, policyRun.decodeStepMs),
    bytes: decodeBytes(lockstep.decodeWeightBytes, meanKvRead(fullRun, text.headDim), meanKvRead(policyRun, text.headDim)),
  };
  return { full, policy, measurements, attention };
}
