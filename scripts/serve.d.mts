// Types for scripts/serve.mjs, so TypeScript tests can import it.
export declare const contentSecurityPolicy: string;

export interface ServedRequest {
  method: string;
  /** Decoded URL path, e.g. "/fixtures/tiny/model.safetensors". */
  path: string;
  status: number;
}

export interface StartServerOptions {
  /** Folder served at "/". */
  root: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** Extra folders under URL prefixes, e.g. { "/fixtures/tiny/": ".fixtures/tiny" }. */
  mounts?: Record<string, string>;
  /** Called after each request is answered. */
  onRequest?: (request: ServedRequest) => void;
}

export interface RunningServer {
  /** "http://127.0.0.1:<port>/" */
  url: string;
  port: number;
  close(): Promise<void>;
}

export declare function startServer(options: StartServerOptions): Promise<RunningServer>;
