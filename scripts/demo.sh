#!/usr/bin/env bash
# Set-up, build, and the main job: compile examples/dual_mlp.mtl into a native trainer, show its
# parameter report, train it on the built-in synthetic fleet (no download needed), evaluate.
#   scripts/demo.sh                  synthetic data
#   CMAPSS=../shared/data/cmapss scripts/demo.sh   real NASA C-MAPSS FD001 instead
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
BUILD_DIR=$root/build "$root/scripts/build.sh"
mtlc=$root/build/compiler/driver/mtlc
out=$root/runs/demo
mkdir -p "$out"

echo "== mtlc examples/dual_mlp.mtl --report"
"$mtlc" "$root/examples/dual_mlp.mtl" --report
echo "== mtlc examples/dual_mlp.mtl -o $out/dual_mlp"
"$mtlc" "$root/examples/dual_mlp.mtl" -o "$out/dual_mlp"
if [ -n "${CMAPSS:-}" ]; then
  data=(--train "$CMAPSS/train_FD001.txt" --test "$CMAPSS/test_FD001.txt" --rul "$CMAPSS/RUL_FD001.txt")
else
  data=()
fi
echo "== dual_mlp train ${data[*]:-(built-in synthetic fleet)}"
"$out/dual_mlp" train "${data[@]}" --out "$out"
echo "== dual_mlp eval"
eval_data=()
[ -n "${CMAPSS:-}" ] && eval_data=(--test "$CMAPSS/test_FD001.txt" --rul "$CMAPSS/RUL_FD001.txt")
"$out/dual_mlp" eval --checkpoint "$out/model.safetensors" "${eval_data[@]}"
