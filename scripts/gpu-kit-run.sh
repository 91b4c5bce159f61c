#!/usr/bin/env bash
# The GPU kit's entry point (copied to .gpu-kit/run.sh by `npm run gpu-kit`). Needs only bash, tar and xz (or
# python3) on a Linux x86-64 machine: no network, no Node, no Chromium.
#
#   .gpu-kit/run.sh OUT_DIR [--quick] [--allow-software] [--model smolvlm-256m-shape|tiny]
#
# Unpacks the kit under /tmp (SPARSEMM_KIT_TMP overrides), points the Vulkan loader at the NVIDIA driver when no ICD
# is configured, prints the adapter, writes the random-weight model at the SmolVLM-256M shape (or the tiny test model)
# there, then runs the benchmark and one generate with an image. Into OUT_DIR: adapter.json, bench.json (+ bench/*.svg,
# bench.txt), generate.json, dump/ (what generate fed the model and its per-step logits, for the transformers parity
# check), parity.txt (that check, where python3 has torch + transformers), one .log per step and run.log. Stops with exit code 3 when the only adapter is a CPU emulation, unless
# --allow-software.
set -euo pipefail

usage() {
  sed -n '5,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

out=''
quick=0
allow_software=0
model_preset='smolvlm-256m-shape'
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --allow-software) allow_software=1 ;;
    --model)
      [ $# -ge 2 ] || { echo "run.sh: --model needs a value (smolvlm-256m-shape or tiny)" >&2; exit 2; }
      model_preset="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      [ -z "$out" ] || { echo "run.sh: only one OUT_DIR, got '$out' and '$1'" >&2; exit 2; }
      out="$1" ;;
  esac
  shift
done
[ -n "$out" ] || { usage >&2; exit 2; }
case "$model_preset" in smolvlm-256m-shape|tiny) ;; *) echo "run.sh: --model must be smolvlm-256m-shape or tiny, got '$model_preset'" >&2; exit 2 ;; esac
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then echo "run.sh: the kit is for Linux x86-64, this is $(uname -s)-$(uname -m)" >&2; exit 2; fi

kit_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
: > "$out/run.log"
exec > >(tee -a "$out/run.log") 2> >(tee -a "$out/run.log" >&2)

kit_id="$(sed -n 's/^ *"id": *"\([0-9a-f]*\)".*/\1/p' "$kit_dir/manifest.json")"
[ -n "$kit_id" ] || { echo "run.sh: $kit_dir/manifest.json has no kit id (an incomplete copy of the kit?)" >&2; exit 2; }
root="${SPARSEMM_KIT_TMP:-/tmp}/sparsemm-gpu-kit-$kit_id"

untar() { # archive dest
  if command -v xz > /dev/null 2>&1; then
    tar -xJf "$1" -C "$2"
  elif command -v python3 > /dev/null 2>&1; then
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
  else
    echo "run.sh: neither xz nor python3 is here to unpack $1" >&2; return 1
  fi
}

if [ ! -f "$root/.unpacked" ]; then
  echo "Unpacking the kit into $root ..."
  rm -rf "$root.partial"
  mkdir -p "$root.partial"
  for part in node vulkan native app; do untar "$kit_dir/$part.tar.xz" "$root.partial"; done
  touch "$root.partial/.unpacked"
  rm -rf "$root"
  mv "$root.partial" "$root"
fi

node="$root/bin/node"
cli=("$node" "$root/src/cli/sparsemm-cli.mjs")
export LD_LIBRARY_PATH="$root/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! node_version="$("$node" --version 2>&1)"; then
  echo "run.sh: the kit's Node does not start here: $node_version" >&2
  echo "  It needs glibc >= 2.28, and dawn.node glibc >= 2.34 with the libstdc++ of GCC 12+ (Ubuntu 22.04, Debian 12 or newer)." >&2
  exit 2
fi
echo "Node $node_version, kit $kit_id ($(sed -n 's/^ *"commit": *"\(.*\)".*/\1/p' "$kit_dir/manifest.json"))"

# The Vulkan loader does not look in /usr/local/nvidia/share/vulkan/icd.d by itself.
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json; do
    if [ -f "$icd" ]; then export VK_ICD_FILENAMES="$icd"; break; fi
  done
fi
if [ -d /usr/local/nvidia/lib64 ]; then export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/usr/local/nvidia/lib64"; fi
echo "Vulkan ICD: ${VK_ICD_FILENAMES:-${VK_DRIVER_FILES:-none configured (dawn.node falls back to SwiftShader when it is installed)}}"

step() { # name, command...: runs it with its stderr in OUT/name.log; stops the run when it fails
  local name="$1"; shift
  echo "== $name: $*"
  local started=$SECONDS
  if ! "$@" 2> >(tee "$out/$name.log" >&2); then
    echo "run.sh: $name failed (see $out/$name.log)" >&2
    exit 1
  fi
  echo "== $name done in $((SECONDS - started)) s"
}

step adapter "${cli[@]}" gpu-info
"${cli[@]}" gpu-info --json > "$out/adapter.json" 2>> "$out/adapter.log"
if grep -q '"software":true' "$out/adapter.json"; then
  if [ "$allow_software" -eq 1 ]; then
    echo "WARNING: the adapter is a software (CPU) implementation; these numbers are not GPU numbers (--allow-software)."
  else
    echo "run.sh: the only WebGPU adapter is a software (CPU) implementation, not a GPU. Nothing was benchmarked." >&2
    echo "  Check the NVIDIA driver: VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-unset}; see $out/adapter.log. Pass --allow-software to run anyway." >&2
    exit 3
  fi
fi

model_dir="$root/model-$model_preset"
step make-fixture "${cli[@]}" make-fixture --preset "$model_preset" --out "$model_dir"

bench_args=(--out "$out/bench" --json "$out/bench.json")
if [ "$model_preset" = tiny ]; then
  # The bench models the SmolVLM-256M shape from its config.json; point it at the tiny model's, at lengths it fits.
  export SPARSEMM_REFERENCE_MODEL_DIR="$model_dir"
  if [ "$quick" -eq 1 ]; then bench_args+=(--lengths 96 --policies full,sparsemm:32 --window 8 --steps 1 --warmup 0 --prefill-lengths 96)
  else bench_args+=(--lengths 96,160 --policies full,sparsemm:32,snapkv:32 --window 8 --prefill-lengths 96); fi
else
  if [ "$quick" -eq 1 ]; then bench_args+=(--quick); fi
  bench_args+=(--prefill-lengths 1024)
fi
echo "== bench: ${bench_args[*]}"
bench_started=$SECONDS
if ! "${cli[@]}" bench "${bench_args[@]}" > "$out/bench.txt" 2> >(tee "$out/bench.log" >&2); then
  echo "run.sh: bench failed (see $out/bench.log)" >&2
  exit 1
fi
cat "$out/bench.txt"
echo "== bench done in $((SECONDS - bench_started)) s"

max_new=32
if [ "$quick" -eq 1 ]; then max_new=8; fi
echo "== generate: $model_preset, sample image, $max_new new tokens at most, full cache, dump into $out/dump"
if ! "${cli[@]}" generate --model "$model_dir" --image "$root/public/samples/shapes.png" --prompt 'Describe the image.' \
  --max-new-tokens "$max_new" --json --dump "$out/dump" > "$out/generate.json" 2> >(tee "$out/generate.log" >&2); then
  echo "run.sh: generate failed (see $out/generate.log)" >&2
  exit 1
fi
cat "$out/generate.json"

# Where this machine's python3 has torch and transformers, check the same inputs against their Idefics3 right away.
parity_python="${SPARSEMM_PARITY_PYTHON:-python3}"
if "$parity_python" -c 'import numpy, torch, transformers' > /dev/null 2>&1; then
  echo "== parity: transformers' Idefics3 on the inputs of the generate above"
  parity_rc=0
  "$parity_python" "$root/scripts/parity/transformers_parity.py" "$model_dir" "$out/dump" > "$out/parity.txt" 2> "$out/parity.log" || parity_rc=$?
  cat "$out/parity.txt"
  echo "== parity exit code $parity_rc (0: PASS; see $out/parity.log)"
else
  echo "== parity: skipped ($parity_python has no numpy + torch + transformers); run scripts/parity/transformers_parity.py on $out/dump where they are"
fi
cp "$kit_dir/manifest.json" "$out/kit-manifest.json"
echo "Done. Wrote into $out:"
(cd "$out" && find . -type f | sort | sed 's/^\.\//  /')
