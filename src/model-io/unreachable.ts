/**
 * A download whose request never got an answer: fetch rejects with only "Failed to fetch" (Chromium), "fetch failed"
 * (Node), "NetworkError ..." (Firefox) or "Load failed" (Safari), whether the computer is offline, a proxy or firewall
 * drops the host, or the page's Content-Security-Policy forbids contacting it. The message says which of those it may
 * be and where to load the model from instead. The page tells a blocked host apart by the `securitypolicyviolation`
 * event it fires (in Chromium, in the worker, before the next task): `watchPolicyViolations` records them.
 */
import { errorMessage } from '../errors';

/** The hosts of the Hugging Face hub (the default source). */
function isHubHost(host: string): boolean {
  return host === 'huggingface.co' || host.endsWith('.huggingface.co') || host === 'hf.co' || host.endsWith('.hf.co');
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** The one place that words an unreachable host (unit-tested in tests/unit/unreachable.test.ts). */
export function unreachableMessage(file: string, url: string, error: unknown, blockedByPolicy: boolean): string {
  const host = hostOf(url);
  const cause = errorMessage(error);
  if (blockedByPolicy) {
    return (
      `This page may not contact ${host}, so ${file} could not be downloaded from ${url} (${cause}): its Content-Security-Policy ` +
      'allows only this site and the Hugging Face hosts. Serve the model files from this site and give that address as the Base URL, ' +
      'or load them from a Local folder.'
    );
  }
  const where = isHubHost(host) ? `the Hugging Face hub (${host})` : host;
  return (
    `Could not reach ${where} to download ${file} (${cause}): this computer may be offline, or a proxy or firewall blocks ` +
    `${host}. Load the model from a Base URL this browser can reach, or from a Local folder that holds its files.`
  );
}

const blockedOrigins = new Set<string>();

/** Records the origins the page's CSP refused (the worker calls it once, on its global scope). */
export function watchPolicyViolations(scope: EventTarget): void {
  scope.addEventListener('securitypolicyviolation', (event) => {
    const blocked = (event as SecurityPolicyViolationEvent).blockedURI;
    try {
      blockedOrigins.add(new URL(blocked).origin);
    } catch {
      // "inline", "eval" and the like: not a request we make
    }
  });
}

/** Whether the CSP refused a request to `url`'s origin; waits one task, as the violation event follows the rejection. */
export async function blockedByPolicy(url: string): Promise<boolean> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  try {
    return blockedOrigins.has(new URL(url).origin);
  } catch {
    return false;
  }
}
