/**
 * Node entry point: `npm run cli -- <command> [options]`. Each command lives in its own module
 * exporting `run(args: string[]): Promise<void>`, loaded only when used.
 */
import { errorMessage } from '../errors';

type CommandModule = { run: (args: string[]) => Promise<void> };

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  'make-fixture': { summary: 'write a deterministic random-weight model in the real file formats', load: () => import('./make-fixture') },
  generate: { summary: 'run the model on an image and a prompt', load: () => import('./generate') },
  budgets: { summary: 'print per-KV-head capacities for a budget policy', load: () => import('./budgets') },
  heads: { summary: 'score visual heads on a synthetic OCR probe set', load: () => import('./heads') },
  bench: { summary: 'benchmark SparseMM against full-cache decoding', load: () => import('./bench') },
  'ocr-eval': { summary: 'OCR accuracy (ANLS, word accuracy) of each KV policy on synthetic probes', load: () => import('./ocr-eval') },
  fidelity: { summary: 'compare KV policies\' answers with the full cache (top-1 agreement, KL)', load: () => import('./fidelity') },
  'gpu-info': { summary: 'print the WebGPU adapter dawn.node gets (software or hardware)', load: () => import('./gpu-info') },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`);
  return `Usage: npm run cli -- <command> [options]\n\nCommands:\n${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`Unknown command "${name}".\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  await (await command.load()).run(args);
}

main().then(
  // dawn.node keeps the process alive while a device exists; exit explicitly when done.
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    process.stderr.write(`Error: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
