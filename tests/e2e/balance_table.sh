#!/bin/sh
# scripts/balance_table.sh, the book's comparison table of balancing methods, on the built-in
# synthetic fleet with the dual-task MLP: every method's spec variant is what it should be, every
# row has its seeds, the methods really differ in their task weights, and a second run of the same
# command reuses the finished rows.
. "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
all="baseline amnl gaba grace uncertainty gradnorm dwa pcgrad gaba_out grace_out"
MTLC="$MTLC" "$SRC/scripts/balance_table.sh" t "$SRC/examples/dual_mlp.mtl" $all -- --seeds 2 --epochs 2 --threads 2 \
  >table.out 2>table.err || { cat table.err >&2; fail "balance_table.sh"; }
for m in $all; do
  grep -q "^| $m | 2 | 2.0 ± 0.0 | [0-9]" t/table.md || { cat t/table.md >&2; fail "row of $m"; }
  [ -f "t/$m/run/seed-0/log.jsonl" ] && [ -f "t/$m/run/seed-1/log.jsonl" ] || fail "$m: seed logs"
done
grep -q '^ *balance fixed(rul = 0.5, health = 0.5)' t/baseline/spec.mtl || fail "baseline keeps the spec's weights"
grep -q '^ *balance fixed(rul = 0.5, health = 0.5)' t/amnl/spec.mtl || fail "amnl keeps the spec's weights"
for m in amnl grace grace_out; do grep -q 'loss mse(amnl = 125)' "t/$m/spec.mtl" || fail "$m: AMNL loss"; done
for m in baseline gaba uncertainty gradnorm dwa pcgrad; do
  ! grep -q amnl "t/$m/spec.mtl" || fail "$m: no AMNL loss"
done
for m in gaba grace uncertainty gradnorm dwa pcgrad; do grep -q "^ *balance $m\$" "t/$m/spec.mtl" || fail "$m: balance line"; done
for m in gaba grace; do
  grep -q "^ *balance $m(norms = trunk_output)\$" "t/${m}_out/spec.mtl" || fail "${m}_out: balance line"
done
# the learned or measured weights move away from the fixed 0.5 / 0.5 (uncertainty's log-variances
# and GradNorm's weights by gradient steps, GABA's after its warm-up of 100 steps may not have
# started in 2 epochs, so only the always-moving ones are required to differ)
python3 - t <<'PY' || fail "weights"
import json, sys, os
def last_weights(m):
    lines = [json.loads(l) for l in open(os.path.join(sys.argv[1], m, "run", "seed-0", "log.jsonl")) if l.startswith('{"epoch"')]
    return lines[-1]["weight"]
base = last_weights("baseline")
assert base == {"rul": 0.5, "health": 0.5}, base
for m in ("uncertainty", "gradnorm"):
    w = last_weights(m)
    assert abs(w["rul"] - 0.5) > 1e-6 or abs(w["health"] - 0.5) > 1e-6, (m, w)
PY
# a second run of the same command trains nothing again
cp t/table.md table.first
MTLC="$MTLC" "$SRC/scripts/balance_table.sh" t "$SRC/examples/dual_mlp.mtl" $all -- --seeds 2 --epochs 2 --threads 2 \
  >again.out 2>again.err || fail "second run"
[ "$(grep -c 'done earlier' again.err)" = 10 ] || { cat again.err >&2; fail "second run re-trained"; }
cmp -s table.first t/table.md || fail "the table changed on the second run"
# a seed that diverges (every step of seed 1 has a NaN loss) leaves its row with the other seed,
# marked, and the table goes on to the next method
MTLC="$MTLC" MTL_TEST_NAN_LOSS_SEED=1 "$SRC/scripts/balance_table.sh" d "$SRC/examples/dual_mlp.mtl" baseline dwa -- \
  --seeds 2 --epochs 2 --threads 2 --max-bad-steps 2 >div.out 2>div.err || { cat div.err >&2; fail "table with a diverged seed"; }
for m in baseline dwa; do
  grep -q "^| $m | 1 (+1 diverged) | 2\.0[ ±0-9.]* | [0-9]" d/table.md || { cat d/table.md >&2; fail "row of $m with a diverged seed"; }
done
echo "ok"
