/**
 * Attention maps for the UI's overlay: an AttentionHooks implementation that records, at every step, each (layer,
 * query head)'s attention probabilities over the image-token span (the attention probe kernel's row output over the
 * slots from the first to the last image token) into one GPU buffer that each step overwrites. Nothing is read back
 * during generation; read() after it returns the last step's maps over the image tokens only.
 *
 * Use it on the full cache (generate without a compressing kvPolicy): the probe works in cache slots, and only there
 * is slot == prompt position.
 */
import type { GpuContext } from './gpu';
import type { RaggedKvCache } from './kv-cache';
import type { AttentionHooks } from './model';
import { attentionProbe } from './ops/attention-probe';
import { storageBufferUsage } from './allocator';


export class AttentionMapRecorder implements AttentionHooks {
  /** First prompt position of the span the kernel reads (the first image token). */
  readonly spanStart: number;
  /** Slots from the first to the last image token (non-image tokens between tiles included). */
  readonly spanLength: number;
  private readonly positions: Uint32Array;
  private readonly top1Scratch: GPUBuffer;
  private readonly rowScratch: GPUBuffer;
  /** f32 [numLayers, numHeads, spanLength], the latest step of each layer. */
  private readonly maps: GPUBuffer;
  private latestStep: number | null = null;
  private destroyed = false;

  /**
   * imageTokenPositions: prompt position of every image token, ascending (PreparedInputs.imageTokenPositions).
   * numHeads: query heads per layer.
   */
  constructor(
    private readonly ctx: GpuContext,
    readonly numLayers: number,
    readonly numHeads: number,
    imageTokenPositions: ArrayLike<number>,
  ) {
    if (imageTokenPositions.length === 0) throw new RangeError('AttentionMapRecorder: the prompt has no image tokens');
    this.positions = Uint32Array.from(imageTokenPositions);
    for (let i = 1; i < this.positions.length; i++) {
      if (this.positions[i] <= this.positions[i - 1]) throw new RangeError('AttentionMapRecorder: image-token positions must be ascending');
    }
    this.spanStart = this.positions[0];
    this.spanLength = this.positions[this.positions.length - 1] - this.spanStart + 1;
    this.top1Scratch = ctx.allocator.create('scratch', numHeads * 4, storageBufferUsage(), 'attention map top-1');
    this.rowScratch = ctx.allocator.create('scratch', numHeads * this.spanLength * 4, storageBufferUsage(), 'attention map row');
    this.maps = ctx.allocator.create('scratch', numLayers * numHeads * this.spanLength * 4, storageBufferUsage(), 'attention maps');
  }

  /** Image tokens per map. */
  get imageTokens(): number {
    return this.positions.length;
  }

  /** The step whose maps the buffer holds (0 = the prefill's last query), or null before any step finished. */
  get recordedStep(): number | null {
    return this.latestStep;
  }

  onLayerQuery(layer: number, q: GPUBuffer, cache: RaggedKvCache, _stepIndex: number): void {
    if (this.destroyed) throw new Error('AttentionMapRecorder used after destroy()');
    attentionProbe(this.ctx, q, cache, layer, this.numHeads, {
      top1: this.top1Scratch,
      row: { buffer: this.rowScratch, start: this.spanStart, length: this.spanLength },
    });
    // One scratch row for all layers: the copy is ordered after the dispatch and before the next layer's dispatch.
    const layerBytes = this.numHeads * this.spanLength * 4;
    this.ctx.record().copy(this.rowScratch, 0, this.maps, layer * layerBytes, layerBytes);
  }

  onStepDone(stepIndex: number): void {
    this.latestStep = stepIndex;
  }

  /** The latest step's attention per [layer][head], one weight per image token in prompt order. */
  async read(): Promise<Float32Array[][]> {
    if (this.destroyed) throw new Error('AttentionMapRecorder used after destroy()');
    const all = await this.ctx.readF32(this.maps, this.numLayers * this.numHeads * this.spanLength);
    const offsets = Array.from(this.positions, (position) => position - this.spanStart);
    const result: Float32Array[][] = [];
    for (let layer = 0; layer < this.numLayers; layer++) {
      const row: Float32Array[] = [];
      for (let head = 0; head < this.numHeads; head++) {
        const base = (layer * this.numHeads + head) * this.spanLength;
        row.push(Float32Array.from(offsets, (offset) => all[base + offset]));
      }
      result.push(row);
    }
    return result;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.ctx.submit();
    for (const buffer of [this.top1Scratch, this.rowScratch, this.maps]) this.ctx.allocator.destroy(buffer);
  }
}

/** Several hook sets as one (e.g. an attention map and a visual-head probe in the same generation), called in order. */
export function combineAttentionHooks(...hooks: AttentionHooks[]): AttentionHooks {
  return {
    onLayerQuery(layer, q, cache, stepIndex) {
      for (const hook of hooks) hook.onLayerQuery(layer, q, cache, stepIndex);
    },
    async onStepDone(stepIndex, tokenId) {
      for (const hook of hooks) await hook.onStepDone?.(stepIndex, tokenId);
    },
  };
}
