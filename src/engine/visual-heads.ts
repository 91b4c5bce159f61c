/**
 * Visual-head identification on the GPU: generate synthetic OCR probes, run the model on each with the official
 * prompt, and score every (layer, query head) by the official rule (src/sparsemm/head-scoring.ts).
 *
 * Per decode step the WGSL attention probe (ops/attention-probe.ts) finds, on the GPU, each query head's top-1 key over
 * the whole (full) cache for every layer; only numLayers x numHeads u32 are read back per step. Greedy mode runs
 * model.generate with these hooks; teacher forcing drives model.prefill / decodeStep itself to feed the ground truth.
 */
import type { GpuContext } from './gpu';
import { RaggedKvCache } from './kv-cache';
import { type AttentionHooks, fullCacheKept, type VlmModel } from './model';
import { attentionProbe } from './ops/attention-probe';
import type { RawImageLike, VlmProcessor, PreparedInputs } from '../model-io/processor';
import { boxPromptPositions, imageTokenGrid } from '../sparsemm/image-token-map';
import {
  accumulateSamples,
  type HeadScoringMode,
  ocrProbePrompt,
  readingOrderText,
  type SampleScores,
  type ScoredChunk,
  type ScoredStep,
  scoreSample,
} from '../sparsemm/head-scoring';
import { planProbeSample, type ProbePlan, type ProbeSetOptions, type TextMeasurer } from '../sparsemm/probe-set';
import type { HeadScoreFile } from '../sparsemm/score-file';
import { storageBufferUsage } from './allocator';


/** Default tokens generated per probe (the official scripts allow 1024; probes hold a few short chunks). */
export const defaultProbeMaxNewTokens = 64;

export interface FindVisualHeadsOptions {
  /** Probe images to score. */
  samples: number;
  /** Seed of the probe set (default 0): the same seed and canvas give the same probes. */
  seed?: number;
  /** Tokens generated (greedy) or fed (teacher forcing) per probe at most (default 64). */
  maxNewTokens?: number;
  /** 'greedy' (the official rule, default) or 'teacher-forcing' (feeds the probe's text; see head-scoring.ts). */
  mode?: HeadScoringMode;
  /** Text metrics of the canvas that renders (probe-set.ts probeRenderer gives both functions). */
  measureText: TextMeasurer;
  /** Draws a plan and returns its RGBA pixels. */
  renderProbe: (plan: ProbePlan) => RawImageLike;
  /** Image size, chunk count and font size ranges of the probes. */
  probeOptions?: ProbeSetOptions;
  /** Aborting rejects with an AbortError between tokens; the model stays usable. */
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Every scored probe with what was generated and matched (for logs, tests and the UI). */
  onSample?: (sample: ProbeSampleResult) => void;
}

export interface ProbeSampleResult {
  index: number;
  plan: ProbePlan;
  /** Tokens generated (greedy) or fed (teacher forcing). */
  tokenIds: number[];
  /** The chunks with the prompt positions of the image tokens their boxes cover. */
  chunks: ScoredChunk[];
  steps: ScoredStep[];
  result: SampleScores;
}

/** Records, per step, every layer's per-query-head top-1 key slot in one small GPU buffer and reads it once per step. */
class TopOneProbe implements AttentionHooks {
  readonly steps: ScoredStep[] = [];
  private readonly scratch: GPUBuffer;
  private readonly perStep: GPUBuffer;

  constructor(
    private readonly ctx: GpuContext,
    private readonly numLayers: number,
    private readonly numHeads: number,
    private readonly decode: (tokenId: number) => string,
  ) {
    this.scratch = ctx.allocator.create('scratch', numHeads * 4, storageBufferUsage(), 'visual heads: layer top-1');
    this.perStep = ctx.allocator.create('scratch', numLayers * numHeads * 4, storageBufferUsage(), 'visual heads: step top-1');
  }

  onLayerQuery(layer: number, q: GPUBuffer, cache: RaggedKvCache): void {
    attentionProbe(this.ctx, q, cache, layer, this.numHeads, { top1: this.scratch });
    // Reusing one scratch for every layer is safe: the copy is ordered between this dispatch and the next layer's.
    this.ctx.record().copy(this.scratch, 0, this.perStep, layer * this.numHeads * 4, this.numHeads * 4);
  }

  async onStepDone(_stepIndex: number, tokenId: number): Promise<void> {
    const top1 = await this.ctx.readU32(this.perStep, this.numLayers * this.numHeads);
    this.steps.push({ tokenId, text: this.decode(tokenId), top1 });
  }

  destroy(): void {
    this.ctx.submit();
    this.ctx.allocator.destroy(this.scratch);
    this.ctx.allocator.destroy(this.perStep);
  }
}

function abortError(): Error {
  return new DOMException('The visual-head search was cancelled.', 'AbortError');
}

/** The chunks of a plan with the prompt positions of their image tokens in this prompt. */
export function probeChunkPositions(model: VlmModel, plan: ProbePlan, inputs: PreparedInputs): ScoredChunk[] {
  const grid = imageTokenGrid(inputs, model.config, plan);
  return plan.chunks.map((chunk) => ({ text: chunk.text, positions: boxPromptPositions(grid, chunk.box, inputs.imageTokenPositions) }));
}

/**
 * Runs one probe image and scores it. The cache is the full cache (no kvPolicy), so probe slots are prompt positions.
 */
export async function scoreProbeImage(
  model: VlmModel,
  processor: VlmProcessor,
  plan: ProbePlan,
  image: RawImageLike,
  options: { mode?: HeadScoringMode; maxNewTokens?: number; signal?: AbortSignal; index?: number } = {},
): Promise<ProbeSampleResult> {
  const mode = options.mode ?? 'greedy';
  const maxNewTokens = options.maxNewTokens ?? defaultProbeMaxNewTokens;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new RangeError(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  if (image.width !== plan.width || image.height !== plan.height) {
    throw new RangeError(`the rendered probe is ${image.width} x ${image.height}, its plan ${plan.width} x ${plan.height}`);
  }
  const { text } = model.config;
  const inputs = await processor.prepare(image, [{ role: 'user', text: ocrProbePrompt, hasImage: true }]);
  const chunks = probeChunkPositions(model, plan, inputs);
  const probe = new TopOneProbe(model.ctx, text.numLayers, text.numHeads, (id) => processor.decode([id]));
  let tokenIds: number[];
  try {
    if (mode === 'greedy') {
      const result = await model.generate({
        inputIds: inputs.inputIds,
        pixelValues: inputs.pixelValues,
        numTiles: inputs.numTiles,
        maxNewTokens,
        eosTokenIds: processor.eosTokenIds,
        signal: options.signal,
        attentionHooks: probe,
      });
      if (result.stoppedBy === 'cancel') throw abortError();
      tokenIds = result.tokenIds;
    } else {
      // A leading space, as the model's own answer after "Assistant:" starts.
      const target = processor.tokenize(` ${readingOrderText(plan.chunks)}`).slice(0, maxNewTokens);
      await teacherForce(model, inputs, target, probe, options.signal);
      tokenIds = target;
    }
  } finally {
    probe.destroy();
  }
  const result = scoreSample(probe.steps, chunks, text.numLayers, text.numHeads, mode === 'greedy' ? processor.eosTokenIds : []);
  return { index: options.index ?? 0, plan, tokenIds, chunks, steps: probe.steps, result };
}

/**
 * Feeds `target` after the prompt: step i reports the top-1 keys of the query that predicts target[i] (the prefill's
 * last query for i = 0, then the query of target[i - 1]), exactly as greedy decoding would had it chosen those tokens.
 */
async function teacherForce(model: VlmModel, inputs: PreparedInputs, target: number[], hooks: AttentionHooks, signal?: AbortSignal): Promise<void> {
  if (target.length === 0) return;
  const { ctx, config } = model;
  const { text } = config;
  const promptLength = inputs.inputIds.length;
  let features: GPUBuffer | null = null;
  let cache: RaggedKvCache | null = null;
  try {
    if (inputs.numTiles > 0) features = model.encodeImage(inputs.pixelValues, inputs.numTiles);
    cache = RaggedKvCache.create(ctx, {
      numLayers: text.numLayers,
      numKvHeads: text.numKvHeads,
      headDim: text.headDim,
      promptLength,
      keptPerHead: fullCacheKept(text.numLayers, text.numKvHeads, promptLength),
      maxNewTokens: Math.max(1, target.length - 1),
    });
    await model.prefill(inputs.inputIds, features, cache, { attentionHooks: hooks });
    ctx.allocator.destroy(features);
    features = null;
    await hooks.onStepDone?.(0, target[0]);
    for (let step = 1; step < target.length; step++) {
      if (signal?.aborted) throw abortError();
      model.decodeStep(target[step - 1], promptLength + step - 1, cache, { attentionHooks: hooks, stepIndex: step });
      await hooks.onStepDone?.(step, target[step]);
    }
  } finally {
    ctx.submit();
    if (features) ctx.allocator.destroy(features);
    cache?.destroy();
    model.releaseWorkspace();
  }
}

/**
 * Scores `samples` probes and returns the official score file {"<layer>-<head>": [score per probe]}. Progress is
 * reported after each probe; an abort rejects with an AbortError (nothing partial is returned).
 */
export async function findVisualHeads(model: VlmModel, processor: VlmProcessor, options: FindVisualHeadsOptions): Promise<HeadScoreFile> {
  const { samples, seed = 0, mode = 'greedy', maxNewTokens = defaultProbeMaxNewTokens, signal, onProgress, onSample } = options;
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`samples must be a positive integer, got ${samples}`);
  const { text } = model.config;
  const scored: SampleScores[] = [];
  onProgress?.(0, samples);
  for (let index = 0; index < samples; index++) {
    if (signal?.aborted) throw abortError();
    const plan = planProbeSample(seed, index, options.measureText, options.probeOptions);
    const image = options.renderProbe(plan);
    const sample = await scoreProbeImage(model, processor, plan, image, { mode, maxNewTokens, signal, index });
    scored.push(sample.result);
    onSample?.(sample);
    onProgress?.(index + 1, samples);
  }
  return accumulateSamples(text.numLayers, text.numHeads, scored);
}
