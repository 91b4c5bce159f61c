/**
 * Where each image token of an Idefics3 / SmolVLM prompt comes from in the original picture, and back.
 *
 * The tiling, as transformers.js' Idefics3ImageProcessor does it (models/idefics3/image_processing_idefics3.js):
 * 1. preprocess() resizes the picture so that its longest edge is size.longest_edge (aspect kept, sizes floored);
 * 2. get_resize_for_vision_encoder() resizes that to (rows * T, cols * T), T = max_image_size.longest_edge (the
 *    vision tile size), rounding each side UP to a multiple of T (aspect only approximately kept);
 * 3. split_image() cuts it into rows x cols tiles of exactly T x T (row-major) when it is larger than T, and appends
 *    the global image: the whole (rows * T, cols * T) picture squeezed to T x T. A picture that fits one tile is not
 *    split (rows = cols = 0) and gives only that one T x T image.
 * Both resizes span the whole picture, so an original pixel coordinate x maps to x * (cols * T) / width in the tiled
 * picture and to x * T / width in the global image (likewise for y).
 *
 * Each T x T image becomes tokensPerSide x tokensPerSide tokens: SigLIP patches of patchSize px, then the connector's
 * pixel shuffle merges scaleFactor x scaleFactor neighbouring patches into one token, row-major over the merged grid
 * (see the pixel_shuffle notes in src/engine/model.ts). tokensPerSide = imageSize / patchSize / scaleFactor
 * (512 / 16 / 4 = 8 for SmolVLM). Tokens appear in the prompt tile after tile, then the global image;
 * PreparedInputs.imageTokenPositions gives the prompt position of each.
 *
 * The geometry type is structurally the UI's ImageTokenGeometry (src/ui/views/types.ts: rows, cols, tokensPerSide),
 * plus the tile size and the original picture size; overlay-model.ts draws the same cells in display pixels.
 */

/** The image-token layout of one prompt. */
export interface ImageTokenGrid {
  /** Grid of local tiles; 0 x 0 when the picture was not split (only the global image then). */
  rows: number;
  cols: number;
  /** Side of one tile's token grid. */
  tokensPerSide: number;
  /** Side of one tile in pixels (vision image_size = max_image_size.longest_edge). */
  tileSize: number;
  /** The original picture, before any resize. */
  imageWidth: number;
  imageHeight: number;
}

/** A box in original picture pixels: corners (x, y) and (x + width, y + height), as synthdog's quads. */
export interface PixelBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** tokensPerSide of a model: imageSize / patchSize / scaleFactor, checked to be whole. */
export function tokensPerSideOf(config: { vision: { imageSize: number; patchSize: number }; scaleFactor: number }): number {
  const patchesPerSide = config.vision.imageSize / config.vision.patchSize;
  const side = patchesPerSide / config.scaleFactor;
  if (!Number.isInteger(patchesPerSide) || !Number.isInteger(side) || side < 1) {
    throw new RangeError(`image_size ${config.vision.imageSize} / patch ${config.vision.patchSize} / scale ${config.scaleFactor} is not a whole token grid`);
  }
  return side;
}

/** The grid of a prepared prompt (PreparedInputs fields + the model config + the original picture size). */
export function imageTokenGrid(
  prepared: { imageRows: number; imageCols: number; numTiles: number; tileWidth: number; tileHeight: number },
  config: { vision: { imageSize: number; patchSize: number }; scaleFactor: number },
  image: { width: number; height: number },
): ImageTokenGrid {
  const { imageRows: rows, imageCols: cols, numTiles, tileWidth, tileHeight } = prepared;
  if (numTiles !== rows * cols + 1) throw new RangeError(`${numTiles} tiles do not match a ${rows} x ${cols} split plus the global image`);
  if (tileWidth !== tileHeight || tileWidth !== config.vision.imageSize) {
    throw new RangeError(`tiles are ${tileWidth} x ${tileHeight}, the vision tower takes ${config.vision.imageSize} x ${config.vision.imageSize}`);
  }
  const grid: ImageTokenGrid = { rows, cols, tokensPerSide: tokensPerSideOf(config), tileSize: tileWidth, imageWidth: image.width, imageHeight: image.height };
  checkGrid(grid);
  return grid;
}

function checkGrid(grid: ImageTokenGrid): void {
  const { rows, cols, tokensPerSide, tileSize, imageWidth, imageHeight } = grid;
  const whole = (n: number): boolean => Number.isInteger(n) && n >= 0;
  if (!whole(rows) || !whole(cols) || (rows === 0) !== (cols === 0)) throw new RangeError(`bad tile grid ${rows} x ${cols}`);
  if (!whole(tokensPerSide) || tokensPerSide < 1 || !(tileSize > 0)) throw new RangeError(`bad token grid ${tokensPerSide} per ${tileSize} px tile`);
  if (!(imageWidth > 0 && imageHeight > 0)) throw new RangeError(`bad picture size ${imageWidth} x ${imageHeight}`);
}

/** Number of image tokens: (rows * cols + 1) tiles of tokensPerSide^2. */
export function imageTokenCount(grid: ImageTokenGrid): number {
  return (grid.rows * grid.cols + 1) * grid.tokensPerSide * grid.tokensPerSide;
}

/** The size the processor tiled: (cols * T) x (rows * T), or T x T for an unsplit picture (the overlay's resizedWidth/Height). */
export function tiledImageSize(grid: ImageTokenGrid): { width: number; height: number } {
  if (grid.rows === 0) return { width: grid.tileSize, height: grid.tileSize };
  return { width: grid.cols * grid.tileSize, height: grid.rows * grid.tileSize };
}

/**
 * Token index range [start, end) along one axis, as the official find_image_idx*: scale the box edges into the token
 * grid's pixel space, start = floor(lo / tokenPx), end = floor(hi / tokenPx) + 1 (the official "+1": an edge exactly on a
 * token border also takes the next token), clipped to [0, tokens).
 */
function axisRange(lo: number, hi: number, scale: number, tokenPx: number, tokens: number): [number, number] {
  const start = Math.max(0, Math.floor((lo * scale) / tokenPx));
  const end = Math.min(tokens, Math.floor((hi * scale) / tokenPx) + 1);
  return [start, Math.max(start, end)];
}

/**
 * Indices (into the image-token sequence, 0-based, ascending) of the tokens a box covers: in every local tile it
 * touches and in the global image. A box outside the picture covers nothing.
 */
export function boxImageTokenIndices(grid: ImageTokenGrid, box: PixelBox): number[] {
  checkGrid(grid);
  const { rows, cols, tokensPerSide: side, tileSize, imageWidth, imageHeight } = grid;
  const x0 = Math.max(0, box.x);
  const y0 = Math.max(0, box.y);
  const x1 = Math.min(imageWidth, box.x + box.width);
  const y1 = Math.min(imageHeight, box.y + box.height);
  if (!(x1 > x0 && y1 > y0)) return [];
  const tokenPx = tileSize / side;
  const perTile = side * side;
  const indices: number[] = [];
  if (rows > 0) {
    // The tiles together form a (rows * side) x (cols * side) token grid over the tiled picture.
    const [gx0, gx1] = axisRange(x0, x1, (cols * tileSize) / imageWidth, tokenPx, cols * side);
    const [gy0, gy1] = axisRange(y0, y1, (rows * tileSize) / imageHeight, tokenPx, rows * side);
    for (let gy = gy0; gy < gy1; gy++) {
      for (let gx = gx0; gx < gx1; gx++) {
        const tile = Math.floor(gy / side) * cols + Math.floor(gx / side);
        indices.push(tile * perTile + (gy % side) * side + (gx % side));
      }
    }
  }
  const globalStart = rows * cols * perTile;
  const [tx0, tx1] = axisRange(x0, x1, tileSize / imageWidth, tokenPx, side);
  const [ty0, ty1] = axisRange(y0, y1, tileSize / imageHeight, tokenPx, side);
  for (let ty = ty0; ty < ty1; ty++) for (let tx = tx0; tx < tx1; tx++) indices.push(globalStart + ty * side + tx);
  return indices.sort((a, b) => a - b);
}

/** Prompt positions of the image tokens a box covers (ascending); imageTokenPositions from PreparedInputs. */
export function boxPromptPositions(grid: ImageTokenGrid, box: PixelBox, imageTokenPositions: ArrayLike<number>): number[] {
  const count = imageTokenCount(grid);
  if (imageTokenPositions.length !== count) {
    throw new RangeError(`${imageTokenPositions.length} image-token positions, the ${grid.rows} x ${grid.cols} grid (+ global) has ${count} tokens`);
  }
  return boxImageTokenIndices(grid, box).map((index) => imageTokenPositions[index]);
}

/** One image token's origin: its tile (-1, -1 for the global image), its cell in the tile, its rectangle in original pixels. */
export interface ImageTokenRect {
  tokenIndex: number;
  tileRow: number;
  tileCol: number;
  tokenRow: number;
  tokenCol: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** For every image token in prompt order, the rectangle of the original picture it was made from (inverse of the map above). */
export function imageTokenRects(grid: ImageTokenGrid): ImageTokenRect[] {
  checkGrid(grid);
  const { rows, cols, tokensPerSide: side, imageWidth, imageHeight } = grid;
  const rects: ImageTokenRect[] = [];
  const addTile = (tileRow: number, tileCol: number, left: number, top: number, tileWidth: number, tileHeight: number): void => {
    for (let tokenRow = 0; tokenRow < side; tokenRow++) {
      for (let tokenCol = 0; tokenCol < side; tokenCol++) {
        rects.push({
          tokenIndex: rects.length,
          tileRow,
          tileCol,
          tokenRow,
          tokenCol,
          x: left + (tokenCol * tileWidth) / side,
          y: top + (tokenRow * tileHeight) / side,
          width: tileWidth / side,
          height: tileHeight / side,
        });
      }
    }
  };
  for (let tile = 0; tile < rows * cols; tile++) {
    const tileRow = Math.floor(tile / cols);
    const tileCol = tile % cols;
    addTile(tileRow, tileCol, (tileCol * imageWidth) / cols, (tileRow * imageHeight) / rows, imageWidth / cols, imageHeight / rows);
  }
  addTile(-1, -1, 0, 0, imageWidth, imageHeight);
  return rects;
}
