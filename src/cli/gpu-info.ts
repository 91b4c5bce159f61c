/**
 * `npm run cli -- gpu-info [--json] [--require-hardware]`: which WebGPU adapter dawn.node gets on this machine (the
 * GPU kit's run.sh prints it before benchmarking). --require-hardware exits with code 3 when the adapter is a CPU
 * emulation (SwiftShader, llvmpipe/lavapipe), so a script never quietly benchmarks one.
 */
import { isSoftwareAdapter } from '../engine/gpu';
import { createNodeGpuContext } from '../engine/node-gpu';
import { commandOptions, parseCommandArgs } from './args';

const help = `Usage: npm run cli -- gpu-info [--json] [--require-hardware]

  --json               print the adapter as one JSON object
  --require-hardware   exit with code 3 when the adapter is a software (CPU) implementation
`;

export { isSoftwareAdapter };

export async function run(args: string[]): Promise<void> {
  const options = parseCommandArgs('gpu-info', help, () => {
    const values = commandOptions(args, { json: { type: 'boolean' }, 'require-hardware': { type: 'boolean' } });
    if (values === 'help') return 'help';
    return { json: values.json === true, requireHardware: values['require-hardware'] === true };
  });
  if (!options) return;
  const ctx = await createNodeGpuContext();
  try {
    const adapter = ctx.adapter;
    const software = isSoftwareAdapter(adapter);
    const report = {
      ...adapter,
      software,
      timestampQuery: ctx.hasTimestampQuery,
      subgroups: ctx.hasSubgroups,
      vulkanIcd: process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES ?? null,
    };
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write(
        `Adapter: ${[adapter.vendor, adapter.architecture, adapter.device, adapter.description].filter(Boolean).join(' / ')}` +
          `${software ? ' (software: a CPU emulation, not a GPU)' : ''}\n` +
          `  max storage binding ${(adapter.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, timestamp queries ${ctx.hasTimestampQuery ? 'yes' : 'no'}, subgroups ${ctx.hasSubgroups ? 'yes' : 'no'}\n`,
      );
    }
    if (software && options.requireHardware) {
      process.stderr.write(
        'gpu-info: the only WebGPU adapter is a software (CPU) implementation; no hardware GPU driver was found or it failed to load.\n',
      );
      process.exitCode = 3;
    }
  } finally {
    ctx.destroy();
  }
}
