enable subgroups;
// team_sum for shaders/gemv.wgsl on adapters with `subgroups`: a butterfly of subgroupShuffleXor over the TEAM lanes of
// a team. Correct when TEAM <= the subgroup size (ops/gemv.ts picks TEAM <= adapter.info.subgroupMinSize) and lanes of
// a 1-D workgroup fill subgroups in local_invocation_index order, so a team never straddles two subgroups. No
// workgroup memory, no barrier.
fn team_sum(value: f32, lid: u32) -> f32 {
  var sum = value;
  for (var mask = TEAM / 2u; mask > 0u; mask >>= 1u) {
    sum += subgroupShuffleXor(sum, mask);
  }
  return sum;
}
