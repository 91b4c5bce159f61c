import type { AnswerFidelity, CompareMeasurements, RunResult } from '../worker/api';
import { bytesBoundLine, decodeVerdict, nothingCompressedText, picturesText, prefillVerdict, sharedVisionText, softwareNote, spreadText, timingNote } from './compare-text';
import { formatBytes } from './format';
import { describePolicy, policyLabel } from './PolicyControls';
import { answerBoxHidden, type ChatAnswer } from './transcript';

interface ComparePanelProps {
  /** Full cache first, the chosen policy second (streaming or finished). */
  answers: ChatAnswer[];
  /** What the comparison measured (once both runs ended). */
  measurements?: CompareMeasurements;
}

function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

/** policy / full as "0.25x" (two decimals: 1.00x means the same); a dash when either side is missing or zero. */
function ratio(policy: number | undefined, full: number | undefined): string {
  if (policy === undefined || full === undefined || !(full > 0) || !(policy >= 0)) return '—';
  return `${(policy / full).toFixed(2)}x`;
}

/** One run's figures: its own cache, its text prefill and decode (median with the spread), what it kept. */
function MetricColumn({ result, run, measurements }: { result: RunResult | undefined; run: 0 | 1; measurements?: CompareMeasurements }) {
  if (!result || !measurements) return <p className="muted small">Metrics appear when both runs end.</p>;
  const m = result.metrics;
  const prefill = run === 0 ? measurements.prefill.baseline : measurements.prefill.candidate;
  const decode = run === 0 ? measurements.decode.baseline : measurements.decode.candidate;
  return (
    <dl className="facts compact" data-testid="compare-metrics">
      <dt>KV cache</dt>
      <dd data-metric="kv-bytes">{formatBytes(m.kvBytes)}</dd>
      <dt>Decode/token</dt>
      <dd data-metric="decode-ms">{decode.count > 0 ? spreadText(decode) : '— (one token)'}</dd>
      <dt>Text prefill</dt>
      <dd data-metric="prefill-ms">
        {prefill.count > 0 ? spreadText(prefill) : '—'}
        {run === 1 && result.compressed && prefill.count > 0 ? ', selection included' : ''}
      </dd>
      <dt>Tokens</dt>
      <dd>{m.generatedTokens}</dd>
      <dt>Kept</dt>
      <dd>{result.compressed ? 'compressed' : 'whole prompt'}</dd>
    </dl>
  );
}

/**
 * Two answers to the same question side by side, each with its metric column; under them the policy / full figures
 * (KV bytes, the decode and prefill verdicts of the spread rule), the bytes bound, and how it was measured.
 */
export function ComparePanel({ answers, measurements }: ComparePanelProps) {
  const [full, policy] = answers;
  const fullResult = full?.result;
  const policyResult = policy?.result;
  const vision = measurements ? sharedVisionText(measurements.vision, formatMs) : null;
  const emulated = measurements && policyResult ? softwareNote(measurements, policyResult.compressed) : null;
  return (
    <div className="compare" data-testid="compare-panel">
      {vision && (
        <p className="muted small" data-testid="compare-vision" data-images-encoded={measurements?.vision.encoded} data-images-reused={measurements?.vision.reused}>
          {vision}
        </p>
      )}
      <div className="compare-columns">
        {answers.map((answer, index) => (
          <section key={index} className="compare-column" aria-label={answer.label} data-testid="compare-column">
            <h4>{answer.label}</h4>
            <p className="answer-text" hidden={answerBoxHidden(answer)} data-testid="answer-text" data-tokens={answer.tokens} data-streaming={answer.streaming ? 'true' : 'false'}>
              <MarkedText text={answer.text} mark={answer.streaming ? null : answer.result?.fidelity?.differenceText ?? null} />
              {answer.streaming && <span className="cursor" aria-hidden="true" />}
            </p>
            <AnswerNotes answer={answer} pictures={false} />
            <MetricColumn result={answer.result} run={index === 0 ? 0 : 1} measurements={measurements} />
          </section>
        ))}
      </div>
      {policyResult?.fidelity && <FidelityLine fidelity={policyResult.fidelity} />}
      {fullResult && policyResult && measurements && (
        <>
          <p className="compare-ratios" data-testid="compare-ratios">
            <strong>{describePolicy(policyResult.options)} / full cache:</strong>{' '}
            {!policyResult.compressed && <span data-testid="compare-not-compressed">{nothingCompressedText(policyResult.metrics.promptTokens)} </span>}
            KV bytes <span data-ratio="kv">{ratio(policyResult.metrics.kvBytes, fullResult.metrics.kvBytes)}</span>; decode:{' '}
            <span data-ratio="decode" data-verdict={measurements.decode.verdict}>{decodeVerdict(measurements)}</span>; text prefill:{' '}
            <span data-ratio="prefill" data-verdict={measurements.prefill.verdict}>{prefillVerdict(measurements)}</span>.
          </p>
          <p className="compare-bytes" data-testid="compare-bytes" data-bound={measurements.bytes.bound.toFixed(3)}>
            Bytes per decode step: {bytesBoundLine(measurements.bytes)}.
          </p>
          <p className="muted small" data-testid="compare-timing-note">
            {timingNote(measurements, policyLabel(policyResult.policy))}
          </p>
          {emulated && (
            <p className="muted small" data-testid="compare-software-note">
              {emulated}
            </p>
          )}
        </>
      )}
    </div>
  );
}

/** A KL in nats: three decimals, or two significant digits below 0.001 (0 stays 0). */
export function formatKl(kl: number): string {
  return kl > 0 && kl < 0.001 ? kl.toExponential(1) : kl.toFixed(3);
}

/** "top-1 agreement 31/32, mean KL 0.004, first difference at token 17": the policy answer against the full cache. */
export function fidelitySummary(fidelity: AnswerFidelity): string {
  const difference = fidelity.firstDifference === null ? 'no difference from the full-cache answer' : `first difference at token ${fidelity.firstDifference}`;
  return `top-1 agreement ${fidelity.agreedSteps}/${fidelity.steps}, mean KL ${formatKl(fidelity.meanKl)}, ${difference}`;
}

function FidelityLine({ fidelity }: { fidelity: AnswerFidelity }) {
  return (
    <p className="compare-fidelity" data-testid="compare-fidelity" data-first-difference={fidelity.firstDifference ?? ''}
      title="The policy's cache fed the full-cache answer token by token: steps whose top-1 token is the full cache's, and KL(full || policy) of the next-token distributions">
      {fidelitySummary(fidelity)}
    </p>
  );
}

/** The answer as text, with the token where it first leaves the full-cache answer marked. */
function MarkedText({ text, mark }: { text: string; mark: AnswerFidelity['differenceText'] }) {
  if (!mark || mark.token === '' || !text.startsWith(mark.before + mark.token)) return <>{text}</>;
  const end = mark.before.length + mark.token.length;
  return (
    <>
      {mark.before}
      <mark data-testid="first-difference" title="First token that differs from the full-cache answer">{mark.token}</mark>
      {text.slice(end)}
    </>
  );
}

/** How the prompt's pictures got their features: through the vision tower now, or from an earlier turn's cache. */
export function picturesNote(metrics: RunResult['metrics']): string | null {
  const counts = { encoded: metrics.imagesEncoded, reused: metrics.imagesReused, framesEncoded: metrics.framesEncoded, framesReused: metrics.framesReused };
  return picturesText(counts, `(${formatMs(metrics.visionMs)})`);
}

/**
 * Why an answer ended early, how its pictures were encoded (unless `pictures` is false: Compare says it once for both
 * runs), and the worker's warnings.
 */
export function AnswerNotes({ answer, pictures: showPictures = true }: { answer: ChatAnswer; pictures?: boolean }) {
  const pictures = answer.result && showPictures ? picturesNote(answer.result.metrics) : null;
  return (
    <>
      {pictures && (
        <p
          className="muted small"
          data-testid="answer-pictures"
          data-images-encoded={answer.result?.metrics.imagesEncoded}
          data-images-reused={answer.result?.metrics.imagesReused}
        >
          {pictures}
        </p>
      )}
      {answer.result?.stoppedBy === 'cancel' && <p className="muted small">Stopped.</p>}
      {answer.result?.stoppedBy === 'max' && <p className="muted small">Reached the token limit.</p>}
      {answer.skipped && <p className="muted small">Not run: stopped before it started.</p>}
      {answer.result?.warnings.map((warning) => (
        <p key={warning} className="status warning small" role="status">
          {warning}
        </p>
      ))}
    </>
  );
}
