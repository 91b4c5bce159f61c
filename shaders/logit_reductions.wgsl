// Workgroup reductions over a row of logits f32 [vocab] for the one-workgroup kernels that read logits: the prelude of
// shaders/sampling.wgsl and shaders/fidelity.wgsl (PipelineCache compiles it before them, in the same module).
// Each reduction ends with workgroupUniformLoad: the result is uniform (it may steer loops that contain barriers) and
// the load fences the reuse of red_f / red_u by the next reduction.

const WORKGROUP_SIZE: u32 = 256u;
const LOWEST_F32: f32 = -3.4028234663852886e38;
const NO_INDEX: u32 = 0xffffffffu;

var<workgroup> red_f: array<f32, WORKGROUP_SIZE>;
var<workgroup> red_u: array<u32, WORKGROUP_SIZE>;

fn sum_all(value: f32, lid: u32) -> f32 {
  red_f[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red_f[lid] += red_f[lid + stride];
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_f[0]);
}

fn count_all(value: u32, lid: u32) -> u32 {
  red_u[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red_u[lid] += red_u[lid + stride];
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_u[0]);
}

// The workgroup's argmax from each invocation's best (value, index) of its strided scan (NO_INDEX: it saw nothing):
// the largest value, the lowest index among equal values, NO_INDEX when no invocation saw a value.
fn argmax_reduce(best_value: f32, best_index: u32, lid: u32) -> u32 {
  red_f[lid] = best_value;
  red_u[lid] = best_index;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let v = red_f[lid + stride];
      let idx = red_u[lid + stride];
      let better = v > red_f[lid] || (v == red_f[lid] && idx < red_u[lid]);
      if (idx != NO_INDEX && (red_u[lid] == NO_INDEX || better)) {
        red_f[lid] = v;
        red_u[lid] = idx;
      }
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_u[0]);
}
