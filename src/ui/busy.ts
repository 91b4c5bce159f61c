/**
 * What the engine is busy with, as the UI sees it: the worker runs one job at a time and refuses a question while a
 * search, benchmark, sweep or OCR evaluation runs, so the chat says why it waits before the worker has to refuse.
 */
export interface EngineBusyState {
  modelLoading: boolean;
  modelLoaded: boolean;
  recoveringDevice: boolean;
  searching: boolean;
  benchmarkRunning: boolean;
  sweepRunning: boolean;
  ocrRunning: boolean;
}

/** Why a question cannot be sent now, or null when it can; a running job's reason names where its Stop is. */
export function whyQuestionsWait(state: EngineBusyState): string | null {
  if (state.modelLoading) return 'Wait for the model to load.';
  if (!state.modelLoaded) return 'Load a model first.';
  if (state.recoveringDevice) return 'Wait: the model is being reloaded on a new GPU device.';
  if (state.searching) return 'Wait for the visual-head search to finish (or cancel it).';
  if (state.benchmarkRunning) return 'Wait for the benchmark to finish.';
  if (state.sweepRunning) return 'Wait for the budget sweep to finish (or press Stop in the Budget sweep panel).';
  if (state.ocrRunning) return 'Wait for the OCR accuracy run to finish (or press Stop under Accuracy on OCR probes).';
  return null;
}
