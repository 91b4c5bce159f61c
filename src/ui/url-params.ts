import { weightFormatChoices } from './weight-format-choices';
import type { WeightFormat } from '../worker/api';

/**
 * Options the page URL can carry: `?model=<base url>` pre-fills the URL source, `&autoload=1` loads it, and
 * `&weights=q8|q4` picks the weight format (bf16 otherwise).
 */
export interface UrlOptions {
  modelUrl: string | null;
  autoload: boolean;
  weightFormat: WeightFormat;
}

export function readUrlOptions(search: string): UrlOptions {
  const query = new URLSearchParams(search);
  const modelUrl = query.get('model');
  const autoloadValue = query.get('autoload');
  return {
    modelUrl: modelUrl && modelUrl.trim() !== '' ? modelUrl.trim() : null,
    autoload: autoloadValue === '1' || autoloadValue === 'true',
    weightFormat: weightFormatChoices.find((choice) => choice.format === query.get('weights'))?.format ?? 'bf16',
  };
}
