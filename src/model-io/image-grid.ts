/** The Idefics3 processor's tile arithmetic, without pixels (for the context meter before a question). */
import { ProcessorError } from './processor-error';

/**
 * Tiles the Idefics3 processor cuts a width x height picture into, with the arithmetic of transformers.js'
 * Idefics3ImageProcessor (resize to the longest edge, then to multiples of the tile, split when larger than a tile)
 * and the 1 px / one-tile floor of SideKeepingIdefics3ImageProcessor. A unit test checks it against the processor.
 */
export function idefics3TileCount(width: number, height: number, longestEdge: number, tileSize: number, splitting: boolean): number {
  const { rows, cols } = idefics3Grid(width, height, longestEdge, tileSize, splitting);
  return rows * cols + 1;
}

/**
 * The size the processor resizes a picture to before tiling: its longest side made `longestEdge` (up or down, the
 * aspect kept, each side at least 1 px), as ImageProcessor.get_resize_output_image_size with size { longest_edge }.
 */
export function idefics3ResizedSize(width: number, height: number, longestEdge: number): { width: number; height: number } {
  if (!(width >= 1 && height >= 1)) throw new ProcessorError(`A picture needs at least 1 x 1 px, got ${width} x ${height}.`);
  const factor = Math.min(longestEdge / width, longestEdge / height);
  return { width: Math.max(1, Math.floor(Number((width * factor).toFixed(2)))), height: Math.max(1, Math.floor(Number((height * factor).toFixed(2)))) };
}

/** The grid of local tiles idefics3TileCount counts (0 x 0 when the picture stays one tile: the global image alone). */
export function idefics3Grid(width: number, height: number, longestEdge: number, tileSize: number, splitting: boolean): { rows: number; cols: number } {
  if (!(width >= 1 && height >= 1)) throw new ProcessorError(`A picture needs at least 1 x 1 px, got ${width} x ${height}.`);
  if (!splitting) return { rows: 0, cols: 0 };
  let { width: w, height: h } = idefics3ResizedSize(width, height, longestEdge);
  // Idefics3ImageProcessor.get_resize_for_vision_encoder.
  const aspectRatio = w / h;
  if (w >= h) {
    w = Math.ceil(w / tileSize) * tileSize;
    h = Math.floor(w / aspectRatio);
    h = Math.ceil(h / tileSize) * tileSize;
  } else {
    h = Math.ceil(h / tileSize) * tileSize;
    w = Math.floor(h * aspectRatio);
    w = Math.ceil(w / tileSize) * tileSize;
  }
  w = Math.max(tileSize, w);
  h = Math.max(tileSize, h);
  // split_image: local tiles plus the global one, or the picture alone when it is one tile.
  if (h > tileSize || w > tileSize) return { rows: Math.ceil(h / tileSize), cols: Math.ceil(w / tileSize) };
  return { rows: 0, cols: 0 };
}
