/** What the context meter says: pure text from the worker's ContextUsage, for the chat and its tests. */
import type { ContextUsage } from '../worker/api';
import { formatCount } from './format';

export interface ContextReading {
  /** "1,234 / 8,192 tokens · next image up to +832" */
  summary: string;
  /** "1,002 text + 232 image tokens (3 pictures at 2048 px), 21 of them the question; up to 32 more for the answer" */
  detail: string;
  /** Tokens over the context the next prompt would need with its answer (0 when it fits). */
  overBy: number;
  /** What to do when it does not fit; null when it does. */
  advice: string | null;
}

/**
 * The meter reads the next prompt (text so far, every picture at the current edge, and the question being typed with
 * its turn's template, as the worker counts them) against the model's context.
 */
export function readContext(usage: ContextUsage, maxNewTokens: number, pictures: number): ContextReading {
  const summary = `${formatCount(usage.usedTokens)} / ${formatCount(usage.contextTokens)} tokens · next image up to +${formatCount(usage.nextImageTokens)}`;
  const pictureNote = pictures > 0 ? ` (${pictures} ${pictures === 1 ? 'picture' : 'pictures'} at ${usage.longestImageEdge} px)` : '';
  const questionNote = usage.questionTokens > 0 ? `, ${formatCount(usage.questionTokens)} of them the question` : '';
  const detail = `${formatCount(usage.textTokens)} text + ${formatCount(usage.imageTokens)} image tokens${pictureNote}${questionNote}; up to ${formatCount(maxNewTokens)} more for the answer`;
  const overBy = Math.max(0, usage.usedTokens + maxNewTokens - usage.contextTokens);
  const lowerEdge = usage.longestImageEdge > usage.tileSize ? ', set "Longest image edge" lower' : '';
  const advice =
    overBy > 0
      ? `With its answer the next prompt needs ${formatCount(overBy)} more tokens than the model's context of ${formatCount(usage.contextTokens)}: remove an image, start a New chat${lowerEdge}, or ask for fewer new tokens.`
      : null;
  return { summary, detail, overBy, advice };
}

/** The edges the setting offers: whole tiles from one tile up to the model's own edge (always included). */
export function longestEdgeChoices(tileSize: number, defaultEdge: number): number[] {
  if (!(tileSize > 0) || !(defaultEdge >= tileSize)) return [defaultEdge];
  const choices: number[] = [];
  for (let edge = tileSize; edge < defaultEdge; edge += tileSize) choices.push(edge);
  choices.push(defaultEdge);
  return choices;
}
