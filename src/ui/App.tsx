import { useEffect, useState } from 'react';
import type { InitResult } from '../worker/api';
import { AdapterPanel } from './AdapterPanel';
import { getEngine } from './engine-client';
import { ModelPanel } from './ModelPanel';
import { PlaceholderPanel } from './PlaceholderPanel';
import { readUrlOptions } from './url-params';

/** Parsed once: the page URL does not change while the app runs. */
const urlOptions = readUrlOptions(window.location.search);

export function App() {
  const [gpuStatus, setGpuStatus] = useState<InitResult | null>(null);

  useEffect(() => {
    let cancelled = false;
    getEngine()
      .init()
      .then(
        (result) => {
          if (!cancelled) setGpuStatus(result);
        },
        (error: unknown) => {
          // The worker itself failed to start (e.g. a blocked script): report it like a missing adapter.
          if (!cancelled) setGpuStatus({ ok: false, error: `The engine worker failed: ${error instanceof Error ? error.message : String(error)}` });
        },
      );
    return () => {
      cancelled = true;
    };
  }, []);

  return (
    <div className="app">
      <header className="app-header">
        <h1>SparseMM Web</h1>
        <p className="tagline">
          SmolVLM in your browser on WebGPU, decoding with a head-wise sparse KV cache that keeps more tokens for the heads
          that look at the image.
        </p>
      </header>
      <main className="panels">
        <AdapterPanel status={gpuStatus} />
        <ModelPanel initialUrl={urlOptions.modelUrl} autoload={urlOptions.autoload} />
        <PlaceholderPanel id="chat" title="Image + chat" />
        <PlaceholderPanel id="visual-heads" title="Visual heads" />
        <PlaceholderPanel id="metrics" title="Metrics" />
        <PlaceholderPanel id="benchmark" title="Benchmark" />
      </main>
    </div>
  );
}
