/**
 * Plain-TypeScript references for every kernel, written for clarity (f64 accumulation, no tiling).
 * Test-only: the GPU kernels and the CPU reference forward of the whole model are checked against these.
 * Layouts are row-major; a "linear" weight is [outFeatures, inFeatures] as in PyTorch.
 */

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
 * inv_freq[i] = theta^(-2i/D), angle = position * inv_freq[i].
 * x is [tokens, heads, headDim]; returns a new array.
 */
export function rope(x: Float32Array, tokens: number, heads: number, headDim: number, positions: ArrayLike<number>, theta: number): Float32Array {
  const y = new Float32Array(x.length);
  const half = headDim / 2;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        // torch computes inv_freq in f32 and the angle in f32; f64 here differs by < 1e-6 relative at small positions.
        const invFreq = 1 / Math.pow(theta, (2 * i) / headDim);
        const angle = positions[t] * invFreq;
        const cos = Math.cos(angle);
        const sin = Math.sin(angle);
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

/** Softmax over each row of length `cols`. */
export function softmaxRows(x: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[r * cols + c]);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[r * cols + c] - max);
    for (let c = 0; c < cols; c++) y[r * cols + c] = Math.exp(x[r * cols + c] - max) / sum;
  }
  return y;
}

export interface AttentionShape {
  queries: number;
  keys: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Query i may see keys 0..(queryOffset + i) when causal. */
  causal: boolean;
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

/** Index of the largest value; the lowest index wins ties. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
