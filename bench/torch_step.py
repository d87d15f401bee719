#!/usr/bin/python3
"""PyTorch side of the benchmark: the same models, the same step (forward, 0.5·MSE + 0.5·CE,
backward, AdamW), batch 256, one thread per usable core (as OpenBLAS in step_bench). Prints one
JSON object like step_bench.

    /usr/bin/python3 bench/torch_step.py mlp|dual_task [--batch 256] [--steps N] [--repeats R]
                                         [--infer | --gaba]

--gaba times the book's GABA step: one forward pass; each task's gradient on the shared (trunk)
parameters by torch.autograd.grad(loss_k, trunk, retain_graph=True); weights from those norms;
then one backward pass of the weighted total loss and AdamW. That is 1 forward + K partial
backward + 1 full backward, where mtlc (step_bench --balance gaba) does 1 forward + K backward
and combines the per-task gradients it already has.

Also reports the OpenBLAS kernel in use, and the resident memory right before the first step
(interpreter, torch, model, optimizer and data: what is there before any step's work) and at
its peak (kB), the same fields as step_bench.

Run it with OMP_WAIT_POLICY=PASSIVE and the OpenBLAS kernel chosen (run.sh does both).
"""
import argparse
import ctypes
import json
import os
import resource
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tests/reference")
from make_fixtures import TAttention, TBatchNorm, TConv1d, TLSTM, Pool  # noqa: E402  same layouts


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(17, 32), nn.ReLU())
        self.rul = nn.Linear(32, 1)
        self.health = nn.Linear(32, 3)

    def forward(self, x):
        h = self.shared(x)
        return self.rul(h), self.health(h)


class DualTask(nn.Module):
    """The book's DualTaskModel as examples/dual_task.mtl spells it."""

    def __init__(self):
        super().__init__()

        def conv(cin, cout):
            return [TConv1d(cin, cout, 3, padding=1, bias=False), TBatchNorm(cout), nn.ReLU(), nn.Dropout(0.15)]

        self.cnn = nn.Sequential(*conv(17, 64), *conv(64, 128), *conv(128, 64))
        self.lstm = TLSTM(64, 256, num_layers=2, bidirectional=True, dropout=0.3)
        self.attn = TAttention(512, 8, dropout=0.1)
        self.norm = nn.LayerNorm(512)
        self.funnel = nn.Sequential(Pool("last"), nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.3),
                                    nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.3),
                                    nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3))
        self.rul = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                                 nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1), nn.ReLU())
        self.health = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        h = self.lstm(self.cnn(x))
        h = self.norm(h + self.attn(h))
        h = self.funnel(h)
        return self.rul(h), self.health(h)


def trunk_params(model):
    """The parameters both tasks reach: everything but the heads (mtlc's shared group)."""
    return [p for n, p in model.named_parameters() if not n.startswith(("rul.", "health."))]


class Gaba:
    """GABA's weights as mtlc computes them (runtime/src/balance.c): raw weights from the
    per-task gradient norms, an EMA with beta 0.99 and a floor of 0.05, renormalised. mtlc's raw
    weight (S - n_k) / ((K - 1) S), S = sum of the norms, is for two tasks exactly the inverse
    norm renormalised, w_k ∝ 1 / n_k. The warm-up (uniform weights for 100 steps) is left out:
    it changes the weights, not the work."""

    def __init__(self, k, beta=0.99, floor=0.05):
        self.ema = [1.0 / k] * k
        self.beta, self.floor = beta, floor

    def weights(self, norms):
        inv = [1.0 / max(n, 1e-12) for n in norms]
        raw = [v / sum(inv) for v in inv]
        self.ema = [self.beta * e + (1 - self.beta) * r for e, r in zip(self.ema, raw)]
        w = [max(e, self.floor) for e in self.ema]
        return [v / sum(w) for v in w]


def rss_kb():
    """Resident set size now, in kB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def blas_core():
    """The OpenBLAS kernel torch's BLAS runs (libopenblas is already loaded by torch)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["mlp", "dual_task"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=7)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--infer", action="store_true")
    mode.add_argument("--gaba", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(0)
    model = Mlp() if a.model == "mlp" else DualTask()
    x = torch.randn(a.batch, 17) if a.model == "mlp" else torch.randn(a.batch, 30, 17)
    y_rul = torch.rand(a.batch, 1) * 125
    y_health = torch.randint(0, 3, (a.batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train(not a.infer)
    trunk = trunk_params(model)
    gaba = Gaba(2)

    def step():
        if a.infer:
            with torch.no_grad():
                model(x)
            return
        opt.zero_grad(set_to_none=True)
        if a.gaba:
            r, h = model(x)
            losses = [nn.functional.mse_loss(r, y_rul), nn.functional.cross_entropy(h, y_health)]
            norms = []
            for loss_k in losses:
                g = torch.autograd.grad(loss_k, trunk, retain_graph=True)
                norms.append(torch.sqrt(sum(gi.pow(2).sum() for gi in g)).item())
            w = gaba.weights(norms)
            (w[0] * losses[0] + w[1] * losses[1]).backward()
            opt.step()
            return
        r, h = model(x)
        loss = 0.5 * nn.functional.mse_loss(r, y_rul) + 0.5 * nn.functional.cross_entropy(h, y_health)
        loss.backward()
        opt.step()

    rss_before = rss_kb()
    ms = []
    for rep in range(-1, a.repeats):  # rep -1 warms up
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        if rep >= 0:
            ms.append((time.perf_counter() - t0) * 1e3 / a.steps)
    mode = "inference" if a.infer else "train_step_gaba" if a.gaba else "train_step"
    print(json.dumps({"model": a.model, "batch": a.batch, "mode": mode,
                      "median_ms": round(statistics.median(ms), 4), "ms": [round(v, 4) for v in ms],
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "blas_core": blas_core(),
                      "rss_before_kb": rss_before,
                      "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
