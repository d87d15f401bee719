#!/bin/sh
# specialised_calls.sh MTLC WORKDIR: the small-matrix kernels reach the generated passes through
# out-of-line wrappers specialised to the layer's sizes (cg_call_specialised in
# compiler/codegen/codegen.c), one per distinct layer shape: a deep stack of identical dense
# layers gives one forward wrapper for them, and no pass holds a kernel's vector code itself.
# (Inlined into the passes, these kernels made LLVM's time grow with the square of the layer
# count: a 300-layer trunk compiled in minutes.)
set -eu
mtlc=$1; work=$2
mkdir -p "$work" && cd "$work"
layers=$(i=0; while [ $i -lt 60 ]; do printf 'dense(16) tanh '; i=$((i + 1)); done)
inputs=$(i=1; while [ $i -le 17 ]; do printf '"i%d"%s' $i "$([ $i -lt 17 ] && echo ,)"; i=$((i + 1)); done)
cat >deep.mtl <<SPEC
model Deep {
  input x : [17]
  target a : real
  data csv { inputs = ($inputs); bind a = "a" }
  trunk { $layers }
  task a { head { dense(1) } loss mse }
}
SPEC
"$mtlc" deep.mtl --emit=llvm -o deep.ll
fail() { echo "FAIL: $*" >&2; exit 1; }
n=$(grep -c '^define internal .*@"\{0,1\}mtk_small_dense_forward\..*\.16\.16\.' deep.ll || true)
[ "$n" = 1 ] || fail "$n forward wrappers for the 59 identical 16 -> 16 layers, expected 1"
for pass in mtl_model_forward mtl_model_backward; do
  body=$(sed -n "/^define void @$pass(/,/^}/p" deep.ll)
  [ -n "$body" ] || fail "no $pass in the module"
  ! printf '%s\n' "$body" | grep -q '<16 x float>' || fail "$pass holds a small-matrix kernel's vector code"
  calls=$(printf '%s\n' "$body" | grep -c 'call .*@"\{0,1\}mtk_small_' || true)
  [ "$calls" -ge 60 ] || fail "$pass calls the small-matrix wrappers $calls times, expected at least 60"
done
echo "ok"
