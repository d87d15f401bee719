#!/bin/sh
# How much could stacking the tasks' backward passes through the trunk save? (The balancing
# issue's "one matrix product over the stacked per-task gradients instead of K small ones".)
#
#   bench/stacking.sh MODEL.so [BATCH] [ROUNDS]     (MODEL.so from `mtlc SPEC --shared -o MODEL.so`)
#
# A stacked pass would run the trunk's backward once over K·B rows of gradients (K tasks' B
# rows each, sharing one forward pass) where the per-task step now runs K passes of B rows. Its
# products and loops would be those of one backward pass at batch K·B, so the backward pass at
# batch 2B against two at batch B bounds, from above, what stacking two tasks can save: the
# ratio t(2B) / (2 t(B)) below 1 is the saving (stacking would also need the 2B-row activations'
# gradients in memory, and K-aware versions of every trunk kernel). Rounds alternate the two
# batch sizes; medians are reported. Needs build/bench/step_bench (BUILD_DIR to override).
set -eu
so=$1
B=${2:-256}
rounds=${3:-5}
bench=${BUILD_DIR:-build}/bench/step_bench
twoB=$((2 * B))
ms() { "$bench" "$so" --backward --batch "$1" --steps "$2" --repeats 3 | sed 's/.*"median_ms":\([0-9.]*\).*/\1/'; }
one="" two=""
r=0
while [ $r -lt "$rounds" ]; do
  one="$one $(ms "$B" 4)"
  two="$two $(ms "$twoB" 2)"
  r=$((r + 1))
done
python3 - "$B" "$one" "$two" <<'PY'
import statistics, sys
B = int(sys.argv[1])
one = [float(v) for v in sys.argv[2].split()]
two = [float(v) for v in sys.argv[3].split()]
m1, m2 = statistics.median(one), statistics.median(two)
print(f"backward pass, batch {B}:   {m1:9.3f} ms  (runs: {', '.join(f'{v:.3f}' for v in one)})")
print(f"backward pass, batch {2*B}:   {m2:9.3f} ms  (runs: {', '.join(f'{v:.3f}' for v in two)})")
print(f"t({2*B}) / (2 t({B})) = {m2 / (2 * m1):.3f}   (below 1: the most stacking two tasks could save per pass)")
PY
