#!/usr/bin/env python3
"""The text work of scripts/balance_table.sh (see its header).

  balance_table.py variants SPEC OUT METHOD...   writes OUT/METHOD/spec.mtl for every method, or
                                                 none and exit 2 with the reason
  balance_table.py complete SUMMARY.json          exit 0 when the sweep ran every seed it was
                                                 asked for (finished or diverged), else 1
  balance_table.py table OUT METHOD...           gathers OUT/METHOD/run/summary.json into
                                                 OUT/table.md (and prints it); exit 1 when a row
                                                 is incomplete (diverged seeds, no summary)

A variant is the spec with its `balance` statement replaced by the method's (baseline and amnl
keep the spec's own), and for amnl and grace every `loss mse` without options becoming
`loss mse(amnl = 125)`. The spec is read as mtlc reads it: `#` and `//` comments and strings are
skipped, the statement may span lines, and everything around it is kept as written.
"""
import json
import os
import re
import sys

METHODS = ["baseline", "amnl", "gaba", "grace", "uncertainty", "gradnorm", "dwa", "pcgrad",
           "gaba_out", "grace_out", "gradnorm_out"]
AMNL_CAP = 125  # the book's RUL cap


def die(msg):
    print(f"balance_table.py: {msg}", file=sys.stderr)
    sys.exit(2)


def code_mask(text):
    """True for each character that is code (not inside a comment or a string)."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                mask[k] = False
            i = j
        elif c == '"':  # a string: \" and \\ are escapes inside it, as in mtlc's lexer
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" and j + 1 < n and text[j + 1] != "\n" else 1
            for k in range(i, min(j + 1, n)):
                mask[k] = False
            i = j + 1
        else:
            i += 1
    return mask


def code_tokens(text, mask):
    """(start, end, token) of each identifier, number or punctuation character in the code."""
    for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*|\S", text):
        if mask[m.start()]:
            yield m.start(), m.end(), m.group()


def balance_span(text, mask, spec):
    """The span of the `balance METHOD[(...)]` statement: the `balance` that begins a statement
    (after `{`, `}`, `;` or at the start of a line) and is followed by a method name."""
    toks = list(code_tokens(text, mask))
    found = []
    for i, (s, e, t) in enumerate(toks):
        if t != "balance" or i + 1 >= len(toks) or not re.match(r"[A-Za-z_]", toks[i + 1][2]):
            continue
        prev = toks[i - 1][2] if i else "{"
        line_start = text.rfind("\n", 0, s) + 1
        if prev not in "{};" and text[line_start:s].strip():
            continue  # e.g. `group balance { ... }`
        j = i + 2
        end = toks[i + 1][1]
        if j < len(toks) and toks[j][2] == "(":
            depth = 0
            while j < len(toks):
                depth += {"(": 1, ")": -1}.get(toks[j][2], 0)
                if depth == 0:
                    break
                j += 1
            if j == len(toks):
                die(f"{spec}: the balance statement's '(' is not closed")
            end = toks[j][1]
        found.append((s, end))
    if not found:
        die(f"{spec} has no balance statement to replace")
    if len(found) > 1:
        die(f"{spec} has {len(found)} balance statements; mtlc allows one")
    return found[0]


def with_amnl_losses(text, spec):
    """Every `loss mse` without options as `loss mse(amnl = CAP)`."""
    mask = code_mask(text)
    toks = list(code_tokens(text, mask))
    edits = []
    for i in range(len(toks) - 1):
        if toks[i][2] == "loss" and toks[i + 1][2] == "mse":
            if i + 2 < len(toks) and toks[i + 2][2] == "(":
                if i + 3 < len(toks) and toks[i + 3][2] == ")":  # `mse()`: no options either
                    edits.append((toks[i + 2][0], toks[i + 3][1]))
                continue  # options given: left as written
            edits.append((toks[i + 1][1], toks[i + 1][1]))
    if not edits:
        die(f"{spec} has no 'loss mse' (without options) for AMNL's loss")
    for start, end in reversed(edits):
        text = text[:start] + f"(amnl = {AMNL_CAP})" + text[end:]
    return text


def variant(text, spec, method):
    mask = code_mask(text)
    s, e = balance_span(text, mask, spec)
    own = text[s:e]
    if method in ("baseline", "amnl"):
        stmt = own
    elif method.endswith("_out"):
        stmt = f"balance {method[:-4]}(norms = trunk_output)"
    else:
        stmt = f"balance {method}"
    out = text[:s] + stmt + text[e:]
    if method in ("amnl", "grace", "grace_out"):
        out = with_amnl_losses(out, spec)
    return out


def cmd_variants(spec, out, methods):
    for i, m in enumerate(methods):
        if m not in METHODS:
            die(f"unknown method {m} (methods: {' '.join(METHODS)})")
        if m in methods[:i]:
            die(f"method {m} is given twice")
    try:  # newline="": line endings kept as written (CRLF stays CRLF)
        text = open(spec, encoding="utf-8", newline="").read()
    except OSError as e:
        die(f"cannot read {spec}: {e.strerror}")
    except UnicodeDecodeError as e:
        die(f"{spec} is not UTF-8 text (byte {e.start}); mtlc reads specs as UTF-8")
    texts = {m: variant(text, spec, m) for m in methods}  # every one checked before any is written
    for m, t in texts.items():
        d = os.path.join(out, m)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, "spec.mtl.tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(t)
        os.replace(tmp, os.path.join(d, "spec.mtl"))


def cmd_table(out, methods):
    rows, incomplete = [], []
    for m in methods:
        p = os.path.join(out, m, "run", "summary.json")
        if not os.path.exists(p):
            rows.append(f"| {m} | (no summary: the sweep did not finish) | | | | | |")
            incomplete.append(m)
            continue
        s = json.load(open(p))
        mean, sd = s.get("mean") or {}, s.get("std_dev") or {}
        div = s.get("diverged", [])
        if div or not complete(p):
            incomplete.append(m)
        if not s["runs"]:
            want = s.get("seeds_requested", len(div))
            what = (f"all {len(div)} seeds diverged" if len(div) >= want else
                    f"the sweep stopped after {len(div)} of {want} seeds, {len(div)} diverged")
            rows.append(f"| {m} | 0 ({what}) | | | | | |")
            continue
        n = len(s["runs"])
        n = f"{n} (+{len(div)} diverged)" if div else str(n)

        def f(k, d):
            if mean.get(k) is None:
                return "n/a"
            if sd.get(k) is None:  # one seed: no standard deviation
                return f"{mean[k]:.{d}f}"
            return f"{mean[k]:.{d}f} ± {sd[k]:.{d}f}"

        spe = mean.get("seconds_per_epoch")
        rows.append(f"| {m} | {n} | {f('epochs_run', 1)} | {f('rmse', 2)} | {f('nasa', 1)} | "
                    f"{f('test_selected_rmse', 2)} / {f('test_selected_nasa', 1)} | "
                    f"{'n/a' if spe is None else f'{spe:.3g}'} |")
    text = ["| method | seeds | epochs reached | RMSE | NASA | selected on test (book's protocol): "
            "RMSE / NASA | s / epoch |",
            "| --- | --- | --- | --- | --- | --- | --- |"] + rows
    tmp = os.path.join(out, "table.md.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(text) + "\n")
    os.replace(tmp, os.path.join(out, "table.md"))
    print("\n".join(text))
    if incomplete:
        print(f"balance_table.py: incomplete rows: {' '.join(incomplete)} (diverged seeds or no "
              f"summary; see OUT/METHOD/train.err)", file=sys.stderr)
        return 1
    return 0


def complete(path):
    """A sweep's summary covers all its seeds (an interrupted sweep writes one for those done)."""
    try:
        s = json.load(open(path))
    except (OSError, ValueError):
        return False
    want = s.get("seeds_requested")
    if want is None:  # written before trainers recorded it: taken as complete, as it was then
        return True
    return len(s.get("runs", [])) + len(s.get("diverged", [])) >= want


def main(argv):
    if len(argv) == 3 and argv[1] == "complete":
        return 0 if complete(argv[2]) else 1
    if len(argv) >= 4 and argv[1] == "variants":
        cmd_variants(argv[2], argv[3], argv[4:])
        return 0
    if len(argv) >= 3 and argv[1] == "table":
        return cmd_table(argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
