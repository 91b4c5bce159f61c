/** The chat as the UI keeps it (the worker keeps its own message history for the prompt). */
import { uniformScoresWarning, type ChatVideoInfo, type CompareMeasurements, type RunResult, type TokenEvent } from '../worker/api';

export interface ChatAnswer {
  /** "Full cache", "SparseMM, budget 256", ... */
  label: string;
  text: string;
  streaming: boolean;
  /** Tokens generated so far (the stop token included). */
  tokens: number;
  result?: RunResult;
  /** The run never started (Stop during the first run of a comparison). */
  skipped?: boolean;
}

/**
 * An ended answer with no text (stopped or refused before its first token): its box is hidden rather than shown
 * empty. The element stays (hidden) so its token count can still be read.
 */
export function answerBoxHidden(answer: ChatAnswer): boolean {
  return !answer.streaming && answer.text === '';
}

/** A picture sent with a question, as the transcript shows it. */
export interface TurnImage {
  id: number;
  name: string;
  /** Object URL of its thumbnail (owned by the picture list; revoked with New chat). */
  url: string;
}

/** A video of the conversation, as the strip shows it: its facts and the object URLs of its frames' thumbnails. */
export interface TurnVideo {
  info: ChatVideoInfo;
  /** One per sampled frame (owned by the video list; revoked with New chat). */
  frameUrls: string[];
}

export interface ChatTurn {
  id: number;
  question: string;
  /** The pictures that went with this question (none for a follow-up about earlier ones). */
  images: TurnImage[];
  /** The videos that went with it. */
  videos?: TurnVideo[];
  compare: boolean;
  answers: ChatAnswer[];
  /** What a comparison measured of its two runs (set when it ended). */
  measurements?: CompareMeasurements;
  /** Set when the question failed; the turn stays in the transcript with the message. */
  error?: string;
}

/**
 * Applies a streamed piece of text to its answer while that answer is streaming. Token events come over the callback
 * proxy's own MessagePort and the run's result over the worker's port, and messages on two ports are not ordered:
 * with a fast decode the last token event can arrive after the result. It must not re-open a finished answer (which
 * would show it as streaming forever with the engine idle).
 */
export function applyToken(turns: ChatTurn[], turnId: number, event: TokenEvent): ChatTurn[] {
  return turns.map((turn) => {
    if (turn.id !== turnId) return turn;
    const answers = turn.answers.map((answer, index) =>
      index === event.run && answer.streaming ? { ...answer, text: event.text, tokens: event.tokens } : answer,
    );
    return { ...turn, answers };
  });
}

/** Replaces a turn's answers with the finished results (null = the run did not take place), and a comparison's measurements. */
export function finishTurn(turns: ChatTurn[], turnId: number, results: (RunResult | null)[], measurements?: CompareMeasurements): ChatTurn[] {
  return turns.map((turn) => {
    if (turn.id !== turnId) return turn;
    const answers = turn.answers.map((answer, index) => {
      const result = results[index];
      return result ? { ...answer, text: result.answer, tokens: result.tokenIds.length, streaming: false, result } : { ...answer, streaming: false, skipped: true };
    });
    return measurements ? { ...turn, answers, measurements } : { ...turn, answers };
  });
}

/** The question failed: its message stays with the turn; its pictures and videos were not sent (they wait for the next question). */
export function failTurn(turns: ChatTurn[], turnId: number, message: string): ChatTurn[] {
  return turns.map((turn) =>
    turn.id === turnId ? { ...turn, images: [], videos: [], error: message, answers: turn.answers.map((a) => ({ ...a, streaming: false })) } : turn,
  );
}

/**
 * The "No visual-head scores" note is a fact about the model, said once per model (the Visual heads panel keeps it in
 * view), not under every SparseMM answer: drops it from `results` when it was said already; `said` is true once it has.
 */
export function sayUniformScoresNoteOnce(results: (RunResult | null)[], alreadySaid: boolean): { results: (RunResult | null)[]; said: boolean } {
  let said = alreadySaid;
  const kept = results.map((result) => {
    if (!result) return result;
    const warnings = result.warnings.filter((warning) => {
      if (!warning.startsWith(uniformScoresWarning)) return true;
      const first = !said;
      said = true;
      return first;
    });
    return warnings.length === result.warnings.length ? result : { ...result, warnings };
  });
  return { results: kept, said };
}
