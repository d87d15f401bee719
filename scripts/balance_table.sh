#!/usr/bin/env bash
# The book's comparison of task-balancing methods (its section 7 table), one row per method:
# each row is the given spec with its `balance` line replaced (and, for AMNL and GRACE, the
# `loss mse` of the RUL task given `amnl = 125`), compiled, and trained over the same seeds with
# the trainer's protocol; the rows' summaries are gathered into one Markdown table.
#
#   scripts/balance_table.sh OUT SPEC [METHOD...] -- TRAINER-ARGS...
#
#   METHOD: baseline amnl gaba grace uncertainty gradnorm dwa pcgrad (default: the book's seven,
#           without pcgrad), and gaba_out grace_out gradnorm_out: the same with their norms
#           measured on the trunk output (`norms = trunk_output`, docs/balancing.md). TRAINER-ARGS go to every `train` run (data files, --seeds, --epochs,
#           --batch, protocol options); `--seeds` is what makes mean ± std.
#
# Example (the FD001 table):
#   D=../shared/data/cmapss
#   scripts/balance_table.sh runs/methods examples/dual_task.mtl -- --train $D/train_FD001.txt \
#       --test $D/test_FD001.txt --rul $D/RUL_FD001.txt --seeds 5 --epochs 500
#
# Writes OUT/METHOD/spec.mtl, OUT/METHOD/trainer, OUT/METHOD/run/ (the sweep: seed-S/,
# summary.json, summary.md) and OUT/table.md. A method whose sweep already wrote its summary
# is not run again, so an interrupted table resumes by running the same command.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
out=$1 spec=$2
shift 2
methods=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do methods+=("$1"); shift; done
[ $# -gt 0 ] && shift # the --
[ ${#methods[@]} -gt 0 ] || methods=(baseline amnl gaba grace uncertainty gradnorm dwa)
[ -f "$spec" ] || { echo "balance_table.sh: no spec $spec" >&2; exit 2; }
grep -q '^ *balance ' "$spec" || { echo "balance_table.sh: $spec has no balance line to replace" >&2; exit 2; }
mtlc=${MTLC:-$root/build/compiler/driver/mtlc}
[ -x "$mtlc" ] || BUILD_DIR=$root/build "$root/scripts/build.sh" >/dev/null

balance_of() { # method -> the balance line's body
  case $1 in
    baseline | amnl) sed -n 's/^ *balance *//p' "$spec" | head -n1;; # the spec's own weights
    gaba | grace | uncertainty | gradnorm | dwa | pcgrad) echo "$1";;
    gaba_out | grace_out | gradnorm_out) echo "${1%_out}(norms = trunk_output)";;
    *) echo "balance_table.sh: unknown method $1" >&2; exit 2;;
  esac
}

mkdir -p "$out"
for m in "${methods[@]}"; do
  dir=$out/$m
  mkdir -p "$dir"
  body=$(balance_of "$m")
  sed "s/^\( *\)balance .*/\1balance $body/" "$spec" >"$dir/spec.mtl.tmp"
  case $m in amnl | grace | grace_out)
    # AMNL's failure-biased MSE on the RUL task (the book's cap, 125)
    sed -i 's/^\(.*loss\) mse *$/\1 mse(amnl = 125)/; s/^\(.*loss\) mse\( *#.*\)$/\1 mse(amnl = 125)\2/' "$dir/spec.mtl.tmp"
    grep -q 'mse(amnl' "$dir/spec.mtl.tmp" || { echo "balance_table.sh: no 'loss mse' line for AMNL in $spec" >&2; exit 2; };;
  esac
  mv "$dir/spec.mtl.tmp" "$dir/spec.mtl"
  if [ -f "$dir/run/summary.json" ]; then
    echo "== $m: done earlier ($dir/run/summary.json)" >&2
    continue
  fi
  echo "== $m: balance $body" >&2
  "$mtlc" "$dir/spec.mtl" -o "$dir/trainer"
  # a sweep where some seeds diverged exits 1 after writing its summary with them listed: the
  # table goes on; any other failure stops it
  st=0
  "$dir/trainer" train -q -o "$dir/run" "$@" 2> >(tee "$dir/train.err" >&2) || st=$?
  wait
  if [ $st -ne 0 ]; then
    grep -q "seeds diverged" "$dir/train.err" || exit $st
    echo "== $m: seeds diverged (see $dir/train.err); the table goes on" >&2
  fi
done

python3 - "$out" "${methods[@]}" <<'EOF'
import json, os, sys
out, methods = sys.argv[1], sys.argv[2:]
rows = []
for m in methods:
    p = os.path.join(out, m, "run", "summary.json")
    if not os.path.exists(p):
        rows.append(f"| {m} | (no summary: not run with --seeds, or failed) | | | | |")
        continue
    s = json.load(open(p))
    mean, sd, n = s.get("mean") or {}, s.get("std_dev") or {}, len(s["runs"])
    div = s.get("diverged", [])
    if not s["runs"]:
        rows.append(f"| {m} | 0 (all {len(div)} seeds diverged) | | | | | |")
        continue
    if div:
        n = f"{n} (+{len(div)} diverged)"
    f = lambda k, d: "n/a" if mean.get(k) is None else (f"{mean[k]:.{d}f} ± {sd[k]:.{d}f}" if sd.get(k) is not None else f"{mean[k]:.{d}f}")
    rows.append(f"| {m} | {n} | {f('epochs_run', 1)} | {f('rmse', 2)} | {f('nasa', 1)} | "
                f"{f('test_selected_rmse', 2)} / {f('test_selected_nasa', 1)} | {mean['seconds_per_epoch']:.3g} |")
text = ["| method | seeds | epochs reached | RMSE | NASA | selected on test (book's protocol): RMSE / NASA | s / epoch |",
        "| --- | --- | --- | --- | --- | --- | --- |"] + rows
open(os.path.join(out, "table.md"), "w").write("\n".join(text) + "\n")
print("\n".join(text))
EOF
