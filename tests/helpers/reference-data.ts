/** Where tests find the real reference files. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultReferenceModelDir, defaultReferenceScoreFile } from '../../src/model-io/fixture';

/** The real SmolVLM-256M-Instruct config / tokenizer / processor files (vendored in tests/data). */
export const referenceModelDir = defaultReferenceModelDir();
export const referenceConfigPath = join(referenceModelDir, 'config.json');

/** The real SmolVLM2-500M-Video-Instruct config / preprocessor / processor files (vendored in tests/data; no tokenizer). */
export const smolvlm2ReferenceDir = fileURLToPath(new URL('../data/SmolVLM2-500M-Video-Instruct', import.meta.url));

/**
 * The official SparseMM score file for LLaVA-NeXT-Vicuna-7B (32 x 32 heads), from the workspace's shared reference
 * folder next to the checkout (`../shared/reference-scores`), or SPARSEMM_REFERENCE_SCORES. Not vendored: its
 * licence is not stated by the upstream repository.
 */
export const llavaScorePath = defaultReferenceScoreFile();
