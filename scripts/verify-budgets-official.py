#!/usr/bin/env python3
# Usage: python3 scripts/verify-budgets-official.py   (needs numpy; not part of npm test)
# Independent check of `npm run cli -- budgets` against the official SparseMM formulas (numpy re-statement of
# sparsemm/sparsemm_utils.py: SparseMM.__init__ head_adaptive_capacity; SnapKV/PyramidKV update_kv capacity).
import json, random, subprocess, sys
import numpy as np

def cli(args):
    out = subprocess.run(['npx', 'tsx', 'src/cli/main.ts', 'budgets'] + args, cwd=__import__('os').path.join(__import__('os').path.dirname(__file__), '..'), capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])['capacity']

def official_sparsemm(scores, L, H, G, budget, window, ratio):
    base = budget - window
    head_score_list = np.array([np.mean(scores[f'{l}-{h}']) for l in range(L) for h in range(H)])
    head_score_list = head_score_list / sum(head_score_list)
    score = head_score_list.reshape(L, H // G, G).sum(-1)
    min_cache = int(base * ratio)
    remain = (base - min_cache) * L * H // G
    return np.round(score * remain + min_cache).astype(int).tolist()

def official_pyramid(L, budget, window, q_len, beta=20):
    caps = []
    for layer in range(L):
        base = budget - window
        min_num = base // beta
        max_num = base * 2 - min_num
        if max_num >= q_len - window:
            max_num = q_len - window
            min_num = base * 2 - max_num
        steps = (max_num - min_num) // (L - 1)
        caps.append(max_num - layer * steps)
    return caps

rng = random.Random(7)
checked = 0
for trial in range(12):
    L = rng.choice([2, 4, 30, 32]); K = rng.choice([1, 2, 3, 4]); G = rng.choice([1, 2, 3]); H = K * G
    budget = rng.choice([64, 96, 256, 300, 1024]); window = rng.choice([8, 16, 32]); ratio = rng.choice([0.05, 0.1, 0.2, 0.5])
    scores = {f'{l}-{h}': [rng.random() ** 3 for _ in range(rng.randint(1, 5))] for l in range(L) for h in range(H)}
    path = f'/tmp/sparsemm-verify-scores-{trial}.json'
    json.dump(scores, open(path, 'w'))
    got = cli(['--policy', 'sparsemm', '--scores', path, '--layers', str(L), '--q-heads', str(H), '--kv-heads', str(K),
               '--budget', str(budget), '--window', str(window), '--ratio', str(ratio)])
    want = official_sparsemm(scores, L, H, G, budget, window, ratio)
    assert got == want, (trial, got[:2], want[:2])
    got = cli(['--policy', 'snapkv', '--layers', str(L), '--q-heads', str(H), '--kv-heads', str(K), '--budget', str(budget), '--window', str(window)])
    assert got == [[budget - window] * K for _ in range(L)], (trial, 'snapkv')
    q_len = rng.choice([budget + 1, 2 * budget, 5000])
    if L > 1:
        got = cli(['--policy', 'pyramidkv', '--layers', str(L), '--q-heads', str(H), '--kv-heads', str(K), '--budget', str(budget),
                   '--window', str(window), '--prompt-len', str(q_len)])
        want = official_pyramid(L, budget, window, q_len)
        assert [row[0] for row in got] == want and all(len(set(row)) == 1 for row in got), (trial, 'pyramid', got, want)
    checked += 1
    print(f'trial {trial}: L={L} H={H} K={K} budget={budget} window={window} ratio={ratio} prompt={q_len}: sparsemm, snapkv, pyramidkv match')
print(f'{checked} random score files: the budgets CLI equals the official formulas to the integer')
