#!/bin/sh
# run_gradcheck.sh MTLC CHECKER SPEC WORKDIR: compile SPEC to a shared object and run CHECKER on it
# (gradcheck: its backward pass against central differences; balance_check, dropout_check).
set -eu
mtlc=$1; gradcheck=$2; spec=$3; work=$4
mkdir -p "$work"
so="$work/$(basename "$spec" .mtl).so"
"$mtlc" "$spec" --shared -o "$so"
"$gradcheck" "$so"
