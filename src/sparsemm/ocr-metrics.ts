/**
 * Scores of a model's reading against the ground-truth text (pure): ANLS, the DocVQA metric, and word accuracy.
 *
 * ANLS (Biten et al., "Scene Text Visual Question Answering", and the DocVQA challenge's evaluation): both strings are
 * normalized (lower case, leading/trailing space stripped, runs of white space collapsed to one space); NL is the
 * Levenshtein distance divided by the longer string's length (0 when both are empty); the score is 1 - NL when
 * NL < threshold (0.5), else 0; with several accepted answers the best one counts.
 */

/** The DocVQA threshold: an answer at normalized distance >= 0.5 scores 0. */
export const anlsThreshold = 0.5;

/** DocVQA's normalization: lower case, trimmed, white space collapsed (`' '.join(s.strip().lower().split())`). */
export function normalizeAnswer(text: string): string {
  return text.trim().toLowerCase().split(/\s+/).filter((part) => part.length > 0).join(' ');
}

/** Levenshtein edit distance (insert, delete, substitute: cost 1 each) over UTF-16 code units, two rows of memory. */
export function levenshtein(a: string, b: string): number {
  if (a.length < b.length) [a, b] = [b, a];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}

/** Normalized Levenshtein similarity of one (prediction, truth) pair after DocVQA normalization, thresholded. */
function anlsPair(prediction: string, truth: string, threshold: number): number {
  const p = normalizeAnswer(prediction);
  const t = normalizeAnswer(truth);
  const longest = Math.max(p.length, t.length);
  const distance = longest === 0 ? 0 : levenshtein(p, t) / longest;
  return distance < threshold ? 1 - distance : 0;
}

/** ANLS of one answer: the best thresholded similarity over the accepted ground truths (at least one). */
export function anls(prediction: string, truths: string | readonly string[], threshold = anlsThreshold): number {
  const list = typeof truths === 'string' ? [truths] : truths;
  if (list.length === 0) throw new RangeError('anls: no ground-truth answer given');
  return Math.max(...list.map((truth) => anlsPair(prediction, truth, threshold)));
}

/** Words of a reading, for word accuracy: normalized, split on white space, punctuation at either end dropped. */
export function answerWords(text: string): string[] {
  return normalizeAnswer(text)
    .split(' ')
    .map((word) => word.replace(/^[\p{P}\p{S}]+|[\p{P}\p{S}]+$/gu, ''))
    .filter((word) => word.length > 0);
}

/**
 * Word accuracy: the share of the ground truth's words found in the prediction, each prediction word used for at most
 * one truth word (a multiset match; order is not checked). It is a recall: extra words in a longer answer cost nothing
 * here (ANLS penalizes them). A truth without words scores 1 for a prediction without words, else 0.
 */
export function wordAccuracy(prediction: string, truth: string): number {
  const truthWords = answerWords(truth);
  const predicted = answerWords(prediction);
  if (truthWords.length === 0) return predicted.length === 0 ? 1 : 0;
  const available = new Map<string, number>();
  for (const word of predicted) available.set(word, (available.get(word) ?? 0) + 1);
  let found = 0;
  for (const word of truthWords) {
    const left = available.get(word) ?? 0;
    if (left > 0) {
      found += 1;
      available.set(word, left - 1);
    }
  }
  return found / truthWords.length;
}
