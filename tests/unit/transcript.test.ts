/** The UI's chat state (src/ui/transcript.ts): streamed tokens, finished and failed turns. */
import { describe, expect, it } from 'vitest';
import { answerBoxHidden, applyToken, failTurn, finishTurn, type ChatTurn } from '../../src/ui/transcript';
import type { RunResult } from '../../src/worker/api';

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
});
