// team_sum for shaders/gemv.wgsl on any adapter: a tree over the TEAM lanes of a team in workgroup memory.
// Every lane returns its team's sum; the last barrier lets the next call reuse the scratch.
var<workgroup> team_partial: array<f32, WORKGROUP>;

fn team_sum(value: f32, lid: u32) -> f32 {
  let lane = lid % TEAM;
  team_partial[lid] = value;
  workgroupBarrier();
  for (var stride = TEAM / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      team_partial[lid] += team_partial[lid + stride];
    }
    workgroupBarrier();
  }
  let sum = team_partial[lid - lane];
  workgroupBarrier();
  return sum;
}
