#!/usr/bin/python3
"""The Markdown report of bench/run.sh, from the JSON lines its runs recorded.

    python3 bench/report.py RESULTS.jsonl

Each line is {"case", "side" (mtlc | torch | probe | an example's name), "round", "out": the
tool's own JSON}. run.sh passes the rest through the environment: BENCH_COMMAND, BENCH_ROUNDS,
BENCH_NATIVE_CORE (OpenBLAS's choice without our selection), BENCH_LOAD_START, and the
OPENBLAS_CORETYPE both sides ran with. Standard library only (runs under any python3).
"""
import collections
import datetime
import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402

CASES = [  # (case, issue item, label)
    ("mlp", "(a)", "dual-task MLP training step"),
    ("dual_task", "(b)", "DualTaskModel training step, fixed weights"),
    ("dual_task_gaba", "(c)", "DualTaskModel training step, GABA every step"),
    ("dual_task_infer", "(d)", "DualTaskModel inference"),
]
FLOP_MODEL = {"mlp": "mlp", "dual_task": "dual_task", "dual_task_gaba": "dual_task", "dual_task_infer": "dual_task"}


def fmt(v, digits=4):
    """A number with `digits` significant digits, without exponent for the sizes seen here."""
    if v == 0:
        return "0"
    return f"{v:.{max(0, digits - 1 - math.floor(math.log10(abs(v))))}f}"


def mib(kb):
    return f"{kb / 1024:.1f}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    runs = collections.defaultdict(list)  # (case, side) -> [out, ...]
    with open(sys.argv[1]) as f:
        for line in f:
            r = json.loads(line)
            runs[r["case"], r["side"]].append(r["out"])
    ms = {k: statistics.median(o["median_ms"] for o in v) for k, v in runs.items() if "median_ms" in v[0]}
    cases = [c for c in CASES if (c[0], "mtlc") in ms]
    rounds = os.environ.get("BENCH_ROUNDS", "?")

    # ---- header ----
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    native = os.environ.get("BENCH_NATIVE_CORE", "?")
    kernel = (f"OPENBLAS_CORETYPE={coretype} (OpenBLAS alone would pick {native})" if coretype
              else f"OPENBLAS_CORETYPE unset (OpenBLAS's own choice, {native}, is what the trainer keeps)")
    torch_runs = [o for (c, s), v in runs.items() if s == "torch" for o in v]
    torch_info = (f", PyTorch {torch_runs[0]['torch']} ({torch_runs[0]['threads']} threads)" if torch_runs else "")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open("/proc/loadavg") as f:
        load_end = " ".join(f.read().split()[:3])
    print("# mtlc against PyTorch: benchmark report\n")
    print(f"- machine: {os.cpu_count()} cores, {cpu_model()}, {kernel}{torch_info}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, {now}")
    print(f"- load average at start / end: {os.environ.get('BENCH_LOAD_START', '?')} / {load_end} "
          "(a shared machine: other jobs slow both sides)")
    print(f"- command: `{os.environ.get('BENCH_COMMAND', 'bench/run.sh')}`")
    print(f"- batch 256; a run times a warm-up repeat, then several repeats of a few steps and reports "
          f"their median; the tables give the median of {rounds} runs per side, mtlc and PyTorch "
          "runs alternating")
    cores = {o.get("blas_core") for (c, s), v in runs.items() if s in ("mtlc", "torch") for o in v}
    want = coretype or native
    if cores and cores != {want}:
        print(f"- **warning**: the runs report OpenBLAS kernels {sorted(map(str, cores))}, expected {want}")

    # ---- steps ----
    if cases:
        print("\n## Steps: (a), (b), (c), (d)\n")
        print("| item | case | mtlc ms/step | PyTorch ms/step | PyTorch / mtlc | mtlc runs | PyTorch runs |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for c, item, label in cases:
            m, t = ms[c, "mtlc"], ms.get((c, "torch"))
            mr = ", ".join(fmt(o["median_ms"]) for o in runs[c, "mtlc"])
            tr = ", ".join(fmt(o["median_ms"]) for o in runs[c, "torch"])
            print(f"| {item} | {label} (`{c}`) | {fmt(m)} | {fmt(t)} | {t / m:.2f}× | {mr} | {tr} |")

    # ---- GABA ----
    if ("dual_task_gaba", "mtlc") in ms:
        print("\n## (c) GABA against fixed weights, DualTaskModel\n")
        print("| step | mtlc ms/step | PyTorch ms/step | PyTorch / mtlc | work per step |")
        print("| --- | --- | --- | --- | --- |")
        g_m, g_t = ms["dual_task_gaba", "mtlc"], ms["dual_task_gaba", "torch"]
        have_fixed = ("dual_task", "mtlc") in ms
        if have_fixed:
            f_m, f_t = ms["dual_task", "mtlc"], ms["dual_task", "torch"]
            print(f"| fixed weights | {fmt(f_m)} | {fmt(f_t)} | {f_t / f_m:.2f}× | 1 forward + 1 backward |")
        print(f"| GABA, norms every step | {fmt(g_m)} | {fmt(g_t)} | {g_t / g_m:.2f}× | mtlc: 1 forward + 2 "
              "backward, gradient combined from the per-task ones; PyTorch: 1 forward + 2 "
              "`autograd.grad` on the trunk + 1 full backward |")
        if have_fixed:
            print(f"| GABA / fixed | {g_m / f_m:.2f}× | {g_t / f_t:.2f}× | | |")
        else:
            print("\n(run `dual_task` too for the GABA / fixed ratios)")

    # ---- GFLOP/s ----
    peak = runs.get(("fma_peak", "probe"))
    flop_cases = [c for c in cases if c[0].startswith("dual_task")]
    if peak:
        p = peak[0]
        print("\n## Achieved GFLOP/s against the measured FMA peak\n")
        print(f"FP32 FMA peak (`build/bench/fma_peak`): **{p['gflops']:.1f} GFLOP/s** wall clock ({p['isa']}, "
              f"{p['threads']} threads, {p['chains']} independent chains each; median of the repeats "
              f"{', '.join(f'{g:.1f}' for g in p['runs'])}); **{p['gflops_cpu']:.1f} GFLOP/s** per "
              "the threads' own CPU time, i.e. with the cores to themselves (the wall-clock figure "
              "falls with other jobs' load, this one does not).")
    if flop_cases:
        print()
        print("| item | case | GFLOP per step | mtlc GFLOP/s | mtlc % of peak (wall; CPU) | PyTorch GFLOP/s | "
              "PyTorch % of peak (wall; CPU) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for c, item, label in flop_cases:
            n_params = runs[c, "mtlc"][0]["n_params"]
            count = flops.count(FLOP_MODEL[c], runs[c, "mtlc"][0]["batch"])
            if count["params"] != n_params:
                print(f"| {item} | {label} | bench/flops.py has {count['params']} parameters, the model "
                      f"{n_params}: not counted | | | | |")
                continue
            # GABA's extra backward passes are overhead, not useful work: count the plain step
            f = count["forward_flops"] if c == "dual_task_infer" else count["train_step_flops"]
            cells = []
            for side in ("mtlc", "torch"):
                g = f / (ms[c, side] * 1e-3) * 1e-9
                cells += [f"{g:.1f}", f"{100 * g / peak[0]['gflops']:.1f} %; {100 * g / peak[0]['gflops_cpu']:.1f} %"
                          if peak else "-"]
            print(f"| {item} | {label} | {f * 1e-9:.1f} | {' | '.join(cells)} |")
        print("\nFLOPs from `bench/flops.py` (matrix products only, 2·m·n·k; a training step counted as "
              "3× the forward products; the layer list's parameter count checked against the compiled "
              f"model's, {n_params:,}). GABA's row counts the same useful work as the fixed step, so "
              "its lower figure is the cost of balancing.")

    # ---- memory ----
    if cases:
        print("\n## (f) Peak memory (max RSS of the benchmark process)\n")
        print("| item | case | mtlc peak MiB | PyTorch peak MiB | PyTorch / mtlc | mtlc before 1st step | "
              "PyTorch before 1st step | mtlc growth | PyTorch growth |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for c, item, label in cases:
            row = []
            for side in ("mtlc", "torch"):
                peak_kb = max(o["max_rss_kb"] for o in runs[c, side])
                before = statistics.median(o["rss_before_kb"] for o in runs[c, side])
                row.append((peak_kb, before))
            (mp, mb), (tp, tb) = row
            print(f"| {item} | {label} | {mib(mp)} | {mib(tp)} | {tp / mp:.2f}× | {mib(mb)} | {mib(tb)} | "
                  f"{mib(mp - mb)} | {mib(tp - tb)} |")
        print("\nPeak: the largest max RSS of the runs. Before 1st step: resident memory after "
              "loading, allocation and initialisation (for PyTorch that is the interpreter and the "
              "torch libraries, model, optimizer and data; mtlc's activation buffer is allocated but "
              "not yet touched). Growth = peak − before: what the steps themselves add.")

    # ---- compile ----
    comp = {s: v for (c, s), v in runs.items() if c == "compile"}
    if comp:
        print("\n## (e) Compile time: `mtlc examples/X.mtl -o X` (trainer executable)\n")
        print(f"| example | wall s (median of {rounds}) | runs | peak RSS MiB |")
        print("| --- | --- | --- | --- |")
        for ex in sorted(comp):
            secs = [o["seconds"] for o in comp[ex]]
            rss = [o["max_rss_kb"] for o in comp[ex] if o["max_rss_kb"] is not None]
            print(f"| {ex} | {statistics.median(secs):.2f} | {', '.join(f'{s:.2f}' for s in secs)} | "
                  f"{mib(max(rss)) if rss else '-'} |")


if __name__ == "__main__":
    main()
