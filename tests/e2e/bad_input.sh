#!/bin/sh
# Bad input to mtlc and to a trainer: a clear message, the documented exit status (1 user
# error, 2 bad usage), never a crash, never a partial checkpoint or a half-written output.
. "$(dirname "$0")/lib.sh"
rm -rf "$WORK"; mkdir -p "$WORK"
D=$SRC/tests/e2e/data

# --- mtlc ---
expect_status 2 "$MTLC"
expect_stderr "no spec file given"
expect_status 2 "$MTLC" "$SRC/examples/dual_mlp.mtl" --frobnicate
expect_stderr "unknown option '--frobnicate'"
expect_status 2 "$MTLC" "$SRC/examples/dual_mlp.mtl" --emit=bogus
expect_stderr "unknown --emit stage"
expect_status 1 "$MTLC" "$WORK/does-not-exist.mtl"
expect_stderr "does-not-exist.mtl"
expect_status 0 "$MTLC" --help
expect_status 0 "$MTLC" --version
# a failed link leaves no output behind, and never replaces a good one
"$MTLC" "$SRC/examples/dual_mlp.mtl" -o "$WORK/trainer"
cp "$WORK/trainer" "$WORK/trainer.good"
expect_status 1 env MTLC_RUNTIME_DIR="$WORK/no-runtime" "$MTLC" "$SRC/examples/dual_mlp.mtl" -o "$WORK/trainer"
expect_stderr "runtime library not found"
cmp -s "$WORK/trainer" "$WORK/trainer.good" || fail "a failed build replaced the earlier trainer"
[ ! -e "$WORK/trainer.tmp" ] || fail "a failed build left trainer.tmp"

# --- trainer usage ---
T=$WORK/trainer
expect_status 2 "$T" train --bogus-option
expect_stderr "unknown option"
expect_status 2 "$T" train --epochs
expect_status 2 "$T" train --epochs abc
expect_status 2 "$T" frobnicate
expect_status 0 "$T" --help
expect_status 0 "$T" --version

# --- trainer data errors: message names the file (and line), exit 1, no checkpoint ---
expect_status 1 "$T" train --train "$WORK/missing.txt" --out "$WORK/r1"
expect_stderr "missing.txt"
[ ! -e "$WORK/r1/model.safetensors" ] || fail "checkpoint written after a missing data file"
expect_status 1 "$T" train --train "$D/short_row.txt" --out "$WORK/r2"
expect_stderr "short_row.txt:3:"
[ ! -e "$WORK/r2/model.safetensors" ] || fail "checkpoint written after a bad data file"
expect_status 1 "$T" train --train "$D/not_a_number.txt" --out "$WORK/r3"
expect_stderr "not_a_number.txt:2:"

# --- an earlier checkpoint survives a failed run into the same folder ---
"$T" train --epochs 1 --out "$WORK/keep" --quiet >/dev/null 2>&1 || fail "synthetic train"
cp "$WORK/keep/model.safetensors" "$WORK/keep.good"
expect_status 1 "$T" train --train "$D/short_row.txt" --out "$WORK/keep"
cmp -s "$WORK/keep/model.safetensors" "$WORK/keep.good" || fail "a failed run changed the earlier checkpoint"

# --- eval with a broken checkpoint ---
head -c 100 "$WORK/keep.good" >"$WORK/truncated.safetensors"
expect_status 1 "$T" eval --checkpoint "$WORK/truncated.safetensors"
expect_stderr "truncated.safetensors"
echo "bad input ok"
