#!/usr/bin/python3
"""FLOPs of one step of the benchmark models, counted from their architecture (examples/*.mtl).

    python3 bench/flops.py mlp|dual_task [--batch 256] [--n-params N]

Prints one JSON object: forward and training-step FLOPs for the batch, the parameter count the
layer list implies, and the per-layer forward FLOPs per sample. With --n-params (the count the
compiled model reports, step_bench's "n_params") a mismatch is an error: the layer list below is
written by hand from the spec, and the parameter count is how we notice that it drifted.

What is counted: the matrix products only (convolutions, LSTM gate products, attention's
projections and its score and value products, dense layers), 2 FLOPs per multiply-add, as
2·m·n·k. Elementwise work (activations, LSTM gate nonlinearities, normalisation, softmax, losses,
AdamW) is left out: it is a few percent of the FLOPs and no FMA unit runs it at peak anyway.

A training step is taken as 3x the forward products: the backward pass computes, for every
product, the gradient of its weights and of its input, each a product of the same size. That
slightly overcounts the first layer, whose input gradient nobody needs (0.1 % of DualTaskModel's
forward FLOPs), and ignores dropout/batchnorm/softmax backward (elementwise).
"""
import argparse
import json
import sys


def dense(name, n_in, n_out, positions=1, bias=True):
    """A dense layer applied at `positions` positions per sample (time steps before pooling)."""
    return name, n_in * n_out + (n_out if bias else 0), 2 * positions * n_in * n_out


def mlp():
    """examples/dual_mlp.mtl: 17 -> 32 relu, heads 32 -> 1 and 32 -> 3."""
    return [dense("shared.0", 17, 32), dense("rul.head.0", 32, 1), dense("health.head.0", 32, 3)]


def dual_task(T=30, F=17):
    """examples/dual_task.mtl, the book's DualTaskModel on [T, F] windows."""
    layers = []
    # CNN: conv1d k=3 pad 1 keeps T; at each of T positions a [cout, cin*3] x [cin*3] product.
    # Each conv is followed by batchnorm (2 parameters per channel, no products).
    cin = F
    for i, cout in enumerate((64, 128, 64)):
        name, params, flops = dense(f"conv{i}", cin * 3, cout, positions=T, bias=False)
        layers.append((name, params + 2 * cout, flops))
        cin = cout
    # BiLSTM, 2 layers, hidden H per direction. Per direction and time step: the input product
    # [4H, n_in] and the recurrent product [4H, H]; PyTorch's layout has two bias vectors.
    H = 256
    n_in = cin
    for layer in range(2):
        for d in ("fwd", "bwd"):
            params = 4 * H * n_in + 4 * H * H + 2 * 4 * H
            flops = 2 * T * 4 * H * n_in + 2 * T * 4 * H * H
            layers.append((f"lstm.l{layer}.{d}", params, flops))
        n_in = 2 * H
    # Self-attention on D = 2H = 512, 8 heads: the fused Q/K/V projection and the output
    # projection at every time step; per head, scores Q K^T ([T, d] x [d, T]) and the weighted
    # values ([T, T] x [T, d]), d = D / heads, which over all heads is 2·T·T·D each.
    D = n_in
    layers.append(dense("attn.in_proj", D, 3 * D, positions=T))
    layers.append(("attn.scores", 0, 2 * T * T * D))
    layers.append(("attn.values", 0, 2 * T * T * D))
    layers.append(dense("attn.out_proj", D, D, positions=T))
    layers.append(("layernorm", 2 * D, 0))
    # pool(last), then the funnel and the heads: one position per sample.
    width = D
    for i, n in enumerate((256, 64, 32)):
        layers.append(dense(f"funnel.{i}", width, n))
        width = n
    w = width
    for i, n in enumerate((64, 32, 16, 1)):
        layers.append(dense(f"rul.head.{i}", w, n))
        w = n
    w = width
    for i, n in enumerate((32, 16, 3)):
        layers.append(dense(f"health.head.{i}", w, n))
        w = n
    return layers


MODELS = {"mlp": mlp, "dual_task": dual_task}


def count(model, batch):
    layers = MODELS[model]()
    fwd = sum(f for _, _, f in layers) * batch
    return {"model": model, "batch": batch, "forward_flops": fwd, "train_step_flops": 3 * fwd,
            "params": sum(p for _, p, _ in layers),
            "forward_flops_per_sample": {n: f for n, _, f in layers if f}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--n-params", type=int)
    a = ap.parse_args()
    out = count(a.model, a.batch)
    if a.n_params is not None and a.n_params != out["params"]:
        sys.exit(f"flops.py: the layer list of {a.model} has {out['params']} parameters, the compiled "
                 f"model {a.n_params}: bench/flops.py no longer matches the spec")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
