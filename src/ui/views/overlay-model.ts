/** Pure geometry of the attention overlay: where each image token sits on the displayed picture. */
import type { ImageTokenRect } from '../../worker/api';
import type { ImageTokenGeometry } from './types';

/** One image token drawn as a rectangle in display pixels (tokenIndex indexes the weights, in prompt order). */
export interface OverlayCell extends ImageTokenRect {
  /** Raw weight of the token. */
  weight: number;
  /** weight / (largest weight among the cells drawn), in [0, 1]. */
  normalised: number;
}

export function tileCount(geometry: ImageTokenGeometry): number {
  return geometry.rows * geometry.cols;
}

/** Image tokens the geometry implies: every tile plus the global image. */
export function expectedTokenCount(geometry: ImageTokenGeometry): number {
  return (tileCount(geometry) + 1) * geometry.tokensPerSide * geometry.tokensPerSide;
}

export interface OverlayLayout {
  /** Displayed picture size in pixels. */
  displayWidth: number;
  displayHeight: number;
  /** Size of the image the processor tiled (tiles cover exactly this). */
  resizedWidth: number;
  resizedHeight: number;
}

/**
 * Rectangles of either the tiles' tokens (tile t covers its cell of the rows x cols split of the
 * resized image, scaled to the display) or, with `showGlobal` or an unsplit image, the global image's
 * tokens (the whole picture, squeezed to a square before encoding, so its grid spans the full display).
 * Opacity is normalised over the cells drawn, so each map uses the full range.
 */
export function overlayCells(geometry: ImageTokenGeometry, layout: OverlayLayout, weights: ArrayLike<number>, showGlobal: boolean): OverlayCell[] {
  const side = geometry.tokensPerSide;
  const perTile = side * side;
  const tiles = tileCount(geometry);
  const useGlobal = showGlobal || tiles === 0;
  const scaleX = layout.displayWidth / layout.resizedWidth;
  const scaleY = layout.displayHeight / layout.resizedHeight;
  const cells: OverlayCell[] = [];

  const addTile = (tileRow: number, tileCol: number, firstToken: number, left: number, top: number, tileWidth: number, tileHeight: number) => {
    const tokenWidth = tileWidth / side;
    const tokenHeight = tileHeight / side;
    for (let tokenRow = 0; tokenRow < side; tokenRow++) {
      for (let tokenCol = 0; tokenCol < side; tokenCol++) {
        const tokenIndex = firstToken + tokenRow * side + tokenCol;
        const raw = weights[tokenIndex];
        cells.push({
          tokenIndex,
          tileRow,
          tileCol,
          tokenRow,
          tokenCol,
          x: left + tokenCol * tokenWidth,
          y: top + tokenRow * tokenHeight,
          width: tokenWidth,
          height: tokenHeight,
          weight: Number.isFinite(raw) ? raw : 0,
          normalised: 0,
        });
      }
    }
  };

  if (useGlobal) {
    addTile(-1, -1, tiles * perTile, 0, 0, layout.displayWidth, layout.displayHeight);
  } else {
    const tileWidth = (layout.resizedWidth / geometry.cols) * scaleX;
    const tileHeight = (layout.resizedHeight / geometry.rows) * scaleY;
    for (let tile = 0; tile < tiles; tile++) {
      const tileRow = Math.floor(tile / geometry.cols);
      const tileCol = tile % geometry.cols;
      addTile(tileRow, tileCol, tile * perTile, tileCol * tileWidth, tileRow * tileHeight, tileWidth, tileHeight);
    }
  }

  const largest = cells.reduce((most, cell) => Math.max(most, cell.weight), 0);
  if (largest > 0) for (const cell of cells) cell.normalised = Math.max(0, cell.weight) / largest;
  return cells;
}

/** Display size that fits `maxWidth` x `maxHeight` keeping the picture's aspect ratio (never upscales past it). */
export function fitDisplaySize(imageWidth: number, imageHeight: number, maxWidth: number, maxHeight: number): { width: number; height: number } {
  if (!(imageWidth > 0 && imageHeight > 0)) return { width: 0, height: 0 };
  const scale = Math.min(maxWidth / imageWidth, maxHeight / imageHeight, 1);
  return { width: Math.round(imageWidth * scale), height: Math.round(imageHeight * scale) };
}
