import { describe, expect, it } from 'vitest';
import {
  boxImageTokenIndices,
  boxPromptPositions,
  imageTokenCount,
  imageTokenGrid,
  imageTokenRects,
  tiledImageSize,
  tokensPerSideOf,
  type ImageTokenGrid,
} from '../../src/sparsemm/image-token-map';
import { parseModelConfig } from '../../src/model-io/config';
import { createProcessor } from '../../src/model-io/processor';
import { tinyFixtureFiles } from '../../src/model-io/fixture';

// 2 x 3 tiles of 64 px, 4 x 4 tokens per tile (16 px per token). The picture has the tiled size, so local tiles map
// 1:1 and the global image scales x by 64/192 = 1/3 and y by 64/128 = 1/2. Token indices: tile t = t*16 + row*4 + col,
// the global image starts at 6 * 16 = 96.
const grid: ImageTokenGrid = { rows: 2, cols: 3, tokensPerSide: 4, tileSize: 64, imageWidth: 192, imageHeight: 128 };

describe('box -> image tokens (Idefics3 tiling + pixel-shuffle grid)', () => {
  it('a box inside one tile covers that tile\'s tokens and the global image\'s', () => {
    // x 20..40 -> token cols 1..2; y 40..50 -> rows 2..3 of tile 0. Global: x 6.7..13.3 -> col 0; y 20..25 -> row 1.
    expect(boxImageTokenIndices(grid, { x: 20, y: 40, width: 20, height: 10 })).toEqual([9, 10, 13, 14, 96 + 4]);
  });

  it('a box across tile borders covers the four tiles it touches', () => {
    // x 60..70 -> global cols 3, 4 (tiles 0 | 1); y 60..70 -> rows 3, 4 (tile rows 0 | 1).
    // (3,3) tile 0 cell 15; (3,4) tile 1 cell 12; (4,3) tile 3 cell 3; (4,4) tile 4 cell 0.
    // Global: x 20..23.3 -> col 1; y 30..35 -> rows 1, 2.
    expect(boxImageTokenIndices(grid, { x: 60, y: 60, width: 10, height: 10 })).toEqual([15, 16 + 12, 48 + 3, 64, 96 + 5, 96 + 9]);
  });

  it('an edge exactly on a token border also takes the next token (the official "+1")', () => {
    expect(boxImageTokenIndices(grid, { x: 0, y: 0, width: 16, height: 16 })).toEqual([0, 1, 4, 5, 96]);
  });

  it('clips boxes at the picture edge and ignores boxes outside it', () => {
    // x 180..192 -> col 11 (tile col 2, cell col 3); y 120..128 -> row 7 (tile row 1, cell row 3): tile 5 cell 15.
    expect(boxImageTokenIndices(grid, { x: 180, y: 120, width: 50, height: 50 })).toEqual([80 + 15, 96 + 15]);
    expect(boxImageTokenIndices(grid, { x: 200, y: 10, width: 10, height: 10 })).toEqual([]);
    expect(boxImageTokenIndices(grid, { x: 10, y: 10, width: 0, height: 10 })).toEqual([]);
  });

  it('scales boxes from original pixels (a picture of another size than the tiles)', () => {
    // 300 x 200 picture tiled as 192 x 128: scale 0.64 both ways. Box 10..20 -> 6.4..12.8 -> col 0, row 0.
    // Global: x * 64/300, y * 64/200 -> 2.1..4.3, 3.2..6.4 -> col 0, row 0.
    const scaled: ImageTokenGrid = { ...grid, imageWidth: 300, imageHeight: 200 };
    expect(boxImageTokenIndices(scaled, { x: 10, y: 10, width: 10, height: 10 })).toEqual([0, 96]);
    // x 150..160 -> 96..102.4 -> global col 6 (tile col 1, cell 2); y 100..110 -> 64..70.4 -> row 4 (tile row 1, cell 0).
    // Global: x 32..34.1 -> col 2; y 32..35.2 -> row 2.
    expect(boxImageTokenIndices(scaled, { x: 150, y: 100, width: 10, height: 10 })).toEqual([64 + 2, 96 + 10]);
  });

  it('an unsplit picture has only the global image', () => {
    const unsplit: ImageTokenGrid = { rows: 0, cols: 0, tokensPerSide: 4, tileSize: 64, imageWidth: 100, imageHeight: 50 };
    expect(imageTokenCount(unsplit)).toBe(16);
    expect(tiledImageSize(unsplit)).toEqual({ width: 64, height: 64 });
    // x 50..60 -> 32..38.4 -> col 2; y 25..35 -> 32..44.8 -> row 2.
    expect(boxImageTokenIndices(unsplit, { x: 50, y: 25, width: 10, height: 10 })).toEqual([10]);
  });

  it('maps token indices to prompt positions through imageTokenPositions', () => {
    // Each tile's 16 tokens follow two marker tokens: tile t starts at 5 + t * 18.
    const positions = Array.from({ length: imageTokenCount(grid) }, (_, i) => 5 + Math.floor(i / 16) * 18 + (i % 16));
    expect(boxPromptPositions(grid, { x: 20, y: 40, width: 20, height: 10 }, positions)).toEqual([14, 15, 18, 19, 5 + 6 * 18 + 4]);
    expect(() => boxPromptPositions(grid, { x: 0, y: 0, width: 1, height: 1 }, positions.slice(1))).toThrow(/image-token positions/);
  });

  it('token rectangles are the inverse: a box strictly inside a token\'s rectangle maps back to that token', () => {
    for (const g of [grid, { ...grid, imageWidth: 300, imageHeight: 200 }, { rows: 0, cols: 0, tokensPerSide: 4, tileSize: 64, imageWidth: 90, imageHeight: 70 }]) {
      const rects = imageTokenRects(g);
      expect(rects).toHaveLength(imageTokenCount(g));
      const localTokens = g.rows * g.cols * g.tokensPerSide ** 2;
      let localArea = 0;
      let globalArea = 0;
      for (const rect of rects) {
        const inner = { x: rect.x + rect.width * 0.4, y: rect.y + rect.height * 0.4, width: rect.width * 0.2, height: rect.height * 0.2 };
        expect(boxImageTokenIndices(g, inner)).toContain(rect.tokenIndex);
        if (rect.tokenIndex < localTokens) localArea += rect.width * rect.height;
        else globalArea += rect.width * rect.height;
        expect(rect.tileRow === -1).toBe(rect.tokenIndex >= localTokens);
      }
      // The local tiles and the global image each cover the picture exactly once.
      if (localTokens > 0) expect(localArea).toBeCloseTo(g.imageWidth * g.imageHeight, 6);
      expect(globalArea).toBeCloseTo(g.imageWidth * g.imageHeight, 6);
    }
  });

  it('derives tokensPerSide from the config and refuses inconsistent grids', () => {
    expect(tokensPerSideOf({ vision: { imageSize: 512, patchSize: 16 }, scaleFactor: 4 })).toBe(8);
    expect(() => tokensPerSideOf({ vision: { imageSize: 512, patchSize: 16 }, scaleFactor: 3 })).toThrow();
    expect(() => boxImageTokenIndices({ ...grid, cols: 0 }, { x: 0, y: 0, width: 1, height: 1 })).toThrow();
  });
});

describe('the map agrees with the pixels transformers.js\' Idefics3 processor produces', () => {
  it('tokens whose pixels show a white box are exactly those the map gives (tiny fixture processor)', async () => {
    const files = new Map<string, ArrayBuffer>();
    for (const [name, bytes] of tinyFixtureFiles()) {
      if (name !== 'model.safetensors') files.set(name, bytes.slice().buffer);
    }
    const config = parseModelConfig(JSON.parse(new TextDecoder().decode(files.get('config.json'))));
    const processor = await createProcessor({ config, files });
    const side = tokensPerSideOf(config);
    const tile = config.vision.imageSize;
    const tokenPx = tile / side;

    // 300 x 200 black picture with white boxes whose edges fall inside token cells (no exact-border "+1" extra).
    const width = 300;
    const height = 200;
    const boxes = [
      { x: 40, y: 30, width: 60, height: 20 },
      { x: 170, y: 20, width: 90, height: 40 }, // top-right tile only: catches a transposed tile order
      { x: 115, y: 55, width: 80, height: 90 }, // across all four tiles
    ];
    for (const box of boxes) {
      const data = new Uint8ClampedArray(width * height * 3);
      for (let y = box.y; y < box.y + box.height; y++) for (let x = box.x; x < box.x + box.width; x++) data.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
      const inputs = await processor.prepare({ data, width, height, channels: 3 }, [{ role: 'user', text: 'Read.', hasImage: true }]);
      const g = imageTokenGrid(inputs, config, { width, height });
      expect(g.rows * g.cols).toBeGreaterThan(1);
      const mapped = new Set(boxImageTokenIndices(g, box));
      let whiteCells = 0;

      // Brightest pixel of each token cell in the normalised pixel values (black -1, white +1), channel 0.
      for (let t = 0; t < inputs.numTiles; t++) {
        for (let row = 0; row < side; row++) {
          for (let col = 0; col < side; col++) {
            let brightest = -Infinity;
            for (let y = row * tokenPx; y < (row + 1) * tokenPx; y++) {
              for (let x = col * tokenPx; x < (col + 1) * tokenPx; x++) brightest = Math.max(brightest, inputs.pixelValues[t * 3 * tile * tile + y * tile + x]);
            }
            const index = t * side * side + row * side + col;
            // Clearly white cells must be mapped; mapped cells must show some of the box (resampling blurs the edges).
            if (brightest > 0.5) whiteCells++;
            if (brightest > 0.5) expect(mapped.has(index), `token ${index} (tile ${t}) shows the box`).toBe(true);
            if (mapped.has(index)) expect(brightest, `token ${index} (tile ${t}) is mapped`).toBeGreaterThan(-0.9);
          }
        }
      }
      // The box shows up in several local tokens and in the global image.
      expect(whiteCells).toBeGreaterThanOrEqual(3);
    }
  }, 60_000);
});
