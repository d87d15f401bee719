#!/usr/bin/env bash
# Side-by-side benchmark of mtlc and PyTorch on this machine, runs alternating, medians and ratios.
#   bench/run.sh [mlp] [dual_task] [dual_task_infer]      (default: all three)
# Needs Debian's python3-torch for the PyTorch side (scripts/setup.sh does not install it:
# apt-get install python3-torch). Prints a Markdown table; docs/performance.md records a run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=$root/build "$root/scripts/build.sh" >/dev/null
mtlc=$root/build/compiler/driver/mtlc
bench=$root/build/bench/step_bench
work=$root/build/bench/models
mkdir -p "$work"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(mlp dual_task dual_task_infer)
rounds=${ROUNDS:-3}

# PyTorch at its best here: the OpenBLAS kernel the trainer would pick, passive OpenMP waiting.
export OMP_WAIT_POLICY=PASSIVE
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$(grep -q avx2 /proc/cpuinfo && echo Haswell || echo Prescott)}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"

declare -A args=([mlp]="--steps 200" [dual_task]="--steps 2 --repeats 3" [dual_task_infer]="--steps 4 --repeats 3 --infer")
declare -A spec=([mlp]=dual_mlp [dual_task]=dual_task [dual_task_infer]=dual_task)
declare -A tmodel=([mlp]=mlp [dual_task]=dual_task [dual_task_infer]=dual_task)
median() { python3 -c 'import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:])), 4))' "$@"; }
echo
echo "| case | mtlc ms/step (median) | PyTorch ms/step (median) | PyTorch / mtlc |"
echo "| --- | --- | --- | --- |"
for c in "${cases[@]}"; do
  so=$work/${spec[$c]}.so
  [ -f "$so" ] || "$mtlc" "$root/examples/${spec[$c]}.mtl" --shared -o "$so"
  m=(); t=()
  for r in $(seq "$rounds"); do
    m+=("$("$bench" "$so" ${args[$c]} | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')")
    t+=("$(/usr/bin/python3 "$root/bench/torch_step.py" "${tmodel[$c]}" ${args[$c]} | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')")
  done
  mm=$(median "${m[@]}"); tm=$(median "${t[@]}")
  echo "| $c | $mm | $tm | $(python3 -c "print(round($tm / $mm, 2))") |"
done
