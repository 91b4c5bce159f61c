/**
 * Every kernel's uniform parameter block, declared once, by shader file. The shader says where its struct goes with a
 * line `// #params NAME`; the shader loader (shader-source.ts) writes the struct there from the layout below
 * (paramStructWgsl), and the wrapper fills it by name with kernelParams(layout, { ... }). So field names, order and types
 * exist only here, and WGSL and TypeScript cannot disagree; tests/unit/param-layouts.test.ts checks that every uniform a
 * shader binds has its line and exactly one layout here. Field order is the WGSL order (padding included).
 */
import { paramLayout, type ParamStruct } from './params';

// shaders/activation.wgsl (wrapper: ops/activation.ts)
export const activationParams = paramLayout('activation', 'Params', { count: 'u32' });

// shaders/adapter_limits.wgsl (wrapper: adapter-limits.ts)
export const peakParams = paramLayout('adapter_limits', 'PeakParams', { iterations: 'u32', magic: 'u32', multiplier: 'f32', addend: 'f32' });
export const readParams = paramLayout('adapter_limits', 'ReadParams', {
  words: 'u32', // vec4<u32> entries in this slice
  magic: 'u32',
});

// shaders/add.wgsl (wrapper: ops/add.ts)
export const addParams = paramLayout('add', 'Params', { count: 'u32' });

// shaders/attention.wgsl (wrapper: ops/attention.ts)
export const attentionParams = paramLayout('attention', 'Params', {
  queries: 'u32',
  keys: 'u32',
  num_heads: 'u32',
  num_kv_heads: 'u32',
  causal: 'u32',
  query_offset: 'u32',
  query_tiles: 'u32',
  scale: 'f32',
});

// shaders/attention_probe.wgsl (wrapper: ops/attention-probe.ts)
export const probeParams = paramLayout('attention_probe', 'Params', {
  num_heads: 'u32',
  num_kv_heads: 'u32',
  meta_base: 'u32',
  appended: 'u32',
  row_start: 'u32',
  row_length: 'u32',
  scale: 'f32',
});

// shaders/decode_attention.wgsl (wrapper: ops/decode-attention.ts)
export const attendParams = paramLayout('decode_attention', 'AttendParams', {
  num_heads: 'u32',
  num_kv_heads: 'u32',
  meta_base: 'u32',
  appended: 'u32',
  max_chunks: 'u32',
  scale: 'f32',
});

// shaders/embedding.wgsl (wrapper: ops/embedding.ts)
export const embeddingParams = paramLayout('embedding', 'Params', {
  tokens: 'u32',
  half_dim: 'u32', // dim / 2: packed words per table row
});

// shaders/fidelity.wgsl (wrapper: ops/fidelity.ts)
export const fidelityParams = paramLayout('fidelity', 'Params', {
  vocab: 'u32',
  // First element of this step's row in the reference logits (they may hold every step of the reference answer).
  reference_offset: 'u32',
  // The reference answer's token at this step (teacher forcing feeds it to the compressed cache next).
  ref_token: 'u32',
  // Which 4-u32 record of `out` to write.
  out_step: 'u32',
});

// shaders/gemv.wgsl (wrapper: ops/gemv.ts)
export const gemvParams = paramLayout('gemv', 'Params', {
  in_features: 'u32', // K
  out_features: 'u32', // N
  has_bias: 'u32',
  eps: 'f32', // RMSNorm epsilon (NORM)
});
export const qkvParams = paramLayout('gemv', 'QkvParams', {
  in_features: 'u32',
  num_heads: 'u32',
  num_kv_heads: 'u32',
  position: 'u32',
  eps: 'f32',
  _pad0: 'u32',
  _pad1: 'u32',
  _pad2: 'u32',
  cache_row: 'array<vec4<u32>, 4>', // row of this token in KV head g's slice: [g / 4][g % 4] (num_kv_heads <= 16)
  inv_freq: 'array<vec4<f32>, 8>', // RoPE inverse frequencies [HEAD_DIM / 2] (HEAD_DIM <= 64)
});

// shaders/kv_cache.wgsl (wrapper: kv-cache.ts)
export const storeParams = paramLayout('kv_cache', 'StoreParams', {
  num_kv_heads: 'u32',
  meta_base: 'u32',
  total_rows: 'u32', // sum of kept over heads
  has_positions: 'u32', // 0: head g keeps prompt positions 0..kept_g-1 (full cache)
});
export const appendParams = paramLayout('kv_cache', 'AppendParams', {
  num_kv_heads: 'u32',
  meta_base: 'u32',
  step: 'u32', // the appended token goes to row kept_g + step of every head
});

// shaders/kv_selection.wgsl (wrapper: ops/kv-selection.ts)
export const scoreParams = paramLayout('kv_selection', 'ScoreParams', { tokens: 'u32', window: 'u32', num_heads: 'u32', num_kv_heads: 'u32', scale: 'f32' });
export const poolParams = paramLayout('kv_selection', 'PoolParams', { prefix: 'u32', num_kv_heads: 'u32', kernel: 'u32', use_max: 'u32' });
export const selectParams = paramLayout('kv_selection', 'SelectParams', { prefix: 'u32', window: 'u32', kv_head: 'u32', capacity: 'u32', out_start: 'u32' });

// shaders/matmul.wgsl (wrapper: ops/matmul.ts)
export const gemmParams = paramLayout('matmul', 'Params', { rows: 'u32', in_features: 'u32', out_features: 'u32', has_bias: 'u32' });

// shaders/norm.wgsl (wrapper: ops/norm.ts)
export const normParams = paramLayout('norm', 'Params', { rows: 'u32', dim: 'u32', eps: 'f32' });

// shaders/rope.wgsl (wrapper: ops/rope.ts)
export const ropeParams = paramLayout('rope', 'Params', { tokens: 'u32', heads: 'u32', half_dim: 'u32' });

// shaders/sampling.wgsl (wrapper: ops/sampling.ts)
export const samplingParams = paramLayout('sampling', 'Params', { vocab: 'u32', temperature: 'f32', top_p: 'f32', uniform: 'f32' });

// shaders/vision_prep.wgsl (wrapper: ops/vision-prep.ts)
export const patchifyParams = paramLayout('vision_prep', 'PatchifyParams', {
  total: 'u32',
  channels: 'u32',
  height: 'u32',
  width: 'u32',
  patch_size: 'u32',
  grid_w: 'u32',
  patches_per_tile: 'u32',
  patch_len: 'u32', // channels * patch_size^2
});
export const shuffleParams = paramLayout('vision_prep', 'ShuffleParams', {
  total: 'u32',
  seq: 'u32',
  dim: 'u32',
  scale: 'u32',
  side: 'u32', // sqrt(seq)
  out_side: 'u32', // side / scale
  out_seq: 'u32', // seq / scale^2
  out_dim: 'u32', // dim * scale^2
});

/** All of the above, for the shader loader and the tests. */
export const kernelParamLayouts: readonly ParamStruct[] = [
  activationParams,
  peakParams,
  readParams,
  addParams,
  attentionParams,
  probeParams,
  attendParams,
  embeddingParams,
  fidelityParams,
  gemvParams,
  qkvParams,
  appendParams,
  storeParams,
  poolParams,
  scoreParams,
  selectParams,
  gemmParams,
  normParams,
  ropeParams,
  samplingParams,
  patchifyParams,
  shuffleParams,
];

/** The layout of `struct` in shaders/`shader`.wgsl; a shader that asks for one nobody declared is named. */
export function kernelParamLayout(shader: string, struct: string): ParamStruct {
  const found = kernelParamLayouts.find((layout) => layout.shader === shader && layout.struct === struct);
  if (!found) throw new Error(`shaders/${shader}.wgsl asks for struct ${struct} (// #params ${struct}), but src/engine/kernel-params.ts declares no paramLayout('${shader}', '${struct}', ...)`);
  return found;
}
