// In-place, numerically stable softmax over each row: one workgroup per row.
struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;
const LOWEST_F32: f32 = -3.4028234663852886e38;
var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.cols;

  var local_max = LOWEST_F32;
  for (var c = lid; c < p.cols; c += WORKGROUP_SIZE) {
    local_max = max(local_max, x[base + c]);
  }
  partial[lid] = local_max;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] = max(partial[lid], partial[lid + stride]);
    }
    workgroupBarrier();
  }
  let row_max = partial[0];
  workgroupBarrier();

  // Each invocation rewrites only its own columns, so no barrier is needed between writing e and scaling it.
  var local_sum = 0.0;
  for (var c = lid; c < p.cols; c += WORKGROUP_SIZE) {
    let e = exp(x[base + c] - row_max);
    x[base + c] = e;
    local_sum += e;
  }
  partial[lid] = local_sum;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  // A fully masked row (all -inf) has sum 0: it becomes zeros rather than NaN.
  let inv_sum = select(0.0, 1.0 / partial[0], partial[0] > 0.0);
  for (var c = lid; c < p.cols; c += WORKGROUP_SIZE) {
    x[base + c] *= inv_sum;
  }
}
