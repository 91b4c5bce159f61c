/**
 * What a person is told when SparseMM runs on a model without visual-head scores. A leaf module: the UI reads it
 * through the worker API to say it once per model, without pulling the policy code into the page.
 */
export const uniformScoresWarning = 'No visual-head scores for this model: SparseMM uses uniform scores (every head the same budget).';
