/**
 * ChatSession.fidelitySweep on the tiny fixture: the sweep is one job like a question (refused while another runs,
 * stopped by Stop), leaves the conversation as it was, and refuses bad requests before any GPU work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openNodeSession, readImageFile, type NodeSession } from '../../src/cli/node-session';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import { ChatSession } from '../../src/session/chat-session';
import type { FidelitySweepRequest } from '../../src/session/fidelity-types';
import { firstDifference, SweepInputError } from '../../src/sparsemm/fidelity';
import { repoRoot } from '../helpers/cli';

const question = 'Describe the image.';
const request: FidelitySweepRequest = { policies: ['sparsemm', 'adakv', 'streamingllm'], budgets: [40, 64], window: 32, ratio: 0.1, maxNewTokens: 6 };
const askOptions = { policy: 'full' as const, budget: 256, window: 32, ratio: 0.1, maxNewTokens: 6 };

let node: NodeSession;
let session: ChatSession;

describe('fidelity sweep in a chat session', { timeout: 180_000 }, () => {
  beforeAll(async () => {
    node = await openNodeSession(await ensureTinyFixture());
    session = new ChatSession({ noScoresHint: 'Find visual heads first.', recordAttention: false });
    session.attachModel({ sourceId: node.loaded.sourceId, model: node.model, processor: node.processor, processorLongestEdge: Infinity }, null);
    session.addImage(await readImageFile(join(repoRoot, 'public', 'samples', 'shapes.png')), 'shapes.png');
  }, 120_000);
  afterAll(() => node?.destroy());

  it('gives a row per policy x budget and leaves the conversation as it was', async () => {
    const before = session.contextUsage();
    const progress: string[] = [];
    const result = await session.fidelitySweep(question, request, ({ done, total, row }) => progress.push(`${done}/${total} ${row ? `${row.policy} ${row.budget}` : 'reference'}`));
    expect(result.stoppedBy).toBe('done');
    expect(result.rows.map((row) => `${row.policy} ${row.budget}`)).toEqual(['sparsemm 40', 'sparsemm 64', 'adakv 40', 'adakv 64', 'streamingllm 40', 'streamingllm 64']);
    expect(progress).toEqual(['1/7 reference', '2/7 sparsemm 40', '3/7 sparsemm 64', '4/7 adakv 40', '5/7 adakv 64', '6/7 streamingllm 40', '7/7 streamingllm 64']);
    expect(result.warnings.join(' ')).toMatch(/uniform scores/);
    expect(session.contextUsage()).toEqual(before);
    // The next question still gets the picture, and its full-cache answer is the sweep's reference.
    const answer = await session.ask(question, askOptions, () => {});
    expect(answer.tokenIds).toEqual(result.reference.tokenIds);
    session.newChat();
    session.addImage(await readImageFile(join(repoRoot, 'public', 'samples', 'shapes.png')), 'shapes.png');
  });

  it('Compare carries the policy answer\'s fidelity: agreement, KL and the first differing token of the two answers', async () => {
    const tight = await session.compare(question, { ...askOptions, policy: 'sparsemm', budget: 40 }, () => {});
    const { full, policy } = tight;
    if (!policy?.fidelity) throw new Error('no fidelity on the policy answer');
    const fidelity = policy.fidelity;
    expect(fidelity.steps).toBe(full.tokenIds.length);
    expect(fidelity.firstDifference).toBe(firstDifference(full.tokenIds, policy.tokenIds));
    expect(fidelity.firstDifference).not.toBeNull(); // the tiny model drifts at budget 40
    expect(fidelity.meanKl).toBeGreaterThan(0);
    const d = fidelity.firstDifference ?? 0;
    expect(fidelity.differenceText?.before).toBe(node.processor.decode(policy.tokenIds.slice(0, d), { skipSpecialTokens: true }));
    expect(policy.answer.startsWith(`${fidelity.differenceText?.before}${fidelity.differenceText?.token}`)).toBe(true);
    expect(full.fidelity).toBeUndefined();

    session.newChat();
    session.addImage(await readImageFile(join(repoRoot, 'public', 'samples', 'shapes.png')), 'shapes.png');
    const roomy = await session.compare(question, { ...askOptions, policy: 'snapkv', budget: 100000 }, () => {});
    expect(roomy.policy?.fidelity).toEqual({ agreedSteps: roomy.full.tokenIds.length, steps: roomy.full.tokenIds.length, meanKl: 0, maxKl: 0, firstDifference: null, differenceText: null });
    session.newChat();
    session.addImage(await readImageFile(join(repoRoot, 'public', 'samples', 'shapes.png')), 'shapes.png');
  });

  it('refuses a bad request and a sweep while a question runs; Stop ends it and the session answers again', async () => {
    await expect(session.fidelitySweep(question, { ...request, budgets: [] })).rejects.toThrow(SweepInputError);
    await expect(session.fidelitySweep(question, { ...request, policies: ['full'] })).rejects.toThrow(/reference/);
    await expect(session.fidelitySweep(question, { ...request, budgets: [16] })).rejects.toThrow(/exceed the observation window/);

    const asking = session.ask(question, { ...askOptions, maxNewTokens: 24 }, () => {});
    await expect(session.fidelitySweep(question, request)).rejects.toThrow(/busy/);
    await asking;
    session.newChat();
    session.addImage(await readImageFile(join(repoRoot, 'public', 'samples', 'shapes.png')), 'shapes.png');

    const stopped = await session.fidelitySweep(question, request, ({ done }) => {
      if (done === 2) session.stop();
    });
    expect(stopped.stoppedBy).toBe('cancel');
    expect(stopped.rows).toHaveLength(1);
    expect(node.ctx.allocator.bytesByCategory().kv).toBe(0);
    const again = await session.fidelitySweep(question, { ...request, policies: ['snapkv'], budgets: [40] });
    expect(again.stoppedBy).toBe('done');
    expect(again.reference.tokenIds).toEqual(stopped.reference.tokenIds);
  });
});
