/**
 * A decode the GPU never waits on: the sampled token stays on the GPU, where the next step's embedding gather reads it,
 * so the CPU records and submits step n + 1 while step n runs and reads the tokens back later, asynchronously (mapAsync
 * on a ring of small readback buffers). One stream drives one KV cache, one step at a time; several streams may
 * interleave their steps on one model (the benchmark's round robin, Compare's two caches), since each keeps its own
 * token buffer and readback ring and the model's decode buffers are fully rewritten by every step.
 *
 * The caller decides how far ahead to run (submit while `pending` is at most its lookahead). A stop token read a step
 * or two late leaves surplus steps in flight: discardPending() waits for them and rewinds the cache, so the answer
 * and the cache are exactly what a step-by-step decode would have left.
 */
import type { GpuContext } from './gpu';
import { GpuTimer } from './gpu-timer';
import type { RaggedKvCache } from './kv-cache';
import { sampledWords } from './ops/sampling';
import type { DecodeOptions, TokenSampling } from './text-decoder';

/** What a stream needs of a model (VlmModel). */
export interface StreamingModel {
  readonly ctx: GpuContext;
  recordDecodeStep(token: number | GPUBuffer, position: number, cache: RaggedKvCache, options?: DecodeOptions): GPUBuffer;
  recordTokenSelection(logits: GPUBuffer, out: GPUBuffer, sampling?: TokenSampling): void;
}

export interface StreamedToken {
  tokenId: number;
  /** 0 for the token chosen from the logits given to selectFirst (the prefill's), n for the n-th decode step's. */
  stepIndex: number;
  /** The selection kernel found a NaN or an infinity in the logits (the token is then meaningless). */
  nonFinite: boolean;
  /** CPU time to record and submit the step (ms). */
  recordMs: number;
  /** GPU timestamps of the step's start and end (ms on the adapter's clock); null without timing or for step 0. */
  gpuStartMs: number | null;
  gpuEndMs: number | null;
  /** performance.now() when the token was read back. */
  readAtMs: number;
}

export interface DecodeStreamOptions {
  /** Prompt tokens of the cache: decode step n feeds its token at position promptLength + n - 1. */
  promptLength: number;
  /** Readbacks that may be pending at once (the ring's size); submitting more throws. Default 4. */
  maxPending?: number;
  /** Bracket every decode step with timestamp queries (needs the device's timestamp-query feature). */
  timestamps?: boolean;
}

/** Bytes of one readback slot: token, non-finite flag, two padding words, then two u64 timestamps (8-byte aligned). */
const slotBytes = 32;
const timestampOffset = 16;

interface Pending {
  stepIndex: number;
  slot: number;
  mapped: Promise<void>;
  recordMs: number;
  timed: boolean;
}

export class DecodeStream {
  private readonly ctx: GpuContext;
  /** sampledWords u32: what the selection kernel wrote (the token, the non-finite flag), read by the next step. */
  private readonly token: GPUBuffer;
  private readonly readbacks: GPUBuffer[];
  private readonly timer: GpuTimer | null;
  private readonly pending: Pending[] = [];
  private readonly maxPending: number;
  private readbackCount = 0;
  /** Index of the token the next selection makes (0: from selectFirst's logits). */
  private nextStepIndex = 0;

  constructor(
    private readonly model: StreamingModel,
    private readonly cache: RaggedKvCache,
    private readonly options: DecodeStreamOptions,
  ) {
    this.ctx = model.ctx;
    this.maxPending = options.maxPending ?? 4;
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) throw new Error(`DecodeStream: maxPending must be a positive integer, got ${this.maxPending}`);
    if (options.timestamps && !this.ctx.hasTimestampQuery) throw new Error('DecodeStream: this device has no timestamp-query feature');
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.token = this.ctx.allocator.create('scratch', sampledWords * 4, storage, 'decode stream token');
    this.readbacks = Array.from({ length: this.maxPending }, () =>
      this.ctx.allocator.create('scratch', slotBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'decode stream readback'),
    );
    this.timer = options.timestamps ? new GpuTimer(this.ctx, this.maxPending) : null;
  }

  /** Readbacks submitted and not yet returned by next() (the token of the step being awaited included). */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Index of the token the next submitStep will make. */
  get nextStep(): number {
    return this.nextStepIndex;
  }

  /** Chooses token 0 from `logits` (the prefill's) on the GPU; its readback is pending, the next step may be submitted at once. */
  selectFirst(logits: GPUBuffer, sampling?: TokenSampling): void {
    if (this.nextStepIndex !== 0) throw new Error('DecodeStream: selectFirst after the first token');
    const started = performance.now();
    this.model.recordTokenSelection(logits, this.token, sampling);
    this.submitReadback(started, false);
  }

  /** Starts from a token the CPU already has (teacher forcing, the benchmark's synthetic start): no readback. */
  startFrom(tokenId: number): void {
    if (this.nextStepIndex !== 0) throw new Error('DecodeStream: startFrom after the first token');
    this.ctx.upload(this.token, Uint32Array.of(tokenId, 0));
    this.nextStepIndex = 1;
  }

  /**
   * Records and submits the next decode step: it feeds the token the last selection wrote, appends to the cache, and
   * selects the next token into the same buffer; its readback is pending. Returns the step's logits (the model's buffer:
   * valid until the next step is recorded).
   */
  submitStep(sampling?: TokenSampling, options: Omit<DecodeOptions, 'stepIndex'> = {}): GPUBuffer {
    if (this.nextStepIndex === 0) throw new Error('DecodeStream: selectFirst or startFrom before the first step');
    const started = performance.now();
    const slot = this.readbackCount % this.maxPending;
    this.timer?.begin(slot);
    const position = this.options.promptLength + this.cache.decodeSteps;
    const logits = this.model.recordDecodeStep(this.token, position, this.cache, { ...options, stepIndex: this.nextStepIndex });
    this.model.recordTokenSelection(logits, this.token, sampling);
    this.timer?.end(slot);
    this.submitReadback(started, this.timer !== null);
    return logits;
  }

  /** The oldest pending token, once the GPU has made it. */
  async next(): Promise<StreamedToken> {
    const oldest = this.pending.shift();
    if (!oldest) throw new Error('DecodeStream: no step is pending');
    const readback = this.readbacks[oldest.slot];
    await oldest.mapped;
    const bytes = readback.getMappedRange();
    const [tokenId, flag] = new Uint32Array(bytes, 0, sampledWords);
    let gpuStartMs: number | null = null;
    let gpuEndMs: number | null = null;
    if (oldest.timed) {
      const [start, end] = new BigUint64Array(bytes, timestampOffset, 2);
      gpuStartMs = Number(start) / 1e6;
      gpuEndMs = Number(end) / 1e6;
    }
    readback.unmap();
    return { tokenId, stepIndex: oldest.stepIndex, nonFinite: flag !== 0, recordMs: oldest.recordMs, gpuStartMs, gpuEndMs, readAtMs: performance.now() };
  }

  /**
   * Waits for every pending step and drops its token, then rewinds the cache by the decode steps among them: after a
   * stop token, the cache holds what a step-by-step decode would have left. Returns the decode steps discarded.
   */
  async discardPending(): Promise<number> {
    let decodeSteps = 0;
    while (this.pending.length > 0) {
      const dropped = this.pending.shift() as Pending;
      try {
        await dropped.mapped;
        this.readbacks[dropped.slot].unmap();
      } catch {
        // A lost device rejects the mapping; there is nothing left to wait for.
      }
      if (dropped.stepIndex > 0) decodeSteps += 1;
      this.nextStepIndex -= 1;
    }
    this.cache.rewind(decodeSteps);
    return decodeSteps;
  }

  /** Frees the stream's buffers (after discardPending, or once every pending token was read). */
  destroy(): void {
    this.ctx.submit();
    for (const buffer of [this.token, ...this.readbacks]) this.ctx.allocator.destroy(buffer);
    this.timer?.destroy();
  }

  private submitReadback(started: number, timed: boolean): void {
    if (this.pending.length >= this.maxPending) throw new Error(`DecodeStream: ${this.maxPending} readbacks are already pending`);
    const slot = this.readbackCount % this.maxPending;
    const readback = this.readbacks[slot];
    this.ctx.record().copy(this.token, 0, readback, 0, sampledWords * 4);
    if (timed) this.timer?.copyTo(slot, readback, timestampOffset);
    this.ctx.submit();
    const recordMs = performance.now() - started;
    const mapped = readback.mapAsync(GPUMapMode.READ);
    // Marked handled here: a stream destroyed with readbacks pending must not raise an unhandled rejection.
    mapped.catch(() => undefined);
    this.pending.push({ stepIndex: this.nextStepIndex, slot, mapped, recordMs, timed });
    this.readbackCount += 1;
    this.nextStepIndex += 1;
  }
}
