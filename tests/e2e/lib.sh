# Shared helpers for the end-to-end tests (sourced). Each test gets MTLC, WORK, SRC and CMAPSS
# from CTest's environment and fails loudly with the reason.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
need_cmapss() {
  if [ ! -f "$CMAPSS/train_FD001.txt" ]; then
    echo "SKIP: C-MAPSS data not found in $CMAPSS (expected ../shared/data/cmapss beside the checkout)"
    exit 77
  fi
}
# json_get FILE KEY: a top-level number from a one-object JSON file
json_get() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# expect_status N CMD...: runs CMD, requires exit status N, keeps stderr in $WORK/stderr
expect_status() {
  want=$1; shift
  set +e
  "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  got=$?
  set -e
  [ "$got" = "$want" ] || { cat "$WORK/stderr" >&2; fail "expected exit $want, got $got: $*"; }
}
expect_stderr() { grep -q -- "$1" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "stderr lacks: $1"; }; }
