/**
 * The contract between the UI and the engine worker. The UI imports only these types and talks to
 * the worker through comlink; every value that crosses the boundary is structured-cloneable
 * (plain objects, arrays, Map, Blob) except callbacks, which the UI wraps with comlink's `proxy`.
 */
import type { AdapterSummary } from '../engine/gpu';

export type { AdapterSummary };

export type InitResult = { ok: true; adapter: AdapterSummary } | { ok: false; error: string };

/** Where the model files come from. Mirrors the loader's ModelSource so the worker can pass it through unchanged. */
export type ModelSourceSpec =
  | { kind: 'hub'; modelId: string; revision?: string }
  | { kind: 'url'; baseUrl: string }
  /** Files picked from a local folder, keyed by their name inside the model folder (e.g. "config.json"). */
  | { kind: 'files'; files: Map<string, Blob> };

/** Progress of one file, as the worker reports it while loading. */
export interface FileProgress {
  file: string;
  loadedBytes: number;
  /** Null while the server has not said how large the file is. */
  totalBytes: number | null;
  fromCache: boolean;
  done: boolean;
  /** Average transfer rate since this file started, in bytes per second (0 when it came from the cache). */
  bytesPerSecond: number;
}

export type ProgressCallback = (progress: FileProgress) => void;

export interface ModelFileSummary {
  name: string;
  bytes: number;
}

/** What the UI shows after a load: plain numbers and strings, read from the model's own config and weights. */
export interface ModelSummary {
  /** Hub id, base URL or "local folder". */
  name: string;
  /** The loader's stable id of the source (also its cache key prefix). */
  sourceId: string;
  modelType: string;
  text: {
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    hiddenSize: number;
    vocabSize: number;
  };
  vision: {
    layers: number;
    heads: number;
    /** Side of one square tile fed to the vision encoder, in pixels. */
    tileSize: number;
    patchSize: number;
    /** Image tokens one tile becomes after the pixel-shuffle connector. */
    tokensPerTile: number;
    /** Largest tile count for one image (grid + global tile), when the preprocessor config says; else null. */
    maxTiles: number | null;
  };
  tensorCount: number;
  /** Bytes of all tensors in the weights file(s). */
  weightBytes: number;
  /** Bytes of every file loaded (weights, config, tokenizer, ...). */
  totalBytes: number;
  /** True when every file came from the browser cache (no network). */
  fromCache: boolean;
  /** Set when the model loaded but could not be saved for offline use (e.g. storage quota). */
  cacheWarning: string | null;
  files: ModelFileSummary[];
}

export interface EngineApi {
  /** Creates the worker's GPUDevice. Safe to call again: later calls return the first result. */
  init(): Promise<InitResult>;
  /**
   * Loads config, tokenizer and weights; caches downloads for offline use. Rejects with an Error whose
   * message is meant for people. A second call while one is running cancels the first.
   */
  loadModel(source: ModelSourceSpec, onProgress: ProgressCallback): Promise<ModelSummary>;
  /** Aborts a running loadModel (its promise then rejects with an AbortError). */
  cancelLoad(): void;
}
