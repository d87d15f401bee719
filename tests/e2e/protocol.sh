#!/bin/sh
# The training protocol on small runs (issue 4): each feature shows its documented behaviour in
# the log and the checkpoints. Rules are re-derived here in Python from what the log says, not
# read back from the trainer's own computation.
. "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
"$MTLC" "$SRC/examples/dual_mlp.mtl" -o dm >/dev/null || fail "mtlc"
T="--threads 2 -q"

# --- warm-up: lr per epoch = lr * (start + (1 - start) * e / W), e = 0.. ; plateau off -------
./dm train $T -o warm -e 6 --lr 0.01 --warmup 4 --warmup-start 0.5 --plateau-factor 1 >/dev/null 2>&1 || fail "warm-up run"
python3 - warm/log.jsonl <<'PY' || fail "warm-up lrs"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')]
want = [0.005, 0.00625, 0.0075, 0.00875, 0.01, 0.01]
got = [l["lr"]["shared"] for l in lines]
assert all(abs(a - b) < 1e-9 for a, b in zip(got, want)) and len(got) == 6, (got, want)
for l in lines: assert l["lr"]["shared"] == l["lr"]["rul"] == l["lr"]["health"]
PY

# --- reduce-on-plateau: patience 0 halves the lr after every epoch whose validation score is
#     not better than the best so far by the relative threshold 1e-4; floor 1e-4 ---------------
./dm train $T -o plat -e 12 --lr 0.2 --ema 0 --warmup 0 --plateau-factor 0.5 --plateau-patience 0 --min-lr 1e-4 --patience 0 >/dev/null 2>&1 || fail "plateau run"
python3 - plat/log.jsonl <<'PY' || fail "plateau rule"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')]
lr, best, reductions = 0.2, float("inf"), 0
for l in lines:
    assert abs(l["lr"]["shared"] - lr) <= 1e-7 * lr, (l["epoch"], l["lr"]["shared"], lr)
    s = l["val"]["rmse"]
    if s < best * (1 - 1e-4): best = s
    else:
        new = max(lr * 0.5, 1e-4)
        if lr - new > 1e-8: reductions += 1
        lr = new
assert reductions >= 1, "the case never hit a plateau: pick other settings"
print("plateau reductions:", reductions)
PY

# --- clipping: a tiny max norm clips every step; 0 clips none; the logged norm is before ----
./dm train $T -o clip -e 2 --clip 1e-6 --warmup 0 >/dev/null 2>&1 || fail "clip run"
./dm train $T -o noclip -e 2 --clip 0 --warmup 0 >/dev/null 2>&1 || fail "no-clip run"
python3 - clip/log.jsonl noclip/log.jsonl <<'PY' || fail "clipping counts"
import json, sys
steps_per_epoch = 79   # 20136 synthetic training samples / batch 256, rounded up
c = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')]
n = [json.loads(l) for l in open(sys.argv[2]) if l.startswith('{"epoch"')]
assert [l["clipped_steps"] for l in c] == [steps_per_epoch] * 2, c
assert [l["clipped_steps"] for l in n] == [0, 0], n
assert c[0]["grad_norm"] > 1e-6 and n[0]["grad_norm"] > 0
PY

# --- weight average: the model's weights are the state's average divided by 1 - decay^t -----
./dm train $T -o ema -e 3 --validation 0 --ema 0.99 >/dev/null 2>&1 || fail "ema run"
./dm train $T -o live -e 3 --validation 0 --ema 0 >/dev/null 2>&1 || fail "no-ema run"
python3 - ema live <<'PY' || fail "weight average"
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    meta = h.pop('__metadata__', {})
    t = {k: struct.unpack('<%df' % ((v['data_offsets'][1] - v['data_offsets'][0]) // 4),
                          b[8 + n + v['data_offsets'][0]: 8 + n + v['data_offsets'][1]]) for k, v in h.items()}
    return meta, t
f32 = lambda x: struct.unpack('<f', struct.pack('<f', x))[0]
sm, st = load(sys.argv[1] + '/state.safetensors'); mm, mt = load(sys.argv[1] + '/model.safetensors')
t = int(json.loads(sm['train_progress'])['ema_updates'])
assert t == 3 * 98, t   # validation 0: all 24878 samples, 98 steps per epoch
inv = f32(1.0 / (1.0 - f32(0.99) ** t))
for name, w in mt.items():
    avg = st['train_state.ema.' + name]
    assert all(f32(a * inv) == x for a, x in zip(avg, w)), name
    assert w != st[name], "averaged weights equal the live ones"
assert mm['weights'] == 'ema'
sm, st = load(sys.argv[2] + '/state.safetensors'); mm, mt = load(sys.argv[2] + '/model.safetensors')
for name, w in mt.items(): assert w == st[name], name   # no average: the live weights
assert not any(k.startswith('train_state.ema.') for k in st)
PY

# --- early stopping: stops `patience` epochs after the best; the model holds the best epoch --
./dm train $T -o early -e 200 --lr 0.05 --warmup 0 --plateau-factor 1 --patience 3 >/dev/null 2>"$WORK/early.err" || fail "early-stopping run"
grep -q "early stop after epoch" "$WORK/early.err" || fail "no early stop"
python3 - early <<'PY' || fail "early stopping"
import json, struct, sys
d = sys.argv[1]
lines = [json.loads(l) for l in open(d + '/log.jsonl')]
ep = [l for l in lines if 'epoch' in l and 'val' in l]
test = [l for l in lines if 'test' in l][0]['test']
scores = [l['val']['rmse'] for l in ep]
best = min(range(len(scores)), key=lambda i: scores[i]) + 1
assert len(ep) == best + 3, (len(ep), best)          # patience 3
assert test['selected_epoch'] == best, (test, best)
assert all(l['best_epoch'] == max(i + 1 for i in range(l['epoch']) if scores[i] == min(scores[:l['epoch']])) for l in ep)
def tensors(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    meta = h.pop('__metadata__'); return meta, {k: b[8 + n + v['data_offsets'][0]: 8 + n + v['data_offsets'][1]] for k, v in h.items()}
mm, mt = tensors(d + '/model.safetensors'); bm, bt = tensors(d + '/best.safetensors')
assert mt == bt and mm['epoch'] == str(best) == bm['epoch'], (mm['epoch'], bm['epoch'], best)
print("best epoch", best, "of", len(ep))
PY
# the selected weights reproduce the best epoch's validation RMSE... on the test set, eval
# gives the same metrics as the run's test line
./dm eval -c early/model.safetensors --json >"$WORK/eval.json" 2>/dev/null || fail "eval of the selected model"
python3 - early/log.jsonl "$WORK/eval.json" <<'PY' || fail "eval differs from the run's test line"
import json, sys
t = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"test"')][0]['test']
e = json.load(open(sys.argv[2]))
assert abs(t['rmse'] - e['rmse']) < 1e-9 and t['confusion'] == e['confusion'], (t, e)
PY

# --- non-finite steps: skipped and logged; in a row, the run stops and the last good state
#     (saved after step 3: steps 2 and 3 were skipped, step 4 was the third bad one) stays valid------------------------------------------------------
set +e
./dm train $T -o nan -e 3 --lr 1e30 --clip 0 --warmup 0 --max-bad-steps 3 --save-every-steps 1 >/dev/null 2>"$WORK/stderr"
st=$?
set -e
[ "$st" = 1 ] || fail "diverging run: exit $st, want 1"
expect_stderr "3 steps in a row had a non-finite loss or gradient"
expect_stderr "The last good state is nan/state.safetensors"
[ "$(grep -c skipped_step nan/log.jsonl.tmp)" = 3 ] || fail "skipped steps not logged"
python3 - nan/state.safetensors <<'PY' || fail "last good state"
import json, math, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
p = json.loads(h['__metadata__']['train_progress'])
assert p['step'] == '3' and p['skipped'] == '2', p
for k, v in h.items():
    if k == '__metadata__': continue
    m = (v['data_offsets'][1] - v['data_offsets'][0]) // 4
    assert all(math.isfinite(x) for x in struct.unpack('<%df' % m, b[8 + n + v['data_offsets'][0]: 8 + n + v['data_offsets'][1]])), k
PY
# that state resumes (its lr of 1e30 is stored as the float nearest, a little above 1e30) and
# the run diverges again, with the same message
expect_status 1 ./dm train $T --resume nan/state.safetensors
expect_stderr "steps in a row had a non-finite loss or gradient"

# --- seeds: a sweep writes one run per seed and a mean ± std table ---------------------------
./dm train $T -o sweep -e 2 --seeds 3,5 >/dev/null 2>"$WORK/stderr" || fail "sweep"
[ -f sweep/seed-3/model.safetensors ] && [ -f sweep/seed-5/model.safetensors ] || fail "sweep runs"
python3 - sweep <<'PY' || fail "sweep summary"
import json, statistics, sys
d = sys.argv[1]
s = json.load(open(d + '/summary.json'))
r = [[json.loads(l) for l in open('%s/seed-%d/log.jsonl' % (d, k)) if l.startswith('{"test"')][0]['test']['rmse'] for k in (3, 5)]
assert [x['seed'] for x in s['runs']] == [3, 5]
assert abs(s['mean']['rmse'] - statistics.mean(r)) < 1e-9 and abs(s['std_dev']['rmse'] - statistics.stdev(r)) < 1e-9, (s, r)
PY
grep -q "RMSE" sweep/summary.md || fail "summary.md"
# a sweep stopped by a signal continues where it stopped: the same command resumes the
# interrupted seed and reuses the finished ones; the summary equals an uninterrupted sweep's
set +e
MTL_TEST_SIGNAL_AT_STEP=100 ./dm train $T -o sweep2 -e 2 --seeds 3,5 >/dev/null 2>&1
st=$?
set -e
[ "$st" = 130 ] || fail "interrupted sweep: exit $st"
MTL_TEST_SIGNAL_AT_STEP=100 ./dm train $T -o sweep2b -e 2 --seeds 3,5 >/dev/null 2>"$WORK/stderr" || true
expect_stderr "continue the sweep by running the same command again"
! grep -q "train --resume" "$WORK/stderr" || fail "an interrupted sweep advises --resume of one seed"
./dm train $T -o sweep2 -e 2 --seeds 3,5 >/dev/null 2>"$WORK/stderr" || fail "continued sweep"
expect_stderr "continuing seed 3"
./dm train $T -o sweep2 -e 2 --seeds 3,5 >/dev/null 2>"$WORK/stderr" || fail "finished sweep again"
expect_stderr "seed 5 already finished"
python3 - sweep/summary.json sweep2/summary.json <<'PY' || fail "continued sweep differs"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):
    for k in ('mean', 'std_dev'): d[k].pop('seconds_per_epoch')
    for r in d['runs']: r.pop('seconds_per_epoch')
# (reused results are read back from the log, whose numbers have 15-17 digits: equal to 1e-12)
close = lambda x, y: x == y or (isinstance(x, float) and abs(x - y) <= 1e-12 * abs(y))
assert all(close(a['mean'][k], b['mean'][k]) for k in a['mean']), (a['mean'], b['mean'])
assert all(close(ra[k], rb[k]) for ra, rb in zip(a['runs'], b['runs']) for k in ra), (a['runs'], b['runs'])
PY
# other settings in the same folder are not mixed in
expect_status 1 ./dm train $T -o sweep2 -e 3 --seeds 3,5
expect_stderr "holds a run that is not this sweep's"
# a seed that diverges does not end the sweep: the next seeds run, the summary's statistics are
# the finished seeds' and it lists the diverged one; the exit status says the sweep is incomplete
# (MTL_TEST_NAN_LOSS_SEED: every step of that seed's run has a NaN loss)
expect_status 1 env MTL_TEST_NAN_LOSS_SEED=5 ./dm train $T -o sweep3 -e 2 --seeds 3,5,7 --max-bad-steps 2
expect_stderr "seed 5 diverged; the sweep goes on with the next seed"
expect_stderr "1 of 3 seeds diverged"
[ -f sweep3/seed-7/model.safetensors ] || fail "the seed after the diverged one did not run"
python3 - sweep sweep3 <<'PY' || fail "summary with a diverged seed"
import json, sys
a, b = (json.load(open(d + '/summary.json')) for d in sys.argv[1:3])
assert [r['seed'] for r in b['runs']] == [3, 7] and b['diverged'] == [5], b
assert a['runs'][0]['rmse'] == b['runs'][0]['rmse'], (a['runs'][0], b['runs'][0])  # seed 3 as before
PY
grep -q "Diverged .*seed 5" sweep3/summary.md || fail "summary.md lacks the diverged seed"
# one seed left: its mean, no standard deviation (undefined for one value; it was shown as ± 0)
expect_status 1 env MTL_TEST_NAN_LOSS_SEED=5 ./dm train $T -o sweep_one -e 2 --seeds 3,5 --max-bad-steps 2
python3 - sweep_one/summary.json <<'PY' || fail "summary of one finished seed"
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s['runs']) == 1 and s['mean']['rmse'] == s['runs'][0]['rmse'] and s['std_dev']['rmse'] is None, s
PY
grep -q "^| 1 | 2\.0 | [0-9.]* | " sweep_one/summary.md || { cat sweep_one/summary.md >&2; fail "summary.md of one seed: mean alone"; }
grep "^| 1 | " sweep_one/summary.md | grep -q "±" && fail "summary.md of one seed shows a ±"
grep -q "one seed: its test metrics" sweep_one/summary.md || fail "summary.md of one seed: its wording"
grep -q "sweep with one finished seed" "$WORK/stderr" || fail "console summary of one seed: its wording"
grep -q "  RMSE [0-9.]*$" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "console summary of one seed: mean alone"; }
# every seed diverging: exit 1, and a summary that says so replaces an earlier sweep's there
cp sweep/summary.json sweep/summary.md sweep4/ 2>/dev/null || { mkdir -p sweep4 && cp sweep/summary.json sweep/summary.md sweep4/; }
expect_status 1 env MTL_TEST_NAN_LOSS_SEED=0 ./dm train $T -o sweep4 -e 2 --seeds 1 --max-bad-steps 2  # seed 0
expect_stderr "1 of 1 seeds diverged; no seed finished"
python3 - sweep4/summary.json <<'PY' || fail "summary of a sweep whose every seed diverged"
import json, sys
s = json.load(open(sys.argv[1]))
assert s['runs'] == [] and s['diverged'] == [0] and s['mean']['rmse'] is None, s
PY
grep -q "no seed finished" sweep4/summary.md || fail "summary.md of a sweep whose every seed diverged"
# a sweep without a test set can be run again: its finished seeds are reused from their logs
python3 - >notest_train.txt <<'PY'
import random
random.seed(1)
for unit in range(1, 11):  # 10 engines of 40-59 cycles in the C-MAPSS layout (26 columns)
    n = 40 + random.randrange(20)
    for c in range(1, n + 1):
        wear = c / n
        print(unit, c, *("%.4f" % (random.gauss(0, 1) + 3 * wear * (k % 3)) for k in range(24)))
PY
./dm train $T -o sweep5 -e 2 --seeds 3,5 --train notest_train.txt >/dev/null 2>&1 || fail "sweep without a test set"
./dm train $T -o sweep5 -e 2 --seeds 3,5 --train notest_train.txt >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "the same sweep again"; }
expect_stderr "seed 5 already finished"
python3 - sweep5/summary.json <<'PY' || fail "summary of a reused sweep without a test set"
import json, sys
s = json.load(open(sys.argv[1]))
assert [r['seed'] for r in s['runs']] == [3, 5] and s['mean']['rmse'] is None, s
assert all(r['seconds_per_epoch'] is not None for r in s['runs']), s
PY
echo PASS
