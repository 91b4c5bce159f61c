/** Where a model comes from (hub id, base URL, picked files): the URL of each file, a stable id and a readable name. */

export type ModelSource =
  | { kind: 'hub'; modelId: string; revision?: string }
  | { kind: 'url'; baseUrl: string }
  | { kind: 'files'; files: Map<string, Blob> };

const hubBaseUrl = 'https://huggingface.co';

export function isHubModelId(modelId: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(modelId);
}

function trimSlashes(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The URL a file of a remote source is fetched from. */
export function modelFileUrl(source: Exclude<ModelSource, { kind: 'files' }>, file: string): string {
  if (source.kind === 'hub') {
    const revision = encodeURIComponent(source.revision ?? 'main');
    return `${hubBaseUrl}/${source.modelId}/resolve/${revision}/${file}`;
  }
  return `${trimSlashes(source.baseUrl)}/${file}`;
}

/** FNV-1a over the names and sizes of picked files: the same folder gets the same id. */
function fingerprintFiles(files: Map<string, Blob>): string {
  let hash = 0x811c9dc5;
  const text = [...files].map(([name, blob]) => `${name}:${blob.size}`).sort().join('|');
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

export function modelSourceId(source: ModelSource): string {
  switch (source.kind) {
    case 'hub':
      return `hub/${source.modelId}@${source.revision ?? 'main'}`;
    case 'url':
      return `url/${trimSlashes(source.baseUrl)}`;
    case 'files':
      return `files/${fingerprintFiles(source.files)}`;
  }
}

/** A human-readable name for error messages. */
export function describeModelSource(source: ModelSource): string {
  switch (source.kind) {
    case 'hub':
      return `hub model ${source.modelId}${source.revision ? `@${source.revision}` : ''}`;
    case 'url':
      return trimSlashes(source.baseUrl);
    case 'files':
      return 'the selected folder';
  }
}
