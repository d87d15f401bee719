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

# a vector target is valid in the language but no trainer can read it: a spec error at the
# target (file:line:col, the line, an underline), exit 1, no trainer; --shared still builds
cat >"$WORK/vector.mtl" <<'SPEC'
model V {
  input x : [2]
  target a : real[3]
  data csv { inputs = ("i1", "i2"); bind a = "a" }
  trunk { dense(4) }
  task a { head { dense(3) } loss mse }
}
SPEC
expect_status 1 "$MTLC" "$WORK/vector.mtl" -o "$WORK/vector"
expect_stderr "vector.mtl:3:3: error: target 'a' is real\[3\], but a trainer reads one value per target"
expect_stderr "  \^~~~"
[ ! -e "$WORK/vector" ] || fail "a trainer was written for a vector target"
expect_status 0 "$MTLC" "$WORK/vector.mtl" --shared -o "$WORK/vector.so"

# --- trainer usage ---
T=$WORK/trainer
expect_status 2 "$T" train --bogus-option
expect_stderr "unknown option"
expect_status 2 "$T" train --epochs
expect_status 2 "$T" train --epochs abc
# a factor that rounds to 1 in float32 would silently mean "off" (found by a break-test)
expect_status 2 "$T" train --plateau-factor 0.99999999
expect_stderr "bad value '0.99999999' for --plateau-factor"
expect_status 2 "$T" train --warmup-start 0.999999999
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
# a negative variance (AdamW's second moment here; batchnorm running_var alike) is damage
python3 - "$WORK/keep/state.safetensors" "$WORK/negvar.safetensors" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
begin = 8 + n + h['optimizer.exp_avg_sq.shared.0.weight']['data_offsets'][0]
b[begin:begin + 4] = struct.pack('<f', -1.0)
# drop the data checksum, which would catch the edit first (a checksum error is tested below)
h['__metadata__'].pop('data_checksum')
hb = json.dumps(h, separators=(',', ':')).encode(); hb += b' ' * (-len(hb) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hb)) + hb + bytes(b[8 + n:]))
PY
expect_status 1 "$T" train --resume "$WORK/negvar.safetensors" --out "$WORK/negvar_out" --epochs 5
expect_stderr 'negvar.safetensors: error: tensor "optimizer.exp_avg_sq.shared.0.weight" holds the negative variance -1'
# one flipped bit in the weights: the data checksum catches it
python3 - "$WORK/keep.good" "$WORK/flip.safetensors" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
b[8 + n + 5] ^= 0x01
open(sys.argv[2], 'wb').write(b)
PY
expect_status 1 "$T" eval --checkpoint "$WORK/flip.safetensors"
expect_stderr "flip.safetensors: error: the tensor data do not match the file's checksum"
# the command line takes the same learning rates as a spec: any positive float32
expect_status 2 "$T" train --lr 1e-50
expect_status 2 "$T" train --lr 1e39
expect_status 2 "$T" train --lr 0x10
# --- command line: epochs >= 1, batch 1..1000000, no empty paths, help per command ---
expect_status 2 "$T" train --epochs 0 --out "$WORK/e0"
expect_stderr "integer >= 1"
[ ! -e "$WORK/e0" ] || fail "--epochs 0 created the output folder"
expect_status 2 "$T" train --batch 1000000000
expect_stderr "bad value '1000000000' for --batch"
expect_status 2 "$T" train -o ""
expect_stderr "empty output path"
expect_status 2 "$T" predict -i "$D/short_row.txt" -o ""
expect_stderr "empty output path"
expect_status 0 "$T" train --help
grep -q -- "usage: trainer train" "$WORK/stdout" || fail "train --help is not train's"
grep -q -- "--input" "$WORK/stdout" && fail "train --help shows predict's options"
expect_status 0 "$T" predict --help
grep -q -- "usage: trainer predict" "$WORK/stdout" || fail "predict --help is not predict's"
grep -q -- "--epochs" "$WORK/stdout" && fail "predict --help shows train's options"
cp "$T" "$WORK/my-trainer"
expect_status 2 "$WORK/my-trainer" train --bogus
expect_stderr "^my-trainer: error: unknown option '--bogus' (see 'my-trainer train --help')"

# --- data values: finite decimal float32 numbers only; interleaved engines name the first line ---
expect_status 1 "$T" train --train "$D/value_1e39.txt" --out "$WORK/v1"
expect_stderr "value_1e39.txt:3: error: column s4: '1e39' is out of the float32 range"
[ ! -e "$WORK/v1" ] || fail "a bad data file created the output folder"
expect_status 1 "$T" train --train "$D/value_hex.txt" --out "$WORK/v2"
expect_stderr "value_hex.txt:3: error: column s4: '0x10' is not a number"
expect_status 1 "$T" train --train "$D/engines_interleaved.txt" --out "$WORK/v3"
expect_stderr "engines_interleaved.txt:5: error: engine 1 appears again (its rows start at line 1;"
# one engine: nothing to validate on, and the run says so
expect_status 0 "$T" train --train "$D/single_engine.txt" --epochs 1 --quiet --out "$WORK/one"
expect_stderr "warning: the validation set is empty"
grep -q '"val":null' "$WORK/one/log.jsonl" || fail "empty validation not null in the log"
# a batch beyond the data is capped at the number of samples
expect_status 0 "$T" train --train "$D/single_engine.txt" --epochs 1 --batch 1000000 --quiet --out "$WORK/one"
expect_stderr "batch 40 (capped from 1000000 at the number of training samples)"

# --- the log belongs to the checkpoint: a run that fails keeps both, its log stays .tmp ---
cp "$WORK/keep/log.jsonl" "$WORK/keep.log.good"
mkdir "$WORK/keep/model.safetensors.tmp"
expect_status 1 "$T" train --epochs 2 --quiet --out "$WORK/keep"
cmp -s "$WORK/keep/log.jsonl" "$WORK/keep.log.good" || fail "a failed run replaced log.jsonl"
cmp -s "$WORK/keep/model.safetensors" "$WORK/keep.good" || fail "a failed run changed the checkpoint"
[ -s "$WORK/keep/log.jsonl.tmp" ] || fail "the failed run's partial log is not in log.jsonl.tmp"
rmdir "$WORK/keep/model.safetensors.tmp"

# --- a checkpoint of another model with the same name and shapes is refused (tanh for relu) ---
sed 's/dense(32) relu/dense(32) tanh/' "$SRC/examples/dual_mlp.mtl" >"$WORK/tanh.mtl"
grep -q 'dense(32) tanh' "$WORK/tanh.mtl" || fail "dual_mlp.mtl no longer has dense(32) relu"
"$MTLC" "$WORK/tanh.mtl" -o "$WORK/tanh-trainer"
"$WORK/tanh-trainer" train --epochs 1 --quiet --out "$WORK/tanh" >/dev/null 2>&1 || fail "tanh train"
expect_status 1 "$T" eval --checkpoint "$WORK/tanh/model.safetensors"
expect_stderr "tanh/model.safetensors: error: the checkpoint is of another model"
expect_status 1 "$T" predict --checkpoint "$WORK/tanh/model.safetensors" --input "$D/short_row.txt"
expect_stderr "tanh/model.safetensors: error:"
expect_status 0 "$T" eval --checkpoint "$WORK/keep/model.safetensors"

# --- write failures: an output that cannot be written is an error, never a partial file ---
head -n 3 "$D/value_hex.txt" | head -n 2 >"$WORK/rows.txt"
echo "earlier" >"$WORK/pred.csv"
mkdir "$WORK/pred.csv.tmp"
expect_status 1 "$T" predict -c "$WORK/keep/model.safetensors" -i "$WORK/rows.txt" -o "$WORK/pred.csv"
[ "$(cat "$WORK/pred.csv")" = earlier ] || fail "a failed predict replaced the earlier output"
rmdir "$WORK/pred.csv.tmp"
if [ -c /dev/full ]; then
  expect_status 1 "$T" predict -c "$WORK/keep/model.safetensors" -i "$WORK/rows.txt" -o /dev/full
  expect_stderr "cannot write /dev/full: No space left on device"
  [ -c /dev/full ] || fail "predict replaced /dev/full"
  for args in "predict -c $WORK/keep/model.safetensors -i $WORK/rows.txt" \
              "eval -c $WORK/keep/model.safetensors" "eval -c $WORK/keep/model.safetensors --json" \
              "--help" "train --help" "--version"; do
    # shellcheck disable=SC2086
    set +e; "$T" $args >/dev/full 2>"$WORK/stderr"; got=$?; set -e
    [ "$got" = 1 ] || fail "'trainer $args >/dev/full' exited $got, expected 1"
    expect_stderr "cannot write standard output: No space left on device"
  done
fi
echo "bad input ok"
