/** Callbacks from the UI arrive as comlink proxies, each holding a MessagePort: free each once its call is over. */
import { releaseProxy } from 'comlink';

export function releaseCallback(callback: unknown): void {
  const release = (callback as { [releaseProxy]?: () => void })[releaseProxy];
  if (typeof release === 'function') release.call(callback);
}

/** Runs `body`, then frees the comlink callback it was given. */
export async function releasingAfter<T>(callback: unknown, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    releaseCallback(callback);
  }
}
