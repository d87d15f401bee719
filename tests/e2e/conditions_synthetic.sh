#!/bin/sh
# Per-condition normalisation end to end: a dense model with `conditions = 6` trains a few epochs
# on the six-condition synthetic fleet; the checkpoint carries the whole normalisation (six
# centroids near FD002's operating points, per-condition statistics) under "normalisation";
# eval and predict normalise with it.
. "$(dirname "$0")/lib.sh"
rm -rf "$WORK"; mkdir -p "$WORK"
cat >"$WORK/cond.mtl" <<'SPEC'
model Cond {
  input  x : [17]
  target rul    : real
  target health : class(3)
  data cmapss { conditions = 6; synthetic_conditions = 6 }
  trunk {
    dense(32)
    relu
  }
  task rul {
    head { dense(1) }
    loss mse
  }
  task health {
    head { dense(3) }
    loss cross_entropy
  }
}
SPEC
"$MTLC" "$WORK/cond.mtl" -o "$WORK/trainer"
"$WORK/trainer" train --epochs 3 --out "$WORK/run" >"$WORK/train.out" 2>"$WORK/train.err" || { cat "$WORK/train.err"; fail "train failed"; }
grep -q "6 operating conditions" "$WORK/train.out" "$WORK/train.err" || fail "train output does not name the six-condition fleet"
grep -q "normalised per operating condition: 6 conditions" "$WORK/train.out" "$WORK/train.err" ||
  fail "train output does not say the data are normalised per operating condition"
[ -f "$WORK/run/model.safetensors" ] || fail "no checkpoint"
python3 - "$WORK/run/model.safetensors" <<'PY' || fail "the checkpoint's normalisation is not the per-condition one"
import json, math, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
meta = json.loads(b[8:8 + n])['__metadata__']
norm = json.loads(meta['normalisation'])
assert norm['version'] == 1 and norm['features'] == 17 and norm['conditions'] == 6, norm
points = [(0, 0, 100), (10, 0.25, 100), (20, 0.70, 100), (25, 0.62, 60), (35, 0.84, 100), (42, 0.84, 100)]
for c, p in zip(norm['centroids'], points):
    assert all(abs(a - b) < 0.01 for a, b in zip(c, p)), (c, p)
for key in ('mean', 'std'):
    assert len(norm[key]) == 6 and all(len(r) == 17 for r in norm[key]), key
    assert all(math.isfinite(v) for r in norm[key] for v in r), key
# setting3 (TRA) is constant within each condition
assert all(r[2] == 0 for r in norm['std']), norm['std']
PY
"$WORK/trainer" eval --checkpoint "$WORK/run/model.safetensors" --json >"$WORK/eval.json" 2>"$WORK/eval.err" ||
  { cat "$WORK/eval.err"; fail "eval failed"; }
python3 -c 'import json, math, sys; r = json.load(open(sys.argv[1])); assert math.isfinite(r["rmse"]) and r["engines"] == 100, r' \
  "$WORK/eval.json" || fail "eval --json: no finite rmse over 100 engines"
# predict: one row at each operating point (sensor levels are arbitrary but plausible)
python3 - "$WORK/six.txt" <<'PY'
import sys
points = [(0, 0, 100), (10, 0.25, 100), (20, 0.70, 100), (25, 0.62, 60), (35, 0.84, 100), (42, 0.84, 100)]
with open(sys.argv[1], 'w') as f:
    for i, (a, m, t) in enumerate(points):
        sensors = ' '.join('%.2f' % (100 + 10 * k - 5 * i) for k in range(21))
        f.write('1 %d %.4f %.4f %.1f %s\n' % (i + 1, a, m, t, sensors))
PY
"$WORK/trainer" predict --checkpoint "$WORK/run/model.safetensors" -i "$WORK/six.txt" -o "$WORK/pred.csv" 2>"$WORK/predict.err" ||
  { cat "$WORK/predict.err"; fail "predict failed"; }
[ "$(grep -c . "$WORK/pred.csv")" -ge 6 ] || fail "predict wrote fewer than 6 rows"
echo "conditions ok: test rmse $(json_get "$WORK/eval.json" rmse)"
