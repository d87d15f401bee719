#!/bin/sh
# The book's DualTaskModel (examples/dual_task.mtl), shortened: 3 epochs on the first three
# FD001 engines (571 windows of 30 cycles), evaluated on all 100 test engines. Checks that the
# combined training loss falls, that metrics are finite and that the checkpoint holds the batchnorm
# running statistics.
. "$(dirname "$0")/lib.sh"
need_cmapss
rm -rf "$WORK"; mkdir -p "$WORK"
head -n 658 "$CMAPSS/train_FD001.txt" >"$WORK/train3.txt"   # engines 1-3 (192 + 287 + 179 cycles)
"$MTLC" "$SRC/examples/dual_task.mtl" -o "$WORK/trainer"
"$WORK/trainer" train --train "$WORK/train3.txt" --epochs 3 --batch 64 --validation 0 --out "$WORK/run" \
  --test "$CMAPSS/test_FD001.txt" --rul "$CMAPSS/RUL_FD001.txt" >"$WORK/train.out" 2>"$WORK/train.err" \
  || { cat "$WORK/train.err"; fail "train failed"; }
python3 - "$WORK/run/log.jsonl" "$WORK/run/model.safetensors" <<'PY'
import json, math, struct, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
epochs = [l for l in lines if "epoch" in l]
test = [l["test"] for l in lines if "test" in l][-1]
rul = [e["loss"]["rul"] for e in epochs]
health = [e["loss"]["health"] for e in epochs]
print("rul loss per epoch", [round(x, 2) for x in rul], "health", [round(x, 4) for x in health])
print("test", test)
assert len(epochs) == 3, epochs
# the combined loss that is minimised (0.5 MSE + 0.5 CE) must fall; the health loss alone may
# rise early on, as the book describes: MSE's gradients dominate the shared trunk
total = [0.5 * r + 0.5 * h for r, h in zip(rul, health)]
assert total[-1] < total[0], ("training loss did not fall", total)
for k in ("rmse", "nasa", "accuracy", "macro_f1"):
    assert math.isfinite(test[k]), (k, test[k])
assert test["engines"] == 100
b = open(sys.argv[2], "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
assert h["trunk.1.running_var"]["shape"] == [64], h.get("trunk.1.running_var")
assert h["trunk.lstm.weight_ih_l1_reverse"]["shape"] == [1024, 512]
PY
