/**
 * The worker's EngineApi (what the UI talks to through comlink) on dawn.node, as the GPU tests of the app's paths use
 * it: pictures decoded by the CLI's decoder (so every path hands the processor the same pixels), models kept in a
 * memory cache, and each GPU device it creates handed to `onDevice` (the tests destroy them afterwards).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { readImageFile } from '../../src/cli/node-session';
import { nodeProbeRenderer } from '../../src/cli/probe-canvas';
import type { GpuContext } from '../../src/engine/gpu';
import { createNodeGpuContext } from '../../src/engine/node-gpu';
import { MemoryModelCache } from '../../src/model-io/cache';
import type { EngineApi } from '../../src/worker/api';
import { createEngineApi } from '../../src/worker/engine-api';

/** An initialised EngineApi whose pictures, whatever file is added, are `picturePath` decoded as the CLI does. */
export async function createNodeEngine(picturePath: string, onDevice: (ctx: GpuContext) => void): Promise<EngineApi> {
  const engine = createEngineApi({
    createGpu: async () => {
      const ctx = await createNodeGpuContext();
      onDevice(ctx);
      return ctx;
    },
    modelCache: new MemoryModelCache(),
    decodeImage: async (image) => {
      expect(image.size).toBeGreaterThan(0);
      const pixels = await readImageFile(picturePath);
      return { pixels, originalWidth: pixels.width, originalHeight: pixels.height, scaledDown: false, thumbnail: image };
    },
    probeRenderer: nodeProbeRenderer,
  });
  expect((await engine.init()).ok).toBe(true);
  return engine;
}

/** A model folder's files as the app's Local folder source hands them over. */
export async function modelFolderFiles(folder: string): Promise<Map<string, Blob>> {
  const files = new Map<string, Blob>();
  for (const name of await readdir(folder)) files.set(name, new Blob([new Uint8Array(await readFile(join(folder, name)))]));
  return files;
}
