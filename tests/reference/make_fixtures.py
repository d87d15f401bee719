#!/usr/bin/python3
"""Writes the PyTorch reference fixtures that tests/reference checks compiled models against.

For each case: a PyTorch model mirroring a spec in specs/ (same layers, same parameter names as
mtlc gives them), fixed seeded weights and inputs, one forward and one backward of
sum_k w_k L_k; the weights, buffers, inputs, targets, head outputs, losses, every parameter
gradient and (training mode) the updated batchnorm running statistics go into
fixtures/CASE.safetensors. The C side (torchcheck.c) loads the same weights into the compiled
model and compares. The test suite never needs PyTorch; to regenerate the fixtures:

    /usr/bin/python3 tests/reference/make_fixtures.py      (Debian's python3-torch 1.13)

Deliberately not here: dropout (off in every case: its masks are not PyTorch's by design).
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)


class Seq(nn.Module):
    """nn.Sequential with chosen child names (indices or the spec's layer names)."""

    def __init__(self, items):
        super().__init__()
        self.order = []
        for name, mod in items:
            self.add_module(name, mod)
            self.order.append(name)

    def forward(self, x):
        for n in self.order:
            x = getattr(self, n)(x)
        return x


def seq(*mods, names=None):
    names = names or {}
    return Seq([(names.get(i, str(i)), m) for i, m in enumerate(mods)])


class Residual(Seq):
    def forward(self, x):
        return x + super().forward(x)


class TConv1d(nn.Conv1d):
    """Conv1d on our [B, T, C] layout."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class TBatchNorm(nn.BatchNorm1d):
    def forward(self, x):
        if x.dim() == 3:
            return super().forward(x.transpose(1, 2)).transpose(1, 2)
        return super().forward(x)


class TLSTM(nn.LSTM):
    def __init__(self, *a, **k):
        super().__init__(*a, batch_first=True, **k)

    def forward(self, x):
        return super().forward(x)[0]


class TAttention(nn.MultiheadAttention):
    def __init__(self, *a, **k):
        super().__init__(*a, batch_first=True, **k)

    def forward(self, x):
        return super().forward(x, x, x, need_weights=False)[0]


class Pool(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        if self.kind == "last":
            return x[:, -1]
        if self.kind == "mean":
            return x.mean(dim=1)
        return x.max(dim=1).values


class Model(nn.Module):
    def __init__(self, trunk_name, trunk, heads):
        super().__init__()
        self.trunk_name = trunk_name
        self.add_module(trunk_name, trunk)
        self.task_names = []
        for name, head in heads:
            holder = nn.Module()
            holder.add_module("head", head)
            self.add_module(name, holder)
            self.task_names.append(name)

    def forward(self, x):
        h = getattr(self, self.trunk_name)(x)
        return [getattr(self, t).head(h) for t in self.task_names]


def conv_bn():
    trunk = seq(TConv1d(3, 4, 3, padding=1, bias=False), TBatchNorm(4), nn.ReLU(), TConv1d(4, 5, 5, stride=2))
    return Model("trunk", trunk, [("y", seq(nn.Flatten(), nn.Linear(10, 2)))]), (7, 3)


def lstm_uni():
    return Model("trunk", seq(TLSTM(3, 4)), [("y", seq(Pool("last"), nn.Linear(4, 2)))]), (5, 3)


def lstm_bi2():
    trunk = seq(TLSTM(3, 4, num_layers=2, bidirectional=True), names={0: "rnn"})
    return Model("trunk", trunk, [("y", seq(Pool("mean"), nn.Linear(8, 2)))]), (5, 3)


def attention():
    trunk = seq(Residual([("attn", TAttention(6, 2))]), nn.LayerNorm(6))
    heads = [("y", seq(Pool("max"), nn.Linear(6, 2))), ("c", seq(Pool("last"), nn.Linear(6, 3)))]
    return Model("trunk", trunk, heads), (5, 6)


def dual_task_small():
    def block(cin, cout):
        return [TConv1d(cin, cout, 3, padding=1, bias=False), TBatchNorm(cout), nn.ReLU()]

    layers = block(5, 4) + block(4, 6) + block(6, 4)
    layers += [TLSTM(4, 3, num_layers=2, bidirectional=True), Residual([("attn", TAttention(6, 2))]),
               nn.LayerNorm(6), Pool("last"), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU()]
    trunk = seq(*layers, names={9: "lstm"})
    rul = seq(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1), nn.ReLU())
    health = seq(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    return Model("trunk", trunk, [("rul", rul), ("health", health)]), (6, 5)


# case name -> (builder, spec file, training mode, task specs [(name, kind, width, weight)])
CASES = {
    "conv_bn_train": (conv_bn, "conv_bn.mtl", True, [("y", "real", 2, 1.0)]),
    "conv_bn_eval": (conv_bn, "conv_bn.mtl", False, [("y", "real", 2, 1.0)]),
    "lstm_uni": (lstm_uni, "lstm_uni.mtl", True, [("y", "real", 2, 1.0)]),
    "lstm_bi2": (lstm_bi2, "lstm_bi2.mtl", True, [("y", "real", 2, 1.0)]),
    "attention": (attention, "attention.mtl", True, [("y", "real", 2, 0.7), ("c", "class", 3, 1.3)]),
    "dual_task_small_train": (dual_task_small, "dual_task_small.mtl", True,
                              [("rul", "real", 1, 0.5), ("health", "class", 3, 0.5)]),
    "dual_task_small_eval": (dual_task_small, "dual_task_small.mtl", False,
                             [("rul", "real", 1, 0.5), ("health", "class", 3, 0.5)]),
}


def write_safetensors(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make(case):
    build, spec, training, tasks = CASES[case]
    torch.manual_seed(1234)
    model, (T, F) = build()
    B = 4
    for name, buf in model.named_buffers():  # non-trivial running statistics for eval mode
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape) * 0.3)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape) + 0.5)
    out = {}
    for name, buf in model.named_buffers():
        if buf.dtype == torch.float32:
            out[name] = buf.detach().numpy().copy()
    for name, p in model.named_parameters():
        out[name] = p.detach().numpy().copy()
    x = torch.randn(B, T, F)
    out["input"] = x.numpy()
    model.train(training)
    preds = model(x)
    total = 0.0
    for (tname, kind, width, weight), pred in zip(tasks, preds):
        if kind == "real":
            target = torch.randn(B, width) * 2
            loss = nn.functional.mse_loss(pred.reshape(B, width), target)
        else:
            target = torch.randint(0, width, (B,))
            loss = nn.functional.cross_entropy(pred, target)
        out[f"target.{tname}"] = target.float().reshape(B, -1).numpy()
        out[f"output.{tname}"] = pred.detach().reshape(B, -1).numpy()
        out[f"loss.{tname}"] = np.array([loss.item()], dtype=np.float32)
        total = total + weight * loss
    total.backward()
    for name, p in model.named_parameters():
        out[f"grad.{name}"] = p.grad.numpy().copy()
    if training:
        for name, buf in model.named_buffers():
            if buf.dtype == torch.float32:
                out[f"after.{name}"] = buf.detach().numpy().copy()
    meta = {"spec": spec, "training": "1" if training else "0", "batch": str(B),
            "weights": json.dumps({t[0]: t[3] for t in tasks}), "torch": torch.__version__}
    write_safetensors(os.path.join(HERE, "fixtures", case + ".safetensors"), out, meta)
    print(f"{case}: {len(out)} tensors")


if __name__ == "__main__":
    for case in sys.argv[1:] or CASES:
        make(case)
