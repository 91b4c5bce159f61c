import type { LoadedModel } from '../model-io/loader';
import type { ModelFileSummary, ModelSourceSpec, ModelSummary } from './api';

/** What the UI calls a model: its hub id, its URL, or "local folder". */
export function sourceDisplayName(source: ModelSourceSpec): string {
  switch (source.kind) {
    case 'hub':
      return source.revision ? `${source.modelId}@${source.revision}` : source.modelId;
    case 'url':
      return source.baseUrl;
    case 'files':
      return 'local folder';
  }
}

/** Reduces a loaded model to the plain numbers the UI shows (nothing here is cloned but numbers and strings). */
export function summarizeModel(model: LoadedModel, displayName: string): ModelSummary {
  const { config } = model;
  let weightBytes = 0;
  for (const tensor of model.weights.tensors.values()) weightBytes += tensor.byteLength;
  const files: ModelFileSummary[] = listFiles(model);
  return {
    name: displayName,
    sourceId: model.sourceId,
    modelType: config.modelType,
    text: {
      layers: config.text.numLayers,
      heads: config.text.numHeads,
      kvHeads: config.text.numKvHeads,
      headDim: config.text.headDim,
      hiddenSize: config.text.hiddenSize,
      vocabSize: config.text.vocabSize,
    },
    vision: {
      layers: config.vision.numLayers,
      heads: config.vision.numHeads,
      tileSize: config.vision.imageSize,
      patchSize: config.vision.patchSize,
      tokensPerTile: config.imageSeqLen,
      maxTiles: maxTilesPerImage(model),
    },
    tensorCount: model.weights.tensors.size,
    weightBytes,
    totalBytes: model.totalBytes,
    fromCache: model.fromCache,
    cacheWarning: model.cacheWarning ?? null,
    files,
    weights: null,
  };
}

function listFiles(model: LoadedModel): ModelFileSummary[] {
  return [...model.files.entries()].map(([name, data]) => ({ name, bytes: data.byteLength }));
}

function readPreprocessorConfig(model: LoadedModel): Record<string, unknown> | null {
  const bytes = model.files.get('preprocessor_config.json');
  if (!bytes) return null;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null; // the summary just omits the tile count; the image processor reports a broken file itself
  }
}

/**
 * Idefics3 splits an image whose longest edge is resized to `size.longest_edge` into tiles of
 * `max_image_size.longest_edge`, plus one global tile: at most ceil(size / tile)^2 + 1.
 */
function maxTilesPerImage(model: LoadedModel): number | null {
  const processor = readPreprocessorConfig(model);
  if (!processor) return null;
  const longestEdge = readLongestEdge(processor.size);
  const tileEdge = readLongestEdge(processor.max_image_size);
  if (!longestEdge || !tileEdge) return null;
  if (processor.do_image_splitting === false) return 1;
  const perSide = Math.ceil(longestEdge / tileEdge);
  return perSide * perSide + 1;
}

function readLongestEdge(value: unknown): number | null {
  if (typeof value !== 'object' || value === null) return null;
  const edge = (value as { longest_edge?: unknown }).longest_edge;
  return typeof edge === 'number' && edge > 0 ? edge : null;
}
