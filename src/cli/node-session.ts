/**
 * What the Node CLI commands share: load a model (folder, URL or hub id, cached on disk) with a progress line on
 * stderr, build its processor, upload it to a dawn.node GPU device, and read images from files.
 */
import { readFile } from 'node:fs/promises';
import { RawImage } from '@huggingface/transformers';
import { createNodeGpuContext } from '../engine/node-gpu';
import type { GpuContext } from '../engine/gpu';
import { VlmModel } from '../engine/model';
import type { WeightFormat } from '../engine/weight-format';
import { ChatSession } from '../session/chat-session';
import { loadModelFromPathOrUrl } from '../model-io/node-loader';
import type { LoadedModel, LoadProgress } from '../model-io/loader';
import { createProcessor, type VlmProcessor } from '../model-io/processor';
import { UsageError } from './args';
import { errorMessage } from '../errors';

export interface NodeSession {
  ctx: GpuContext;
  loaded: LoadedModel;
  processor: VlmProcessor;
  model: VlmModel;
  destroy(): void;
}

/** A one-line progress bar on stderr (only when stderr is a terminal, so logs and pipes stay clean). */
export function stderrProgress(label: string): { update(done: number, total: number | null, detail?: string): void; end(): void } {
  const tty = process.stderr.isTTY === true;
  let lastPrinted = 0;
  return {
    update(done, total, detail = '') {
      if (!tty) return;
      const now = Date.now();
      if (now - lastPrinted < 100 && (total === null || done < total)) return;
      lastPrinted = now;
      const width = 30;
      const fraction = total ? Math.min(1, done / total) : 0;
      const bar = total ? `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '.')}] ${(fraction * 100).toFixed(0).padStart(3)}%` : '';
      process.stderr.write(`\r${label} ${bar} ${detail}`.slice(0, 160).padEnd(80));
    },
    end() {
      if (tty) process.stderr.write('\n');
    },
  };
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Loads a model for the CLI. `pathOrUrl`: a model folder, an http(s) base URL or a hub id; `weightFormat`: how its
 * text projections and lm_head are held on the GPU (bf16 by default).
 */
export async function openNodeSession(pathOrUrl: string, weightFormat: WeightFormat = 'bf16'): Promise<NodeSession> {
  const bar = stderrProgress('loading');
  const onProgress = (p: LoadProgress): void => {
    bar.update(p.loadedBytes, p.totalBytes, `${p.file} ${mib(p.loadedBytes)}${p.fromCache ? ' (cache)' : ''}`);
  };
  const loaded = await loadModelFromPathOrUrl(pathOrUrl, { onProgress });
  bar.end();
  process.stderr.write(
    `model: ${loaded.sourceId}, ${mib(loaded.totalBytes)}${loaded.fromCache ? ', every file from the cache (no download)' : ''}\n`,
  );
  const processor = await createProcessor(loaded);
  const ctx = await createNodeGpuContext();
  try {
    const model = await VlmModel.load(ctx, loaded.weights, loaded.config, { weightFormat });
    const weights = model.loadedWeights;
    if (weightFormat !== 'bf16') process.stderr.write(`weights: ${weightFormat}, ${mib(weights.bytes)} on the GPU (bf16: ${mib(weights.bytesByFormat.bf16)})\n`);
    if (weights.note) process.stderr.write(`note: ${weights.note}\n`);
    return {
      ctx, loaded, processor, model,
      destroy() {
        model.destroy();
        ctx.destroy();
      },
    };
  } catch (error) {
    ctx.destroy();
    throw error;
  }
}

/** The same ChatSession the app's worker uses (one policy rule, one prompt, one answer path), on the CLI's model. */
export function cliChatSession(node: NodeSession): ChatSession {
  const session = new ChatSession({ noScoresHint: 'Pass --scores FILE (see the heads command).', recordAttention: false });
  // The CLI hands the processor the picture as read (no scaling down first), so no longest edge applies.
  session.attachModel({ sourceId: node.loaded.sourceId, model: node.model, processor: node.processor, processorLongestEdge: Infinity }, null);
  return session;
}

/** A file that was read but is not an image the decoder knows (among several pictures it is left out with a warning). */
export class ImageDecodeError extends UsageError {}

/** Decodes an image file (PNG, JPEG, WebP, ...) to RGB(A) pixels; a clear error for anything else. */
export async function readImageFile(path: string): Promise<RawImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new UsageError(`cannot read the image ${path}: ${errorMessage(error)}`);
  }
  if (bytes.length === 0) throw new ImageDecodeError(`the image ${path} is an empty file`);
  try {
    return await RawImage.read(new Blob([new Uint8Array(bytes)]));
  } catch (error) {
    throw new ImageDecodeError(`${path} is not an image this tool can decode (${errorMessage(error)})`);
  }
}
