#!/bin/sh
# The cost of a balanced training step against a fixed-weight one, as instruction counts
# (valgrind --tool=callgrind, one OpenBLAS thread): repeatable on a shared, noisy machine, where
# wall-clock ratios of a few percent are not. Prints the instructions per step of each mode and
# the ratio to the fixed-weight step.
#
#   bench/balance_cost.sh MODEL.so [STEPS]     (MODEL.so from `mtlc SPEC --shared -o MODEL.so`)
#
# Each mode runs step_bench twice, with 1 and with STEPS (default 5) timed steps (each also
# runs as many warm-up steps); the difference divided by 2 * (STEPS - 1) is the cost of one step,
# free of loading and initialisation. Needs build/bench/step_bench (BUILD_DIR to override).
set -eu
so=$1
n=${2:-5}
bench=${BUILD_DIR:-build}/bench/step_bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# step_bench picks the OpenBLAS kernel as the trainer does, which may be AVX-512 (SkylakeX):
# valgrind 3.19 cannot run AVX-512 code, so here OpenBLAS keeps its own choice.
count() { # mode args... -> instructions of the run
  MTL_NO_BLAS_SELECT=1 OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$work/out" "$bench" "$so" "$@" \
    >/dev/null 2>"$work/log"
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/log"
}
fixed=0
for mode in fixed "gaba" "gaba --every 4"; do
  case $mode in fixed) args="";; *) args="--balance $mode";; esac
  a=$(count --steps 1 --repeats 1 $args)
  b=$(count --steps "$n" --repeats 1 $args)
  per=$(( (b - a) / (2 * (n - 1)) ))
  [ "$mode" = fixed ] && fixed=$per
  awk -v m="$mode" -v p="$per" -v f="$fixed" 'BEGIN { printf "%-16s %14d instructions per step   %.3fx\n", m, p, p / f }'
done
