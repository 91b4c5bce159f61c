/**
 * Several answers to one prompt, each with its own KV cache (Compare: the full cache and a policy), measured under the
 * same conditions so that their ratios say something about the caches and nothing about the order they ran in:
 *
 * 1. The image features are made once, before any run (given by the caller, or encoded here and timed once).
 * 2. Each cache is prefilled once untimed (a warm-up), then several times, each into a fresh cache, the order of the runs reversed on every
 *    repeat (A B B A A B B A: each run goes early as often as late); the first prefill of each run is the one kept.
 *    Two repeats at least, four at most: more only while the prefills so far took less than `prefillBudgetMs` (a long
 *    prompt on a slow adapter gets two). Each figure is wall clock from the call to the first token picked: the text
 *    prefill, a compressing policy's selection kernels (window scores, pooling, top-k, the gather into its cache) and
 *    the first token's read-back.
 * 3. The caches decode in lockstep: one step of each in turn, the order of the pair reversed on every step (A B, B A,
 *    A B, ...), as the benchmark's round robin does, so a background load and the GPU's warm-up hit them alike. Each
 *    step's decode is bracketed by GPU timestamp queries where the adapter has them (wall clock otherwise).
 *
 * Each run's tokens are the ones generate() makes for it alone: the runs share the model's decode buffers but never
 * at the same time (every step is submitted and its token read back before the next starts), and each cache has its
 * own recorded step plan. tests/gpu/lockstep-decode.test.ts checks this bit for bit.
 */
import { GpuTimer } from './gpu-timer';
import { decodeWeightBytes, kvBytesRead } from './benchmark-bytes';
import { joinImageFeatures } from './connector';
import { fullCacheKept, type GenerateOptions, type GenerativeModel } from './generate';
import { RaggedKvCache } from './kv-cache';
import { KvCompressor, type KvPolicy } from './kv-policy';
import { SeededRng } from './ops/sampling';
import { type AttentionHooks, type LayerKvSelector, PrefillCancelledError } from './text-decoder';

export interface LockstepOptions
  extends Pick<GenerateOptions, 'inputIds' | 'pixelValues' | 'numTiles' | 'imageFeatures' | 'maxNewTokens' | 'eosTokenIds' | 'sampling' | 'signal'> {
  /** One run per entry, in this order; undefined (or policy 'full') is the full cache. */
  policies: readonly (KvPolicy | undefined)[];
  /** Most prefills per run (each into a fresh cache, the order reversed on every repeat); default 4. */
  prefillRepeats?: number;
  /** After every second repeat, another pair only while the prefills so far took less than this (ms); default 2000. */
  prefillBudgetMs?: number;
  /** Each token as soon as it is picked: the run's index and the token's index in its answer (0 = from the prefill). */
  onToken?: (run: number, tokenId: number, tokenIndex: number) => void;
  /**
   * Where the heads of one run look (the app's overlay; use it on a full-cache run): recorded on one extra step after
   * the decoding, outside every timed step, feeding that run's last token (its logits are not used).
   */
  attention?: { run: number; hooks: AttentionHooks };
}

export interface LockstepRunResult {
  kvPolicy: KvPolicy | undefined;
  tokenIds: number[];
  /** Bytes of this run's KV cache (room for maxNewTokens included), as allocated under 'kv'. */
  kvBytes: number;
  /** Prompt tokens kept per [layer][kvHead] (AdaKV's split as made at the kept prefill). */
  keptPerHead: number[][];
  /** False for the full cache, or when the prompt is not longer than the policy's budget. */
  compressed: boolean;
  /** Wall time of each prefill of this run in ms (text prefill + selection + the first token), in the order made. */
  prefillMs: number[];
  /** Time of each decode step in ms: GPU timestamps around the step, or wall clock (see LockstepResult.timing). */
  decodeStepMs: number[];
  /** Wall time of each decode step in ms (token fed -> next token read back), whatever `timing` is. */
  decodeWallMs: number[];
  /** K and V bytes each decode step read (kvBytesRead of the cache as the step attended it). */
  kvReadPerStep: number[];
  stoppedBy: 'eos' | 'max' | 'cancel';
}

export interface LockstepResult {
  promptTokens: number;
  imageTokens: number;
  /** The vision tower and connector over every tile, until the GPU finished them; 0 when the features were given. */
  visionMs: number;
  /** How decodeStepMs were measured. */
  timing: 'gpu-timestamps' | 'wall-clock';
  /** Run indices in the order their prefills ran (repeats x runs). */
  prefillOrder: number[];
  /** Weight bytes one decode step reads (decodeWeightBytes): the same for every cache. */
  decodeWeightBytes: number;
  runs: LockstepRunResult[];
}

/** One run while it is decoding. */
interface LiveRun {
  result: LockstepRunResult;
  cache: RaggedKvCache | null;
  rng: SeededRng | null;
  /** The uniform of the first token's draw: every prefill repeat picks with the same one. */
  firstUniform: number;
  token: number;
  done: boolean;
}

/** The order of the runs on repeat or step `index`: as given on even ones, reversed on odd ones. */
export function alternatingOrder(runs: number, index: number): number[] {
  const order = Array.from({ length: runs }, (_, i) => i);
  return index % 2 === 0 ? order : order.reverse();
}

/**
 * Prefills and decodes every run as above; frees the caches, the joined features and the decode buffers whatever
 * happens. A stop (signal) resolves with each run's tokens so far and stoppedBy 'cancel'.
 */
export async function decodeInLockstep(model: GenerativeModel, options: LockstepOptions): Promise<LockstepResult> {
  const { inputIds, pixelValues, numTiles, imageFeatures, maxNewTokens, eosTokenIds, sampling, signal, policies } = options;
  const { ctx, config } = model;
  const { text } = config;
  const repeats = options.prefillRepeats ?? 4;
  const prefillBudgetMs = options.prefillBudgetMs ?? 2000;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`lockstep: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`lockstep: prefillRepeats must be a positive integer, got ${repeats}`);
  if (policies.length === 0) throw new Error('lockstep: no runs');
  const promptTokens = inputIds.length;
  const imageTokens = inputIds.reduce((n, id) => n + (id === config.imageTokenId ? 1 : 0), 0);
  if (numTiles > 0 && imageTokens !== numTiles * config.imageSeqLen) {
    throw new Error(`lockstep: the prompt has ${imageTokens} image tokens but ${numTiles} tiles give ${numTiles * config.imageSeqLen}`);
  }
  const timing: LockstepResult['timing'] = ctx.hasTimestampQuery ? 'gpu-timestamps' : 'wall-clock';
  const result: LockstepResult = {
    promptTokens, imageTokens, visionMs: 0, timing, prefillOrder: [], decodeWeightBytes: decodeWeightBytes(config), runs: [],
  };
  const live: LiveRun[] = policies.map((kvPolicy) => {
    const rng = sampling && sampling.temperature > 0 ? new SeededRng(sampling.seed) : null;
    const runResult: LockstepRunResult = {
      kvPolicy, tokenIds: [], kvBytes: 0, keptPerHead: [], compressed: false, prefillMs: [], decodeStepMs: [], decodeWallMs: [], kvReadPerStep: [], stoppedBy: 'max',
    };
    result.runs.push(runResult);
    return { result: runResult, cache: null, rng, firstUniform: rng?.next() ?? 0, token: -1, done: false };
  });
  const uniformOf = (run: LiveRun, uniform: number) =>
    run.rng && sampling ? { temperature: sampling.temperature, topP: sampling.topP, uniform } : undefined;
  const cancelAll = (): LockstepResult => {
    for (const run of live) if (!run.done) run.result.stoppedBy = 'cancel';
    return result;
  };

  let features: GPUBuffer | null = null;
  let spare: RaggedKvCache | null = null;
  const timer = timing === 'gpu-timestamps' ? new GpuTimer(ctx) : null;
  try {
    if (signal?.aborted) return cancelAll();
    // 1. The pictures, once for every run.
    const started = performance.now();
    if (imageFeatures) features = joinImageFeatures(ctx, config, imageFeatures, imageTokens);
    else if (numTiles > 0) {
      features = model.encodeImage(pixelValues, numTiles);
      await ctx.finish();
      result.visionMs = performance.now() - started;
    }

    // 2. One untimed prefill of each run first: the first prefill of a prompt length pays for its workspace and a
    // compressing policy's scratch buffers, and the run that went first (the full cache) carried that cost in its
    // figures (seen as a 1.12x 'faster' SparseMM prefill with nothing compressed). Then the timed prefills, A B B A
    // ...; the first one of each run is kept, the others only timed.
    for (const run of live) {
      const warm = await prefillRun(model, inputIds, features, run.result.kvPolicy, maxNewTokens, signal);
      if (!warm) return cancelAll();
      await ctx.finish();
      warm.cache.destroy();
    }
    let prefillTotalMs = 0;
    for (let repeat = 0; repeat < repeats; repeat++) {
      if (repeat >= 2 && repeat % 2 === 0 && prefillTotalMs > prefillBudgetMs) break;
      for (const index of alternatingOrder(live.length, repeat)) {
        const run = live[index];
        const prefillStarted = performance.now();
        const prefilled = await prefillRun(model, inputIds, features, run.result.kvPolicy, maxNewTokens, signal);
        if (!prefilled) return cancelAll();
        spare = prefilled.cache;
        const token = await model.selectToken(prefilled.logits, uniformOf(run, run.firstUniform), 0);
        const prefillMs = performance.now() - prefillStarted;
        run.result.prefillMs.push(prefillMs);
        prefillTotalMs += prefillMs;
        result.prefillOrder.push(index);
        spare = null;
        if (repeat > 0) {
          prefilled.cache.destroy();
          continue;
        }
        run.cache = prefilled.cache;
        run.token = token;
        run.result.kvBytes = run.cache.kvBytes;
        run.result.compressed = prefilled.compressed;
        // AdaKV re-splits each layer between its heads during the prefill.
        run.result.keptPerHead = run.cache.layout.keptPerHead.map((row) => [...row]);
      }
    }
    // The features are only needed by the prefills.
    ctx.allocator.destroy(features);
    features = null;
    for (const [index, run] of live.entries()) {
      run.result.tokenIds.push(run.token);
      options.onToken?.(index, run.token, 0);
    }

    // 3. Decode in lockstep, the order of the runs reversed on every step.
    for (let step = 1; ; step++) {
      for (const index of alternatingOrder(live.length, step - 1)) {
        const run = live[index];
        if (run.done) continue;
        const ended = endOf(run, eosTokenIds, maxNewTokens);
        if (ended) {
          run.result.stoppedBy = ended;
          run.done = true;
          continue;
        }
        if (signal?.aborted) return cancelAll();
        const cache = run.cache as RaggedKvCache;
        const wallStart = performance.now();
        timer?.begin();
        const logits = model.decodeStep(run.token, promptTokens + step - 1, cache, { stepIndex: step });
        timer?.end();
        run.token = await model.selectToken(logits, uniformOf(run, run.rng?.next() ?? 0), step);
        const wallMs = performance.now() - wallStart;
        run.result.decodeStepMs.push(timer ? await timer.elapsedMs() : wallMs);
        run.result.decodeWallMs.push(wallMs);
        // The cache has advanced: its lengths are what this step attended (as the benchmark counts them).
        run.result.kvReadPerStep.push(kvBytesRead(cache.layout.keptPerHead.map((_, layer) => cache.lengths(layer)), text.headDim));
        run.result.tokenIds.push(run.token);
        options.onToken?.(index, run.token, run.result.tokenIds.length - 1);
      }
      if (live.every((run) => run.done)) break;
    }

    // The attention overlay, outside the timed steps: one more step of that run with the probes.
    const probed = options.attention ? live[options.attention.run] : undefined;
    // (The cache has room for it: maxNewTokens rows, and one fewer token than the answer has was fed.)
    if (options.attention && probed?.cache) {
      const stepIndex = probed.result.tokenIds.length;
      model.decodeStep(probed.token, promptTokens + stepIndex - 1, probed.cache, { attentionHooks: options.attention.hooks, stepIndex });
      await ctx.finish();
      await options.attention.hooks.onStepDone?.(stepIndex, probed.token);
    }
    return result;
  } finally {
    // Submit anything recorded before freeing, so no pending command refers to a destroyed buffer.
    ctx.submit();
    ctx.allocator.destroy(features);
    spare?.destroy();
    for (const run of live) run.cache?.destroy();
    timer?.destroy();
    model.releaseWorkspace();
  }
}

/** Why a run stops before its next step, or null when it goes on. */
function endOf(run: LiveRun, eosTokenIds: readonly number[], maxNewTokens: number): 'eos' | 'max' | null {
  if (eosTokenIds.includes(run.token)) return 'eos';
  if (run.result.tokenIds.length >= maxNewTokens) return 'max';
  return null;
}

/** A fresh cache sized by the policy, prefilled (with the policy's selection); null when stopped. */
async function prefillRun(
  model: GenerativeModel,
  inputIds: Uint32Array,
  features: GPUBuffer | null,
  kvPolicy: KvPolicy | undefined,
  maxNewTokens: number,
  signal: AbortSignal | undefined,
): Promise<{ cache: RaggedKvCache; logits: GPUBuffer; compressed: boolean } | null> {
  const { ctx } = model;
  const { text } = model.config;
  const promptTokens = inputIds.length;
  const compressor = kvPolicy && kvPolicy.policy !== 'full' ? KvCompressor.plan(text, promptTokens, kvPolicy) : null;
  const keptPerHead = compressor?.keptPerHead ?? fullCacheKept(text.numLayers, text.numKvHeads, promptTokens);
  const cache = RaggedKvCache.create(ctx, {
    numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: promptTokens, keptPerHead, maxNewTokens,
  });
  const selectKept: LayerKvSelector | undefined = compressor ? (layer, q, k) => compressor.selectLayer(ctx, cache, layer, q, k) : undefined;
  try {
    const logits = await model.prefill(inputIds, features, cache, { selectKept, signal });
    return { cache, logits, compressed: compressor?.compresses ?? false };
  } catch (error) {
    ctx.submit();
    cache.destroy();
    if (error instanceof PrefillCancelledError) return null;
    throw error;
  }
}
