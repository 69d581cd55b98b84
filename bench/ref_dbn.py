#!/usr/bin/env python3
"""Greedy layer-wise DBN pretraining in numpy: the yardstick of bench/dbn-pretrain.ts.

The algorithm of dbn-node's Dbn.pretrain with Rbm's defaults: per layer, one pass over the rows
in a fresh random order, minibatches of --batch, CD-1 (h0 = sigmoid(v0 W + bh), a Bernoulli
sample of h0, v1 = sigmoid(hs W' + bv) mean field, h1 = sigmoid(v1 W + bh)), the mean squared
reconstruction error, the classic update with momentum and L2 decay on the weights
(inc = m*inc + lr*(grad - c*W); W += inc; biases without decay), weights N(0, 0.01^2); the next
layer trains on this layer's hidden means.

Usage: ref_dbn.py [--dir /usr/share/datasets/fashion-mnist] [--layers 500,500,2000] [--epochs 1]
                  [--batch 100] [--lr 0.1] [--momentum 0.5] [--weight-decay 0.0002] [--limit N]
Prints JSON: load and pretrain seconds, peak RSS (MiB), reconstruction error per layer.
"""
import argparse, gzip, json, os, resource, struct, time
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--dir", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--layers", default="500,500,2000")
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--batch", type=int, default=100)
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--momentum", type=float, default=0.5)
p.add_argument("--weight-decay", type=float, default=0.0002)
p.add_argument("--limit", type=int, default=0)
a = p.parse_args()


def load_images(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            raise SystemExit(f"{path}: not an IDX image file")
        if a.limit:
            n = min(n, a.limit)
        raw = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    return raw.reshape(n, rows * cols).astype(np.float32) / np.float32(255)


t0 = time.perf_counter()
name = "train-images-idx3-ubyte.gz"
path = os.path.join(a.dir, name)
if not os.path.exists(path):
    path = path[:-3]
X = load_images(path)
t_load = time.perf_counter() - t0

rng = np.random.default_rng(1)
sig = lambda z: 1.0 / (1.0 + np.exp(-z))
lr = np.float32(a.lr); mom = np.float32(a.momentum); decay = np.float32(a.weight_decay)
errors = []
t1 = time.perf_counter()
x = X
for li, nh in enumerate(int(s) for s in a.layers.split(",")):
    nv = x.shape[1]
    W = (rng.standard_normal((nv, nh)) * 0.01).astype(np.float32)
    bv = np.zeros(nv, np.float32); bh = np.zeros(nh, np.float32)
    iW = np.zeros_like(W); ibv = np.zeros_like(bv); ibh = np.zeros_like(bh)
    err = 0.0
    for _ in range(a.epochs):
        order = rng.permutation(x.shape[0])
        err_sum = 0.0
        for s in range(0, x.shape[0], a.batch):
            v0 = x[order[s:s + a.batch]]
            n = np.float32(v0.shape[0])
            h0 = sig(v0 @ W + bh)
            hs = (rng.random(h0.shape, dtype=np.float32) < h0).astype(np.float32)
            v1 = sig(hs @ W.T + bv)
            h1 = sig(v1 @ W + bh)
            err_sum += float(((v0 - v1) ** 2).mean()) * v0.shape[0]
            gW = (v0.T @ h0 - v1.T @ h1) / n
            gW -= decay * W
            iW *= mom; iW += lr * gW; W += iW
            ibv *= mom; ibv += lr * (v0 - v1).mean(0); bv += ibv
            ibh *= mom; ibh += lr * (h0 - h1).mean(0); bh += ibh
        err = err_sum / x.shape[0]
    errors.append(err)
    if li + 1 < len(a.layers.split(",")):
        # hidden means for the layer above, in chunks (no n x nh temporary of float64)
        up = np.empty((x.shape[0], nh), np.float32)
        for s in range(0, x.shape[0], 1000):
            up[s:s + 1000] = sig(x[s:s + 1000] @ W + bh)
        x = up
t_train = time.perf_counter() - t1
print(json.dumps({
    "rows": int(X.shape[0]), "layers": a.layers, "load_s": t_load, "pretrain_s": t_train,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "recon_mse": errors,
    "numpy": np.__version__,
}))
