#!/bin/sh
# The README's main job, shortened: compile the example, train on the built-in synthetic fleet,
# evaluate; the output must say the data is synthetic; the checkpoint must be safetensors.
. "$(dirname "$0")/lib.sh"
rm -rf "$WORK"; mkdir -p "$WORK"
"$MTLC" "$SRC/examples/dual_mlp.mtl" -o "$WORK/trainer"
"$WORK/trainer" train --epochs 3 --out "$WORK/run" >"$WORK/train.out" 2>"$WORK/train.err" || { cat "$WORK/train.err"; fail "train failed"; }
grep -qi synthetic "$WORK/train.out" "$WORK/train.err" || fail "train output does not say the data is synthetic"
[ "$(grep -c '^{"epoch"' "$WORK/run/log.jsonl")" = 3 ] || fail "expected 3 epoch lines in log.jsonl"
[ -f "$WORK/run/model.safetensors" ] || fail "no checkpoint"
python3 - "$WORK/run/model.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
w = h['shared.0.weight']
assert w['dtype'] == 'F32' and w['shape'] == [32, 17], w
s, e = w['data_offsets']
assert e - s == 32 * 17 * 4
for k in ('shared.0.bias', 'rul.head.0.weight', 'rul.head.0.bias', 'health.head.0.weight', 'health.head.0.bias'):
    assert k in h, k
PY
"$WORK/trainer" eval --checkpoint "$WORK/run/model.safetensors" --json >"$WORK/eval.json" || fail "eval failed"
for k in rmse nasa accuracy macro_f1 engines; do json_get "$WORK/eval.json" $k >/dev/null || fail "eval --json lacks $k"; done
# AMNL's weighted mse (loss mse(amnl = 125)) trains too: the RUL training loss falls over 3
# epochs and the test metrics are still reported (plain RMSE / NASA, not weighted).
"$MTLC" "$SRC/tests/front/specs/loss_amnl.mtl" -o "$WORK/trainer_amnl"
"$WORK/trainer_amnl" train --epochs 3 --out "$WORK/run_amnl" >"$WORK/amnl.out" 2>"$WORK/amnl.err" || { cat "$WORK/amnl.err"; fail "amnl train failed"; }
python3 - "$WORK/run_amnl/log.jsonl" <<'PY' || fail "amnl training did not reduce the RUL loss"
import json, math, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
ep = [l for l in lines if 'epoch' in l]
assert len(ep) == 3, ep
first, last = ep[0]['loss']['rul'], ep[-1]['loss']['rul']
assert math.isfinite(last) and last < first, (first, last)
test = [l['test'] for l in lines if 'test' in l][-1]
assert math.isfinite(test['rmse']) and math.isfinite(test['nasa']), test
PY
echo "synthetic main job ok: test rmse $(json_get "$WORK/eval.json" rmse)"
