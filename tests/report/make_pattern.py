#!/usr/bin/python3
"""Writes a synthetic paro-pattern v1 file (layout of lib/core/paro/pattern.cpp write_pattern_file) of any
size, without calibrating anything: for report timing and report tests that need no dump.

usage: make_pattern.py OUT.h5 [--layers 42] [--heads 48] [--grid 13 30 45] [--text 226]
                       [--slots 10] [--samples 4] [--seed 0]
Masks are diagonal bands plus text rows/columns, with a per-head band width; density is measured
from the mask; recall, scores and per-sample choices are random but plausible.
"""
import argparse
import json

import h5py
import numpy as np

ORDERS = ["FHW", "FWH", "HFW", "HWF", "WFH", "WHF"]
METRICS = ["objective", "sparsity", "incoherence", "recall", "output_rel_l1", "free_recall"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=42)
    ap.add_argument("--heads", type=int, default=48)
    ap.add_argument("--grid", type=int, nargs=3, default=[13, 30, 45])
    ap.add_argument("--text", type=int, default=226)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--slots", type=int, default=10)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    rng = np.random.default_rng(a.seed)
    n = a.text + a.grid[0] * a.grid[1] * a.grid[2]
    nb = (n + a.block - 1) // a.block
    nbytes = (nb * nb + 7) // 8
    T, S, H = a.slots, a.samples, a.heads
    text_tiles = (a.text + a.block - 1) // a.block
    r = np.arange(nb)
    dist = np.abs(r[:, None] - r[None, :])

    with h5py.File(a.out, "w") as f:
        f.attrs["paro_format"] = "paro-pattern"
        f.attrs["paro_version"] = np.int64(1)
        f.attrs["tool_version"] = "make_pattern.py"
        f.attrs["options"] = json.dumps({"density": 0.3, "objective": "recall", "slots": T, "synthetic": True})
        f.attrs["source_dump"] = "none.h5"
        f.attrs["source_checksum"] = "crc32:00000000"
        f.attrs["created"] = "2026-11-27T00:00:00Z"
        f.attrs["objective"] = "recall"
        f.attrs["objective_higher_is_better"] = np.int64(1)
        f.attrs["grid"] = np.array(a.grid, dtype=np.int64)
        f.attrs["text_tokens"] = np.int64(a.text)
        f.attrs["text_position"] = "prefix"
        f.attrs["block_q"] = np.int64(a.block)
        f.attrs["block_k"] = np.int64(a.block)
        f.attrs["tiles_per_side"] = np.int64(nb)
        f.attrs["num_samples"] = np.int64(S)
        f.attrs["order_names"] = np.array(ORDERS, dtype=h5py.string_dtype())
        f.attrs["mask_encoding"] = "bits-row-major-lsb-first"
        g = f.create_group("slots")
        g.attrs["count"] = np.int64(T)
        if T == 1:
            b = np.array([0.0, 1.0])
        else:  # the paper's plan: T-1 slots over the first half, the last one the later half
            b = np.concatenate([np.linspace(0.0, 0.5, T), [1.0]])
        g.create_dataset("boundaries", data=b.astype(np.float64))
        ls = f.create_group("layers")
        ls.attrs["count"] = np.int64(a.layers)
        for l in range(a.layers):
            lg = ls.create_group(str(l))
            lg.attrs["heads"] = np.int64(H)
            orders = rng.integers(0, 6, H).astype(np.uint8)
            masks = np.zeros((T, H, nbytes), np.uint8)
            density = np.zeros((T, H))
            for h in range(H):
                base = rng.integers(1, max(2, nb // 4))
                for t in range(T):
                    m = dist <= base + t % 3
                    m[:text_tiles, :] = True
                    m[:, :text_tiles] = True
                    density[t, h] = m.mean()
                    masks[t, h] = np.packbits(m.reshape(-1), bitorder="little")[:nbytes]
            recall = np.clip(0.75 + 0.25 * rng.random((T, H)) ** 0.3, 0, 1)
            scores = rng.random((H, 6, len(METRICS)))
            scores[:, :, 2] = 1 + 30 * rng.random((H, 6))  # incoherence
            scores[:, :, 4] = -1
            for h in range(H):
                scores[h, orders[h], 0] = scores[h, :, 0].max() + 0.01
            sample_order = np.repeat(orders[:, None], S, axis=1)
            flip = rng.random((H, S)) < 0.08
            sample_order[flip] = rng.integers(0, 6, flip.sum())
            sample_recall = np.clip(recall.mean(axis=0)[:, None] - 0.05 * rng.random((H, S)), 0, 1)
            lg.create_dataset("orders", data=orders)
            lg.create_dataset("qk_bits", data=np.full(H, 8, np.uint8))
            lg.create_dataset("pv_bits", data=np.full(H, 8, np.uint8))
            lg.create_dataset("masks", data=masks, chunks=(1, 1, nbytes), compression="gzip", compression_opts=6,
                              shuffle=True)
            lg.create_dataset("density", data=density)
            lg.create_dataset("recall", data=recall)
            sd = lg.create_dataset("scores", data=scores)
            sd.attrs["metrics"] = np.array(METRICS, dtype=h5py.string_dtype())
            lg.create_dataset("sample_order", data=sample_order.astype(np.uint8))
            lg.create_dataset("sample_recall", data=sample_recall)


if __name__ == "__main__":
    main()
