/** One picture's share of an attention snapshot: the overlay shows the picture the person chose. */
import type { AttentionSnapshot, PromptImage } from '../worker/api';

export interface PictureAttention {
  image: PromptImage;
  /** One weight per image token of this picture (its tiles row-major, then its global image). */
  weights: Float32Array;
}

/** The weights of picture `index` for (layer, head), or null when the snapshot has no such head or picture. */
export function pictureAttention(snapshot: AttentionSnapshot, layer: number, head: number, index: number): PictureAttention | null {
  const image = snapshot.images[index];
  const row = snapshot.weights[layer]?.[head];
  if (!image || !row) return null;
  const end = image.firstImageToken + image.imageTokens;
  if (image.firstImageToken < 0 || end > row.length) return null;
  return { image, weights: row.subarray(image.firstImageToken, end) };
}

/**
 * Per [layer][query head]: the share of the last token's attention that went to picture `index` (the sum of its image
 * tokens' weights; the rest went to the other pictures and the text). Empty when there is no such picture.
 */
export function pictureAttentionMatrix(snapshot: AttentionSnapshot, index: number): number[][] {
  const image = snapshot.images[index];
  if (!image) return [];
  const end = image.firstImageToken + image.imageTokens;
  return snapshot.weights.map((layer) =>
    layer.map((row) => {
      let sum = 0;
      for (let i = image.firstImageToken; i < Math.min(end, row.length); i++) sum += Number.isFinite(row[i]) ? row[i] : 0;
      return sum;
    }),
  );
}
