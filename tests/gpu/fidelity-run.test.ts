/**
 * The fidelity sweep in the engine (src/engine/fidelity-run.ts) on the in-memory tiny model: one shared prefill, the
 * full-cache reference, teacher-forced policies compared on the GPU, free-running answers from a cloned cache.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VlmModel } from '../../src/engine/model';
import { runFidelity, type FidelityCaseResult, type FidelityRunOptions } from '../../src/engine/fidelity-run';
import type { KvPolicy } from '../../src/engine/kv-policy';
import type { GpuContext } from '../../src/engine/gpu';
import { defaultBudgetParams, type BudgetParams, type BudgetPolicy } from '../../src/sparsemm/budgets';
import { firstDifference } from '../../src/sparsemm/fidelity';
import { randomHeadScores } from '../../src/sparsemm/random';
import { stepFidelityReference } from '../reference/cpu-fidelity';
import { gpuContext, randomArray } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';

const { config, file } = tinyModel();
const text = config.text;
const numTiles = 3;
const pixelValues = randomArray(numTiles * config.vision.numChannels * config.vision.imageSize ** 2, 91, 1);
const inputIds = tinyPrompt(config, numTiles); // 27 tokens
const maxNewTokens = 8;
const headScores = randomHeadScores(text.numLayers, text.numHeads, 5);
const allPolicies: BudgetPolicy[] = ['snapkv', 'pyramidkv', 'adakv', 'sparsemm', 'random', 'streamingllm'];

function policy(name: BudgetPolicy, overrides: Partial<BudgetParams>): KvPolicy {
  return { policy: name, params: { ...defaultBudgetParams, window: 4, ...overrides }, headScores: name === 'sparsemm' ? headScores : undefined };
}

let ctx: GpuContext;
let model: VlmModel;

function sweep(policies: (KvPolicy | null)[], extra: Partial<FidelityRunOptions> = {}): ReturnType<typeof runFidelity> {
  return runFidelity(model, { inputIds, pixelValues, numTiles, maxNewTokens, eosTokenIds: [], policies, ...extra });
}

/** What a row reports, without the policy object (compared between runs). */
function rowOf(result: FidelityCaseResult): Omit<FidelityCaseResult, 'kvPolicy'> {
  const { kvPolicy: _policy, ...row } = result;
  return row;
}

describe('fidelity sweep', () => {
  beforeAll(async () => {
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, file, config);
  });
  afterAll(() => model?.destroy());

  it('with a budget above the prompt every policy is the full cache: agreement 1, KL exactly 0, no difference', async () => {
    const full = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens, eosTokenIds: [] });
    const result = await sweep(allPolicies.map((name) => policy(name, { budget: 64 })));
    expect(result.stoppedBy).toBe('done');
    expect(result.reference.tokenIds).toEqual(full.tokenIds);
    expect(result.reference.kvBytes).toBe(full.kvBytes);
    expect(result.cases.map((c) => c.kvPolicy?.policy)).toEqual(allPolicies);
    for (const row of result.cases) {
      const what = row.kvPolicy?.policy;
      expect(row.compressed, what).toBe(false);
      expect(row.summary.top1Agreement, what).toBe(1);
      expect(row.summary.meanKl, what).toBe(0);
      expect(row.summary.maxKl, what).toBe(0);
      expect(row.firstDifference, what).toBeNull();
      expect(row.tokenIds, what).toEqual(full.tokenIds);
      expect(row.steps.every((step) => step.referenceRank === 1), what).toBe(true);
      expect(row.kvBytes, what).toBe(full.kvBytes);
    }
  });

  it('with a small budget the GPU numbers equal a CPU computation from the logits, and each answer is the policy\'s own', async () => {
    const policies = allPolicies.map((name) => policy(name, { budget: 7 }));
    const logitRows = new Map<string, { reference: Float32Array; compressed: Float32Array }>();
    const result = await sweep(policies, {
      onStepLogits: (caseIndex, step, reference, compressed) => logitRows.set(`${caseIndex}/${step}`, { reference: reference.slice(), compressed: compressed.slice() }),
    });
    expect(result.stoppedBy).toBe('done');
    const reference = result.reference.tokenIds;
    expect(reference).toHaveLength(maxNewTokens);
    for (const [caseIndex, row] of result.cases.entries()) {
      const what = row.kvPolicy?.policy;
      expect(row.compressed, what).toBe(true);
      expect(row.steps).toHaveLength(reference.length);
      row.steps.forEach((step, s) => {
        const rows = logitRows.get(`${caseIndex}/${s}`);
        if (!rows) throw new Error(`no logits for ${what} step ${s}`);
        const want = stepFidelityReference(rows.reference, rows.compressed, reference[s]);
        expect(Math.abs(step.kl - want.kl), `${what} step ${s}: KL ${step.kl} vs ${want.kl}`).toBeLessThanOrEqual(2e-5 + 1e-3 * want.kl);
        expect({ agrees: step.top1Agrees, rank: step.referenceRank, top1: step.compressedTop1 }, `${what} step ${s}`).toEqual({
          agrees: want.top1Agrees, rank: want.referenceRank, top1: want.compressedTop1,
        });
      });
      // Step 0 is the shared prefill's own logits.
      expect(row.steps[0]).toEqual({ kl: 0, top1Agrees: true, referenceRank: 1, compressedTop1: reference[0] });
      // The free-running answer is what generate gives with this policy (its own prefill and cache).
      const own = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens, eosTokenIds: [], kvPolicy: policies[caseIndex] });
      expect(row.tokenIds, what).toEqual(own.tokenIds);
      expect(row.firstDifference, what).toBe(firstDifference(reference, own.tokenIds));
      expect(row.kvBytes, what).toBe(own.kvBytes);
      expect(row.keptPerHead, what).toEqual(own.keptPerHead);
    }
    // The tiny model really drifts at this budget, so the comparison and the cloned cache are exercised.
    expect(result.cases.some((row) => row.firstDifference !== null)).toBe(true);
    expect(result.cases.some((row) => row.summary.meanKl > 1e-3)).toBe(true);
  });

  it('another model\'s reference: q4 rows (its full cache a case) along the bf16 answer; the same model\'s own logits agree exactly', async () => {
    const bf16 = await sweep([], { keepReferenceLogits: true });
    const logits = bf16.reference.logits;
    if (!logits) throw new Error('no reference logits kept');
    const q4 = await VlmModel.load(ctx, file, config, { weightFormat: 'q4' });
    try {
      const reference = { tokenIds: bf16.reference.tokenIds, logits };
      // The bf16 model against its own kept answer: its full cache is that answer, step for step.
      const same = await sweep([null], { reference });
      expect(same.cases[0]).toMatchObject({ kvPolicy: null, compressed: false, firstDifference: null, tokenIds: bf16.reference.tokenIds });
      expect(same.cases[0].summary).toMatchObject({ top1Agreement: 1, meanKl: 0, maxKl: 0 });

      const rows = await runFidelity(q4, { inputIds, pixelValues, numTiles, maxNewTokens, eosTokenIds: [], policies: [null, policy('snapkv', { budget: 64 }), policy('snapkv', { budget: 7 })], reference });
      expect(rows.reference.tokenIds).toEqual(bf16.reference.tokenIds);
      const [full, wide, narrow] = rows.cases;
      expect(full.kvPolicy).toBeNull();
      // A budget above the prompt keeps everything: the same row as the q4 full cache.
      expect(rowOf(wide)).toEqual(rowOf(full));
      // q4 changes the distributions; its free-running answer is q4's own greedy full-cache answer.
      expect(full.summary.meanKl).toBeGreaterThan(0);
      const own = await q4.generate({ inputIds, pixelValues, numTiles, maxNewTokens, eosTokenIds: [] });
      expect(full.tokenIds).toEqual(own.tokenIds);
      expect(full.firstDifference).toBe(firstDifference(bf16.reference.tokenIds, own.tokenIds));
      expect(full.steps[0].compressedTop1).toBe(own.tokenIds[0]);
      const ownNarrow = await q4.generate({ inputIds, pixelValues, numTiles, maxNewTokens, eosTokenIds: [], kvPolicy: policy('snapkv', { budget: 7 }) });
      expect(narrow.tokenIds).toEqual(ownNarrow.tokenIds);
      expect(narrow.kvBytes).toBeLessThan(full.kvBytes);
      // The caller's reference logits survive the run.
      expect(logits.size).toBe(maxNewTokens * text.vocabSize * 4);
    } finally {
      q4.destroy();
      ctx.allocator.destroy(logits);
    }
  });

  it('a sweep from one shared prefill gives the same rows as separate runs', async () => {
    const policies = [policy('sparsemm', { budget: 7 }), policy('adakv', { budget: 9 }), policy('snapkv', { budget: 64 }), policy('streamingllm', { budget: 10 })];
    const together = await sweep(policies);
    for (const [index, kvPolicy] of policies.entries()) {
      const alone = await sweep([kvPolicy]);
      expect(alone.reference).toEqual(together.reference);
      expect(rowOf(alone.cases[0]), kvPolicy.policy).toEqual(rowOf(together.cases[index]));
    }
  });

  it('Stop during a sweep returns the finished rows and leaves a usable engine', async () => {
    // A first sweep makes what lives as long as the device (RoPE tables, selection scratch), then nothing may stay.
    await sweep([policy('adakv', { budget: 7 })]);
    const before = ctx.allocator.bytesByCategory();
    const liveBefore = ctx.allocator.liveBufferCount();
    const controller = new AbortController();
    const seen: number[] = [];
    const result = await sweep(allPolicies.map((name) => policy(name, { budget: 7 })), {
      signal: controller.signal,
      onCase: (_row, index) => {
        seen.push(index);
        if (index === 1) controller.abort();
      },
    });
    expect(result.stoppedBy).toBe('cancel');
    expect(result.cases).toHaveLength(2);
    expect(seen).toEqual([0, 1]);
    expect(ctx.allocator.bytesByCategory()).toEqual(before);
    expect(ctx.allocator.liveBufferCount()).toBe(liveBefore);

    // Stopped before it starts, and during the prefill (it yields between layers): no rows, nothing left behind.
    const early = new AbortController();
    early.abort();
    expect((await sweep([policy('snapkv', { budget: 7 })], { signal: early.signal })).stoppedBy).toBe('cancel');
    const inPrefill = new AbortController();
    const running = sweep([policy('snapkv', { budget: 7 })], { signal: inPrefill.signal });
    inPrefill.abort();
    const stopped = await running;
    expect(stopped.stoppedBy).toBe('cancel');
    expect(stopped.reference.tokenIds).toEqual([]);
    expect(stopped.cases).toEqual([]);
    expect(ctx.allocator.liveBufferCount()).toBe(liveBefore);

    // The engine answers as before.
    const again = await sweep([policy('snapkv', { budget: 7 })]);
    expect(again.stoppedBy).toBe('done');
    const full = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens, eosTokenIds: [] });
    expect(again.reference.tokenIds).toEqual(full.tokenIds);
    expect(ctx.allocator.liveBufferCount()).toBe(liveBefore);
  });
});
