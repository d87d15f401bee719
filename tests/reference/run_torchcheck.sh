#!/bin/sh
# run_torchcheck.sh MTLC TORCHCHECK SPEC FIXTURE WORKDIR
set -eu
mkdir -p "$5"
so="$5/$(basename "$4" .safetensors).so"
"$1" "$3" --shared -o "$so"
"$2" "$so" "$4"
