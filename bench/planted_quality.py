#!/usr/bin/python3
"""Quality benchmark (issue 2): on planted dumps never seen before (fresh seeds and grids), the
share of heads given an accepted order by each objective, and how far each mask lands from the
requested density. Usage: bench/planted_quality.py [--paro build/paro] [--cases 12]"""
import argparse, json, os, subprocess, tempfile
import h5py, numpy as np

ACCEPTED = {"spatial": {"FHW", "FWH"}, "temporal": {"HWF", "WHF"}, "row": {"FHW", "HFW"}, "column": {"FWH", "WFH"}}
ap = argparse.ArgumentParser()
ap.add_argument("--paro", default="build/paro")
ap.add_argument("--cases", type=int, default=12)
ap.add_argument("--density", type=float, default=0.3)
a = ap.parse_args()
rng = np.random.default_rng(2026)
tmp = tempfile.mkdtemp(prefix="paro-quality-")
totals = {o: [0, 0] for o in ["recall", "paper", "output-error"]}
worst_density = 0.0
for c in range(a.cases):
    F, H, W = (int(x) for x in rng.integers([3, 8, 8], [9, 20, 26]))
    text = int(rng.integers(0, 100))
    pos = "prefix" if c % 2 == 0 else "suffix"
    dim = 64 if c % 3 else 128
    dump = os.path.join(tmp, f"d{c}.h5")
    subprocess.run([a.paro, "synth", "-o", dump, "--grid", f"{F}x{H}x{W}", "--text", str(text), "--text-position", pos,
                    "--head-dim", str(dim), "--layers", "2", "--heads", "4", "--samples", "2", "--seed", str(1000 + c),
                    "-q"], check=True)
    with h5py.File(dump) as f:
        planted = [[k.decode() if isinstance(k, bytes) else k for k in f[f"layers/{l}"].attrs["planted_kinds"]] for l in range(2)]
    for obj in totals:
        pat = os.path.join(tmp, f"p{c}-{obj}.h5")
        r = subprocess.run([a.paro, "calibrate", dump, "-o", pat, "--density", str(a.density), "--objective", obj, "-q"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"case {c} {F}x{H}x{W}+{text}: {obj} refused: {r.stderr.strip()}")
            continue
        info = json.loads(subprocess.run([a.paro, "inspect", pat, "--json"], capture_output=True, text=True, check=True).stdout)
        for l, layer in enumerate(info["layers"]):
            for h, head in enumerate(layer["heads"]):
                totals[obj][0] += head["order"] in ACCEPTED[planted[l][h]]
                totals[obj][1] += 1
                worst_density = max(worst_density, max(abs(d - a.density) for d in head["density"]))
print(f"{a.cases} unseen planted dumps, 8 heads each, density {a.density}")
print(f"{'objective':<14} {'accepted':>10} {'share':>8}")
for obj, (ok, n) in totals.items():
    print(f"{obj:<14} {ok:>4} / {n:<4} {ok / max(n, 1):>8.1%}")
print(f"largest |density - target| over all masks: {worst_density:.4f}")
