#!/usr/bin/python3
"""INT8 QK quantization granularities on the adversarial inputs of the GPU suite (CPU, numpy): the
attention output's error against fp64 with the same block mask, every other step exact (P and V in
full precision), so what is left is the QK quantization alone. Backs the reading of the runtime's
adversarial gaps (tests/gpu/test_runtime.cpp, "adversarial inputs for every PV format"):
  q/16 k/64   one Q scale per 16 rows, one K scale per 64-token tile after the head's per-channel K
              mean is subtracted (what kernels/runtime/prep.cu did before 2026-11-30),
  q/1 k/64    one Q scale per row (what it does now),
  q/16 k/16   one K scale per 16 keys,
  q/1 k/1     one scale per row of Q and per key (the finest symmetric INT8 there is).
Variants (as in the GPU suite; N = 118, 233, 800 with 13, 2, 32 text tokens as a suffix):
  1  text q/k x4 and text v x8, random 20% tile masks
  2  peaked rows (q sigma 3) with one outlier V token x50, random 50% tile masks
Prints per variant, head dim and scheme the worst, third-worst and median cosine and the worst rel L1
over the heads (seeds x layouts). Usage: bench/qk_quant_error.py [--seeds 16]"""
import argparse

import numpy as np

TILE = 64


def quant_rows(x, rows):
    """Symmetric INT8 with one scale per `rows` consecutive rows (abs max / 127, round to nearest)."""
    out = np.empty_like(x)
    for r in range(0, len(x), rows):
        blk = x[r:r + rows]
        s = np.abs(blk).max() / 127 or 1.0
        out[r:r + rows] = np.clip(np.rint(blk / s), -127, 127) * s
    return out


def attention(q, k, v, mask, scale):
    s = np.where(mask, (q @ k.T) * scale, -np.inf)
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    return p @ v


def head(variant, d, n, text, seed, q_rows, k_rows):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
    if variant == 1:
        q[n - text:] *= 4
        k[n - text:] *= 4
        v[n - text:] *= 8
        density = 0.2
    else:
        q *= 3
        v[n // 3] *= 50
        density = 0.5
    nb = -(-n // TILE)
    tiles = rng.random((nb, nb)) < density
    for r in range(nb):
        if not tiles[r].any():
            tiles[r, rng.integers(nb)] = True
    mask = np.kron(tiles, np.ones((TILE, TILE), bool))[:n, :n]
    scale = 1 / np.sqrt(d)
    ref = attention(q, k, v, mask, scale)
    mean = k.mean(axis=0)  # softmax is invariant to it along a query row
    out = attention(quant_rows(q, q_rows), quant_rows(k - mean, k_rows) + mean, v, mask, scale)
    cos = (ref * out).sum() / np.linalg.norm(ref) / np.linalg.norm(out)
    return cos, np.abs(ref - out).sum() / np.abs(ref).sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=16)
    args = ap.parse_args()
    layouts = ((118, 13), (233, 2), (800, 32))
    for variant in (1, 2):
        for d in (64, 128):
            for q_rows, k_rows in ((16, 64), (1, 64), (16, 16), (1, 1)):
                res = [head(variant, d, n, t, s, q_rows, k_rows) for s in range(args.seeds) for n, t in layouts]
                cos = sorted(c for c, _ in res)
                print(f"variant {variant} D {d:3d} q/{q_rows:<2d} k/{k_rows:<2d}: worst cosine {cos[0]:.5f}, "
                      f"third {cos[2]:.5f}, median {cos[len(cos) // 2]:.5f}; worst rel L1 "
                      f"{100 * max(l for _, l in res):.2f}%", flush=True)


if __name__ == "__main__":
    main()
