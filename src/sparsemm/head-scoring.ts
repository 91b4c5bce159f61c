/**
 * The visual-head scoring rule of the official SparseMM code (visual_head/qwen_visual_head.py and
 * llava_visual_head.py, functions decode() and hit_score()), as pure functions over what the engine measures:
 *
 *   for every generated token (greedy; the loop stops at EOS before scoring it):
 *     count the OCR chunks whose text contains the token's text (Python `step_token in chunk_text`, a substring test);
 *     if exactly one chunk does: positions = that chunk's image-token prompt positions;
 *       for every (layer, query head): if the top-1 key of the attention row that PRODUCED this token (the last
 *       query of the prefill for the first token, then the query of each fed-back token) over ALL keys is in
 *       positions, the head's score for this sample += 1 / |positions|.
 *   per-sample score of a head = that sum: no normalisation by the number of steps or of hits (the official code
 *   appends visual_head_score[l][h][0] as is); a head's final score is the mean over samples (score-file.ts).
 *
 * Deviations, on purpose:
 * - The token text is stripped of surrounding white space before the test, and a token that is empty after stripping
 *   scores nothing. The Qwen script compares `processor.decode(id)` unstripped: with SmolVLM's byte-level BPE most word
 *   tokens carry a leading space (" river"), which can never match the first word of a chunk, and a bare " " would
 *   match every multi-word chunk. The LLaVA script compares raw SentencePiece pieces ("▁river"), which rarely match at all.
 * - Teacher forcing (mode 'teacher-forcing') is an extra: instead of the model's own greedy tokens, the ground-truth
 *   text (the chunks in reading order) is fed, and each fed token is scored with the attention of the query that
 *   predicts it. It gives the rule something to score on models that do not read (the tiny random test model, small
 *   models on hard probes). The official code has only greedy decoding.
 */
import { HeadScoreAccumulator, type HeadScoreFile, headScoreMatrix, parseScoreFile, ScoreFileError, serializeScoreFile } from './score-file';

/** The official probe prompt. */
export const ocrProbePrompt = 'Provide all the OCR results of this image.';

export type HeadScoringMode = 'greedy' | 'teacher-forcing';
export const headScoringModes: readonly HeadScoringMode[] = ['greedy', 'teacher-forcing'];

/** A chunk of probe text with the prompt positions of the image tokens its box covers. */
export interface ScoredChunk {
  text: string;
  positions: ArrayLike<number>;
}

/** One decode step as the engine saw it. */
export interface ScoredStep {
  tokenId: number;
  /** The token decoded on its own (special tokens kept). */
  text: string;
  /** Top-1 key position per (layer, query head), row-major [layers * heads], over all keys of that step's row. */
  top1: ArrayLike<number>;
}

/** Index of the one chunk whose text contains the (stripped) token text, or -1 when none, several, or the text is blank. */
export function matchingChunk(tokenText: string, chunkTexts: readonly string[]): number {
  const needle = tokenText.trim();
  if (needle === '') return -1;
  let found = -1;
  for (let i = 0; i < chunkTexts.length; i++) {
    if (!chunkTexts[i].includes(needle)) continue;
    if (found >= 0) return -1;
    found = i;
  }
  return found;
}

/** What scoring one sample found: the per-head scores and which steps counted. */
export interface SampleScores {
  /** Row-major [layers * heads] sum of 1/|positions| over the steps whose top-1 hit the chunk. */
  scores: Float64Array;
  /** Per step: the chunk it matched, or -1 (no or several chunks, blank text, after EOS, or an empty chunk map). */
  matchedChunk: number[];
}

/**
 * Scores one sample by the official rule. Steps after (and including) the first EOS are not scored, as the official
 * loop breaks on EOS before scoring.
 */
export function scoreSample(
  steps: readonly ScoredStep[],
  chunks: readonly ScoredChunk[],
  layers: number,
  heads: number,
  eosTokenIds: readonly number[] = [],
): SampleScores {
  const scores = new Float64Array(layers * heads);
  const matchedChunk: number[] = [];
  const chunkTexts = chunks.map((chunk) => chunk.text);
  const positionSets = chunks.map((chunk) => new Set(Array.from(chunk.positions)));
  let ended = false;
  for (const step of steps) {
    if (step.top1.length !== layers * heads) throw new RangeError(`a step has ${step.top1.length} top-1 keys, expected ${layers} x ${heads}`);
    if (eosTokenIds.includes(step.tokenId)) ended = true;
    const chunk = ended ? -1 : matchingChunk(step.text, chunkTexts);
    const hitSet = chunk >= 0 ? positionSets[chunk] : null;
    if (!hitSet || hitSet.size === 0) {
      matchedChunk.push(-1);
      continue;
    }
    matchedChunk.push(chunk);
    const weight = 1 / hitSet.size;
    for (let i = 0; i < scores.length; i++) if (hitSet.has(step.top1[i])) scores[i] += weight;
  }
  return { scores, matchedChunk };
}

/** The ground truth of a probe for teacher forcing: chunk texts in reading order (top to bottom, then left to right). */
export function readingOrderText(chunks: readonly { text: string; box: { x: number; y: number; height: number } }[]): string {
  const ordered = [...chunks].sort((a, b) => {
    // Same line when the vertical centres are within half the smaller height.
    const centreA = a.box.y + a.box.height / 2;
    const centreB = b.box.y + b.box.height / 2;
    if (Math.abs(centreA - centreB) < Math.min(a.box.height, b.box.height) / 2) return a.box.x - b.box.x;
    return centreA - centreB;
  });
  return ordered.map((chunk) => chunk.text).join('\n');
}

/** Collects samples into the official file (thin wrapper kept here so the engine and CLI share one entry point). */
export function accumulateSamples(layers: number, heads: number, samples: readonly SampleScores[]): HeadScoreFile {
  const accumulator = new HeadScoreAccumulator(layers, heads);
  for (const sample of samples) accumulator.addSample(sample.scores);
  return accumulator.toFile();
}

// ---------------------------------------------------------------------------------------------------------------
// Caching score files per model

/** Bump when the probe set or the rule changes, so old cached scores are not reused. */
export const scoreCacheVersion = 1;

/** The cache key of a model's scores: a relative URL path (Cache Storage needs URL-like keys), stable per source id. */
export function scoreCacheKey(modelSourceId: string): string {
  if (modelSourceId.trim() === '') throw new RangeError('scoreCacheKey: empty model source id');
  return `visual-head-scores/v${scoreCacheVersion}/${encodeURIComponent(modelSourceId)}.json`;
}

/** Where cached score files live (the worker backs it with Cache Storage; tests with a Map). Values are JSON text. */
export interface HeadScoreStore {
  get(key: string): Promise<string | null>;
  put(key: string, text: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Model shape a score file must match. */
export interface HeadShape {
  layers: number;
  heads: number;
}

/**
 * Parses and validates score-file JSON against a model: structure (validateScoreFile), then every (layer, head) present
 * exactly once. Throws ScoreFileError with both shapes named when it was made for another model.
 */
export function decodeScoreFile(text: string, shape: HeadShape): HeadScoreFile {
  const file = parseScoreFile(text);
  headScoreMatrix(file, shape.layers, shape.heads);
  return file;
}

/** JSON text of a score file after checking it fits the model (the official format, row-major keys). */
export function encodeScoreFile(file: HeadScoreFile, shape: HeadShape): string {
  headScoreMatrix(file, shape.layers, shape.heads);
  return serializeScoreFile(file);
}

/** Stores a model's scores (validated first). */
export async function saveCachedScores(store: HeadScoreStore, modelSourceId: string, file: HeadScoreFile, shape: HeadShape): Promise<void> {
  await store.put(scoreCacheKey(modelSourceId), encodeScoreFile(file, shape));
}

/**
 * The cached scores of a model, or null when there are none. A cached entry that no longer parses or fits the model
 * (e.g. the source id now serves another model) is deleted and reported as null rather than used.
 */
export async function loadCachedScores(store: HeadScoreStore, modelSourceId: string, shape: HeadShape): Promise<HeadScoreFile | null> {
  const key = scoreCacheKey(modelSourceId);
  const text = await store.get(key);
  if (text === null) return null;
  try {
    return decodeScoreFile(text, shape);
  } catch (error) {
    if (!(error instanceof ScoreFileError)) throw error;
    await store.delete(key);
    return null;
  }
}
