// The ragged head-wise KV cache (SparseMM): one flat K and one flat V buffer per layer, rows of HEAD_DIM f16 stored
// two per u32 (pack2x16float, element 2i in the low half; shaders/kv_cache.wgsl writes them), math in f32.
// KV head g of a layer owns rows [slot_offset_g, slot_offset_g + kept_g + maxNewTokens): first the kept prompt
// tokens (ascending prompt positions), then the decoded tokens. Metadata, u32, 4 per (layer, kv head) at
// meta[meta_base + 4 g]: slot_offset, kept, list_start (start of this head's list in the concatenated kept
// positions), unused. The current length of head g is kept_g + appended (same `appended` for every head).
//
// Entry points: attend_partial + attend_reduce (split-K flash decoding: each workgroup handles CHUNK keys of one KV
// head for all
// query heads of its GQA group, then one workgroup per query head merges the chunks' (max, sum, output)).
// Each entry point has its own uniform struct at binding 0; no entry point uses two of them.

override HEAD_DIM: u32 = 64u;
override GROUP: u32 = 1u; // query heads per KV head

const CHUNK: u32 = 64u; // keys per workgroup in attend_partial, also its workgroup size
override QUADS: u32 = HEAD_DIM / 8u; // vec4<u32> (8 f16) per cache row (not set by the engine; HEAD_DIM % 8 == 0)
const MAX_GROUP: u32 = 16u;
// One metadata record per (layer, KV head): META_FIELDS u32 (kvMetaLayout in src/engine/kv-cache.ts; a test checks both).
const META_FIELDS: u32 = 4u;
const META_SLOT_OFFSET: u32 = 0u;
const META_KEPT: u32 = 1u;
const META_LIST_START: u32 = 2u;
const MASKED: f32 = -3.0e38;

// #params AttendParams (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> attend_p: AttendParams;

// attend_partial / attend_reduce bindings
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> v_cache: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> meta_r: array<u32>;
// [num_heads, max_chunks, HEAD_DIM + 2]: unnormalised output, then the chunk's max and sum of exp.
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

// attend_reduce bindings
@group(0) @binding(1) var<storage, read> meta_reduce: array<u32>;
@group(0) @binding(2) var<storage, read> partials_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> q_group: array<vec4<f32>, GROUP * HEAD_DIM / 4u>;
var<workgroup> probs: array<f32, GROUP * CHUNK>;
var<workgroup> chunk_max: array<f32, GROUP>;

@compute @workgroup_size(CHUNK)
fn attend_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear_id = wid.x + wid.y * nwg.x;
  let g = linear_id / attend_p.max_chunks;
  let chunk = linear_id % attend_p.max_chunks;
  if (g >= attend_p.num_kv_heads) {
    return;
  }
  let head_meta = attend_p.meta_base + g * META_FIELDS;
  let slot = meta_r[head_meta + META_SLOT_OFFSET];
  let length = meta_r[head_meta + META_KEPT] + attend_p.appended;
  let start = chunk * CHUNK;
  // Uniform exit: heads shorter than the longest one have fewer chunks.
  if (start >= length) {
    return;
  }
  let count = min(CHUNK, length - start);

  for (var e = lid; e < GROUP * HEAD_DIM / 4u; e += CHUNK) {
    let i = (g * GROUP) * HEAD_DIM + 4u * e;
    q_group[e] = vec4<f32>(q[i], q[i + 1u], q[i + 2u], q[i + 3u]) * attend_p.scale;
  }
  workgroupBarrier();

  // One key per thread, scored against every query head of the group; the row is read 8 f16 (one vec4<u32>) at a time,
  // which SwiftShader runs with a quarter of the loads and loop trips of word-by-word reads.
  if (lid < count) {
    let key_row = (slot + start + lid) * QUADS;
    var dots: array<f32, MAX_GROUP>;
    for (var w = 0u; w < QUADS; w++) {
      let words = k_cache[key_row + w];
      let k_lo = vec4<f32>(unpack2x16float(words.x), unpack2x16float(words.y));
      let k_hi = vec4<f32>(unpack2x16float(words.z), unpack2x16float(words.w));
      for (var h = 0u; h < GROUP; h++) {
        dots[h] += dot(q_group[(h * QUADS + w) * 2u], k_lo) + dot(q_group[(h * QUADS + w) * 2u + 1u], k_hi);
      }
    }
    for (var h = 0u; h < GROUP; h++) {
      probs[h * CHUNK + lid] = dots[h];
    }
  }
  workgroupBarrier();

  // The chunk's max per query head is a short serial scan; the exps are then taken one key per lane (all lanes busy),
  // and each head's sum of exps is accumulated by the value lanes below.
  if (lid < GROUP) {
    var m = MASKED;
    for (var t = 0u; t < count; t++) {
      m = max(m, probs[lid * CHUNK + t]);
    }
    chunk_max[lid] = m;
  }
  workgroupBarrier();
  if (lid < count) {
    for (var h = 0u; h < GROUP; h++) {
      probs[h * CHUNK + lid] = exp(probs[h * CHUNK + lid] - chunk_max[h]);
    }
  }
  workgroupBarrier();

  // One lane per (query head, 8 dims): each V row is read as vec4<u32> once per query head.
  let stride = HEAD_DIM + 2u;
  for (var e = lid; e < GROUP * QUADS; e += CHUNK) {
    let h = e / QUADS;
    let w = e % QUADS;
    var acc_lo = vec4<f32>(0.0);
    var acc_hi = vec4<f32>(0.0);
    var sum = 0.0;
    for (var t = 0u; t < count; t++) {
      let words = v_cache[(slot + start + t) * QUADS + w];
      let p = probs[h * CHUNK + t];
      sum += p;
      acc_lo += p * vec4<f32>(unpack2x16float(words.x), unpack2x16float(words.y));
      acc_hi += p * vec4<f32>(unpack2x16float(words.z), unpack2x16float(words.w));
    }
    let base = ((g * GROUP + h) * attend_p.max_chunks + chunk) * stride + 8u * w;
    partials[base] = acc_lo.x;
    partials[base + 1u] = acc_lo.y;
    partials[base + 2u] = acc_lo.z;
    partials[base + 3u] = acc_lo.w;
    partials[base + 4u] = acc_hi.x;
    partials[base + 5u] = acc_hi.y;
    partials[base + 6u] = acc_hi.z;
    partials[base + 7u] = acc_hi.w;
    if (w == 0u) {
      let stats = ((g * GROUP + h) * attend_p.max_chunks + chunk) * stride + HEAD_DIM;
      partials[stats] = chunk_max[h];
      partials[stats + 1u] = sum;
    }
  }
}

@compute @workgroup_size(64)
fn attend_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x + wid.y * nwg.x;
  if (h >= attend_p.num_heads) {
    return;
  }
  let g = h / GROUP;
  let head_meta = attend_p.meta_base + g * META_FIELDS;
  let length = meta_reduce[head_meta + META_KEPT] + attend_p.appended;
  let chunks = (length + CHUNK - 1u) / CHUNK;
  let stride = HEAD_DIM + 2u;
  let head_base = h * attend_p.max_chunks * stride;
  var m = MASKED;
  for (var c = 0u; c < chunks; c++) {
    m = max(m, partials_in[head_base + c * stride + HEAD_DIM]);
  }
  var total = 0.0;
  for (var c = 0u; c < chunks; c++) {
    total += exp(partials_in[head_base + c * stride + HEAD_DIM] - m) * partials_in[head_base + c * stride + HEAD_DIM + 1u];
  }
  let inv = select(0.0, 1.0 / total, total > 0.0);
  for (var d = lid; d < HEAD_DIM; d += 64u) {
    var acc = 0.0;
    for (var c = 0u; c < chunks; c++) {
      acc += exp(partials_in[head_base + c * stride + HEAD_DIM] - m) * partials_in[head_base + c * stride + d];
    }
    out[h * HEAD_DIM + d] = acc * inv;
  }
}
