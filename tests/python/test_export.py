"""`paro export --flex / --authors` against the pattern file read independently with h5py.

The authors' file: `permute` maps each head's order by name to their numbering, `sparse` holds,
for each uniform slot (step * T // num_steps), the mask of the paro slot most of its steps use,
and `lost` lists exactly the steps that then get another mask. The FlexAttention file: the packed
masks bit for bit, token gathers equal to a brute-force sort by the order's axes, and kv-block
lists that rebuild every mask. Both load with torch.load(weights_only=True).
Usage: python3 test_export.py SOURCE_DIR PARO_BINARY   (exit 0 ok, 77 without torch)
"""
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import torch
except ImportError:
    print("no torch: skipped")
    sys.exit(77)
import h5py
import numpy as np

source, paro_bin = Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, str(source / "python"))
from paro import export  # noqa: E402

tmp = Path(tempfile.mkdtemp())
env = dict(os.environ, PARO_PYTHON=sys.executable)


def run(*args, expect=0):
    r = subprocess.run([paro_bin, *args], capture_output=True, text=True, env=env)
    assert r.returncode == expect, (args, r.returncode, r.stdout, r.stderr)
    return r


dump, pattern = tmp / "d.h5", tmp / "p.h5"
run("synth", "-q", "-o", str(dump), "--grid", "3x6x8", "--text", "20", "--text-position", "suffix", "--layers", "2",
    "--heads", "3", "--samples", "6", "--steps", "50", "--no-v")
run("calibrate", "-q", str(dump), "-o", str(pattern), "--density", "0.6", "--slots", "3")
NUM_STEPS = 50
run("export", str(pattern), "--flex", str(tmp / "f.pt"), "--authors", str(tmp / "a.pth"), "--num-steps", str(NUM_STEPS))

with h5py.File(pattern, "r") as f:
    names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["order_names"]]
    nb = int(f.attrs["tiles_per_side"])
    bounds = f["slots/boundaries"][()]
    T = len(bounds) - 1
    orders = [[names[i] for i in f[f"layers/{l}/orders"][()]] for l in range(2)]
    bits = [f[f"layers/{l}/masks"][()] for l in range(2)]
    grid = tuple(int(x) for x in f.attrs["grid"])
    text = int(f.attrs["text_tokens"])
mask = lambda l, t, h: np.unpackbits(bits[l][t, h], bitorder="little")[:nb * nb].reshape(nb, nb).astype(bool)

# The authors' layout.
a = torch.load(tmp / "a.pth", weights_only=True)
theirs = ["FHW", "FWH", "HWF", "HFW", "WHF", "WFH"]
assert a["permute"].shape == (2, 3) and a["sparse"].shape == (T, 2, 3, nb, nb) and a["sparse"].dtype == torch.bool
for l in range(2):
    for h in range(3):
        assert theirs[int(a["permute"][l, h])] == orders[l][h], (l, h)
paro_slot = lambda step: min(int(np.searchsorted(bounds, step / NUM_STEPS, side="right")) - 1, T - 1)
want_lost = []
for u in range(T):
    steps = [s for s in range(NUM_STEPS) if s * T // NUM_STEPS == u]
    counts = collections.Counter(paro_slot(s) for s in steps)
    pick = sorted(counts, key=lambda s: (-counts[s], s))[0]
    want_lost += [[s, u, paro_slot(s)] for s in steps if paro_slot(s) != pick]
    for l in range(2):
        for h in range(3):
            assert np.array_equal(a["sparse"][u, l, h].numpy(), mask(l, pick, h)), (u, l, h)
assert a["lost"] == want_lost, (a["lost"], want_lost)
assert want_lost, "3 slots sharing the later half must differ from 3 uniform slots somewhere"

# The FlexAttention file.
fx = torch.load(tmp / "f.pt", weights_only=True)
assert fx["format"] == "paro-flex" and fx["tiles_per_side"] == nb
coords = [(f, hh, w) for f in range(grid[0]) for hh in range(grid[1]) for w in range(grid[2])]
video = grid[0] * grid[1] * grid[2]
for o, name in enumerate(fx["order_names"]):
    key = lambda i: tuple(coords[i]["FHW".index(axis)] for axis in name)
    want = sorted(range(video), key=key) + list(range(video, video + text))  # text suffix stays last
    assert fx["order_gathers"][o].tolist() == want, name
for l in range(2):
    assert [fx["order_names"][i] for i in fx["orders"][l].tolist()] == orders[l]
    assert np.array_equal(fx["masks_bits"][l].numpy(), bits[l])
    for t in range(T):
        num, idx = export.flex_kv_blocks(fx, t, l)
        for h in range(3):
            m = mask(l, t, h)
            for r in range(nb):
                kept = idx[0, h, r, :num[0, h, r]].tolist()
                assert kept == sorted(np.flatnonzero(m[r]).tolist()), (l, t, h, r)

# Bad input: one line, exit 2, no output.
r = run("export", str(dump), "--flex", str(tmp / "bad.pt"), expect=2)
assert r.stderr.count("\n") == 1 and "paro_format" in r.stderr and not (tmp / "bad.pt").exists(), r.stderr
r = run("export", str(pattern), "--authors", str(tmp / "bad.pth"), "--num-steps", "0", expect=2)
assert "--num-steps" in r.stderr and not (tmp / "bad.pth").exists()
r = run("export", str(pattern), "--flex", str(tmp / "no" / "such" / "dir.pt"), expect=2)
assert r.stderr.count("\n") == 1 and "does not exist" in r.stderr, r.stderr
broken = tmp / "broken.h5"
broken.write_bytes(pattern.read_bytes())
with h5py.File(broken, "r+") as f:
    del f["layers/1/orders"]
r = run("export", str(broken), "--authors", str(tmp / "b.pth"), expect=2)
# paro's own reader refuses it before Python runs, naming the dataset.
assert r.stderr.count("\n") == 1 and "/layers/1/orders: missing" in r.stderr and not (tmp / "b.pth").exists(), r.stderr

# The package's reader refuses what paro's C reader refuses, naming the dataset.
sys.path.insert(0, str(source / "python"))
from paro import pattern as pattern_mod  # noqa: E402
from paro.flex import FlexPattern  # noqa: E402
for name, edit, words in [
        ("zero_slots", lambda f: (f["slots"].__delitem__("boundaries"), f["slots"].create_dataset("boundaries", data=[0.0])),
         "/slots/boundaries: must run from 0 to 1 with at least one slot"),
        ("bad_order", lambda f: f["layers/0/orders"].__setitem__(0, 40), "/layers/0/orders: bad order index 40")]:
    target = tmp / f"{name}.h5"
    target.write_bytes(pattern.read_bytes())
    with h5py.File(target, "r+") as f:
        edit(f)
    c = run("inspect", str(target), expect=2)  # the C reader, the reference
    assert words.split(":")[0] in c.stderr, c.stderr
    try:
        pattern_mod.load(target)
    except pattern_mod.PatternError as e:
        assert words in str(e), e
    else:
        raise SystemExit(f"FAIL: {name} read")

# FlexPattern's argument checks (they come before FlexAttention is needed).
for data, error in ((None, TypeError), ([], TypeError)):
    try:
        FlexPattern(data)
    except error as e:
        assert "data" in str(e), e
    else:
        raise SystemExit(f"FAIL: FlexPattern({data!r})")
try:
    FlexPattern.load(pattern)
except ValueError as e:
    assert "paro export" in str(e) and "--flex" in str(e), e
else:
    raise SystemExit("FAIL: FlexPattern.load of the HDF5 pattern")
fp = FlexPattern.load(tmp / "f.pt")
q = torch.randn(1, 3, fx["tokens"], 16)
for args, words in (((q, q, q, 2, 0), "layer 2"), ((q, q, q, -1, 0), "layer -1"), ((q, q, q, 0, T), f"slot {T}"),
                    ((q, q[:, :, :10], q, 0, 0), "k has shape")):
    try:
        fp.attention(*args, compiled=False)
    except ValueError as e:
        assert words in str(e), e
    else:
        raise SystemExit(f"FAIL: FlexPattern.attention accepted {words}")
try:
    import torch.nn.attention.flex_attention  # noqa: F401
except ImportError:
    try:
        fp.block_mask(0, 0, "cpu")
    except RuntimeError as e:
        assert "PyTorch >= 2.5" in str(e) and torch.__version__ in str(e), e
print("exports ok")
