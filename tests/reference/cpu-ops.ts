/**
 * Plain-TypeScript references for every kernel, written for clarity (f64 accumulation, no tiling).
 * Test-only: the GPU kernels and the CPU reference forward of the whole model are checked against these.
 * Layouts are row-major; a "linear" weight is [outFeatures, inFeatures] as in PyTorch.
 */
import type { PrefillAttentionShape } from '../../src/engine/ops/attention';

/** y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]). */
export function linear(x: Float32Array, w: Float32Array, rows: number, inFeatures: number, outFeatures: number, bias?: Float32Array): Float32Array {
  const y = new Float32Array(rows * outFeatures);
  for (let m = 0; m < rows; m++) {
    for (let n = 0; n < outFeatures; n++) {
      let sum = bias ? bias[n] : 0;
      const xo = m * inFeatures;
      const wo = n * inFeatures;
      for (let k = 0; k < inFeatures; k++) sum += x[xo + k] * w[wo + k];
      y[m * outFeatures + n] = sum;
    }
  }
  return y;
}

/** Gathers rows of an embedding table [vocab, dim]. */
export function embedding(table: Float32Array, dim: number, ids: ArrayLike<number>): Float32Array {
  const out = new Float32Array(ids.length * dim);
  for (let i = 0; i < ids.length; i++) out.set(table.subarray(ids[i] * dim, ids[i] * dim + dim), i * dim);
  return out;
}

/** Llama RMSNorm: x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Float32Array, weight: Float32Array, rows: number, dim: number, eps: number): Float32Array {
  const y = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let sumSq = 0;
    for (let i = 0; i < dim; i++) sumSq += x[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(sumSq / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * inv * weight[i];
  }
  return y;
}

/** LayerNorm (biased variance, as torch). */
export function layerNorm(x: Float32Array, weight: Float32Array, bias: Float32Array, rows: number, dim: number, eps: number): Float32Array {
  const y = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[r * dim + i];
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) variance += (x[r * dim + i] - mean) ** 2;
    variance /= dim;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = (x[r * dim + i] - mean) * inv * weight[i] + bias[i];
  }
  return y;
}

/**
 * Llama RoPE, rotate_half layout (non-interleaved): for i < D/2, the pair is (i, i + D/2),
 * inv_freq[i] = theta^(-2i/D), angle = position * inv_freq[i], in f64 (`round` rounds each step: ropeTorchF32).
 * x is [tokens, heads, headDim]; returns a new array.
 */
export function rope(
  x: Float32Array,
  tokens: number,
  heads: number,
  headDim: number,
  positions: ArrayLike<number>,
  theta: number,
  round: (value: number) => number = (value) => value,
): Float32Array {
  const y = new Float32Array(x.length);
  const half = headDim / 2;
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < half; i++) {
      const invFreq = round(1 / round(Math.pow(theta, round((2 * i) / headDim))));
      const angle = round(positions[t] * invFreq);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      for (let h = 0; h < heads; h++) {
        const o = (t * heads + h) * headDim;
        const a = x[o + i];
        const b = x[o + i + half];
        y[o + i] = a * cos - b * sin;
        y[o + i + half] = b * cos + a * sin;
      }
    }
  }
  return y;
}

export function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** SwiGLU: silu(gate) * up, elementwise. */
export function swiglu(gate: Float32Array, up: Float32Array): Float32Array {
  return gate.map((g, i) => silu(g) * up[i]);
}

/** gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluTanh(x: Float32Array): Float32Array {
  const c = Math.sqrt(2 / Math.PI);
  return x.map((v) => 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v))));
}

export function addArrays(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => v + b[i]);
}

/** The kernel's shape (ops/attention.ts), and what the reference also allows: a query offset and a scale. */
export interface AttentionShape extends PrefillAttentionShape {
  /** Query i may see keys 0..(queryOffset + i) when causal. */
  queryOffset?: number;
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
}

/**
 * Scaled dot-product attention with GQA. q [queries, numHeads, D], k/v [keys, numKvHeads, D].
 * Returns the output [queries, numHeads, D] and the probabilities [numHeads, queries, keys].
 */
export function attention(q: Float32Array, k: Float32Array, v: Float32Array, shape: AttentionShape): { out: Float32Array; probs: Float32Array } {
  const { queries, keys, numHeads, numKvHeads, headDim, causal } = shape;
  const offset = shape.queryOffset ?? keys - queries;
  const scale = shape.scale ?? 1 / Math.sqrt(headDim);
  const group = numHeads / numKvHeads;
  const out = new Float32Array(queries * numHeads * headDim);
  const probs = new Float32Array(numHeads * queries * keys);
  const scores = new Float64Array(keys);
  for (let h = 0; h < numHeads; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < queries; i++) {
      const visible = causal ? Math.min(keys, offset + i + 1) : keys;
      let max = -Infinity;
      for (let j = 0; j < visible; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[(i * numHeads + h) * headDim + d] * k[(j * numKvHeads + g) * headDim + d];
        scores[j] = dot * scale;
        max = Math.max(max, scores[j]);
      }
      let sum = 0;
      for (let j = 0; j < visible; j++) {
        scores[j] = Math.exp(scores[j] - max);
        sum += scores[j];
      }
      for (let j = 0; j < visible; j++) {
        const p = scores[j] / sum;
        probs[(h * queries + i) * keys + j] = p;
        for (let d = 0; d < headDim; d++) out[(i * numHeads + h) * headDim + d] += p * v[(j * numKvHeads + g) * headDim + d];
      }
    }
  }
  return { out, probs };
}

/** The sampling kernels' second output word: whether any logit is NaN or +-Infinity. */
export function hasNonFinite(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return true;
  return false;
}

/** Index of the largest value; the lowest index wins ties. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/**
 * RoPE with the angle rounded as torch computes it in f32: inv_freq = f32(1 / f32(theta ** f32(2i / D))),
 * angle = f32(position * inv_freq); cos/sin of that f32 angle in f64. Same layout as `rope` (rotate_half).
 * At long positions the f32 angle differs from the exact one by up to half an ulp of the angle (2.4e-4 at 4096),
 * which is what the model was trained with, so GPU kernels are checked against this one.
 */
export function ropeTorchF32(x: Float32Array, tokens: number, heads: number, headDim: number, positions: ArrayLike<number>, theta: number): Float32Array {
  return rope(x, tokens, heads, headDim, positions, theta, Math.fround);
}

/**
 * Conv2d with kernel = stride = patch and no padding (SigLIP's patch embedding), output as [tiles, gridH * gridW, hidden]
 * (torch's conv output flattened(2).transpose(1, 2)). pixels [tiles, C, H, W], weight [hidden, C, patch, patch].
 */
export function patchConv2d(pixels: Float32Array, weight: Float32Array, bias: Float32Array | undefined, tiles: number, channels: number, height: number, width: number, patch: number, hidden: number): Float32Array {
  const gridH = height / patch;
  const gridW = width / patch;
  const out = new Float32Array(tiles * gridH * gridW * hidden);
  for (let t = 0; t < tiles; t++) {
    for (let gy = 0; gy < gridH; gy++) {
      for (let gx = 0; gx < gridW; gx++) {
        for (let o = 0; o < hidden; o++) {
          let sum = bias ? bias[o] : 0;
          for (let c = 0; c < channels; c++) {
            for (let ky = 0; ky < patch; ky++) {
              for (let kx = 0; kx < patch; kx++) {
                const pixel = pixels[((t * channels + c) * height + gy * patch + ky) * width + gx * patch + kx];
                sum += pixel * weight[((o * channels + c) * patch + ky) * patch + kx];
              }
            }
          }
          out[((t * gridH + gy) * gridW + gx) * hidden + o] = sum;
        }
      }
    }
  }
  return out;
}

/** Patch rows for a matmul-form patch embedding: [tiles * gridH * gridW, C * p * p], (c, ky, kx) order, grid row-major. */
export function patchifyReference(pixels: Float32Array, tiles: number, channels: number, height: number, width: number, patch: number): Float32Array {
  const gridH = height / patch;
  const gridW = width / patch;
  const patchLen = channels * patch * patch;
  const out = new Float32Array(tiles * gridH * gridW * patchLen);
  let o = 0;
  for (let t = 0; t < tiles; t++) {
    for (let gy = 0; gy < gridH; gy++) {
      for (let gx = 0; gx < gridW; gx++) {
        for (let c = 0; c < channels; c++) {
          for (let ky = 0; ky < patch; ky++) {
            for (let kx = 0; kx < patch; kx++) {
              out[o++] = pixels[((t * channels + c) * height + gy * patch + ky) * width + gx * patch + kx];
            }
          }
        }
      }
    }
  }
  return out;
}

/** A row-major tensor for spelling out view/permute/reshape chains literally. */
interface Strided {
  data: Float32Array;
  shape: number[];
}

/** torch.permute followed by .contiguous(). */
function permuteContiguous(x: Strided, order: number[]): Strided {
  const shape = order.map((d) => x.shape[d]);
  const strides = x.shape.map((_, d) => x.shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(x.data.length);
  const index = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < shape.length; d++) src += index[d] * strides[order[d]];
    out[o] = x.data[src];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return { data: out, shape };
}

/**
 * Idefics3Connector.pixel_shuffle, step by step as transformers writes it (view / permute / reshape), for x [tiles, seq, dim]:
 *   view(b, h, w, d) -> view(b, h, w/s, d*s) -> permute(0, 2, 1, 3) -> reshape(b, w/s, h/s, d*s*s)
 *   -> permute(0, 2, 1, 3) -> reshape(b, seq/s^2, d*s^2).
 * A view/reshape of a contiguous tensor only relabels the shape, so only the permutes move data.
 */
export function pixelShuffleReference(x: Float32Array, tiles: number, seq: number, dim: number, scale: number): Float32Array {
  const side = Math.round(Math.sqrt(seq));
  let t: Strided = { data: x, shape: [tiles, side, side / scale, dim * scale] };
  t = permuteContiguous(t, [0, 2, 1, 3]);
  t = { data: t.data, shape: [tiles, side / scale, side / scale, dim * scale * scale] };
  t = permuteContiguous(t, [0, 2, 1, 3]);
  return t.data;
}

/**
 * Nucleus sampling rule shared with the GPU kernel: e = exp((logits - max) / temperature); rank by e (ties: lower index
 * first); keep a token while the mass ranked before it is < topP * sum(e) (the top token is always kept); then walk the kept
 * tokens in index order and return the first whose running mass exceeds uniform * (kept mass) (the last kept if rounding
 * leaves none).
 */
export function sampleTopPReference(logits: Float32Array, temperature: number, topP: number, uniform: number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const e = Array.from(logits, (v) => Math.exp((v - max) / temperature));
  const total = e.reduce((a, b) => a + b, 0);
  const order = e.map((_, i) => i).sort((a, b) => e[b] - e[a] || a - b);
  const kept = new Array<boolean>(e.length).fill(false);
  let before = 0;
  for (const i of order) {
    if (before >= topP * total && before > 0) break;
    kept[i] = true;
    before += e[i];
  }
  let keptMass = 0;
  for (let i = 0; i < e.length; i++) if (kept[i]) keptMass += e[i];
  const target = uniform * keptMass;
  let running = 0;
  let last = -1;
  for (let i = 0; i < e.length; i++) {
    if (!kept[i]) continue;
    last = i;
    running += e[i];
    if (running > target) return i;
  }
  return last;
}
