#!/usr/bin/env python3
"""Checks our WebGPU engine against Hugging Face transformers' Idefics3 (the reference implementation).

    python3 scripts/parity/transformers_parity.py MODEL_DIR DUMP_DIR [--rtol R]

MODEL_DIR: the model folder our engine ran (config.json + model.safetensors: the real SmolVLM weights, the random
SmolVLM-256M-shape model, or the tiny test model). DUMP_DIR: what `npm run cli -- generate --dump DUMP_DIR` wrote
(format in src/cli/dump.ts: manifest.json + .npy files with the input ids, pixel values, image-token layout, the
greedy tokens and the logits each step chose them from).

Loads MODEL_DIR with transformers' Idefics3ForConditionalGeneration in float32 (bf16 weights become f32 exactly, as on
our GPU), feeds the same input ids and pixel values, and teacher-forces our tokens: one forward over the prompt plus
tokens[:-1] gives the reference logits of every step. Prints per step the max |logit difference|, whether the greedy
tokens agree (a token that differs where the reference's top two logits are within twice the logit difference is
reported as a near-tie, not a failure), the transformers version, whether its vision position ids are the 0..N-1 our
engine uses, and a one-line verdict. The "ref margin" column: the reference's best minus second-best logit where the
tokens agree (how decisive the step is), its best minus our token's where they do not. Exit code 0 for PASS, 1 for a difference, 2 for bad input.

transformers changed how Idefics3 computes its vision position ids between v4.54.1 and v4.55.1 (a float rounding in
the bucketised patch coordinates; transformers issue #41190, PR #41371). A version where that change puts some patches
in the wrong bucket differs from us only in the vision path: the script reports the ids it saw, check that before
suspecting our engine.
"""
import argparse
import json
import os
import sys

DUMP_FORMAT = "sparsemm-generate-dump"
DUMP_VERSION = 1


def fail_input(message):
    print(f"transformers_parity: {message}", file=sys.stderr)
    sys.exit(2)


def load_dump(dump_dir, np):
    manifest_path = os.path.join(dump_dir, "manifest.json")
    if not os.path.isfile(manifest_path):
        fail_input(f"{manifest_path} does not exist (make the dump with: npm run cli -- generate ... --dump {dump_dir})")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("format") != DUMP_FORMAT or manifest.get("version") != DUMP_VERSION:
        fail_input(f"{dump_dir} is not a {DUMP_FORMAT} v{DUMP_VERSION} folder")
    tensors = {}
    for name, spec in manifest["tensors"].items():
        array = np.load(os.path.join(dump_dir, spec["file"]))
        if list(array.shape) != list(spec["shape"]) or array.dtype.str != spec["dtype"]:
            fail_input(f"{spec['file']} is {array.dtype.str} {list(array.shape)}, the manifest says {spec['dtype']} {spec['shape']}")
        tensors[name] = array
    return manifest, tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("dump_dir")
    parser.add_argument("--rtol", type=float, default=1e-2,
                        help="largest max|diff| / max|reference logit| per step still counted as agreeing (default 1e-2)")
    args = parser.parse_args()

    try:
        import numpy as np
        import torch
        import transformers
        from transformers import Idefics3ForConditionalGeneration
    except ImportError as error:
        print(f"transformers_parity: needs numpy, torch and transformers ({error})", file=sys.stderr)
        sys.exit(2)

    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    manifest, tensors = load_dump(args.dump_dir, np)
    steps = len(manifest["tokens"])
    print(f"dump: {manifest['model']}, {tensors['input_ids'].shape[0]} prompt tokens ({tensors['image_token_positions'].shape[0]} image, "
          f"{manifest['numTiles']} tiles), {steps} generated, policy {manifest['policy']}")
    if manifest["policy"] != "full":
        print(f"WARNING: the dump used the {manifest['policy']} KV policy; transformers keeps the full cache, so logits after the prefill are expected to differ")
    if not manifest["greedy"]:
        print("WARNING: the dump was sampled (temperature > 0); token agreement is only meaningful for greedy dumps")

    model = Idefics3ForConditionalGeneration.from_pretrained(args.model_dir, attn_implementation="eager")
    model = model.to(torch.float32).eval()
    config = model.config
    if config.image_token_id != manifest["imageTokenId"]:
        fail_input(f"the model's image_token_id is {config.image_token_id}, the dump's {manifest['imageTokenId']}: another model?")
    if config.text_config.vocab_size != manifest["vocabSize"]:
        fail_input(f"the model's vocabulary is {config.text_config.vocab_size}, the dump's {manifest['vocabSize']}: another model?")
    input_ids = tensors["input_ids"].astype(np.int64)
    positions = tensors["image_token_positions"]
    if not np.array_equal(np.nonzero(input_ids == manifest["imageTokenId"])[0], positions):
        fail_input("image_token_positions.npy does not match the image tokens in input_ids.npy")

    # The vision position ids transformers uses, captured at its position embedding (ours: 0..N-1 for every full tile).
    seen_position_ids = []
    embeddings = model.model.vision_model.embeddings
    hook = embeddings.position_embedding.register_forward_pre_hook(lambda _m, inputs: seen_position_ids.append(inputs[0].detach().clone()))

    tokens = np.asarray(manifest["tokens"], dtype=np.int64)
    sequence = np.concatenate([input_ids, tokens[:-1]])
    kwargs = {"input_ids": torch.from_numpy(sequence)[None], "attention_mask": torch.ones(1, sequence.shape[0], dtype=torch.long)}
    if manifest["numTiles"] > 0:
        kwargs["pixel_values"] = torch.from_numpy(tensors["pixel_values"].astype(np.float32))[None]
    with torch.no_grad():
        out = model(**kwargs)
    hook.remove()
    prompt_len = input_ids.shape[0]
    reference = out.logits[0, prompt_len - 1 : prompt_len - 1 + steps].to(torch.float32).numpy()
    ours = tensors["logits"]

    vision_note = "no image"
    vision_ids_match = True
    if seen_position_ids:
        ids = seen_position_ids[0]
        num_patches = embeddings.num_patches
        want = torch.arange(num_patches).expand(ids.shape[0], -1)
        wrong = int((ids.reshape(want.shape) != want).sum()) if ids.numel() == want.numel() else -1
        vision_ids_match = wrong == 0
        if vision_ids_match:
            vision_note = f"vision position ids 0..{num_patches - 1} on every tile, as our engine"
        else:
            vision_note = (f"vision position ids DIFFER from 0..{num_patches - 1} ({wrong} patch ids of {ids.numel()}): this transformers "
                           "computes them differently (issue #41190 / PR #41371); vision-path differences come from that")
    print(vision_note)

    print(f"{'step':>4}  {'ours':>7}  {'transformers':>12}  {'agree':>5}  {'max|diff|':>10}  {'max|ref|':>9}  {'rel':>8}  {'ref margin':>10}")
    disagreements = []
    near_ties = []
    worst_rel = 0.0
    for step in range(steps):
        ref_step = reference[step]
        ref_token = int(np.argmax(ref_step))
        our_token = int(tokens[step])
        diff = float(np.max(np.abs(ours[step] - ref_step)))
        scale = max(1.0, float(np.max(np.abs(ref_step))))
        rel = diff / scale
        worst_rel = max(worst_rel, rel)
        # How far our token is below the reference's best: within twice the logit difference it is a near-tie that
        # any f32 summation order may break either way (random-weight models have many), not a wrong token.
        margin = float(ref_step[ref_token] - ref_step[our_token])
        if ref_token == our_token:
            agree = "yes"
            margin = float(ref_step[ref_token] - np.partition(ref_step, -2)[-2])  # how decisive: best minus second best
        elif margin <= 2 * diff:
            agree = "tie"
            near_ties.append(step)
        else:
            agree = "NO"
            disagreements.append(step)
        print(f"{step:>4}  {our_token:>7}  {ref_token:>12}  {agree:>5}  {diff:>10.3e}  {scale:>9.3f}  {rel:>8.2e}  {margin:>10.3e}")

    version = f"transformers {transformers.__version__}"
    ties = f", {len(near_ties)} near-tie(s) at step {', '.join(map(str, near_ties))}" if near_ties else ""
    vision = "" if vision_ids_match else "; the vision position ids differ, see above"
    if not disagreements and worst_rel <= args.rtol:
        print(f"PASS: {steps - len(near_ties)} of {steps} greedy tokens agree{ties}, max relative logit difference {worst_rel:.2e} <= {args.rtol:g} ({version})")
        sys.exit(0)
    if not disagreements:
        print(f"DIFFER: the greedy tokens agree{ties} but the logits differ by up to {worst_rel:.2e} relative (> {args.rtol:g}) ({version}){vision}")
    else:
        print(f"FAIL: greedy tokens differ at step {', '.join(map(str, disagreements))}{ties} (max relative logit difference {worst_rel:.2e}) ({version}){vision}")
    sys.exit(1)


if __name__ == "__main__":
    main()
