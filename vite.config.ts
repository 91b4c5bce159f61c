import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// One config for the app build and the three test projects.
// gpu and e2e tests run one file at a time: SwiftShader is CPU-bound and the machine has 2 cores.
export default defineConfig({
  plugins: [react()],
  base: './',
  worker: { format: 'es' },
  server: { host: '127.0.0.1', fs: { allow: ['.'] } },
  build: { target: 'es2022', outDir: 'dist', sourcemap: true },
  test: {
    projects: [
      {
        extends: true,
        // 30 s, not vitest's 5 s: the processor tests tokenize real SmolVLM files and once took over 5 s on a loaded
        // 2-core machine. Timeouts here guard against hangs; speed lives in `npm run bench`.
        test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], environment: 'node', testTimeout: 30_000 },
      },
      {
        extends: true,
        test: {
          name: 'gpu',
          include: ['tests/gpu/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
