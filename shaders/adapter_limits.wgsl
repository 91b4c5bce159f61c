// Probes of what the adapter itself can do, so that kernel speeds can be reported against it (src/engine/adapter-limits.ts).
// compute_peak: f32 multiply-add throughput. Every invocation runs eight independent vec4 chains a = a * m + c (the
// GEMM's inner-loop instruction; the compiler may fuse it into an FMA), so nothing waits on memory or on a previous
// result. m < 1 keeps the values bounded and normal (no denormal slow paths). The result is stored only when it equals
// a value it never takes in practice, so the arithmetic cannot be optimised away while the store costs nothing.
// #params PeakParams (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> peak_p: PeakParams;
@group(0) @binding(1) var<storage, read_write> peak_sink: array<f32>;

const PEAK_WORKGROUP: u32 = 256u;
/** Multiply-adds per invocation per loop iteration: 2 unrolled steps x 8 chains x 4 lanes. */
const PEAK_MADDS_PER_ITERATION: u32 = 64u;

@compute @workgroup_size(PEAK_WORKGROUP)
fn compute_peak(@builtin(global_invocation_id) gid: vec3<u32>) {
  let seed = f32(gid.x & 1023u) * 1.0e-4;
  let m = vec4<f32>(peak_p.multiplier);
  let c = vec4<f32>(peak_p.addend);
  var a0 = vec4<f32>(seed, seed + 0.1, seed + 0.2, seed + 0.3);
  var a1 = a0 + 0.01;
  var a2 = a0 + 0.02;
  var a3 = a0 + 0.03;
  var a4 = a0 + 0.04;
  var a5 = a0 + 0.05;
  var a6 = a0 + 0.06;
  var a7 = a0 + 0.07;
  for (var i = 0u; i < peak_p.iterations; i++) {
    a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c;
    a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
    a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c;
    a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
  }
  let total = dot((a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7), vec4<f32>(1.0));
  if (total == bitcast<f32>(peak_p.magic)) {
    peak_sink[0] = total;
  }
}

// stream_read: every invocation sums a grid-strided share of a large buffer with 16-byte loads (consecutive lanes read
// consecutive 16 bytes, eight loads per loop iteration), the access pattern of the decode GEMV without its arithmetic: the fastest any kernel can read.
// The sum is stored only when it equals a value it never takes in practice, so the loads cannot be optimised away while
// the writes cost nothing.
// #params ReadParams (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> read_p: ReadParams;
@group(0) @binding(1) var<storage, read> source: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<u32>;

const READ_WORKGROUP: u32 = 256u;

@compute @workgroup_size(READ_WORKGROUP)
fn stream_read(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * READ_WORKGROUP;
  var acc = vec4<u32>(0u);
  // Eight loads in flight per lane per iteration (each one coalesced across lanes), then the remainder.
  var i = gid.x;
  for (; i + 7u * stride < read_p.words; i += 8u * stride) {
    acc += (source[i] + source[i + stride]) + (source[i + 2u * stride] + source[i + 3u * stride]);
    acc += (source[i + 4u * stride] + source[i + 5u * stride]) + (source[i + 6u * stride] + source[i + 7u * stride]);
  }
  for (; i < read_p.words; i += stride) {
    acc += source[i];
  }
  let total = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (total == read_p.magic) {
    sink[0] = total;
  }
}
