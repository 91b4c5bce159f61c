/**
 * OCR accuracy under each KV policy, the shape of the paper's accuracy table on our synthetic probes: each probe (the
 * visual-head search's OCR probes, whose text is known) is asked the official OCR prompt through one fidelity sweep
 * (one prefill, the full-cache answer, each policy x budget's own answer), and every answer is scored against the
 * probe's text with ANLS and word accuracy.
 */
import { ocrProbePrompt, readingOrderText } from '../sparsemm/head-scoring';
import { anls, wordAccuracy } from '../sparsemm/ocr-metrics';
import { planProbeSample, type ProbeRenderer } from '../sparsemm/probe-set';
import { runFidelitySweep, type FidelitySweepRun } from './fidelity';
import type { OcrEvalProgress, OcrEvalRequest, OcrEvalResult, OcrEvalRow, OcrEvalSample } from './fidelity-types';

export interface OcrEvalRun extends Omit<FidelitySweepRun, 'prepared' | 'pictures' | 'request' | 'onProgress'> {
  request: OcrEvalRequest;
  renderer: ProbeRenderer;
  /** After each probe. */
  onProgress?: (progress: OcrEvalProgress) => void;
}

export async function runOcrEval(run: OcrEvalRun): Promise<OcrEvalResult> {
  const { ready, request, renderer, signal, onProgress } = run;
  if (!Number.isInteger(request.samples) || request.samples < 1) throw new RangeError(`samples must be a positive integer, got ${request.samples}`);
  const samples: OcrEvalSample[] = [];
  const sums = new Map<string, OcrEvalRow>();
  const warnings = new Set<string>();
  let stoppedBy: OcrEvalResult['stoppedBy'] = 'done';
  const add = (policy: OcrEvalRow['policy'], budget: number | null, scores: { anls: number; wordAccuracy: number; top1Agreement: number; kvBytes: number }): void => {
    const key = `${policy} ${budget}`;
    const row = sums.get(key) ?? { policy, budget, anls: 0, wordAccuracy: 0, top1Agreement: 0, meanKvBytes: 0, samples: 0 };
    row.anls += scores.anls;
    row.wordAccuracy += scores.wordAccuracy;
    row.top1Agreement += scores.top1Agreement;
    row.meanKvBytes += scores.kvBytes;
    row.samples += 1;
    sums.set(key, row);
  };
  for (let index = 0; index < request.samples; index++) {
    if (signal.aborted) {
      stoppedBy = 'cancel';
      break;
    }
    const plan = planProbeSample(request.seed, index, renderer.measureText);
    const image = renderer.renderProbe(plan);
    const prepared = await ready.processor.prepare(image, [{ role: 'user', text: ocrProbePrompt, imageCount: 1 }]);
    const sweep = await runFidelitySweep({ ...run, prepared, pictures: { features: [], encoded: 0, reused: 0, framesEncoded: 0, framesReused: 0, visionMs: 0, images: [] }, request, onProgress: undefined });
    // A probe stopped half way is left out: its rows would not cover every policy.
    if (sweep.stoppedBy === 'cancel') {
      stoppedBy = 'cancel';
      break;
    }
    for (const warning of sweep.warnings) warnings.add(warning);
    const truth = readingOrderText(plan.chunks);
    const score = (text: string): { anls: number; wordAccuracy: number } => ({ anls: anls(text, truth), wordAccuracy: wordAccuracy(text, truth) });
    const sample: OcrEvalSample = {
      index,
      truth,
      answers: [
        { policy: 'full', budget: null, text: sweep.reference.text, ...score(sweep.reference.text) },
        ...sweep.rows.map((row) => ({ policy: row.policy, budget: row.budget, text: row.text, ...score(row.text) })),
      ],
    };
    add('full', null, { ...sample.answers[0], top1Agreement: 1, kvBytes: sweep.reference.kvBytes });
    sweep.rows.forEach((row, i) => add(row.policy, row.budget, { ...sample.answers[i + 1], top1Agreement: row.top1Agreement, kvBytes: row.kvBytes }));
    samples.push(sample);
    onProgress?.({ done: index + 1, total: request.samples, sample });
  }
  const rows = [...sums.values()].map((row) => ({
    ...row,
    anls: row.anls / row.samples,
    wordAccuracy: row.wordAccuracy / row.samples,
    top1Agreement: row.top1Agreement / row.samples,
    meanKvBytes: row.meanKvBytes / row.samples,
  }));
  return { rows, samples, stoppedBy, warnings: [...warnings] };
}
