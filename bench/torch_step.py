#!/usr/bin/python3
"""PyTorch side of the benchmark: the same models, the same step (forward, 0.5·MSE + 0.5·CE,
backward, AdamW), batch 256, 2 threads. Prints one JSON object like step_bench.

    /usr/bin/python3 bench/torch_step.py mlp|dual_task [--batch 256] [--steps N] [--repeats R] [--infer]

Run it with OMP_WAIT_POLICY=PASSIVE and the OpenBLAS kernel chosen (run.sh does both).
"""
import argparse
import json
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["mlp", "dual_task"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--infer", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = Mlp() if a.model == "mlp" else DualTask()
    x = torch.randn(a.batch, 17) if a.model == "mlp" else torch.randn(a.batch, 30, 17)
    y_rul = torch.rand(a.batch, 1) * 125
    y_health = torch.randint(0, 3, (a.batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train(not a.infer)

    def step():
        if a.infer:
            with torch.no_grad():
                model(x)
            return
        opt.zero_grad(set_to_none=True)
        r, h = model(x)
        loss = 0.5 * nn.functional.mse_loss(r, y_rul) + 0.5 * nn.functional.cross_entropy(h, y_health)
        loss.backward()
        opt.step()

    ms = []
    for rep in range(-1, a.repeats):  # rep -1 warms up
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        if rep >= 0:
            ms.append((time.perf_counter() - t0) * 1e3 / a.steps)
    print(json.dumps({"model": a.model, "batch": a.batch, "mode": "inference" if a.infer else "train_step",
                      "median_ms": round(statistics.median(ms), 4), "ms": [round(v, 4) for v in ms],
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
