#!/usr/bin/env bash
# Memcheck of the compiler and of a compiled trainer (docs/reliability.md, "Valgrind").
#
# Under valgrind --tool=memcheck, each step on its own:
#   mtlc on a spec with an error (the error path frees what it built), mtlc --report, and
#   mtlc examples/dual_mlp.mtl -o trainer (parse, check, IR, autodiff, LLVM codegen, link);
#   then that trainer's train (2 epochs on the built-in synthetic fleet), eval and predict.
# Fails (exit 1) when valgrind reports any error or a definitely or indirectly lost block, or a
# step exits with another status than expected. "Still reachable" blocks are not errors (LLVM
# keeps some of its global state until exit). No suppressions are needed today; should one
# become necessary, it goes in scripts/valgrind.supp with the reason beside it, and is read
# from there automatically.
#
#   scripts/valgrind.sh [BUILD_DIR]
#     BUILD_DIR  a build tree with compiler/driver/mtlc (default: build/, built by scripts/build.sh)
#   WORK=DIR     where the trainer, its run and the valgrind logs go (default: a temporary
#                directory, removed on success and kept on failure)
# Exit status: 0 clean, 1 a finding (the valgrind log is printed), 77 valgrind not installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 1 ]; then
  build=$(cd "$1" && pwd)
else
  build=${BUILD_DIR:-$root/build}
  BUILD_DIR=$build "$root/scripts/build.sh"
fi
mtlc=$build/compiler/driver/mtlc
[ -x "$mtlc" ] || { echo "valgrind.sh: no mtlc in $build (build it first)" >&2; exit 1; }
if ! command -v valgrind >/dev/null 2>&1; then
  echo "SKIP: valgrind is not installed (scripts/setup.sh installs it)"
  exit 77
fi

if [ -n "${WORK:-}" ]; then
  work=$WORK
  rm -rf "$work"
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/mtlc-valgrind.XXXXXX)
fi

vg=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
    --error-exitcode=99 --num-callers=30)
[ -f "$root/scripts/valgrind.supp" ] && vg+=(--suppressions="$root/scripts/valgrind.supp")
# OpenBLAS would start a thread pool per core; one thread keeps the run short and its stacks simple.
export OPENBLAS_NUM_THREADS=1

failed=0
# step NAME STATUS CMD...: runs CMD under memcheck (log in WORK/NAME.vg), wants exit status STATUS.
step() {
  local name=$1 want=$2
  shift 2
  local t0=$SECONDS got
  set +e
  "${vg[@]}" --log-file="$work/$name.vg" "$@" >"$work/$name.out" 2>"$work/$name.err"
  got=$?
  set -e
  local errors leaks
  errors=$(grep -o 'ERROR SUMMARY: .*' "$work/$name.vg" | tail -n 1 || true)
  leaks=$(grep -E -o '(definitely|indirectly) lost: .*|All heap blocks were freed.*' "$work/$name.vg" |
          paste -sd ';' - | sed 's/;/; /g' || true)
  echo "valgrind: $name: exit $got, $(( SECONDS - t0 )) s; $errors; ${leaks:-no leak summary}"
  if [ -z "$errors" ]; then
    echo "valgrind: $name: no memcheck summary (did valgrind run?):" >&2
    cat "$work/$name.vg" "$work/$name.err" >&2
    failed=1
  elif [ "$got" = 99 ]; then
    echo "valgrind: $name: memcheck found errors or leaks:" >&2
    cat "$work/$name.vg" >&2
    failed=1
  elif [ "$got" != "$want" ]; then
    echo "valgrind: $name: exit status $got, expected $want; its stderr:" >&2
    cat "$work/$name.err" >&2
    failed=1
  fi
}

start=$SECONDS
step mtlc_error 1 "$mtlc" "$root/tests/front/errors/limits_params_total.mtl"
step mtlc_report 0 "$mtlc" --report "$root/examples/dual_mlp.mtl"
step mtlc_build 0 "$mtlc" "$root/examples/dual_mlp.mtl" -o "$work/trainer"
if [ -x "$work/trainer" ]; then
  step train 0 "$work/trainer" train --epochs 2 --threads 1 --quiet --out "$work/run"
  step eval 0 "$work/trainer" eval --threads 1 --checkpoint "$work/run/model.safetensors"
  step predict 0 "$work/trainer" predict --threads 1 --checkpoint "$work/run/model.safetensors" \
    -i "$root/tests/e2e/data/single_engine.txt" -o "$work/predictions.csv"
else
  failed=1
fi
echo "valgrind: $(( SECONDS - start )) s in all"
if [ "$failed" != 0 ]; then
  echo "valgrind: FAILED; logs in $work" >&2
  exit 1
fi
[ -n "${WORK:-}" ] || rm -rf "$work"
echo "valgrind: clean (no errors, no definite or indirect leaks)"
