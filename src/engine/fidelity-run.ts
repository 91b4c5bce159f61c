/**
 * How far each KV policy's answer drifts from the full cache's on one prompt, measured on the GPU:
 *
 * 1. One prefill. The full cache is filled as usual, and the prefill's per-layer hook (LayerKvSelector) gives every
 *    policy's cache the same layer's post-RoPE q/k/v: each policy selects from them and stores its kept K/V. The image
 *    features, the prompt's hidden states and K/V are computed once however many policies there are. AdaKV shares it
 *    too: its per-head split reads that layer's pooled window scores back inside the hook (KvCompressor.selectLayer).
 * 2. The full cache decodes greedily: the reference answer. Each step's logits row stays on the GPU.
 * 3. Each policy's cache is fed the reference tokens (teacher forcing); after each step shaders/fidelity.wgsl compares
 *    its logits with the reference row: KL(full || compressed), top-1 agreement, rank of the reference token. Four u32
 *    per step come back. Step 0 is the prefill's own logits, the same for every policy (the prefill attends over the
 *    full K/V, as in SparseMM), so it always agrees.
 * 4. The free-running answer of a policy equals the reference up to the first step whose compressed top-1 differs.
 *    There the cache is cloned, and after the teacher-forced pass the clone decodes on from the token it picked.
 *
 * Another model's answer may be the reference instead (`reference`: the bf16 weights' full-cache answer when this
 * model holds q8 / q4 weights): step 2 is skipped, the full cache becomes a case like the policies (a null policy),
 * and step 0 compares this model's own prefill logits with the reference's, so it may differ.
 */
import { fullCacheKept, type GenerateOptions, type GenerativeModel } from './generate';
import { joinImageFeatures } from './connector';
import { RaggedKvCache, type KvCacheLayout } from './kv-cache';
import { KvCompressor, type KvPolicy } from './kv-policy';
import { decodeStepRecords, fidelityRecordFields, stepFidelity, type StepRecord } from './ops/fidelity';
import { type LayerKvSelector, PrefillCancelledError } from './text-decoder';
import { firstDifference, summarizeFidelity, type FidelitySummary } from '../sparsemm/fidelity';

/** The prompt as generate takes it; maxNewTokens bounds the reference answer and each free-running one. */
export interface FidelityRunOptions
  extends Pick<GenerateOptions, 'inputIds' | 'pixelValues' | 'numTiles' | 'imageFeatures' | 'maxNewTokens' | 'eosTokenIds'> {
  /**
   * The (policy, budget) cases compared with the reference, in the order of the result; null is this model's full
   * cache (only with `reference`: otherwise the full cache is the reference).
   */
  policies: readonly (KvPolicy | null)[];
  /**
   * Another model's answer to follow (same tokenizer and prompt): its tokens and its logits, f32 [tokens x vocab] on
   * this model's device (runFidelity's keepReferenceLogits gives both). Absent: this model's full-cache answer.
   */
  reference?: { tokenIds: readonly number[]; logits: GPUBuffer };
  /** Returns the reference logits buffer in the result (the caller destroys it), to be another run's reference. */
  keepReferenceLogits?: boolean;
  /** Checked during the prefill and between steps; a stop returns what is finished with stoppedBy 'cancel'. */
  signal?: AbortSignal;
  /** After the reference (done 1) and after each case: for a progress bar. */
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Each case's result as soon as it is finished. */
  onCase?: (result: FidelityCaseResult, index: number) => void;
  /** Tests: both logit rows f32 [vocab] of every teacher-forced step, read back (a copy per step: slow). */
  onStepLogits?: (caseIndex: number, step: number, reference: Float32Array, compressed: Float32Array) => void;
}

export interface FidelityCaseResult {
  /** null: this model's full cache (a run with another model's reference). */
  kvPolicy: KvPolicy | null;
  /** Bytes of this policy's KV cache (room for maxNewTokens included), as allocated under 'kv'. */
  kvBytes: number;
  /** False when the budget is not below the prompt: the cache is the full one. */
  compressed: boolean;
  /** Prompt tokens kept per [layer][kvHead] (AdaKV's split as made at prefill). */
  keptPerHead: number[][];
  /** Per teacher-forced step, one per reference token. */
  steps: StepRecord[];
  summary: FidelitySummary;
  /** The policy's own greedy answer. */
  tokenIds: number[];
  /** First index where tokenIds differs from the reference, null when it is the same answer. */
  firstDifference: number | null;
}

export interface FidelityRunResult {
  promptTokens: number;
  reference: { tokenIds: number[]; kvBytes: number; logits?: GPUBuffer };
  /** The cases finished, in the order asked (all of them unless stopped). */
  cases: FidelityCaseResult[];
  stoppedBy: 'done' | 'cancel';
}

/** Thrown inside the run when the signal is aborted; the run returns what it has. */
class FidelityStopped extends Error {}

export async function runFidelity(model: GenerativeModel, options: FidelityRunOptions): Promise<FidelityRunResult> {
  const { inputIds, pixelValues, numTiles, imageFeatures, maxNewTokens, eosTokenIds, policies, signal } = options;
  const { ctx, config } = model;
  const { text } = config;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`fidelity: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  const promptTokens = inputIds.length;
  const imageTokens = inputIds.reduce((n, id) => n + (id === config.imageTokenId ? 1 : 0), 0);
  if (numTiles > 0 && imageTokens !== numTiles * config.imageSeqLen) {
    throw new Error(`fidelity: the prompt has ${imageTokens} image tokens but ${numTiles} tiles give ${numTiles * config.imageSeqLen}`);
  }
  const vocab = text.vocabSize;
  const referenceBytes = maxNewTokens * vocab * 4;
  const bindingLimit = ctx.device.limits.maxStorageBufferBindingSize;
  if (referenceBytes > bindingLimit) {
    throw new Error(
      `Keeping the reference logits of ${maxNewTokens} steps (${vocab} each) needs ${referenceBytes} bytes, above this GPU's ` +
        `maxStorageBufferBindingSize (${bindingLimit}): ask for at most ${Math.floor(bindingLimit / (vocab * 4))} new tokens.`,
    );
  }
  const external = options.reference;
  const fullCases = policies.filter((kvPolicy) => kvPolicy === null).length;
  if (fullCases > (external ? 1 : 0)) throw new Error('fidelity: the full cache is one case at most, and only against another model\'s reference');
  if (external && (external.tokenIds.length === 0 || external.logits.size < external.tokenIds.length * vocab * 4)) {
    throw new Error(`fidelity: the reference has ${external.tokenIds.length} tokens and ${external.logits.size} bytes of logits (vocab ${vocab})`);
  }
  // A null case (the full cache itself) has no compressor and uses the prefill's full cache.
  const compressors = policies.map((kvPolicy) => kvPolicy && KvCompressor.plan(text, promptTokens, kvPolicy));
  const layout = (keptPerHead: number[][]): KvCacheLayout => ({
    numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: promptTokens, keptPerHead, maxNewTokens,
  });
  const result: FidelityRunResult = { promptTokens, reference: { tokenIds: [], kvBytes: 0 }, cases: [], stoppedBy: 'done' };
  const total = policies.length + 1;
  const stopIfAsked = (): void => {
    if (signal?.aborted) throw new FidelityStopped();
  };

  let features: GPUBuffer | null = null;
  let fullCache: RaggedKvCache | null = null;
  const policyCaches: RaggedKvCache[] = [];
  let referenceLogits: GPUBuffer | null = null;
  // This model's prefill logits (row 0 of its own reference, or a copy when the reference is another model's).
  let firstLogits: GPUBuffer | null = null;
  try {
    stopIfAsked();
    if (imageFeatures) features = joinImageFeatures(ctx, config, imageFeatures, imageTokens);
    else if (numTiles > 0) features = model.encodeImage(pixelValues, numTiles);
    fullCache = RaggedKvCache.create(ctx, layout(fullCacheKept(text.numLayers, text.numKvHeads, promptTokens)));
    result.reference.kvBytes = fullCache.kvBytes;
    for (const compressor of compressors) policyCaches.push(compressor ? RaggedKvCache.create(ctx, layout(compressor.keptPerHead)) : fullCache);

    // 1. One prefill for all: the full cache keeps everything (null), each policy stores its own selection.
    const selectKept: LayerKvSelector = async (layer, q, k, v) => {
      for (const [i, compressor] of compressors.entries()) {
        if (!compressor) continue;
        const cache = policyCaches[i];
        cache.storePrefill(layer, k, v, await compressor.selectLayer(ctx, cache, layer, q, k));
        // The policies share their selection scratch buffers (ctx.scratch): each one's commands go before the next.
        ctx.submit();
      }
      return null;
    };
    let logits: GPUBuffer;
    try {
      logits = await model.prefill(inputIds, features, fullCache, { selectKept, signal });
    } catch (error) {
      if (error instanceof PrefillCancelledError) throw new FidelityStopped();
      throw error;
    }
    ctx.allocator.destroy(features);
    features = null;

    // 2. The reference answer on the full cache; row s of referenceLogits holds step s's logits.
    const reference = result.reference.tokenIds;
    if (external) {
      firstLogits = ctx.allocator.create('activations', vocab * 4, storageUsage(), 'fidelity prefill logits');
      ctx.record().copy(logits, 0, firstLogits, 0, vocab * 4);
      reference.push(...external.tokenIds.slice(0, maxNewTokens));
    }
    referenceLogits = external?.logits ?? ctx.allocator.create('activations', referenceBytes, storageUsage(), 'fidelity reference logits');
    // With another model's reference there is nothing to decode here (its rows are already in referenceLogits).
    while (!external) {
      ctx.record().copy(logits, 0, referenceLogits, reference.length * vocab * 4, vocab * 4);
      const token = await model.selectToken(logits);
      reference.push(token);
      if (eosTokenIds.includes(token) || reference.length >= maxNewTokens) break;
      stopIfAsked();
      logits = model.decodeStep(token, promptTokens + reference.length - 1, fullCache);
    }
    if (!policies.includes(null)) {
      fullCache.destroy();
      fullCache = null;
    }
    options.onProgress?.({ done: 1, total });

    // 3 and 4, one policy after another (each cache is freed when its case is done).
    for (const [index, compressor] of compressors.entries()) {
      stopIfAsked();
      const cache = policyCaches[index];
      const caseResult = await followReference(model, {
        cache, referenceLogits, firstLogits: firstLogits ?? referenceLogits, reference, promptTokens, maxNewTokens, eosTokenIds, stopIfAsked,
        onStepLogits: options.onStepLogits && ((step, ref, compressed) => options.onStepLogits?.(index, step, ref, compressed)),
      });
      result.cases.push({
        kvPolicy: compressor?.kvPolicy ?? null,
        kvBytes: cache.kvBytes,
        compressed: compressor?.compresses ?? false,
        keptPerHead: cache.layout.keptPerHead.map((row) => [...row]),
        ...caseResult,
      });
      if (cache !== fullCache) cache.destroy();
      options.onCase?.(result.cases[index], index);
      options.onProgress?.({ done: index + 2, total });
    }
    if (options.keepReferenceLogits && !external) {
      result.reference.logits = referenceLogits;
      referenceLogits = null;
    }
    return result;
  } catch (error) {
    if (error instanceof FidelityStopped) return { ...result, stoppedBy: 'cancel' };
    throw error;
  } finally {
    // Submit anything recorded before freeing, so no pending command refers to a destroyed buffer.
    ctx.submit();
    ctx.allocator.destroy(features);
    for (const cache of new Set([fullCache, ...policyCaches])) cache?.destroy();
    if (!external) ctx.allocator.destroy(referenceLogits); // another model's reference belongs to the caller
    ctx.allocator.destroy(firstLogits);
    model.releaseWorkspace();
  }
}

// A function, not a constant: in Node, GPUBufferUsage exists only once dawn.node's globals are installed.
const storageUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

interface FollowRequest {
  /** The policy's cache right after the shared prefill. */
  cache: RaggedKvCache;
  referenceLogits: GPUBuffer;
  /** This model's prefill logits (step 0, the same for every case of a run). */
  firstLogits: GPUBuffer;
  reference: readonly number[];
  promptTokens: number;
  maxNewTokens: number;
  eosTokenIds: readonly number[];
  stopIfAsked: () => void;
  onStepLogits?: (step: number, reference: Float32Array, compressed: Float32Array) => void;
}

/** One policy: the teacher-forced steps along the reference, then its free-running answer from where it leaves it. */
async function followReference(
  model: GenerativeModel,
  request: FollowRequest,
): Promise<Pick<FidelityCaseResult, 'steps' | 'summary' | 'tokenIds' | 'firstDifference'>> {
  const { cache, referenceLogits, firstLogits, reference, promptTokens, maxNewTokens, eosTokenIds, stopIfAsked, onStepLogits } = request;
  const { ctx } = model;
  const vocab = model.config.text.vocabSize;
  const steps = reference.length;
  const records = ctx.allocator.create('scratch', steps * fidelityRecordFields * 4, storageUsage(), 'fidelity step records');
  let leftAt: { step: number; token: number; cache: RaggedKvCache } | null = null;
  try {
    // Step 0: the prefill's logits, which every policy shares (row 0 against itself, unless the reference is another
    // model's: then they may differ, and the answer may leave the reference at once).
    stepFidelity(ctx, { vocab, reference: referenceLogits, referenceOffset: 0, compressed: firstLogits, referenceToken: reference[0], out: records, step: 0 });
    if (onStepLogits) onStepLogits(0, await ctx.readF32(referenceLogits, vocab), await ctx.readF32(firstLogits, vocab));
    const [first] = decodeStepRecords(await ctx.readU32(records, fidelityRecordFields), 1);
    if (first.compressedTop1 !== reference[0]) leftAt = { step: 0, token: first.compressedTop1, cache: cache.clone() };
    for (let step = 1; step < steps; step++) {
      stopIfAsked();
      const logits = model.decodeStep(reference[step - 1], promptTokens + step - 1, cache);
      stepFidelity(ctx, { vocab, reference: referenceLogits, referenceOffset: step * vocab, compressed: logits, referenceToken: reference[step], out: records, step });
      if (onStepLogits) onStepLogits(step, await ctx.readF32(referenceLogits, vocab, step * vocab), await ctx.readF32(logits, vocab));
      // Each step's record is read at once (as generate reads each token): the step where the answers part needs a copy
      // of the cache, and the wait lets a Stop message in.
      const [record] = decodeStepRecords(await ctx.readU32(records, fidelityRecordFields, step * fidelityRecordFields), 1);
      if (!leftAt && record.compressedTop1 !== reference[step]) leftAt = { step, token: record.compressedTop1, cache: cache.clone() };
    }
    const stepRecords = decodeStepRecords(await ctx.readU32(records, steps * fidelityRecordFields), steps);

    let tokenIds = [...reference];
    if (leftAt) {
      // The free-running answer: the reference's tokens before the step, then the policy's own greedy tokens.
      tokenIds = [...reference.slice(0, leftAt.step), leftAt.token];
      let token = leftAt.token;
      while (!eosTokenIds.includes(token) && tokenIds.length < maxNewTokens) {
        stopIfAsked();
        token = await model.selectToken(model.decodeStep(token, promptTokens + tokenIds.length - 1, leftAt.cache));
        tokenIds.push(token);
      }
    }
    return { steps: stepRecords, summary: summarizeFidelity(stepRecords), tokenIds, firstDifference: firstDifference(reference, tokenIds) };
  } finally {
    ctx.submit();
    leftAt?.cache.destroy();
    ctx.allocator.destroy(records);
  }
}
