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
# marked, and the table goes on to the next method; the exit status says rows are incomplete
set +e
MTLC="$MTLC" MTL_TEST_NAN_LOSS_SEED=1 "$SRC/scripts/balance_table.sh" d "$SRC/examples/dual_mlp.mtl" baseline dwa -- \
  --seeds 2 --epochs 2 --threads 2 --max-bad-steps 2 >div.out 2>div.err
st=$?
set -e
[ $st = 1 ] || { cat div.err >&2; fail "table with a diverged seed: exit $st, want 1"; }
grep -q "incomplete rows: baseline dwa" div.err || { cat div.err >&2; fail "no incomplete-rows message"; }
for m in baseline dwa; do
  # one seed left: its mean, no ± (a standard deviation of one value is undefined)
  grep -q "^| $m | 1 (+1 diverged) | 2\.0 | [0-9.]* | [0-9.]* | " d/table.md || { cat d/table.md >&2; fail "row of $m with a diverged seed"; }
done

# specs as users write them (found by a break-test): tasks on one line, a balance statement over
# two lines with a // comment holding '&' and '/', another 'balance' word in a group name
cat >odd.mtl <<'SPEC'
model Odd {
  input x : [17]
  target rul : real
  target health : class(3)
  trunk { dense(16) relu }
  task rul { head { dense(1) } loss mse }   # loss mse, not at the end of its line
  task health { head { dense(3) } loss cross_entropy }
  balance fixed(rul = 0.5,
                health = 0.5)   // weights & more / less
  optimizer adamw { group balance_all { params = trunk, rul.head, health.head } }
  train { epochs = 1; batch = 256 }
}
SPEC
MTLC="$MTLC" "$SRC/scripts/balance_table.sh" o odd.mtl baseline amnl gaba gaba_out -- --seeds 1 --epochs 1 --threads 2 \
  >odd.out 2>odd.err || { cat odd.err >&2; fail "table of a spec with one-line tasks and a two-line balance"; }
grep -q 'loss mse(amnl = 125) }   # loss mse, not' o/amnl/spec.mtl || { cat o/amnl/spec.mtl >&2; fail "amnl: the one-line loss"; }
grep -q '^  balance gaba   // weights & more / less$' o/gaba/spec.mtl || { cat o/gaba/spec.mtl >&2; fail "gaba: the two-line balance"; }
grep -q '^  balance gaba(norms = trunk_output)   // weights' o/gaba_out/spec.mtl || fail "gaba_out: balance"
grep -q 'health = 0.5)   // weights & more / less$' o/baseline/spec.mtl || fail "baseline keeps its balance"
grep -q "group balance_all" o/gaba/spec.mtl || fail "the group name was taken for the balance statement"
for m in baseline amnl gaba gaba_out; do grep -q "^| $m | 1 | 1\.0 | " o/table.md || { cat o/table.md >&2; fail "odd: row of $m"; }; done

# arguments that cannot make a table stop it before anything trains
expect_status 2 env MTLC="$MTLC" "$SRC/scripts/balance_table.sh" u "$SRC/examples/dual_mlp.mtl" baseline bogus -- --seeds 1
expect_stderr "unknown method bogus"
[ ! -d u/baseline ] || fail "a row was started before the unknown method was found"
expect_status 2 env MTLC="$MTLC" "$SRC/scripts/balance_table.sh" n "$SRC/examples/dual_mlp.mtl" baseline -- --epochs 1
expect_stderr "give --seeds"
sed 's/loss mse/loss mae/' odd.mtl >nomse.mtl
expect_status 2 env MTLC="$MTLC" "$SRC/scripts/balance_table.sh" m nomse.mtl baseline amnl -- --seeds 1
expect_stderr "no 'loss mse'"
[ ! -d m/baseline/run ] || fail "baseline trained before the AMNL variant failed"

# SIGTERM to the script alone stops its trainer, which saves its state, and frees the folder
MTLC="$MTLC" "$SRC/scripts/balance_table.sh" s "$SRC/examples/dual_mlp.mtl" baseline -- --seeds 1 --epochs 100000 \
  --patience 0 --threads 2 >sig.out 2>sig.err &
pid=$!
i=0
while [ ! -s s/baseline/run/seed-0/log.jsonl.tmp ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM $pid
set +e
wait $pid
st=$?
set -e
[ $st = 143 ] || { cat sig.err >&2; fail "SIGTERM to the script: exit $st, want 143"; }
grep -q "stopped by SIGTERM" sig.err || { cat sig.err >&2; fail "no message of the stop"; }
[ -f s/baseline/run/seed-0/state.safetensors ] || fail "no state saved by the stopped trainer"
flock -n s/baseline/run/seed-0/.trainer.lock true || fail "the trainer still runs after the script stopped"

# the variants' text work on its own (found by a second break-test): a string with an escaped
# quote is not code, `mse()` is an mse without options, CRLF line endings stay, a method given
# twice and a spec that is not UTF-8 are refused
printf 'model Q {\r\n  input x : [17]\r\n  target rul : real\r\n  target h : class(3)\r\n  data cmapss { train = "a\\" loss mse" }\r\n  trunk { dense(4) }\r\n  task rul { head { dense(1) } loss mse() }\r\n  task h { head { dense(3) } loss cross_entropy }\r\n  balance fixed(rul = 1, h = 1)\r\n}\r\n' >q.mtl
python3 "$SRC/scripts/balance_table.py" variants q.mtl qv baseline amnl || fail "variants of q.mtl"
cmp -s q.mtl qv/baseline/spec.mtl || fail "the baseline variant is not the spec byte for byte (CRLF?)"
grep -q 'train = "a\\" loss mse" }' qv/amnl/spec.mtl || { cat qv/amnl/spec.mtl >&2; fail "text inside a string was rewritten"; }
grep -q 'loss mse(amnl = 125) }' qv/amnl/spec.mtl || { cat qv/amnl/spec.mtl >&2; fail "mse() not given AMNL"; }
expect_status 2 python3 "$SRC/scripts/balance_table.py" variants q.mtl qd baseline dwa baseline
expect_stderr "method baseline is given twice"
printf 'model \377 {}\n' >bad.mtl
expect_status 2 python3 "$SRC/scripts/balance_table.py" variants bad.mtl qb baseline
expect_stderr "is not UTF-8 text"
# balance_table.py complete: a summary of an interrupted sweep (fewer seeds than asked) is not done
printf '{"seeds_requested": 2, "runs": [{"seed": 0}], "diverged": []}' >part.json
printf '{"seeds_requested": 2, "runs": [{"seed": 0}], "diverged": [1]}' >full.json
! python3 "$SRC/scripts/balance_table.py" complete part.json || fail "an interrupted sweep taken as complete"
mkdir -p st/m/run && printf '{"seeds_requested": 3, "runs": [], "diverged": [0]}' >st/m/run/summary.json
python3 "$SRC/scripts/balance_table.py" table st m >/dev/null 2>&1 || true
grep -q "^| m | 0 (the sweep stopped after 1 of 3 seeds, 1 diverged) |" st/table.md || { cat st/table.md >&2; fail "row of a stopped sweep"; }
python3 "$SRC/scripts/balance_table.py" complete full.json || fail "a sweep with a diverged seed taken as incomplete"
echo "ok"
