// Vision-side data movement (no arithmetic), one invocation per output element.
//   patchify      - [tiles, C, H, W] pixels -> [tiles * gridH * gridW, C * p * p] rows, each row flattened in
//                   (c, ky, kx) order and patches row-major over the grid, so that matmul(rows, conv weight viewed as
//                   [hidden, C * p * p]) equals Conv2d(kernel = stride = p) as in SigLIP's patch embedding.
//   pixel_shuffle - Idefics3Connector.pixel_shuffle: [tiles, seq, dim] -> [tiles, seq / s^2, dim * s^2].
//                   Working through its view/permute/reshape chain, output token t = (i2, j) on the (side/s)^2 grid
//                   and feature m = (ky, kx, d) in that order read input token (i2 * s + ky, j * s + kx) of the
//                   side x side grid, feature d.
// #params PatchifyParams (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> pp: PatchifyParams;
@group(0) @binding(1) var<storage, read> pixels: array<f32>;
@group(0) @binding(2) var<storage, read_write> patches: array<f32>;

override WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn patchify(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid;
  if (i >= pp.total) {
    return;
  }
  let patch_row = i / pp.patch_len;
  let feature = i % pp.patch_len;
  let tile = patch_row / pp.patches_per_tile;
  let in_tile = patch_row % pp.patches_per_tile;
  let gy = in_tile / pp.grid_w;
  let gx = in_tile % pp.grid_w;
  let area = pp.patch_size * pp.patch_size;
  let c = feature / area;
  let ky = (feature % area) / pp.patch_size;
  let kx = feature % pp.patch_size;
  let y = gy * pp.patch_size + ky;
  let x = gx * pp.patch_size + kx;
  patches[i] = pixels[((tile * pp.channels + c) * pp.height + y) * pp.width + x];
}

// #params ShuffleParams (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> sp: ShuffleParams;
@group(0) @binding(1) var<storage, read> shuffle_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> shuffle_out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn pixel_shuffle(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid;
  if (i >= sp.total) {
    return;
  }
  let out_token = i / sp.out_dim;
  let m = i % sp.out_dim;
  let tile = out_token / sp.out_seq;
  let t = out_token % sp.out_seq;
  let i2 = t / sp.out_side;
  let j = t % sp.out_side;
  let ky = m / (sp.dim * sp.scale);
  let kx = (m / sp.dim) % sp.scale;
  let d = m % sp.dim;
  let src_token = (i2 * sp.scale + ky) * sp.side + j * sp.scale + kx;
  shuffle_out[i] = shuffle_in[(tile * sp.seq + src_token) * sp.dim + d];
}
