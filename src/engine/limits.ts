/**
 * The WebGPU limits our kernels need, and a check that refuses an adapter (or a model) that lacks one BEFORE anything
 * is allocated, naming the limit. Every WebGPU implementation must offer at least the spec's default limits, and our
 * kernels stay within them, so on a conformant adapter this check only fails for a model whose shape needs more (a
 * larger head dim, a bigger tensor); it turns what would otherwise be a pipeline-creation or binding validation error
 * in the middle of a generation into a clear message up front.
 *
 * The per-kernel numbers below mirror the declarations in shaders/*.wgsl; tests/unit/limits.test.ts reads those
 * files and checks that this table agrees with them, entry point by entry point.
 */
import type { ModelConfig } from '../model-io/config';
import { flashWorkgroupBytes, flashWorkgroupSize, maxAttentionHeadDim } from './ops/attention';
import { decodeChunkKeys as decodeChunk, maxDecodeGroup } from './ops/decode-attention';
import { packedBf16Bytes } from './weights';

/** The limits we check. All are "at least" limits except minUniformBufferOffsetAlignment ("at most"). */
export type CheckedLimit =
  | 'maxBindGroups'
  | 'maxStorageBuffersPerShaderStage'
  | 'maxComputeWorkgroupStorageSize'
  | 'maxComputeInvocationsPerWorkgroup'
  | 'maxComputeWorkgroupSizeX'
  | 'maxComputeWorkgroupsPerDimension'
  | 'maxUniformBufferBindingSize'
  | 'minUniformBufferOffsetAlignment'
  | 'maxStorageBufferBindingSize'
  | 'maxBufferSize';

/** Just the fields we read, so a GPUSupportedLimits, an adapter's limits or a plain object in a test all fit. */
export type LimitValues = Readonly<Record<CheckedLimit, number>>;

export interface LimitRequirement {
  limit: CheckedLimit;
  /** For "at least" limits the smallest value that works; for minUniformBufferOffsetAlignment the largest. */
  required: number;
  /** What needs it (a kernel, a tensor), for the error message. */
  reason: string;
}

/** One compute entry point's needs for the override constants it is compiled with. */
export interface KernelNeeds {
  shader: string;
  entryPoint: string;
  /** Override constants this row assumes (the engine passes these; others keep their defaults). */
  constants: Readonly<Record<string, number>>;
  /** shaders/ file compiled before this one in the same module (PipelineCache's prelude), if any. */
  prelude?: string;
  workgroupStorageBytes: number;
  invocationsPerWorkgroup: number;
  storageBuffers: number;
  /** The engine uses another kernel where this one does not fit the device, so it sets no requirement. */
  hasFallback?: boolean;
}

/** The model shapes the head-dim dependent kernels are compiled for. */
export interface KernelShapes {
  /** Head dims that go through shaders/attention.wgsl (the vision tower and the text decoder's prefill). */
  attentionHeadDims: number[];
  /** The text decoder's head dim (decode attention, SnapKV scores, the probe, the KV cache). */
  textHeadDim: number;
  /** Query heads per KV head (GQA group) of the text decoder. */
  gqaGroup: number;
}

/** Must match shaders/attention.wgsl (BQ) and the smallest key tile ops/attention.ts falls back to. */
const attentionQueryRows = 16;
const smallestAttentionKeyTile = 1;
/** The uniform parameter slot of GpuContext (one per dispatch, bound at a multiple of 256 bytes). */
const paramSlotBytes = 256;
/** foldWorkgroups in gpu.ts folds dispatches above this many workgroups into y. */
const foldedWorkgroupsPerDimension = 65535;
const f32Bytes = 4;

/** Shapes covering every model the kernels support: the largest head dim and GQA group they accept. */
export const largestSupportedShapes: KernelShapes = {
  attentionHeadDims: [maxAttentionHeadDim],
  textHeadDim: maxAttentionHeadDim,
  gqaGroup: maxDecodeGroup,
};

export function kernelShapesOf(config: ModelConfig): KernelShapes {
  return {
    attentionHeadDims: [...new Set([config.vision.headDim, config.text.headDim])],
    textHeadDim: config.text.headDim,
    gqaGroup: config.text.numHeads / config.text.numKvHeads,
  };
}

function fixedKernel(shader: string, entryPoint: string, workgroupStorageBytes: number, invocationsPerWorkgroup: number, storageBuffers: number, constants: Record<string, number> = {}): KernelNeeds {
  return { shader, entryPoint, constants, workgroupStorageBytes, invocationsPerWorkgroup, storageBuffers };
}

/** Every compute entry point in shaders/, with what it needs for the given shapes. */
export function kernelNeeds(shapes: KernelShapes): KernelNeeds[] {
  const headDim = shapes.textHeadDim;
  const group = shapes.gqaGroup;
  const kernels: KernelNeeds[] = [
    fixedKernel('adapter_limits', 'compute_peak', 0, 256, 1),
    fixedKernel('adapter_limits', 'stream_read', 0, 256, 2),
    fixedKernel('activation', 'swiglu', 0, 256, 3),
    fixedKernel('activation', 'gelu_tanh', 0, 256, 2),
    fixedKernel('add', 'main', 0, 256, 3),
    fixedKernel('embedding', 'main', 0, 256, 3),
    // tile_x + tile_w: 2 x TILE_K * 16 vec4<f32>; the engine falls back to TILE_K 16 where 32 does not fit.
    { ...fixedKernel('matmul', 'gemm', 2 * 16 * 16 * 4 * f32Bytes, 64, 4, { TILE_K: 16 }), prelude: 'weights_bf16' },
    // The decode GEMV family with each team reduction: subgroup shuffles need no workgroup memory, the tree needs
    // team_partial [WORKGROUP = 64] f32. x, weight, bias or up, norm weight, out.
    ...(['gemv', 'gemv_swiglu', 'gemv_qkv_rope'] as const).flatMap((entry) => {
      // gemv_qkv_rope also binds the k and v weights and the layer's K and V cache.
      const buffers = entry === 'gemv_qkv_rope' ? 8 : 5;
      return [
        { ...fixedKernel('gemv', entry, 0, 64, buffers), prelude: 'gemv_team_subgroup+rope_angle+weights_bf16' },
        { ...fixedKernel('gemv', entry, 64 * f32Bytes, 64, buffers), prelude: 'gemv_team_workgroup+rope_angle+weights_bf16' },
      ];
    }),
    fixedKernel('norm', 'rms_norm', 256 * f32Bytes, 256, 3),
    fixedKernel('norm', 'layer_norm', 256 * f32Bytes, 256, 4),
    { ...fixedKernel('rope', 'main', 0, 256, 3), prelude: 'rope_angle' },
    // red_f, red_u (256 each) and the non-finite flag; top-p also keeps three scalars.
    { ...fixedKernel('sampling', 'argmax', (2 * 256 + 1) * f32Bytes, 256, 2), prelude: 'logit_reductions' },
    { ...fixedKernel('sampling', 'sample_top_p', (2 * 256 + 4) * f32Bytes, 256, 2), prelude: 'logit_reductions' },
    // red_f, red_u (256 each): reference logits, compressed logits, step records.
    { ...fixedKernel('fidelity', 'step_fidelity', 2 * 256 * f32Bytes, 256, 3), prelude: 'logit_reductions' },
    fixedKernel('vision_prep', 'patchify', 0, 256, 2),
    fixedKernel('vision_prep', 'pixel_shuffle', 0, 256, 2),
    fixedKernel('kv_selection', 'row_stats', 2 * 64 * f32Bytes, 64, 3, { HEAD_DIM: headDim }),
    fixedKernel('kv_selection', 'window_mean', 0, 64, 4, { HEAD_DIM: headDim }),
    fixedKernel('kv_selection', 'pool', 0, 64, 2, { HEAD_DIM: headDim }),
    // scan_buf (256 u32) and one u32.
    fixedKernel('kv_selection', 'select_top', (256 + 1) * f32Bytes, 256, 2),
    // red_max, red_sum, red_best, red_index: 4 x 256.
    fixedKernel('attention_probe', 'probe_top1', 4 * 256 * f32Bytes, 256, 4, { HEAD_DIM: headDim }),
    fixedKernel('attention_probe', 'probe_top1_row', 4 * 256 * f32Bytes, 256, 5, { HEAD_DIM: headDim }),
    fixedKernel('kv_cache', 'store_prefill', 0, 256, 6, { HEAD_DIM: headDim }),
    fixedKernel('kv_cache', 'append_token', 0, 64, 5, { HEAD_DIM: headDim }),
    // q_group [GROUP * HEAD_DIM], probs [GROUP * CHUNK], chunk_max [GROUP] (the exp sum is kept in the value loop).
    fixedKernel('decode_attention', 'attend_partial', group * (headDim + decodeChunk + 1) * f32Bytes, decodeChunk, 5, { HEAD_DIM: headDim, GROUP: group }),
    fixedKernel('decode_attention', 'attend_reduce', 0, 64, 3, { HEAD_DIM: headDim, GROUP: group }),
  ];
  for (const dim of shapes.attentionHeadDims) {
    // q_tile [BQ * HEAD_DIM], k_tile and v_tile [BK * HEAD_DIM], s_tile [BQ * BK], row_alpha and row_l [BQ]; the
    // engine shrinks BK to fit the device, so what must fit is the smallest tile.
    const bk = smallestAttentionKeyTile;
    const floats = attentionQueryRows * dim + 2 * bk * dim + attentionQueryRows * bk + 2 * attentionQueryRows;
    kernels.push(fixedKernel('attention', 'main', floats * f32Bytes, attentionQueryRows * 8, 4, { HEAD_DIM: dim, BK: bk }));
  }
  // The register-blocked prefill attention serves head dims 32 and 64 where its tiles fit; elsewhere ops/attention.ts
  // uses main, so it is listed (for the table check) but needs nothing of the device. Without such a head dim, its row
  // is the largest it serves.
  const flashDims = shapes.attentionHeadDims.filter((dim) => dim === 32 || dim === 64);
  for (const dim of flashDims.length > 0 ? flashDims : [64]) {
    kernels.push({ ...fixedKernel('attention', 'flash', flashWorkgroupBytes(dim), flashWorkgroupSize, 4, { HEAD_DIM: dim }), hasFallback: true });
  }
  return kernels;
}

/** The largest single tensor of an Idefics3 model, packed bf16 on the GPU (it is bound whole as one storage buffer). */
export function largestWeightTensor(config: ModelConfig): { name: string; bytes: number } {
  const { vision, text, scaleFactor } = config;
  const candidates: [string, number][] = [
    ['text embed_tokens / lm_head', text.vocabSize * text.hiddenSize],
    ['text MLP projection', text.intermediateSize * text.hiddenSize],
    ['text attention projection', text.numHeads * text.headDim * text.hiddenSize],
    ['vision MLP projection', vision.intermediateSize * vision.hiddenSize],
    ['vision position embedding', vision.numPatches * vision.hiddenSize],
    ['vision patch embedding', vision.hiddenSize * vision.numChannels * vision.patchSize * vision.patchSize],
    ['connector projection', vision.hiddenSize * scaleFactor * scaleFactor * text.hiddenSize],
  ];
  const [name, elements] = candidates.reduce((best, candidate) => (candidate[1] > best[1] ? candidate : best));
  return { name, bytes: packedBf16Bytes(elements) };
}

function largest(kernels: KernelNeeds[], pick: (kernel: KernelNeeds) => number): { value: number; reason: string } {
  const top = kernels.reduce((best, kernel) => (pick(kernel) > pick(best) ? kernel : best));
  const constants = Object.entries(top.constants).map(([key, value]) => `${key}=${value}`).join(', ');
  const prelude = top.prelude ? ` with ${top.prelude}.wgsl` : '';
  return { value: pick(top), reason: `kernel ${top.shader}.wgsl:${top.entryPoint}${prelude}${constants ? ` (${constants})` : ''}` };
}

/**
 * What the engine needs of the device. Without a config: what every model the kernels support needs (the largest
 * head dim and GQA group), for the check at device creation. With a config: what that model needs, including its
 * largest tensor as one storage binding.
 */
export function requiredLimits(config?: ModelConfig): LimitRequirement[] {
  const kernels = kernelNeeds(config ? kernelShapesOf(config) : largestSupportedShapes).filter((kernel) => !kernel.hasFallback);
  const storage = largest(kernels, (kernel) => kernel.workgroupStorageBytes);
  const invocations = largest(kernels, (kernel) => kernel.invocationsPerWorkgroup);
  const buffers = largest(kernels, (kernel) => kernel.storageBuffers);
  const requirements: LimitRequirement[] = [
    { limit: 'maxBindGroups', required: 1, reason: 'every kernel binds one group' },
    { limit: 'maxStorageBuffersPerShaderStage', required: buffers.value, reason: buffers.reason },
    { limit: 'maxComputeWorkgroupStorageSize', required: storage.value, reason: storage.reason },
    { limit: 'maxComputeInvocationsPerWorkgroup', required: invocations.value, reason: invocations.reason },
    // Every kernel is one-dimensional: its workgroup size is all along x.
    { limit: 'maxComputeWorkgroupSizeX', required: invocations.value, reason: invocations.reason },
    { limit: 'maxComputeWorkgroupsPerDimension', required: foldedWorkgroupsPerDimension, reason: 'large dispatches are folded at 65535 workgroups' },
    { limit: 'maxUniformBufferBindingSize', required: paramSlotBytes, reason: 'kernel parameters are bound as 256-byte uniform slots' },
    { limit: 'minUniformBufferOffsetAlignment', required: paramSlotBytes, reason: 'kernel parameter slots are 256 bytes apart' },
  ];
  if (config) {
    const tensor = largestWeightTensor(config);
    const reason = `the ${tensor.name} weight, bound whole as packed bf16`;
    requirements.push({ limit: 'maxStorageBufferBindingSize', required: tensor.bytes, reason });
    requirements.push({ limit: 'maxBufferSize', required: tensor.bytes, reason });
  }
  return requirements;
}

export interface LimitShortfall extends LimitRequirement {
  available: number;
}

export class GpuLimitError extends Error {
  /** The first limit that falls short (all of them are in `shortfalls` and in the message). */
  readonly limit: CheckedLimit;

  constructor(readonly shortfalls: LimitShortfall[]) {
    const lines = shortfalls.map((s) =>
      s.limit === 'minUniformBufferOffsetAlignment'
        ? `${s.limit} is ${s.available}, but at most ${s.required} works (${s.reason})`
        : `${s.limit} is ${s.available}, but ${s.required} is needed (${s.reason})`,
    );
    super(`This GPU adapter lacks a limit SparseMM Web needs: ${lines.join('; ')}.`);
    this.name = 'GpuLimitError';
    this.limit = shortfalls[0].limit;
  }
}

/** Compares the limits with what is required; returns every shortfall (empty when everything fits). */
export function limitShortfalls(limits: LimitValues, config?: ModelConfig): LimitShortfall[] {
  return requiredLimits(config)
    .map((requirement) => ({ ...requirement, available: Number(limits[requirement.limit]) }))
    .filter((s) =>
      s.limit === 'minUniformBufferOffsetAlignment' ? !(s.available <= s.required) : !(s.available >= s.required),
    );
}

/**
 * Throws a GpuLimitError naming every limit that falls short. Call it with the adapter's limits before requesting the
 * device (no config), and with the device's limits and the model's config before uploading any weight.
 */
export function checkRequiredLimits(limits: LimitValues, config?: ModelConfig): void {
  const shortfalls = limitShortfalls(limits, config);
  if (shortfalls.length > 0) throw new GpuLimitError(shortfalls);
}
