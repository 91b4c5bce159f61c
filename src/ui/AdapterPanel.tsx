import type { ReactNode } from 'react';
import type { InitResult } from '../worker/api';
import { formatBytes, formatCount } from './format';

interface AdapterPanelProps {
  /** Null while the worker is still asking for an adapter. */
  status: InitResult | null;
  /** Extra controls shown under the adapter facts (diagnostics). */
  children?: ReactNode;
}

export function AdapterPanel({ status, children }: AdapterPanelProps) {
  return (
    <section className="panel" aria-labelledby="adapter-heading" data-testid="adapter-panel">
      <h2 id="adapter-heading">GPU adapter</h2>
      {status === null && <p aria-live="polite">Asking the browser for a WebGPU adapter…</p>}
      {status?.ok === false && <NoWebGpu error={status.error} />}
      {status?.ok === true && (
        <>
          <p className="status ok" data-testid="adapter-ok">
            WebGPU is ready.
          </p>
          {status.adapter.software && (
            <p className="muted">This adapter emulates a GPU on the CPU (SwiftShader): everything works, but slowly.</p>
          )}
          <dl className="facts">
            <dt>Vendor</dt>
            <dd data-testid="adapter-vendor">{status.adapter.vendor || 'not reported'}</dd>
            <dt>Architecture</dt>
            <dd data-testid="adapter-architecture">{status.adapter.architecture || 'not reported'}</dd>
            <dt>Description</dt>
            <dd>{status.adapter.description || status.adapter.device || 'not reported'}</dd>
            <dt>Max storage binding</dt>
            <dd title={`${formatCount(status.adapter.maxStorageBufferBindingSize)} bytes`}>
              {formatBytes(status.adapter.maxStorageBufferBindingSize)}
            </dd>
            <dt>Max buffer size</dt>
            <dd title={`${formatCount(status.adapter.maxBufferSize)} bytes`}>{formatBytes(status.adapter.maxBufferSize)}</dd>
            <dt>Decode GEMV</dt>
            <dd data-testid="adapter-gemv">
              {status.adapter.gemv.reduction === 'subgroup' ? 'subgroup shuffles' : 'workgroup-memory tree'}, teams of {status.adapter.gemv.team}
            </dd>
          </dl>
          <details>
            <summary>Features ({status.adapter.features.length})</summary>
            <ul className="feature-list">
              {status.adapter.features.map((feature) => (
                <li key={feature}>
                  <code>{feature}</code>
                </li>
              ))}
            </ul>
          </details>
          {children}
        </>
      )}
    </section>
  );
}

function NoWebGpu({ error }: { error: string }) {
  return (
    <div role="alert" className="status error" data-testid="adapter-error">
      <p>
        <strong>WebGPU is not available here.</strong> {error}
      </p>
      <p>How to enable it:</p>
      <ul>
        <li>Use Chrome or Edge 113 or newer (WebGPU is on by default on Windows, macOS and ChromeOS).</li>
        <li>
          Otherwise open <code>chrome://flags/#enable-unsafe-webgpu</code>, enable it and restart the browser.
        </li>
        <li>
          On Linux start the browser with <code>--enable-unsafe-webgpu --enable-features=Vulkan</code>.
        </li>
        <li>
          Check <code>chrome://gpu</code> for what the browser found.
        </li>
      </ul>
    </div>
  );
}
