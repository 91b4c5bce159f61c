/** Options the page URL can carry: `?model=<base url>` pre-fills the URL source and `&autoload=1` loads it. */
export interface UrlOptions {
  modelUrl: string | null;
  autoload: boolean;
}

export function readUrlOptions(search: string): UrlOptions {
  const query = new URLSearchParams(search);
  const modelUrl = query.get('model');
  const autoloadValue = query.get('autoload');
  return {
    modelUrl: modelUrl && modelUrl.trim() !== '' ? modelUrl.trim() : null,
    autoload: autoloadValue === '1' || autoloadValue === 'true',
  };
}
