/** The tiny fixture model from its files, as the GPU tests that go through the real loader and processor load it. */
import { MemoryModelCache } from '../../src/model-io/cache';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import type { LoadedModel } from '../../src/model-io/loader';
import { loadModelFromPathOrUrl } from '../../src/model-io/node-loader';
import { createProcessor, type VlmProcessor } from '../../src/model-io/processor';

/** ensureTinyFixture's folder through node-loader (an in-memory cache, so no user cache is touched) and its processor. */
export async function loadTinyFixture(): Promise<{ loaded: LoadedModel; processor: VlmProcessor }> {
  const loaded = await loadModelFromPathOrUrl(await ensureTinyFixture(), { cache: new MemoryModelCache() });
  return { loaded, processor: await createProcessor(loaded) };
}
