// `npm start`: install dependencies if needed, build the app, serve dist/ on 127.0.0.1:$PORT (default 5173).
import { join } from 'node:path';
import { buildApp, ensureDependencies, projectRoot } from './project.mjs';
import { startServer } from './serve.mjs';

ensureDependencies();
buildApp();
const port = Number(process.env.PORT ?? 5173);
const server = await startServer({ root: join(projectRoot, 'dist'), port });
process.stdout.write(`\nSparseMM Web is running at ${server.url}\nOpen it in Chrome or Edge 113+ (WebGPU). Ctrl+C stops the server.\n`);
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
