// Makes sure the tiny random-weight test model exists (.fixtures/tiny). Run with tsx, which lets this
// file import the TypeScript generator: `npx tsx scripts/ensure-fixture.mjs`.
import { ensureTinyFixture } from '../src/model-io/fixture.ts';

const location = await ensureTinyFixture();
process.stdout.write(`Tiny fixture ready${typeof location === 'string' ? `: ${location}` : ''}\n`);
