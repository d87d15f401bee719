#!/usr/bin/env bash
# The book's comparison of task-balancing methods (its section 7 table), one row per method:
# each row is the given spec with its `balance` statement replaced (and, for AMNL and GRACE,
# every `loss mse` given `amnl = 125`), compiled, and trained over the same seeds with the
# trainer's protocol; the rows' summaries are gathered into one Markdown table.
#
#   scripts/balance_table.sh OUT SPEC [METHOD...] -- TRAINER-ARGS...
#
#   METHOD: baseline amnl gaba grace uncertainty gradnorm dwa pcgrad (default: the book's seven,
#           without pcgrad), and gaba_out grace_out gradnorm_out: the same with their norms
#           measured on the trunk output (`norms = trunk_output`, docs/balancing.md).
#   TRAINER-ARGS go to every `train` run (data files, --seeds, --epochs, --batch, protocol
#           options); --seeds is required: it is what makes mean ± std.
#
# Example (the FD001 table):
#   D=../shared/data/cmapss
#   scripts/balance_table.sh runs/methods examples/dual_task.mtl -- --train $D/train_FD001.txt \
#       --test $D/test_FD001.txt --rul $D/RUL_FD001.txt --seeds 5 --epochs 500
#
# Every method's spec is written and compiled before anything trains, so a bad method or spec
# stops the table at once. Writes OUT/METHOD/spec.mtl, OUT/METHOD/trainer, OUT/METHOD/run/ (the
# sweep: seed-S/, summary.json, summary.md), OUT/METHOD/train.err (the sweep's messages, appended
# on every attempt) and OUT/table.md. A method whose sweep already wrote its summary is not run
# again (one that stopped before its last seed is continued), so an interrupted table resumes
# by running the same command; SIGINT or SIGTERM to this
# script stops the running sweep the same way (its state is saved) before the script exits. A
# sweep with diverged seeds keeps its row (the seeds counted as "N (+M diverged)") and the table
# goes on; the exit status is then 1, as it is for any row without a summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,29p' "$0" >&2; exit 2; }
out=$1 spec=$2
shift 2
methods=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do methods+=("$1"); shift; done
[ $# -gt 0 ] && shift # the --
[ ${#methods[@]} -gt 0 ] || methods=(baseline amnl gaba grace uncertainty gradnorm dwa)
[ -f "$spec" ] || { echo "balance_table.sh: no spec $spec" >&2; exit 2; }
seeds=no
for a in "$@"; do case $a in --seeds | --seeds=*) seeds=yes;; esac; done
[ $seeds = yes ] || { echo "balance_table.sh: give --seeds N (or a list) among the trainer arguments: each row is a sweep's mean ± std" >&2; exit 2; }
mtlc=${MTLC:-$root/build/compiler/driver/mtlc}
[ -x "$mtlc" ] || BUILD_DIR=$root/build "$root/scripts/build.sh" >/dev/null

# A signal stops the table where it is: a running trainer saves its state first (bash runs the
# trap once a foreground command, e.g. mtlc, has returned).
child=
stop() {
  if [ -n "$child" ]; then kill -"$1" "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  echo "balance_table.sh: stopped by SIG$1; run the same command again to continue" >&2
  exit "$2"
}
trap 'stop INT 130' INT
trap 'stop TERM 143' TERM

# 1. every method's spec, then every trainer still needed, before any training
mkdir -p "$out"
python3 "$root/scripts/balance_table.py" variants "$spec" "$out" "${methods[@]}"
done_earlier() { python3 "$root/scripts/balance_table.py" complete "$out/$1/run/summary.json"; }
for m in "${methods[@]}"; do
  done_earlier "$m" && continue
  "$mtlc" "$out/$m/spec.mtl" -o "$out/$m/trainer" || { echo "balance_table.sh: $out/$m/spec.mtl does not compile" >&2; exit 2; }
done

# 2. the sweeps
for m in "${methods[@]}"; do
  dir=$out/$m
  if done_earlier "$m"; then
    echo "== $m: done earlier ($dir/run/summary.json)" >&2
    continue
  fi
  echo "== $m" >&2
  start=$(stat -c %s "$dir/train.err" 2>/dev/null || echo 0)
  "$dir/trainer" train -q -o "$dir/run" "$@" 2> >(tee -a "$dir/train.err" >&2) &
  child=$!
  st=0
  wait "$child" || st=$?
  child=
  if [ $st -ne 0 ]; then
    # a sweep where some seeds diverged exits 1 after writing its summary with them listed: the
    # table goes on; any other failure stops it
    wait # for tee
    new=$(tail -c +$((start + 1)) "$dir/train.err")
    { grep -q "seeds diverged" <<<"$new" && done_earlier "$m"; } || exit $st
    echo "== $m: seeds diverged (see $dir/train.err); the table goes on" >&2
  fi
done
trap - INT TERM

python3 "$root/scripts/balance_table.py" table "$out" "${methods[@]}"
