/**
 * The visual-head scores a chat session uses: adopted from the cache when a model loads, from an import (checked
 * against the model's shape) or from a search; handed to the front end's saveScores hook when they change.
 */
import { headScoreMatrix, parseScoreFile, scoreFileShape, serializeScoreFile, type HeadScoreFile } from '../sparsemm/score-file';
import type { TextConfig } from '../model-io/config';
import { errorMessage } from '../errors';
import type { HeadScoresInfo } from './types';

export interface HeadScores {
  file: HeadScoreFile;
  matrix: number[][];
  origin: HeadScoresInfo['origin'];
}

export class HeadScoreStore {
  private scores: HeadScores | null = null;

  constructor(private readonly saveScores?: (sourceId: string, file: HeadScoreFile) => Promise<void>) {}

  get current(): HeadScores | null {
    return this.scores;
  }

  /** A new model: its cached scores if they fit its shape (else none, with a warning in the console). */
  reset(sourceId: string, text: TextConfig, cached: HeadScoreFile | null): void {
    this.scores = null;
    if (!cached) return;
    try {
      this.scores = { file: cached, matrix: headScoreMatrix(cached, text.numLayers, text.numHeads), origin: 'cache' };
    } catch (error) {
      console.warn(`Ignoring the cached visual-head scores of ${sourceId}: ${errorMessage(error)}`);
    }
  }

  info(text: TextConfig): HeadScoresInfo | null {
    if (!this.scores) return null;
    const lists = Object.values(this.scores.file);
    return { matrix: this.scores.matrix, kvHeads: text.numKvHeads, origin: this.scores.origin, samples: lists[0]?.length ?? 0 };
  }

  /** The current scores as official JSON text, or null. */
  exportJson(): string | null {
    return this.scores ? serializeScoreFile(this.scores.file) : null;
  }

  /** Parses an official score file and checks it was made for a model of `text`'s shape. */
  static parseFor(json: string, text: TextConfig): HeadScoreFile {
    const file = parseScoreFile(json);
    const shape = scoreFileShape(file);
    if (shape.layers !== text.numLayers || shape.heads !== text.numHeads) {
      throw new Error(
        `This file has scores for ${shape.layers} layers x ${shape.heads} heads, but the loaded model has ${text.numLayers} layers x ${text.numHeads} query heads: it was made for another model.`,
      );
    }
    return file;
  }

  /** Uses `file` (checked against the model) from now on, and hands it to saveScores (failures only logged). */
  async use(file: HeadScoreFile, origin: HeadScoresInfo['origin'], sourceId: string, text: TextConfig): Promise<HeadScoresInfo> {
    this.scores = { file, matrix: headScoreMatrix(file, text.numLayers, text.numHeads), origin };
    if (this.saveScores) {
      try {
        await this.saveScores(sourceId, file);
      } catch (error) {
        console.warn(`The visual-head scores could not be cached: ${errorMessage(error)}`);
      }
    }
    const info = this.info(text);
    if (!info) throw new Error('The scores were not kept.');
    return info;
  }
}
