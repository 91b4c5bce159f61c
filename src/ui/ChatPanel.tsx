import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { AnswerNotes, ComparePanel } from './ComparePanel';
import { FrameStrip } from './PendingVideos';
import { NeedsModel } from './NeedsModel';
import { answerBoxHidden, type ChatTurn } from './transcript';

interface ChatPanelProps {
  turns: ChatTurn[];
  running: boolean;
  /** Why questions cannot be asked now (no model, ...); null when they can. */
  blockedReason: string | null;
  /** No model is loaded (nor loading): the chat points to the Model panel. */
  needsModel?: boolean;
  /** Resolves true when the worker accepted the question; on a refusal the text stays in the box. */
  onAsk: (question: string) => Promise<boolean>;
  /** The question box's text as it changes (the context meter counts it). */
  onQuestionChange?: (question: string) => void;
  onStop: () => void;
  onNewChat: () => void;
  /** New chat has something to drop (turns or pictures). */
  newChatEnabled: boolean;
  /** The picture drop zone and the policy controls, placed above the transcript. */
  children: ReactNode;
  /** The pictures waiting for the next question and the context meter, placed above the question box. */
  composer?: ReactNode;
}

/**
 * The conversation: transcript (streamed answers, side by side in Compare mode), the question box (Enter
 * sends, Shift+Enter makes a new line), Stop and New chat. Every answer is rendered as text.
 */
export function ChatPanel({ turns, running, blockedReason, needsModel = false, onAsk, onQuestionChange, onStop, onNewChat, newChatEnabled, children, composer }: ChatPanelProps) {
  const ids = useId();
  const [question, setQuestion] = useState('');
  /** Shown when Enter is pressed while an answer runs: questions wait, they are never interleaved. */
  const [refusal, setRefusal] = useState<string | null>(null);
  const logEnd = useRef<HTMLDivElement>(null);
  useEffect(() => onQuestionChange?.(question), [question, onQuestionChange]);

  const lastTurn = turns.at(-1);
  const streamedLength = lastTurn ? lastTurn.answers.reduce((n, a) => n + a.text.length, 0) : 0;
  // A finished comparison adds its figures under the answers: bring them into view too.
  const lastMeasured = lastTurn?.measurements !== undefined;
  useEffect(() => {
    logEnd.current?.scrollIntoView?.({ block: 'nearest' });
  }, [turns.length, streamedLength, lastMeasured]);

  const send = () => {
    const text = question.trim();
    if (!text || blockedReason) return;
    if (running) {
      setRefusal('An answer is still being generated: press Stop or wait for it, then send this question (it is kept in the box).');
      return;
    }
    setRefusal(null);
    // The box empties at once, so that a second Enter during the prefill does not send (or refuse) the same question;
    // a refused question comes back into the box (bad input loses nothing) unless something new was typed meanwhile.
    setQuestion('');
    void onAsk(text).then((accepted) => {
      if (!accepted) setQuestion((current) => (current.trim() === '' ? text : current));
    });
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    send();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    // Enter sends; Shift+Enter (and Enter while an IME composes) inserts a new line.
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send();
    }
  };

  return (
    <section className="panel chat-panel" aria-labelledby="chat-heading" data-testid="chat-panel">
      <h2 id="chat-heading">Image + chat</h2>
      {children}
      <div className="transcript" role="log" aria-label="Conversation" aria-live="polite" data-testid="transcript">
        {turns.length === 0 &&
          (needsModel ? (
            <p className="muted">Start in the Model panel: load a model (the default preset needs one press of Load), then add pictures and ask about them.</p>
          ) : (
            <p className="muted">Add pictures and ask about them; follow-ups can add more. Answers stream here token by token.</p>
          ))}
        {turns.map((turn) => (
          <article key={turn.id} className="turn" data-testid="turn">
            <p className="question" data-testid="question-text">
              <span className="speaker">You</span>
              {turn.question}
            </p>
            {turn.images.length > 0 && (
              <ul className="turn-images" aria-label="Pictures sent with this question" data-testid="turn-images">
                {turn.images.map((image) => (
                  <li key={image.id}>
                    <img className="picture-thumb small-thumb" src={image.url} alt={`Sent picture: ${image.name}`} title={image.name} data-testid="turn-image" />
                  </li>
                ))}
              </ul>
            )}
            {turn.videos?.map((video) => (
              <div key={video.info.id} className="turn-video" data-testid="turn-video">
                <span className="muted small">{video.info.name}</span>
                <FrameStrip video={video} compact />
              </div>
            ))}
            {turn.compare ? (
              <ComparePanel answers={turn.answers} measurements={turn.measurements} />
            ) : (
              turn.answers.map((answer, index) => (
                <div key={index} className="answer">
                  <span className="speaker">{answer.label}</span>
                  <p className="answer-text" hidden={answerBoxHidden(answer)} data-testid="answer-text" data-tokens={answer.tokens} data-streaming={answer.streaming ? 'true' : 'false'}>
                    {answer.text}
                    {answer.streaming && <span className="cursor" aria-hidden="true" />}
                  </p>
                  <AnswerNotes answer={answer} />
                </div>
              ))
            )}
            {turn.error && (
              <p className="status error small" data-testid="turn-error">
                {turn.error}
              </p>
            )}
          </article>
        ))}
        <div ref={logEnd} />
      </div>

      <form className="ask-form" onSubmit={onSubmit}>
        {composer}
        <label htmlFor={`${ids}-question`}>Question</label>
        <textarea
          id={`${ids}-question`}
          data-testid="question-input"
          rows={2}
          value={question}
          placeholder={blockedReason ?? 'Ask about the pictures (Enter sends, Shift+Enter for a new line)'}
          onChange={(e) => setQuestion(e.target.value)}
          onKeyDown={onKeyDown}
        />
        <div className="actions">
          <button type="submit" data-testid="send-button" disabled={running || blockedReason !== null || question.trim() === ''}>
            Send
          </button>
          <button type="button" className="secondary" data-testid="stop-button" onClick={onStop} disabled={!running}>
            Stop
          </button>
          <button type="button" className="secondary" data-testid="new-chat-button" onClick={onNewChat} disabled={running || !newChatEnabled}>
            New chat
          </button>
        </div>
        {blockedReason && (needsModel ? <NeedsModel>{blockedReason}</NeedsModel> : <p className="muted small">{blockedReason}</p>)}
        {refusal && running && (
          <p className="status warning small" role="status" data-testid="ask-refused">
            {refusal}
          </p>
        )}
      </form>
    </section>
  );
}
