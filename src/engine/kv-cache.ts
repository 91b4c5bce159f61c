import type { GpuContext } from './gpu';
import { kernelParams } from './params';
import { appendParams, storeParams } from './kernel-params';

export interface KvCacheLayout {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  promptLength: number;
  /** [layer][kvHead] prompt tokens this head keeps (selected prefix + window), == promptLength for the full cache */
  keptPerHead: number[][];
  maxNewTokens: number;
}

// A function, not a constant: in Node, GPUBufferUsage exists only once dawn.node's globals are installed.
const storageUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
/**
 * One metadata record per (layer, KV head): `fields` u32, these at their offsets (the fourth is unused). The shaders
 * that read it (kv_cache, decode_attention, attention_probe) declare the same as META_* constants;
 * tests/unit/param-layouts.test.ts checks that they agree.
 */
export const kvMetaLayout = { fields: 4, slotOffset: 0, kept: 1, listStart: 2 } as const;
const metaFields = kvMetaLayout.fields;
/** Bytes per cached K or V element: f16, two per u32 (shaders/kv_cache.wgsl). */
export const kvElementBytes = 2;

/**
 * The SparseMM head-wise KV cache: per layer one flat K and one flat V buffer ([rows, headDim] f16, two per u32 — what
 * the paper's code stores; kernels unpack to f32 and do the attention math in f32) in which KV head g
 * owns a contiguous slice of keptPerHead[layer][g] + maxNewTokens rows (the official code's flattened `cu_klen` layout).
 * A slice holds the kept prompt tokens (ascending prompt positions) followed by the decoded tokens. The full cache is the
 * same structure with every head keeping promptLength tokens, so for it slot index == token position.
 *
 * Per-head metadata (slot offset, kept count, start of the head's list in the concatenated kept positions) lives in one
 * small u32 buffer for all layers; the number of appended tokens is passed to kernels as a parameter, so decoding never
 * writes metadata. K/V buffers are counted under 'kv'; the metadata buffer (a few hundred bytes) under 'scratch', so the
 * allocator's 'kv' figure is exactly {@link RaggedKvCache.kvBytes}.
 */
export class RaggedKvCache {
  /** Bytes allocated for K and V (what the allocator counts under 'kv'). */
  readonly kvBytes: number;
  /** u32 [numLayers, numKvHeads, 4]: slot offset, kept, kept-list start, unused. */
  readonly metadata: GPUBuffer;
  private readonly keyBuffers: GPUBuffer[];
  private readonly valueBuffers: GPUBuffer[];
  private readonly slotOffsets: number[][];
  /** Rows allocated per layer (sum over heads of kept + maxNewTokens at creation). */
  private readonly allocatedRows: number[] = [];
  /** Tokens appended per layer; all layers must reach `step + 1` before advance(). */
  private readonly appendedPerLayer: number[];
  private step = 0;

  private constructor(
    private readonly ctx: GpuContext,
    readonly layout: KvCacheLayout,
  ) {
    const { numLayers, numKvHeads, headDim, promptLength, keptPerHead, maxNewTokens } = layout;
    if (headDim % 2 !== 0) throw new Error(`headDim ${headDim} must be even (K/V rows are f16 pairs)`);
    if (keptPerHead.length !== numLayers) throw new Error(`keptPerHead has ${keptPerHead.length} layers, expected ${numLayers}`);
    const meta = new Uint32Array(numLayers * numKvHeads * metaFields);
    this.slotOffsets = [];
    this.keyBuffers = [];
    this.valueBuffers = [];
    let kvBytes = 0;
    for (let layer = 0; layer < numLayers; layer++) {
      const kept = keptPerHead[layer];
      if (kept.length !== numKvHeads) throw new Error(`layer ${layer}: ${kept.length} kept counts, expected ${numKvHeads}`);
      const offsets: number[] = [];
      let rows = 0;
      let listStart = 0;
      kept.forEach((count, g) => {
        if (!Number.isInteger(count) || count < 0 || count > promptLength) {
          throw new Error(`layer ${layer} head ${g}: kept ${count} is not in 0..${promptLength}`);
        }
        const m = (layer * numKvHeads + g) * metaFields;
        meta[m + kvMetaLayout.slotOffset] = rows;
        meta[m + kvMetaLayout.kept] = count;
        meta[m + kvMetaLayout.listStart] = listStart;
        offsets.push(rows);
        rows += count + maxNewTokens;
        listStart += count;
      });
      this.slotOffsets.push(offsets);
      this.allocatedRows.push(rows);
      const bytes = rows * headDim * kvElementBytes;
      this.keyBuffers.push(ctx.allocator.create('kv', bytes, storageUsage(), `kv cache K layer ${layer}`));
      this.valueBuffers.push(ctx.allocator.create('kv', bytes, storageUsage(), `kv cache V layer ${layer}`));
      kvBytes += 2 * Math.max(4, bytes);
    }
    this.kvBytes = kvBytes;
    this.metadata = ctx.allocator.create('scratch', meta.byteLength, storageUsage(), 'kv cache metadata');
    ctx.upload(this.metadata, meta);
    this.appendedPerLayer = new Array<number>(numLayers).fill(0);
  }

  static create(ctx: GpuContext, layout: KvCacheLayout): RaggedKvCache {
    return new RaggedKvCache(ctx, layout);
  }

  /**
   * Writes the prompt's K/V ([promptLength, numKvHeads, headDim], post-RoPE) into this layer's slices.
   * keptPositions: u32, the heads' lists concatenated (head g's list has keptPerHead[layer][g] ascending prompt
   * positions, e.g. from selectKeptPositions); null keeps positions 0..kept-1 (the full cache).
   */
  storePrefill(layer: number, k: GPUBuffer, v: GPUBuffer, keptPositions: GPUBuffer | null): void {
    this.checkLayer(layer);
    const totalRows = this.layout.keptPerHead[layer].reduce((a, b) => a + b, 0);
    if (totalRows === 0) return;
    const pipeline = this.ctx.pipelines.get('kv_cache', 'store_prefill', { HEAD_DIM: this.layout.headDim });
    // Without a list the kernel never reads binding 6; the (read-only) metadata buffer stands in for it.
    const positions = keptPositions ?? this.metadata;
    this.ctx
      .record()
      .dispatch(
        pipeline,
        kernelParams(storeParams, { num_kv_heads: this.layout.numKvHeads, meta_base: this.metaBase(layer), total_rows: totalRows, has_positions: Boolean(keptPositions) }),
        [k, v, this.metadata, this.keyBuffers[layer], this.valueBuffers[layer], positions],
        Math.ceil((totalRows * this.layout.headDim) / 2 / 256),
      );
  }

  /**
   * Re-splits one layer's rows between its heads before its prefill is stored (AdaKV: the per-head split is only known
   * from that layer's window scores). The new kept counts plus the decode room must fit in the rows allocated at creation.
   */
  setLayerKept(layer: number, keptPerHead: number[]): void {
    this.checkLayer(layer);
    const { numKvHeads, maxNewTokens, promptLength } = this.layout;
    if (keptPerHead.length !== numKvHeads) throw new Error(`layer ${layer}: ${keptPerHead.length} kept counts, expected ${numKvHeads}`);
    const rowsNeeded = keptPerHead.reduce((a, b) => a + b + maxNewTokens, 0);
    if (rowsNeeded > this.allocatedRows[layer]) {
      throw new Error(`layer ${layer}: ${rowsNeeded} rows needed, ${this.allocatedRows[layer]} allocated`);
    }
    const meta = new Uint32Array(numKvHeads * metaFields);
    let rows = 0;
    let listStart = 0;
    keptPerHead.forEach((count, g) => {
      if (!Number.isInteger(count) || count < 0 || count > promptLength) throw new Error(`layer ${layer} head ${g}: kept ${count} is not in 0..${promptLength}`);
      meta[g * metaFields + kvMetaLayout.slotOffset] = rows;
      meta[g * metaFields + kvMetaLayout.kept] = count;
      meta[g * metaFields + kvMetaLayout.listStart] = listStart;
      this.slotOffsets[layer][g] = rows;
      rows += count + maxNewTokens;
      listStart += count;
    });
    this.layout.keptPerHead[layer] = [...keptPerHead];
    this.ctx.upload(this.metadata, meta, this.metaBase(layer) * 4);
  }

  /** Appends one decoded token to every KV head of this layer; k/v [numKvHeads, headDim] (post-RoPE). */
  append(layer: number, k: GPUBuffer, v: GPUBuffer): void {
    this.reserveAppend(layer);
    const pipeline = this.ctx.pipelines.get('kv_cache', 'append_token', { HEAD_DIM: this.layout.headDim });
    this.ctx
      .record()
      .dispatch(
        pipeline,
        kernelParams(appendParams, { num_kv_heads: this.layout.numKvHeads, meta_base: this.metaBase(layer), step: this.step }),
        [k, v, this.metadata, this.keyBuffers[layer], this.valueBuffers[layer]],
        Math.ceil((this.layout.numKvHeads * this.layout.headDim) / 2 / 64),
      );
  }

  /**
   * Counts this decode step's token as appended to this layer and returns the row it goes to in each KV head's slice
   * (slot offset + kept + step): for a kernel that writes the token itself (the fused q/k/v GEMV), recorded next.
   */
  reserveAppend(layer: number): number[] {
    this.checkLayer(layer);
    if (this.step >= this.layout.maxNewTokens) throw new Error(`KV cache is full (${this.layout.maxNewTokens} new tokens)`);
    if (this.appendedPerLayer[layer] !== this.step) throw new Error(`layer ${layer} already appended in decode step ${this.step}`);
    this.appendedPerLayer[layer] = this.step + 1;
    return this.layout.keptPerHead[layer].map((kept, g) => this.slotOffsets[layer][g] + kept + this.step);
  }

  /** Ends a decode step; every layer must have appended its token. */
  advance(): void {
    const missing = this.appendedPerLayer.findIndex((n) => n !== this.step + 1);
    if (missing >= 0) throw new Error(`layer ${missing} did not append in decode step ${this.step}`);
    this.step += 1;
  }

  /**
   * Forgets the last `steps` decode steps (a pipelined decode submitted them before it read the stop token that makes
   * them surplus): their rows stay in the buffers but are no longer counted, and the next append overwrites them, so a
   * follow-up step sees exactly the cache a step-by-step decode would have left.
   */
  rewind(steps: number): void {
    if (!Number.isInteger(steps) || steps < 0 || steps > this.step) throw new Error(`rewind: ${steps} steps is not in 0..${this.step}`);
    const missing = this.appendedPerLayer.findIndex((n) => n !== this.step);
    if (missing >= 0) throw new Error(`rewind: layer ${missing} is in the middle of decode step ${this.step}`);
    this.step -= steps;
    this.appendedPerLayer.fill(this.step);
  }

  /**
   * A copy of the cache as it is now: K/V, the per-head split (AdaKV's too) and the decode steps so far. The fidelity
   * sweep continues a policy's free-running answer on it from the step where it leaves the reference answer, while this
   * cache goes on teacher-forced. The K/V copies are recorded like any command (they see everything recorded before).
   */
  clone(): RaggedKvCache {
    const copy = new RaggedKvCache(this.ctx, { ...this.layout, keptPerHead: this.layout.keptPerHead.map((row) => [...row]) });
    const recorder = this.ctx.record();
    for (let layer = 0; layer < this.layout.numLayers; layer++) {
      // The copy's slices sit at the same offsets; its buffers may be shorter (AdaKV reserved rows it did not use).
      recorder.copy(this.keyBuffers[layer], 0, copy.keyBuffers[layer], 0, copy.keyBuffers[layer].size);
      recorder.copy(this.valueBuffers[layer], 0, copy.valueBuffers[layer], 0, copy.valueBuffers[layer].size);
      copy.appendedPerLayer[layer] = this.appendedPerLayer[layer];
    }
    copy.step = this.step;
    return copy;
  }

  /** Tokens this layer's heads currently hold: kept + appended, per KV head. */
  lengths(layer: number): number[] {
    this.checkLayer(layer);
    return this.layout.keptPerHead[layer].map((kept) => kept + this.appendedPerLayer[layer]);
  }

  /** Tokens appended to this layer so far (the same for every head). */
  appendedTokens(layer: number): number {
    this.checkLayer(layer);
    return this.appendedPerLayer[layer];
  }

  /** Completed decode steps. */
  get decodeSteps(): number {
    return this.step;
  }

  /** Longest slice of any head (kept + maxNewTokens): bounds the split-K scratch of decode attention. */
  get maxSliceLength(): number {
    let longest = 0;
    for (const kept of this.layout.keptPerHead) for (const n of kept) longest = Math.max(longest, n + this.layout.maxNewTokens);
    return longest;
  }

  keys(layer: number): GPUBuffer {
    this.checkLayer(layer);
    return this.keyBuffers[layer];
  }

  values(layer: number): GPUBuffer {
    this.checkLayer(layer);
    return this.valueBuffers[layer];
  }

  /** First row of KV head g's slice in this layer's K/V buffers. */
  slotOffset(layer: number, kvHead: number): number {
    this.checkLayer(layer);
    return this.slotOffsets[layer][kvHead];
  }

  /** Index of this layer's first metadata field (kernels' `meta_base`). */
  metaBase(layer: number): number {
    return layer * this.layout.numKvHeads * metaFields;
  }

  destroy(): void {
    for (const buffer of [...this.keyBuffers, ...this.valueBuffers, this.metadata]) this.ctx.allocator.destroy(buffer);
    this.keyBuffers.length = 0;
    this.valueBuffers.length = 0;
  }

  private checkLayer(layer: number): void {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.layout.numLayers) throw new Error(`layer ${layer} out of range`);
  }
}
