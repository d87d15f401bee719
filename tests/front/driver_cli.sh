#!/bin/sh
# The mtlc driver's command line: every --emit stage honours -o (written to FILE.tmp, then
# renamed), write failures on stdout or on a file are errors, an unwritable -o is reported
# before compiling, and conflicting options are usage errors (exit 2).
# Usage: driver_cli.sh MTLC SPEC WORKDIR
set -u
MTLC=$1
SPEC=$2
W=$3
rm -rf "$W"
mkdir -p "$W"
fails=0

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# expect NAME RC STDERR -- command...: runs the command, compares exit status and stderr.
expect() {
    name=$1 want_rc=$2 want_err=$3
    shift 4
    "$@" >"$W/out" 2>"$W/err"
    rc=$?
    [ "$rc" = "$want_rc" ] || fail "$name: exit status $rc, expected $want_rc"
    printf '%s\n' "$want_err" >"$W/want"
    if [ -z "$want_err" ]; then : >"$W/want"; fi
    if ! cmp -s "$W/want" "$W/err"; then
        fail "$name: stderr differs"
        echo "--- expected"; cat "$W/want"; echo "--- got"; cat "$W/err"
    fi
}

usage_tail="Try 'mtlc --help'."

# ---- conflicting options: exit 2 before anything is read -----------------------------------
expect report+emit 2 "mtlc: --report and --emit cannot be combined (the report is a stage of its own)
$usage_tail" -- "$MTLC" "$SPEC" --report --emit=ir
expect report+o 2 "mtlc: --report prints to stdout and does not take -o; redirect it instead
$usage_tail" -- "$MTLC" "$SPEC" --report=json -o "$W/report"
expect shared+emit 2 "mtlc: --shared builds a shared object and cannot be combined with --emit
$usage_tail" -- "$MTLC" "$SPEC" --shared --emit=llvm -o "$W/x.ll"
expect empty-o 2 "mtlc: -o needs a file name, not an empty string
$usage_tail" -- "$MTLC" "$SPEC" -o ""
[ -e "$W/report" ] && fail "report+o created its file"

# ---- -o for every --emit stage -------------------------------------------------------------
for stage in ast typed ir grad-ir llvm asm obj; do
    expect "emit=$stage -o" 0 "" -- "$MTLC" "$SPEC" --emit=$stage -o "$W/out.$stage"
    [ -s "$W/out.$stage" ] || fail "emit=$stage -o: $W/out.$stage missing or empty"
    [ -s "$W/out" ] && fail "emit=$stage -o: wrote to stdout too"
    [ -e "$W/out.$stage.tmp" ] && fail "emit=$stage -o: left $W/out.$stage.tmp behind"
done
# the file holds exactly what stdout would
for stage in ast typed ir grad-ir; do
    "$MTLC" "$SPEC" --emit=$stage >"$W/stdout.$stage" 2>/dev/null
    cmp -s "$W/stdout.$stage" "$W/out.$stage" || fail "emit=$stage: -o output differs from stdout"
done

# a spec with errors creates no output file (and no .tmp)
printf 'model M {\n  input x : [17]\n  bogus\n}\n' >"$W/bad.mtl"
"$MTLC" "$W/bad.mtl" --emit=typed -o "$W/bad.typed" >/dev/null 2>&1
[ $? = 1 ] || fail "bad spec --emit=typed -o: expected exit 1"
[ -e "$W/bad.typed" ] || [ -e "$W/bad.typed.tmp" ] && fail "bad spec: an output file was created"

# ---- unwritable -o: one clear message, before compiling (no linker output) ------------------
expect missing-dir 1 "mtlc: error: cannot write /nonexistent-mtlc-dir/t: No such file or directory" \
    -- "$MTLC" "$SPEC" -o /nonexistent-mtlc-dir/t
expect missing-dir-emit 1 "mtlc: error: cannot write $W/no/such/x.ll: No such file or directory" \
    -- "$MTLC" "$SPEC" --emit=llvm -o "$W/no/such/x.ll"
expect o-is-dir 1 "mtlc: error: cannot write $W: Is a directory" -- "$MTLC" "$SPEC" -o "$W"
: >"$W/plainfile"
expect dir-is-file 1 "mtlc: error: cannot write $W/plainfile/t: Not a directory" \
    -- "$MTLC" "$SPEC" -o "$W/plainfile/t"

# ---- devices: written directly, never replaced by a rename ---------------------------------
if [ -c /dev/null ]; then
    expect emit-devnull 0 "" -- "$MTLC" "$SPEC" --emit=ir -o /dev/null
    [ -c /dev/null ] || fail "/dev/null is no longer a character device"
    expect build-devnull 1 "mtlc: error: cannot write /dev/null: not a regular file (the build replaces it)" \
        -- "$MTLC" "$SPEC" -o /dev/null
fi

# ---- write failures ------------------------------------------------------------------------
if [ -c /dev/full ]; then
    full="mtlc: error: cannot write output: No space left on device"
    expect report-full 1 "$full" -- sh -c '"$0" "$1" --report >/dev/full' "$MTLC" "$SPEC"
    expect report-json-full 1 "$full" -- sh -c '"$0" "$1" --report=json >/dev/full' "$MTLC" "$SPEC"
    expect llvm-full 1 "$full" -- sh -c '"$0" "$1" --emit=llvm >/dev/full' "$MTLC" "$SPEC"
    expect ast-full 1 "$full" -- sh -c '"$0" "$1" --emit=ast >/dev/full' "$MTLC" "$SPEC"
    expect help-full 1 "$full" -- sh -c '"$0" --help >/dev/full' "$MTLC"
    expect emit-o-full 1 "mtlc: error: cannot write /dev/full: No space left on device" \
        -- "$MTLC" "$SPEC" --emit=typed -o /dev/full
    [ -c /dev/full ] || fail "/dev/full is no longer a character device"
else
    echo "note: no /dev/full here; write-failure cases skipped"
fi

if [ "$fails" -ne 0 ]; then
    echo "$fails driver check(s) failed"
    exit 1
fi
echo "all driver checks passed"
