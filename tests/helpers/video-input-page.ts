/**
 * The page side of tests/e2e/video-decode.test.ts, bundled by esbuild and loaded into Chromium: the app's video reader
 * (src/worker/video-input.ts, mediabunny + WebCodecs) run on a served file, with what the test compares reduced to
 * plain values (facts, progress, each tile averaged over 4 x 4 blocks and sent as base64, each thumbnail's size).
 */
import { decodeVideoFrames, openVideo } from '../../src/worker/video-input';

/** Side of the grid a tile is averaged down to before it goes back to Node. */
export const probeGrid = 128;

export interface ProbedFrame {
  index: number;
  timestamp: number;
  tileWidth: number;
  tileHeight: number;
  /** RGB of the tile averaged over (tile / probeGrid)^2 blocks, row-major, base64. */
  blocksBase64: string;
  thumbnailType: string;
  thumbnailWidth: number;
  thumbnailHeight: number;
}

export type ProbeResult =
  | { ok: true; facts: Awaited<ReturnType<typeof openVideo>>['facts']; frameCount: number; progress: [number, number][]; frames: ProbedFrame[] }
  | { ok: false; stage: 'open' | 'decode'; name: string; message: string };

function blockAverage(data: ArrayLike<number>, side: number): Uint8Array {
  const block = side / probeGrid;
  const out = new Uint8Array(probeGrid * probeGrid * 3);
  for (let by = 0; by < probeGrid; by++) {
    for (let bx = 0; bx < probeGrid; bx++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let y = 0; y < block; y++) for (let x = 0; x < block; x++) sum += data[((by * block + y) * side + bx * block + x) * 3 + c];
        out[(by * probeGrid + bx) * 3 + c] = Math.round(sum / (block * block));
      }
    }
  }
  return out;
}

function base64(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** Opens `url` as the file `name` and decodes `frameIndices` (null: open only) into `tileSize` tiles. */
export async function probeVideo(url: string, name: string, frameIndices: number[] | null, tileSize: number): Promise<ProbeResult> {
  const blob = await (await fetch(url)).blob();
  let video: Awaited<ReturnType<typeof openVideo>>;
  try {
    video = await openVideo(blob, name);
  } catch (error) {
    return { ok: false, stage: 'open', name: error instanceof Error ? error.name : 'unknown', message: error instanceof Error ? error.message : String(error) };
  }
  try {
    const progress: [number, number][] = [];
    const decoded = frameIndices ? await decodeVideoFrames(video, frameIndices, tileSize, (p) => progress.push([p.decoded, p.total])) : [];
    const frames: ProbedFrame[] = [];
    for (const frame of decoded) {
      const thumbnail = await createImageBitmap(frame.thumbnail);
      frames.push({
        index: frame.index,
        timestamp: frame.timestamp,
        tileWidth: frame.pixels.width,
        tileHeight: frame.pixels.height,
        blocksBase64: base64(blockAverage(frame.pixels.data, frame.pixels.width)),
        thumbnailType: frame.thumbnail.type,
        thumbnailWidth: thumbnail.width,
        thumbnailHeight: thumbnail.height,
      });
      thumbnail.close();
    }
    return { ok: true, facts: video.facts, frameCount: video.frameTimes.length, progress, frames };
  } catch (error) {
    return { ok: false, stage: 'decode', name: error instanceof Error ? error.name : 'unknown', message: error instanceof Error ? error.message : String(error) };
  } finally {
    video.close();
  }
}
