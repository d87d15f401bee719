#!/bin/sh
# CTest driver for one harness.
#   run_fuzz.sh fuzz   BIN_DIR HARNESS SECONDS CORPUS_DIR SEED_DIR_OR_FILE...
#       fresh scratch corpus (CORPUS_DIR, emptied, seeds copied in), then a time-boxed run
#   run_fuzz.sh replay BIN_DIR HARNESS REGRESSION_DIR
#       runs every file of REGRESSION_DIR through the harness once (passes when there are none)
# Exits 77 (CTest SKIP_RETURN_CODE) when the harness was not built (see build.sh).
set -u
mode=$1 bin_dir=$2 h=$3
shift 3
exe="$bin_dir/fuzz_$h"
if [ ! -x "$exe" ]; then
    if [ -f "$bin_dir/UNAVAILABLE" ]; then
        echo "SKIPPED: fuzz harness fuzz_$h not built: $(cat "$bin_dir/UNAVAILABLE")"
    else
        echo "SKIPPED: fuzz harness $exe not built (build target fuzz_harnesses)"
    fi
    exit 77
fi
# Our own sanitizer settings, whatever the environment of the main (possibly sanitized) build says.
ASAN_OPTIONS="abort_on_error=0:detect_leaks=1:allocator_may_return_null=1"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS UBSAN_OPTIONS
unset LSAN_OPTIONS || true

case $mode in
fuzz)
    secs=$1 corpus=$2
    shift 2
    rm -rf "$corpus" && mkdir -p "$corpus" "$corpus.artifacts" || exit 1
    for s in "$@"; do
        if [ -d "$s" ]; then
            find "$s" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$corpus"/ \;
        else
            for f in $s; do [ -f "$f" ] && cp "$f" "$corpus"/; done
        fi
    done
    echo "fuzz_$h: $(ls "$corpus" | wc -l) seeds, ${secs}s"
    exec "$exe" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -close_fd_mask=3 \
        -print_final_stats=1 -artifact_prefix="$corpus.artifacts/" "$corpus"
    ;;
replay)
    dir=$1
    files=$(find "$dir" -maxdepth 1 -type f ! -name '.*' | sort)
    if [ -z "$files" ]; then
        echo "fuzz_$h: no regression inputs in $dir"
        exit 0
    fi
    rc=0
    for f in $files; do
        if "$exe" -rss_limit_mb=2048 -timeout=10 "$f" >"$bin_dir/replay_$h.log" 2>&1; then
            echo "ok    $f"
        else
            rc=1
            echo "FAIL  $f"
            grep -E "ERROR: |SUMMARY: |runtime error|^    #[0-3] " "$bin_dir/replay_$h.log" | head -8
        fi
    done
    exit $rc
    ;;
*)
    echo "usage: run_fuzz.sh fuzz|replay ..." >&2
    exit 2
    ;;
esac
