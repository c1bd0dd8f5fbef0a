#!/usr/bin/python3
"""INT8 V quantization schemes on adversarial V (CPU, numpy): the error they add to V and to the
attention output, in paro's 64-token tiles. Backs the choice of the runtime's V scale (issue 3):
  tile x channel   one scale per (tile, channel), the abs max (what kernels/runtime/prep.cu does),
  absmax + tile    V divided by the head's per-channel abs max, then one scale per tile
                   (measured 10-13% faster on the Hopper kernel, reverted: see bench/RESULTS.md),
  rms + tile       the same with the per-channel RMS as the pre-scale (the candidate).
Output error: softmax(q k^T / sqrt(d)) V against the same with the quantized V, dense, fp64.
Usage: bench/v_quant_error.py [--tokens 2048] [--dim 64] [--seed 7]"""
import argparse

import numpy as np

TILE = 64


def quant_tile_channel(v):
    out = np.empty_like(v)
    for t in range(0, len(v), TILE):
        blk = v[t:t + TILE]
        s = np.abs(blk).max(axis=0) / 127
        s[s == 0] = 1
        out[t:t + TILE] = np.clip(np.rint(blk / s), -127, 127) * s
    return out


def quant_prescaled(v, g):
    inv = np.where(g > 0, 1 / np.where(g > 0, g, 1), 0)
    w = v * inv
    out = np.empty_like(v)
    for t in range(0, len(v), TILE):
        blk = w[t:t + TILE]
        s = np.abs(blk).max() / 127 or 1.0
        out[t:t + TILE] = np.clip(np.rint(blk / s), -127, 127) * s * g
    return out


SCHEMES = {
    "tile x channel": quant_tile_channel,
    "absmax + tile": lambda v: quant_prescaled(v, np.abs(v).max(axis=0)),
    "rms + tile": lambda v: quant_prescaled(v, np.sqrt((v * v).mean(axis=0))),
}


def cases(n, d, rng):
    base = rng.standard_normal((n, d))
    token_norm = 0.2 + np.abs(rng.standard_t(3, size=(n, 1)))
    yield "i.i.d. N(0, 1)", base
    yield "one token x50", base * np.where(np.arange(n)[:, None] == n // 3, 50.0, 1.0)
    yield "32 text tokens x8 (share tile 0)", base * np.where(np.arange(n)[:, None] < 32, 8.0, 1.0)
    yield "8 channels x30 in 64 tokens", base * np.where((np.arange(n)[:, None] < 64) & (np.arange(d) < 8), 30.0, 1.0)
    yield "token norms ~ |t3|", base * token_norm


def rel_l1(a, b):
    return np.abs(a - b).sum() / np.abs(b).sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    q, k = rng.standard_normal((2, a.tokens, a.dim))
    s = q @ k.T / np.sqrt(a.dim)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    print(f"N {a.tokens}, D {a.dim}, seed {a.seed}; relative L1 error, V | attention output")
    print(f"{'case':34s}" + "".join(f"{name:>24s}" for name in SCHEMES))
    for name, v in cases(a.tokens, a.dim, rng):
        ref = p @ v
        cells = []
        for quant in SCHEMES.values():
            vq = quant(v)
            cells.append(f"{100 * rel_l1(vq, v):9.2f}% | {100 * rel_l1(p @ vq, ref):6.2f}%")
        print(f"{name:34s}" + "".join(f"{c:>24s}" for c in cells))


if __name__ == "__main__":
    main()
