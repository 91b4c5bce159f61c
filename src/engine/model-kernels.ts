/**
 * Every compute pipeline VlmModel can dispatch for one model on one device: what VlmModel.load compiles ahead
 * (PipelineCache.prepare), so that the first question compiles nothing. tests/gpu/model-kernels.test.ts checks that a
 * generation (greedy and sampled, full cache and SparseMM, with attention probes) after the load compiles no pipeline:
 * a kernel added to the forward pass without being listed here fails that test.
 */
import type { ModelConfig } from '../model-io/config';
import type { GpuContext } from './gpu';
import { prefillAttentionPipeline } from './ops/attention';
import { gemvPipelines, qkvRopePipeline, type QkvRopeShape } from './ops/gemv';
import { matmulPipelines } from './ops/matmul';
import { ropePrelude } from './ops/rope';
import { logitReductions } from './ops/sampling';
import type { PipelineSpec } from './pipelines';
import type { WeightFormat } from './weight-format';

/** The text decoder's q/k/v projection shape (gemv_qkv_rope). */
export function decodeQkvShape(config: ModelConfig): QkvRopeShape {
  const { text } = config;
  return { inFeatures: text.hiddenSize, numHeads: text.numHeads, numKvHeads: text.numKvHeads, headDim: text.headDim };
}

/**
 * `format`: the text projections' and lm_head's weight format; the vision tower, the connector (and any projection
 * the format leaves in bf16) take the bf16 GEMM / GEMV, so those are always compiled.
 */
export function modelPipelines(ctx: GpuContext, config: ModelConfig, format: WeightFormat = 'bf16'): PipelineSpec[] {
  const { text, vision } = config;
  const textHead = { HEAD_DIM: text.headDim };
  const decodeAttention = { HEAD_DIM: text.headDim, GROUP: text.numHeads / text.numKvHeads };
  const formats: WeightFormat[] = format === 'bf16' ? ['bf16'] : ['bf16', format];
  // The decode step's q/k/v + RoPE + cache append in one kernel where the shape allows, else the separate kernels.
  const qkvRopes = formats.map((f) => qkvRopePipeline(decodeQkvShape(config), ctx.gemv, f));
  return [
    // Elementwise, norms, embeddings, RoPE, sampling: no specialisation.
    { shader: 'add' },
    { shader: 'embedding' },
    { shader: 'rope', prelude: ropePrelude },
    { shader: 'activation', entryPoint: 'swiglu' },
    { shader: 'activation', entryPoint: 'gelu_tanh' },
    { shader: 'norm', entryPoint: 'rms_norm' },
    { shader: 'norm', entryPoint: 'layer_norm' },
    { shader: 'sampling', entryPoint: 'argmax', prelude: logitReductions },
    { shader: 'sampling', entryPoint: 'sample_top_p', prelude: logitReductions },
    { shader: 'vision_prep', entryPoint: 'patchify' },
    { shader: 'vision_prep', entryPoint: 'pixel_shuffle' },
    ...formats.flatMap((f) => matmulPipelines(ctx, f)),
    // The decode step's fused GEMVs (norm prologue, residual epilogue, gate/up SwiGLU).
    ...formats.flatMap((f) => gemvPipelines(ctx.gemv, f).filter((spec) => spec.constants?.NORM || spec.constants?.ACCUMULATE || spec.entryPoint === 'gemv_swiglu')),
    // Prefill attention: the vision tower's head dim and the text decoder's.
    ...[...new Set([vision.headDim, text.headDim])].map((headDim) => prefillAttentionPipeline(ctx, headDim)),
    // The head-wise KV cache and decode attention.
    { shader: 'kv_cache', entryPoint: 'store_prefill', constants: textHead },
    ...qkvRopes.map((spec) => spec ?? { shader: 'kv_cache', entryPoint: 'append_token', constants: textHead }),
    { shader: 'decode_attention', entryPoint: 'attend_partial', constants: decodeAttention },
    { shader: 'decode_attention', entryPoint: 'attend_reduce', constants: decodeAttention },
    // SparseMM / SnapKV selection and the attention probes (visual-head search, heatmaps).
    { shader: 'kv_selection', entryPoint: 'row_stats', constants: textHead },
    { shader: 'kv_selection', entryPoint: 'window_mean', constants: textHead },
    { shader: 'kv_selection', entryPoint: 'pool', constants: textHead },
    { shader: 'kv_selection', entryPoint: 'select_top' },
    { shader: 'attention_probe', entryPoint: 'probe_top1', constants: textHead },
    { shader: 'attention_probe', entryPoint: 'probe_top1_row', constants: textHead },
    // The fidelity measurement (engine/fidelity-run.ts: Budget sweep, Compare's fidelity line, OCR accuracy).
    { shader: 'fidelity', entryPoint: 'step_fidelity', prelude: logitReductions },
  ];
}
