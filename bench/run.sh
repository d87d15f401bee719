#!/usr/bin/env bash
# Side-by-side benchmark of mtlc and PyTorch on this machine (the targets of the performance
# issue): runs alternate between the two, each run is the median of several repeats, the report
# gives the median of ROUNDS runs (default 3) and the ratios.
#
#   bench/run.sh [all | CASE...]        (default: all)
#
# Cases:
#   mlp              (a) dual-task MLP training step
#   dual_task        (b) DualTaskModel training step, fixed task weights
#   dual_task_gaba   (c) the same step with GABA (per-task gradient norms every step)
#   dual_task_infer  (d) DualTaskModel inference
#   compile          (e) wall time (and peak memory) of `mtlc examples/X.mtl -o X`, every example
#   fma_peak         the measured FP32 FMA peak (also run with any dual_task case, for GFLOP/s)
# (f) peak memory is recorded by every timing run (step_bench and torch_step.py report their own
# peak RSS) and tabulated for each case measured.
#
# Needs Debian's python3-torch for the PyTorch side (scripts/setup.sh does not install it:
# apt-get install python3-torch). Prints a Markdown report on stdout (progress on stderr);
# docs/performance.md records a run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
all=(mlp dual_task dual_task_gaba dual_task_infer compile fma_peak)
cases=("$@")
if [ ${#cases[@]} -eq 0 ] || [ "${cases[*]}" = all ]; then cases=("${all[@]}"); fi
for c in "${cases[@]}"; do
  case " ${all[*]} " in *" $c "*) ;; *) echo "run.sh: unknown case $c (cases: all ${all[*]})" >&2; exit 2;; esac
done
rounds=${ROUNDS:-3}
command="ROUNDS=$rounds${OPENBLAS_CORETYPE:+ OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE} bench/run.sh $*"

BUILD_DIR=$root/build "$root/scripts/build.sh" >/dev/null
mtlc=$root/build/compiler/driver/mtlc
bench=$root/build/bench/step_bench
work=$root/build/bench/models
mkdir -p "$work"
results=$(mktemp)
tmp=$(mktemp -d)
trap 'rm -rf "$results" "$tmp"' EXIT
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print("" if v is None else v)' "$1"; }

# PyTorch at its best here: passive OpenMP waiting, and the OpenBLAS kernel the trainer would
# pick. That choice is the runtime's own (runtime/src/blas_select.c, which step_bench also runs):
# when OpenBLAS falls back to a generic kernel, SkylakeX if the CPU has avx2+fma and
# avx512f/bw/vl/dq, else Haswell if avx2+fma; otherwise OpenBLAS's own choice stands. Asking
# step_bench rather than re-deriving it here keeps the two from drifting apart; exporting it
# gives both sides the same kernel. A user's OPENBLAS_CORETYPE is kept, as the trainer keeps it.
export OMP_WAIT_POLICY=PASSIVE
native_core=$(env -u OPENBLAS_CORETYPE MTL_NO_BLAS_SELECT=1 "$bench" --blas-core | jget core)
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  coretype=$("$bench" --blas-core | jget coretype)
  [ -z "$coretype" ] || export OPENBLAS_CORETYPE=$coretype
fi
export BENCH_COMMAND=$command BENCH_NATIVE_CORE=$native_core BENCH_ROUNDS=$rounds
BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
export BENCH_LOAD_START

declare -A args=([mlp]="--steps 200" [dual_task]="--steps 2 --repeats 3"
                 [dual_task_gaba]="--steps 2 --repeats 3" [dual_task_infer]="--steps 4 --repeats 3")
declare -A margs=([dual_task_gaba]="--balance gaba" [dual_task_infer]="--infer")
declare -A targs=([dual_task_gaba]="--gaba" [dual_task_infer]="--infer")
declare -A spec=([mlp]=dual_mlp [dual_task]=dual_task [dual_task_gaba]=dual_task [dual_task_infer]=dual_task)
declare -A tmodel=([mlp]=mlp [dual_task]=dual_task [dual_task_gaba]=dual_task [dual_task_infer]=dual_task)
record() { printf '{"case":"%s","side":"%s","round":%s,"out":%s}\n' "$@" >>"$results"; }

# The probe first, while nothing of ours runs: the denominator of "% of peak".
case " ${cases[*]} " in *" fma_peak "* | *" dual_task"*)
  echo "fma_peak ..." >&2
  out=$("$root/build/bench/fma_peak")
  record fma_peak probe 0 "$out";;
esac

for c in "${cases[@]}"; do
  case $c in compile | fma_peak) continue;; esac
  so=$work/${spec[$c]}.so
  src=$root/examples/${spec[$c]}.mtl
  # recompiled when the compiler or the spec changed since (a stale model would time old code)
  if [ ! "$so" -nt "$mtlc" ] || [ ! "$so" -nt "$src" ]; then "$mtlc" "$src" --shared -o "$so"; fi
  for r in $(seq "$rounds"); do
    echo "$c round $r/$rounds: mtlc ..." >&2
    # (assigned first so that a failing run stops the script; the argument strings are meant to split)
    # shellcheck disable=SC2086
    out=$("$bench" "$so" ${args[$c]} ${margs[$c]:-})
    record "$c" mtlc "$r" "$out"
    echo "$c round $r/$rounds: PyTorch ..." >&2
    # shellcheck disable=SC2086
    out=$(/usr/bin/python3 "$root/bench/torch_step.py" "${tmodel[$c]}" ${args[$c]} ${targs[$c]:-})
    record "$c" torch "$r" "$out"
  done
done

case " ${cases[*]} " in *" compile "*)
  # The full compile to a trainer executable, as a user runs it; peak memory through GNU time
  # (its figure covers the compiler's child processes too) when installed.
  for src in "$root"/examples/*.mtl; do
    ex=$(basename "$src" .mtl)
    for r in $(seq "$rounds"); do
      echo "compile $ex round $r/$rounds ..." >&2
      t0=$(date +%s%N)
      if [ -x /usr/bin/time ]; then
        /usr/bin/time -o "$tmp/rss" -f %M "$mtlc" "$src" -o "$tmp/$ex"
      else
        "$mtlc" "$src" -o "$tmp/$ex"; echo null >"$tmp/rss"
      fi
      t1=$(date +%s%N)
      record compile "$ex" "$r" "{\"seconds\":$(( (t1 - t0) / 1000000 ))e-3,\"max_rss_kb\":$(tail -n1 "$tmp/rss")}"
      rm -f "$tmp/$ex"
    done
  done;;
esac

python3 "$root/bench/report.py" "$results"
