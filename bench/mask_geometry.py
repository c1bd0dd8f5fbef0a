#!/usr/bin/python3
"""Mask geometry for 128-row query blocks (issue 12, part 3): what 64 x 64 masks cost a kernel whose
warpgroups share 128-row query blocks. For each calibrated mask, two ways:
  union:        both 64-row halves walk the union of their two tile rows (K/V loaded once for both,
                but tiles one half does not need are computed and masked): work = 2 |r0 or r1| tiles
                per pair of rows against |r0| + |r1|;
  per-half:     each half walks its own list (no extra work); the K/V tiles both halves need,
                |r0 and r1|, are the loads a shared ring could serve once.
Patterns come from `paro calibrate` of planted dumps (`paro synth`, fresh seeds) at several
densities and with a recall target. Then the other choice, masks calibrated at 128 x 64 (or 192 x 64: rows three at a time, the triples
of the Hopper kernel at D 128): from each head's exact attention (numpy, under the head's chosen
order, mean over its samples), the share of the attention mass the best masks keep at the same
computed area, 64 x 64 tiles against 128 x 64 and 192 x 64.
Last, what `paro calibrate --mask-rows 3` itself gives on the same dumps: its masks' recall against
tile-by-tile masks, and the share of tile rows in runs of three rows that keep the same tiles (what
the D 128 Hopper kernel computes as triples on shared K/V stages, runtime.cpp's schedule_items).
Usage: bench/mask_geometry.py [--paro build/paro] [--cases 4]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from paro import pattern as pattern_mod  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--paro", default="build/paro")
ap.add_argument("--cases", type=int, default=4)
a = ap.parse_args()
rng = np.random.default_rng(12)
tmp = tempfile.mkdtemp(prefix="paro-geometry-")
print(f"{'calibration':>16} {'masks':>6} {'density 64x64':>14} {'union work x':>13} {'shared loads':>13}")
for label, args in (("--density 0.5", ["--density", "0.5"]), ("--density 0.3", ["--density", "0.3"]),
                    ("--density 0.2", ["--density", "0.2"]), ("--recall 0.9", ["--recall", "0.9"])):
    dens, work, shared, count = [], [], [], 0
    for c in range(a.cases):
        F, H, W = (int(x) for x in rng.integers([6, 16, 20], [10, 28, 36]))
        text = int(rng.integers(0, 120))
        dump, pat = os.path.join(tmp, f"d{c}.h5"), os.path.join(tmp, f"p{c}.h5")
        if not os.path.exists(dump):
            subprocess.run([a.paro, "synth", "-q", "-o", dump, "--grid", f"{F}x{H}x{W}", "--text", str(text),
                            "--layers", "2", "--heads", "4", "--samples", "2", "--no-v", "--seed", str(100 + c)],
                           check=True)
        subprocess.run([a.paro, "calibrate", "-q", dump, "-o", pat] + args, check=True)
        p = pattern_mod.load(pat)
        nb = p.tiles_per_side
        for layer in range(p.layers):
            for slot in range(p.slots):
                for h in range(p.heads(layer)):
                    m = p.mask(slot, layer, h)
                    if nb % 2:
                        m = np.vstack([m, np.zeros((1, nb), bool)])  # the last row pairs with nothing
                    r0, r1 = m[0::2], m[1::2]
                    kept = m.sum()
                    union = (r0 | r1).sum()
                    dens.append(kept / (nb * nb))
                    work.append(2 * union / kept)
                    shared.append((r0 & r1).sum() / union)
                    count += 1
    print(f"{label:>16} {count:6d} {np.mean(dens):14.3f} {np.mean(work):12.3f}x {np.mean(shared):12.1%}")


def tile_mass(p, rows, cols):
    """Sums of p [N, N] over tiles of rows x cols (ragged at the end)."""
    n = p.shape[0]
    r, c = -(-n // rows), -(-n // cols)
    padded = np.zeros((r * rows, c * cols))
    padded[:n, :n] = p
    return padded.reshape(r, rows, c, cols).sum(axis=(1, 3))


def best_recall(mass, area):
    """Share of the mass the `area` heaviest tiles keep."""
    flat = np.sort(mass.ravel())[::-1]
    return flat[:max(1, int(round(area)))].sum() / flat.sum()


print()
print(f"{'density (area)':>15} {'heads':>6} {'recall 64x64':>13} {'recall 128x64':>14} {'lost':>7} "
      f"{'recall 192x64':>14} {'lost':>7}")
for density in (0.5, 0.3, 0.2, 0.1):
    r64, r128, r192 = [], [], []
    for c in range(a.cases):
        dump, pat = os.path.join(tmp, f"d{c}.h5"), os.path.join(tmp, f"p{c}.h5")
        p = pattern_mod.load(pat)
        with h5py.File(dump, "r") as f:
            for layer in range(p.layers):
                g = f[f"layers/{layer}"]
                scale = g.attrs.get("scale", 1 / np.sqrt(g["q"].shape[-1]))
                for h in range(p.heads(layer)):
                    gather = pattern_mod.order_gather(p.orders[layer][h], p.grid, p.text_tokens, p.text_position)
                    att = 0
                    for s in range(g["q"].shape[0]):
                        q = g["q"][s, h].astype(np.float64)[gather]
                        k = g["k"][s, h].astype(np.float64)[gather]
                        z = q @ k.T * scale
                        z = np.exp(z - z.max(axis=1, keepdims=True))
                        att = att + z / z.sum(axis=1, keepdims=True)
                    m64, m128, m192 = tile_mass(att, 64, 64), tile_mass(att, 128, 64), tile_mass(att, 192, 64)
                    r64.append(best_recall(m64, density * m64.size))
                    r128.append(best_recall(m128, density * m64.size / 2))
                    r192.append(best_recall(m192, density * m64.size / 3))
    print(f"{density:15.2f} {len(r64):6d} {np.mean(r64):13.4f} {np.mean(r128):14.4f} "
          f"{np.mean(r64) - np.mean(r128):7.4f} {np.mean(r192):14.4f} {np.mean(r64) - np.mean(r192):7.4f}")


def triple_rows(m):
    """Rows the runtime runs as triples: along each run of rows with the same kept tiles, three at a time
    (not counting tail triples, which the runtime forms from a head's last nb % 3 rows: a slight undercount)."""
    n, r, rows = m.shape[0], 0, 0
    while r + 2 < n:
        if m[r].any() and (m[r + 1] == m[r]).all() and (m[r + 2] == m[r]).all():
            rows, r = rows + 3, r + 3
        else:
            r += 1
    return rows


print()
print(f"{'calibration':>16} {'masks':>6} {'recall rows 1':>14} {'rows 3':>8} {'lost':>7} {'triple rows 1':>14} {'rows 3':>8}")
for label, args in (("--density 0.5", ["--density", "0.5"]), ("--density 0.3", ["--density", "0.3"]),
                    ("--density 0.2", ["--density", "0.2"]), ("--recall 0.9", ["--recall", "0.9"])):
    recall, triples, count = {1: [], 3: []}, {1: [], 3: []}, 0
    for c in range(a.cases):
        dump = os.path.join(tmp, f"d{c}.h5")
        for rows in (1, 3):
            pat = os.path.join(tmp, f"r{rows}_{c}.h5")
            out = subprocess.run([a.paro, "calibrate", "--json", dump, "-o", pat, "--mask-rows", str(rows)] + args,
                                 check=True, capture_output=True, text=True).stdout
            recall[rows].append(json.loads(out)["mean_recall"])
            p = pattern_mod.load(pat)
            for layer in range(p.layers):
                for slot in range(p.slots):
                    for h in range(p.heads(layer)):
                        m = p.mask(slot, layer, h)
                        triples[rows].append(triple_rows(m) / m.shape[0])
                        count += rows == 1
    print(f"{label:>16} {count:6d} {np.mean(recall[1]):14.4f} {np.mean(recall[3]):8.4f} "
          f"{np.mean(recall[1]) - np.mean(recall[3]):7.4f} {np.mean(triples[1]):14.1%} {np.mean(triples[3]):8.1%}")
