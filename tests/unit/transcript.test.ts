/** The UI's chat state (src/ui/transcript.ts): streamed tokens, finished and failed turns. */
import { describe, expect, it } from 'vitest';
import { answerBoxHidden, applyToken, failTurn, finishTurn, sayUniformScoresNoteOnce, type ChatTurn } from '../../src/ui/transcript';
import { pictureFacts } from '../../src/ui/PendingImages';
import { uniformScoresWarning, type ChatImageInfo, type RunResult } from '../../src/worker/api';

function turn(id: number, answers: number): ChatTurn {
  return { id, question: 'q', images: [], compare: answers > 1, answers: Array.from({ length: answers }, (_, i) => ({ label: `run ${i}`, text: '', tokens: 0, streaming: true })) };
}

const result = (answer: string, tokens: number): RunResult => ({ answer, tokenIds: Array.from({ length: tokens }, (_, i) => i) }) as unknown as RunResult;

describe('transcript', () => {
  it('streams tokens into the answer of their run only', () => {
    let turns = [turn(1, 2), turn(2, 1)];
    turns = applyToken(turns, 1, { run: 1, delta: 'Hi', text: 'Hi', tokens: 1 });
    expect(turns[0].answers.map((a) => [a.text, a.tokens, a.streaming])).toEqual([['', 0, true], ['Hi', 1, true]]);
    expect(turns[1]).toEqual(turn(2, 1));
  });

  // Token events and the run's result travel on different MessagePorts, which are not ordered: with a fast decode the
  // last token event can arrive after the result. It used to set the answer streaming again, forever (the Chromium
  // e2e stall seen with the subgroup GEMV).
  it('a token event that arrives after the result does not re-open the finished answer', () => {
    let turns = [turn(1, 2)];
    turns = applyToken(turns, 1, { run: 0, delta: 'a', text: 'a', tokens: 1 });
    turns = finishTurn(turns, 1, [result('a b', 2), result('c', 1)]);
    const late = applyToken(turns, 1, { run: 0, delta: ' b', text: 'a b', tokens: 2 });
    expect(late[0].answers.map((a) => [a.text, a.tokens, a.streaming])).toEqual([['a b', 2, false], ['c', 1, false]]);
    const failed = failTurn([turn(3, 1)], 3, 'boom');
    expect(applyToken(failed, 3, { run: 0, delta: 'x', text: 'x', tokens: 1 })[0].answers[0].streaming).toBe(false);
  });

  it('hides the box of an answer that ended without text (Stop before the first token), never a streaming one', () => {
    const [streaming] = turn(1, 1).answers;
    expect(answerBoxHidden(streaming)).toBe(false);
    const stopped = finishTurn([turn(1, 1)], 1, [result('', 0)])[0].answers[0];
    expect(answerBoxHidden(stopped)).toBe(true);
    const answered = finishTurn([turn(1, 1)], 1, [result('a', 1)])[0].answers[0];
    expect(answerBoxHidden(answered)).toBe(false);
  });

  it('says the "No visual-head scores" note with the first answer of a model only, and keeps other warnings', () => {
    const note = `${uniformScoresWarning} Find or import visual heads first.`;
    const other = 'The prompt is shorter than the budget.';
    const withNotes = (warnings: string[]): RunResult => ({ ...result('a', 1), warnings }) as RunResult;
    // Compare: the full cache has no note, the policy run has it.
    const first = sayUniformScoresNoteOnce([withNotes([]), withNotes([note, other])], false);
    expect(first.said).toBe(true);
    expect(first.results.map((r) => r?.warnings)).toEqual([[], [note, other]]);
    const second = sayUniformScoresNoteOnce([withNotes([note, other])], first.said);
    expect(second.results[0]?.warnings).toEqual([other]);
    expect(second.said).toBe(true);
    // A stopped run (null) and a full-cache answer leave it unsaid.
    expect(sayUniformScoresNoteOnce([null, withNotes([])], false).said).toBe(false);
  });
});

describe('picture facts', () => {
  const info = (facts: Partial<ChatImageInfo>): { info: ChatImageInfo } => ({
    info: { id: 1, name: 'p.png', width: 320, height: 240, originalWidth: 320, originalHeight: 240, scaledDown: false, resizedWidth: null, resizedHeight: null,
      sent: false, tiles: 5, imageTokens: 80, featuresCached: false, bytes: 1, thumbnail: new Blob(), ...facts },
  });

  it('says "scaled to" the size the processor works at, the same way for every picture', () => {
    // Resized by the longest-edge setting (not by the decoder).
    expect(pictureFacts(info({ resizedWidth: 128, resizedHeight: 96 }))).toBe('320 x 240 px, scaled to 128 x 96 · 5 tiles, 80 tokens');
    // Scaled down by the decoder, then by the processor.
    expect(pictureFacts(info({ originalWidth: 2000, originalHeight: 6, width: 1024, height: 3, scaledDown: true, resizedWidth: 128, resizedHeight: 1 }))).toBe(
      '2000 x 6 px, scaled to 128 x 1 · 5 tiles, 80 tokens',
    );
    // At its own size: no "scaled to".
    expect(pictureFacts(info({ resizedWidth: 320, resizedHeight: 240 }))).toBe('320 x 240 px · 5 tiles, 80 tokens');
    // Before a model is loaded: what the decoder did, no tokens.
    expect(pictureFacts(info({ originalWidth: 12000, originalHeight: 12000, width: 2048, height: 2048, scaledDown: true, tiles: null, imageTokens: null }))).toBe(
      '12000 x 12000 px, scaled to 2048 x 2048',
    );
  });
});
