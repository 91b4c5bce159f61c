/**
 * Visual-head score files in the official SparseMM format (`visual_head/head_score/*.json`):
 * `{"<layer>-<head>": [score of sample 0, score of sample 1, ...], ...}`, one entry per query head,
 * written in row-major (layer, head) order. A head's score is the mean of its list.
 *
 * The official loader (`sparsemm_utils.SparseMM.__init__`) takes the means in the file's key order and
 * reshapes them to [layers, heads], i.e. it silently relies on the row-major key order. We instead
 * place every value by the numbers in its key, and refuse a file whose shape does not match the model.
 */
import { errorMessage } from '../errors';

/** A parsed score file. Keys are `"<layer>-<head>"`; JS objects keep these (non-integer) keys in insertion order. */
export type HeadScoreFile = Record<string, number[]>;

/** Thrown for a malformed score file or one that does not fit the model. */
export class ScoreFileError extends Error {
  override name = 'ScoreFileError';
}

const headKeyPattern = /^(\d+)-(\d+)$/;

/** Checks the structure of an already-decoded JSON value and returns it typed. */
export function validateScoreFile(value: unknown): HeadScoreFile {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ScoreFileError('score file must be a JSON object {"<layer>-<head>": [scores...]}');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) throw new ScoreFileError('score file has no heads');
  const file: HeadScoreFile = {};
  for (const [key, list] of entries) {
    if (!headKeyPattern.test(key)) {
      throw new ScoreFileError(`score file key "${key}" is not of the form "<layer>-<head>" (e.g. "0-3")`);
    }
    if (!Array.isArray(list)) throw new ScoreFileError(`score file entry "${key}" must be an array of numbers`);
    if (list.length === 0) throw new ScoreFileError(`score file entry "${key}" is empty: a head needs at least one sample score`);
    list.forEach((score: unknown, index) => {
      if (typeof score !== 'number' || !Number.isFinite(score)) {
        throw new ScoreFileError(`score file entry "${key}"[${index}] is ${JSON.stringify(score)}, not a finite number`);
      }
    });
    file[key] = (list as number[]).slice();
  }
  return file;
}

/** Parses the JSON text of a score file and validates it. */
export function parseScoreFile(text: string): HeadScoreFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ScoreFileError(`score file is not valid JSON: ${errorMessage(error)}`);
  }
  return validateScoreFile(value);
}

/** The number of layers and heads a file covers (max index + 1 along each axis). */
export function scoreFileShape(file: HeadScoreFile): { layers: number; heads: number } {
  let layers = 0;
  let heads = 0;
  for (const key of Object.keys(file)) {
    const [layer, head] = parseHeadKey(key);
    layers = Math.max(layers, layer + 1);
    heads = Math.max(heads, head + 1);
  }
  return { layers, heads };
}

/**
 * Sum of a float64 list exactly as numpy's `add.reduce` does it for a contiguous array (pairwise
 * summation: plain loop below 8 items, 8 interleaved partial sums up to 128, halves above), so that
 * `numpyMean` reproduces `np.mean` bit for bit and capacities round the same way as the official code.
 */
export function numpyPairwiseSum(values: ArrayLike<number>, start = 0, count = values.length - start): number {
  if (count < 8) {
    let sum = 0;
    for (let i = 0; i < count; i++) sum += values[start + i];
    return sum;
  }
  if (count <= 128) {
    const partial = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => values[start + j]);
    let i = 8;
    for (; i < count - (count % 8); i += 8) {
      for (let j = 0; j < 8; j++) partial[j] += values[start + i + j];
    }
    let sum = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
    for (; i < count; i++) sum += values[start + i];
    return sum;
  }
  let half = Math.floor(count / 2);
  half -= half % 8;
  return numpyPairwiseSum(values, start, half) + numpyPairwiseSum(values, start + half, count - half);
}

/** `np.mean` of a non-empty list (pairwise float64 sum divided by the count). */
export function numpyMean(values: ArrayLike<number>): number {
  if (values.length === 0) throw new RangeError('mean of an empty list');
  return numpyPairwiseSum(values) / values.length;
}

/**
 * Mean score per query head as [layer][qHead]. Throws a ScoreFileError that names both shapes when
 * the file was made for another model (e.g. the 32x32 LLaVA file against SmolVLM's 30x9), and names
 * missing heads when the file is incomplete.
 */
export function headScoreMatrix(file: HeadScoreFile, layers: number, qHeads: number): number[][] {
  const shape = scoreFileShape(file);
  const keyCount = Object.keys(file).length;
  if (shape.layers !== layers || shape.heads !== qHeads) {
    throw new ScoreFileError(
      `score file covers ${shape.layers} layers x ${shape.heads} heads (${keyCount} entries) but the model has ` +
        `${layers} layers x ${qHeads} query heads: this file was made for another model`,
    );
  }
  const matrix: number[][] = [];
  const missing: string[] = [];
  for (let layer = 0; layer < layers; layer++) {
    const row: number[] = [];
    for (let head = 0; head < qHeads; head++) {
      const list = file[headKey(layer, head)];
      if (list === undefined) {
        missing.push(headKey(layer, head));
        row.push(Number.NaN);
      } else {
        row.push(numpyMean(list));
      }
    }
    matrix.push(row);
  }
  if (missing.length > 0) {
    const shown = missing.slice(0, 8).join(', ') + (missing.length > 8 ? `, ... (${missing.length} in all)` : '');
    throw new ScoreFileError(`score file lacks heads ${shown}`);
  }
  // Keys such as "01-2" alias "1-2"; the count check catches the duplicate that would otherwise hide.
  if (keyCount !== layers * qHeads) {
    throw new ScoreFileError(`score file has ${keyCount} entries, expected ${layers * qHeads} (some key is duplicated, e.g. with a leading zero)`);
  }
  return matrix;
}

/** JSON text in the official format, keys in row-major (layer, head) order as the official scripts write them. */
export function serializeScoreFile(file: HeadScoreFile): string {
  const keys = Object.keys(file).sort((a, b) => {
    const [la, ha] = parseHeadKey(a);
    const [lb, hb] = parseHeadKey(b);
    return la - lb || ha - hb;
  });
  const ordered: HeadScoreFile = {};
  for (const key of keys) ordered[key] = file[key];
  return JSON.stringify(ordered);
}

/**
 * Collects per-sample visual-head scores, as the official `head_counter[f"{layer}-{head}"].append(score)`:
 * each `addSample` appends one score to every head's list.
 */
export class HeadScoreAccumulator {
  private readonly lists: number[][];
  private samples = 0;

  constructor(
    readonly layers: number,
    readonly qHeads: number,
  ) {
    if (!Number.isInteger(layers) || layers < 1 || !Number.isInteger(qHeads) || qHeads < 1) {
      throw new RangeError(`accumulator needs positive integer layers and heads, got ${layers} x ${qHeads}`);
    }
    this.lists = Array.from({ length: layers * qHeads }, () => []);
  }

  get sampleCount(): number {
    return this.samples;
  }

  /** Adds one sample's score per head, given as [layer][head] or flat row-major. */
  addSample(scores: number[][] | ArrayLike<number>): void {
    const flat: ArrayLike<number> = isNested(scores) ? scores.flat() : scores;
    if (flat.length !== this.layers * this.qHeads) {
      throw new RangeError(`sample has ${flat.length} head scores, expected ${this.layers} x ${this.qHeads} = ${this.layers * this.qHeads}`);
    }
    for (let i = 0; i < flat.length; i++) {
      if (!Number.isFinite(flat[i])) throw new RangeError(`sample score ${i} is ${flat[i]}, not a finite number`);
    }
    for (let i = 0; i < flat.length; i++) this.lists[i].push(flat[i]);
    this.samples++;
  }

  /** The score file so far (row-major key order). Throws before the first sample: an empty list has no mean. */
  toFile(): HeadScoreFile {
    if (this.samples === 0) throw new ScoreFileError('no samples accumulated yet');
    const file: HeadScoreFile = {};
    for (let layer = 0; layer < this.layers; layer++) {
      for (let head = 0; head < this.qHeads; head++) file[headKey(layer, head)] = this.lists[layer * this.qHeads + head].slice();
    }
    return file;
  }

  /** Mean per head as [layer][head]. */
  means(): number[][] {
    return headScoreMatrix(this.toFile(), this.layers, this.qHeads);
  }
}

export function headKey(layer: number, head: number): string {
  return `${layer}-${head}`;
}

function parseHeadKey(key: string): [number, number] {
  const match = headKeyPattern.exec(key);
  if (!match) throw new ScoreFileError(`score file key "${key}" is not of the form "<layer>-<head>"`);
  return [Number(match[1]), Number(match[2])];
}

function isNested(scores: number[][] | ArrayLike<number>): scores is number[][] {
  return Array.isArray(scores) && scores.length > 0 && Array.isArray(scores[0]);
}
