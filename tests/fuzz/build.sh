#!/bin/sh
# Builds the libFuzzer harnesses with clang-19 (-fsanitize=fuzzer,address,undefined), compiling
# the needed project sources directly (the main build uses gcc and its own flags).
#
#   tests/fuzz/build.sh SRC_DIR GRAMMAR_DIR OUT_DIR
#     SRC_DIR      the repository root
#     GRAMMAR_DIR  the build tree's grammar/ (bison/flex output: mtl_parser.c, mtl_lexer.c, .h)
#     OUT_DIR      where fuzz_spec, fuzz_cmapss, fuzz_csv, fuzz_safetensors go
#   CC (environment) overrides the compiler (default /usr/bin/clang-19, else clang-19 on PATH).
#
# When the compiler or its libFuzzer/sanitizer runtimes are missing, it writes
# OUT_DIR/UNAVAILABLE with the reason, removes any old harnesses and exits 0: the fuzz tests then
# skip. A compile error in a harness or in project code is a real failure (exit 1).
set -eu
SRC=$1
GRAMMAR=$2
OUT=$3
mkdir -p "$OUT"
rm -f "$OUT/UNAVAILABLE"

unavailable() {
    echo "fuzz: $1; fuzz harnesses not built, fuzz tests will be skipped" >&2
    echo "$1" >"$OUT/UNAVAILABLE"
    rm -f "$OUT/fuzz_spec" "$OUT/fuzz_cmapss" "$OUT/fuzz_csv" "$OUT/fuzz_safetensors"
    exit 0
}

if [ -z "${CC:-}" ]; then
    if [ -x /usr/bin/clang-19 ]; then CC=/usr/bin/clang-19
    elif command -v clang-19 >/dev/null 2>&1; then CC=$(command -v clang-19)
    else unavailable "clang-19 not found"; fi
fi
SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

# Probe: libFuzzer + ASan + UBSan runtimes (Debian: package libclang-rt-19-dev).
probe="$OUT/probe"
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe.c"
if ! "$CC" $SAN "$probe.c" -o "$probe" >"$probe.log" 2>&1; then
    unavailable "$CC cannot link -fsanitize=fuzzer,address,undefined (libFuzzer runtime missing? see $probe.log)"
fi
rm -f "$probe" "$probe.c"

for f in mtl_parser.c mtl_lexer.c mtl_parser.h; do
    [ -f "$GRAMMAR/$f" ] || { echo "fuzz: $GRAMMAR/$f missing (build mtlc_grammar first)" >&2; exit 1; }
done

CJSON_CFLAGS=$(pkg-config --cflags libcjson)
CJSON_LIBS=$(pkg-config --libs libcjson)
# sema's size check counts activations by the report's rules, which ask the kernels for their
# scratch sizes: the spec harness links the report and the kernels (and OpenBLAS, which they call).
BLAS_CFLAGS=$(pkg-config --cflags openblas)
BLAS_LIBS=$(pkg-config --libs openblas)
KERNELS=$(ls "$SRC"/runtime/kernels/*.c)
CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 -w $SAN"
F="$SRC/tests/fuzz"
R="$SRC/runtime/src"

set -x  # the compile lines go to the build log
"$CC" $CFLAGS -I"$SRC/compiler" -I"$SRC/runtime/include" -I"$GRAMMAR" \
    "$F/fuzz_spec.c" \
    "$SRC/compiler/frontend/ast.c" "$SRC/compiler/frontend/encoding.c" "$SRC/compiler/diag/diag.c" \
    "$SRC/compiler/sema/sema.c" "$SRC/compiler/sema/sema_groups.c" "$SRC/compiler/sema/sema_layers.c" \
    "$SRC/compiler/sema/model.c" "$SRC/compiler/sema/sema_limits.c" "$GRAMMAR/mtl_parser.c" "$GRAMMAR/mtl_lexer.c" \
    "$SRC/compiler/report/report.c" $CJSON_CFLAGS -I"$SRC/runtime/kernels" $BLAS_CFLAGS $KERNELS \
    $CJSON_LIBS $BLAS_LIBS -lm -o "$OUT/fuzz_spec"

RT="$R/data_cmapss.c $R/data_cmapss_rows.c $R/data_common.c $R/data_conditions.c $R/data_csv.c $R/data_norm.c \
    $R/data_synth.c $R/data_text.c \
    $R/checkpoint.c $R/log.c $R/rng.c $R/shuffle.c"
for h in cmapss csv safetensors; do
    "$CC" $CFLAGS -I"$SRC/runtime/include" -I"$R" $CJSON_CFLAGS \
        "$F/fuzz_$h.c" $RT $CJSON_LIBS -lm -o "$OUT/fuzz_$h"
done
