// Writes into the ragged head-wise KV cache (SparseMM; layout in decode_attention.wgsl). K and V are stored as f16, two
// per u32 (pack2x16float: element 2i in the low half), so no `shader-f16` is needed; every reader unpacks to f32.
// A row of the cache is HEAD_DIM / 2 words. Sources are f32, [tokens, num_kv_heads, HEAD_DIM] (post-RoPE keys).
// Entry points: store_prefill (gather the kept prompt rows of every head), append_token (one decoded token).
// Each invocation writes one word (two dims) of K and of V.

override HEAD_DIM: u32 = 64u; // even

// #params StoreParams (fields: src/engine/kernel-params.ts)

// #params AppendParams (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> store_p: StoreParams;
@group(0) @binding(0) var<uniform> append_p: AppendParams;
@group(0) @binding(1) var<storage, read> k_src: array<f32>;
@group(0) @binding(2) var<storage, read> v_src: array<f32>;
@group(0) @binding(3) var<storage, read> cache_meta: array<u32>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<u32>;
@group(0) @binding(6) var<storage, read> positions: array<u32>;

override HALF: u32 = HEAD_DIM / 2u; // u32 words per cache row (not set by the engine)
// One metadata record per (layer, KV head): META_FIELDS u32 (kvMetaLayout in src/engine/kv-cache.ts; a test checks both).
const META_FIELDS: u32 = 4u;
const META_SLOT_OFFSET: u32 = 0u;
const META_KEPT: u32 = 1u;
const META_LIST_START: u32 = 2u;

fn pack_pair(src_k: u32) -> vec2<u32> {
  return vec2<u32>(pack2x16float(vec2<f32>(k_src[src_k], k_src[src_k + 1u])), pack2x16float(vec2<f32>(v_src[src_k], v_src[src_k + 1u])));
}

fn store_kv_head(row: u32) -> u32 {
  var g = 0u;
  for (var h = 1u; h < store_p.num_kv_heads; h++) {
    if (row >= cache_meta[store_p.meta_base + h * META_FIELDS + META_LIST_START]) {
      g = h;
    }
  }
  return g;
}

@compute @workgroup_size(256)
fn store_prefill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid; // word index over the kept rows
  if (e >= store_p.total_rows * HALF) {
    return;
  }
  let row = e / HALF;
  let word = e % HALF;
  let g = store_kv_head(row);
  let head_meta = store_p.meta_base + g * META_FIELDS;
  let index_in_head = row - cache_meta[head_meta + META_LIST_START];
  var position = index_in_head;
  if (store_p.has_positions != 0u) {
    position = positions[row];
  }
  let packed = pack_pair((position * store_p.num_kv_heads + g) * HEAD_DIM + 2u * word);
  let dst = (cache_meta[head_meta + META_SLOT_OFFSET] + index_in_head) * HALF + word;
  k_cache[dst] = packed.x;
  v_cache[dst] = packed.y;
}

@compute @workgroup_size(64)
fn append_token(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = wid.x * 64u + lid;
  if (e >= append_p.num_kv_heads * HALF) {
    return;
  }
  let g = e / HALF;
  let word = e % HALF;
  let head_meta = append_p.meta_base + g * META_FIELDS;
  let packed = pack_pair(g * HEAD_DIM + 2u * word);
  let dst = (cache_meta[head_meta + META_SLOT_OFFSET] + cache_meta[head_meta + META_KEPT] + append_p.step) * HALF + word;
  k_cache[dst] = packed.x;
  v_cache[dst] = packed.y;
}
