/**
 * The jobs the worker runs on the session, one at a time (questions, comparisons, the fidelity sweep, the visual-head
 * search, the benchmark), and what they leave to read (budget plans, head scores, the last attention map). Each call
 * frees its comlink callback when it ends.
 */
import type { ProbeRenderer } from '../sparsemm/probe-set';
import type { ChatSession, RowsModelLoader } from '../session/chat-session';
import type { EngineApi } from './api';
import { releasingAfter } from './callbacks';

export type JobsApi = Pick<
  EngineApi,
  'ask' | 'compare' | 'stop' | 'planBudgets' | 'headScores' | 'importHeadScores' | 'exportHeadScores' | 'findVisualHeads' | 'lastAttention' | 'runBenchmark' | 'fidelitySweep' | 'ocrEval'
>;

/** `loadWeightCopy`: the loaded model in another weight format, for a sweep whose request names one (model-lifecycle.ts). */
export function createJobs(session: ChatSession, probeRenderer: () => ProbeRenderer, loadWeightCopy: RowsModelLoader): JobsApi {
  return {
    ask(question, options, onToken) {
      return releasingAfter(onToken, () => session.ask(question, options, onToken));
    },

    compare(question, options, onToken) {
      return releasingAfter(onToken, () => session.compare(question, options, onToken));
    },

    stop() {
      session.stop();
    },

    planBudgets(options) {
      return session.planBudgets(options);
    },

    headScores() {
      return session.headScores();
    },

    importHeadScores(json) {
      return session.importHeadScores(json);
    },

    exportHeadScores() {
      return session.exportHeadScores();
    },

    findVisualHeads(options, onProgress) {
      return releasingAfter(onProgress, () => session.findVisualHeads(options, probeRenderer, onProgress));
    },

    lastAttention() {
      return session.lastAttention();
    },

    fidelitySweep(question, request, onProgress) {
      return releasingAfter(onProgress, () => session.fidelitySweep(question, request, onProgress, loadWeightCopy));
    },

    ocrEval(request, onProgress) {
      return releasingAfter(onProgress, () => session.ocrEval(request, probeRenderer, onProgress));
    },

    runBenchmark(request, onProgress) {
      return releasingAfter(onProgress, () => session.runBenchmark(request, onProgress));
    },
  };
}
