"""A dump written by h5py is read correctly by `paro calibrate` (orders and per-order recall equal
an independent numpy computation), and h5py reads the pattern file it writes."""
import json, os, subprocess, sys, tempfile
import h5py, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
import paro_ref as ref

PARO = os.environ["PARO"]
tmp = tempfile.mkdtemp(prefix="paro-h5py-")
rng = np.random.default_rng(7)
failures = []

def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)

for case, (grid, text, pos, dtype, D) in enumerate([((3, 7, 9), 21, "prefix", np.float16, 64),
                                                    ((4, 5, 11), 13, "suffix", np.float32, 128)]):
    F, H, W = grid
    N = text + F * H * W
    S, L, NH, b, density = 2, 2, 3, 32, 0.5
    path = os.path.join(tmp, f"dump{case}.h5")
    with h5py.File(path, "w") as f:
        f.attrs["paro_format"] = "paro-dump"
        f.attrs["paro_version"] = 1
        f.attrs["grid"] = np.array(grid, np.int64)
        f.attrs["text_tokens"] = text
        f.attrs["text_position"] = pos
        s = f.create_group("samples")
        s["timestep"] = np.array([900.0, 500.0])
        s["prompt"] = np.array([0, 1])
        qs, ks = {}, {}
        for l in range(L):
            g = f.create_group(f"layers/{l}")
            # Anisotropic random q/k so that orders differ: a sharp component along one axis.
            q = rng.standard_normal((S, NH, N, D)) * 1.5
            k = rng.standard_normal((S, NH, N, D)) * 1.5
            g.create_dataset("q", data=q.astype(dtype), chunks=(1, 1, N, D))
            g.create_dataset("k", data=k.astype(dtype), chunks=(1, 1, N, D))
            g.attrs["scale"] = 0.2
            qs[l], ks[l] = q.astype(dtype), k.astype(dtype)
    out = os.path.join(tmp, f"pattern{case}.h5")
    r = subprocess.run([PARO, "calibrate", path, "-o", out, "--block", str(b), "--density", str(density), "-q"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"calibrate exit {r.returncode}: {r.stderr}")
    info = json.loads(subprocess.run([PARO, "inspect", out, "--json"], capture_output=True, text=True, check=True).stdout)
    for key in ["format", "version", "grid", "text_tokens", "block_size", "layers"]:
        check(key in info, f"inspect --json lacks {key}")
    check(info["grid"] == list(grid) and info["text_tokens"] == text and info["block_size"] == [b, b], "layout in json")

    force = ref.forced(N, b, text, pos, grid)
    perms = [ref.permutation(grid, text, pos, o) for o in ref.ORDERS]
    with h5py.File(out, "r") as pf:
        check(pf.attrs["paro_format"] == "paro-pattern", "format attribute")
        names = list(pf.attrs["order_names"])
        nb = int(pf.attrs["tiles_per_side"])
        check(nb == -(-N // b), "tiles_per_side")
        for l in range(L):
            g = pf[f"layers/{l}"]
            masks = g["masks"][...]
            for h in range(NH):
                recalls, objective = np.zeros(6), np.zeros(6)
                agg = [np.zeros((nb, nb)) for _ in range(6)]
                for s_ in range(S):
                    p = ref.softmax_rows(qs[l][s_, h], ks[l][s_, h], 0.2)
                    for o, idx in enumerate(perms):
                        m = ref.tile_mass(p, idx, b)
                        agg[o] += m
                        keep = ref.build_mask(m, force, density)
                        recalls[o] += m[keep].sum() / m.sum() / S
                        objective[o] += ref.free_recall(m, force, density) / S
                best = int(np.argmax(objective))
                chosen = names[g["orders"][h]]
                scores = info["layers"][l]["heads"][h]["scores"]
                paro_recalls = [scores[o]["recall"] for o in ref.ORDERS]
                check(np.allclose(paro_recalls, recalls, rtol=1e-4, atol=1e-6),
                      f"case {case} layer {l} head {h}: recall {paro_recalls} vs numpy {list(recalls)}")
                paro_objective = [scores[o]["objective"] for o in ref.ORDERS]
                check(np.allclose(paro_objective, objective, rtol=1e-4, atol=1e-6),
                      f"case {case} layer {l} head {h}: objective {paro_objective} vs numpy {list(objective)}")
                # Near-ties may go either way in float; a clear winner must agree.
                second = np.sort(objective)[-2]
                if objective[best] - second > 1e-4:
                    check(chosen == ref.ORDERS[best], f"case {case} layer {l} head {h}: chose {chosen}, numpy {ref.ORDERS[best]}")
                bits = np.unpackbits(masks[0, h], bitorder="little")[:nb * nb].reshape(nb, nb).astype(bool)
                check(abs(bits.mean() - g["density"][0, h]) < 1e-12, "density matches the mask bits")
                check(bits[force].all(), "forced tiles kept")
                o = ref.ORDERS.index(chosen)
                rec = agg[o][bits].sum() / agg[o].sum()
                check(abs(rec - g["recall"][0, h]) < 1e-5, f"recall of the stored mask {rec} vs {g['recall'][0, h]}")
                check(info["layers"][l]["heads"][h]["order"] == chosen, "inspect order equals file order")

# The same values in the storage layouts h5py writes: paro reads per-head chunks and contiguous
# data of its own types without libhdf5 (direct reads, checked once against libhdf5) and everything
# else through it. Every layout must give the same floats (the pattern's source checksum is the
# CRC-32 of the floats read) and the same pattern.
grid, text, S, L, NH, D = (2, 12, 16), 8, 2, 2, 3, 64
N = text + 2 * 12 * 16
values = {t: rng.standard_normal((S, NH, N, D)).astype(np.float16) for t in ("q", "k")}
layouts = {
    "contiguous": dict(),
    "per-head chunks": dict(chunks=(1, 1, N, D)),
    "two-head chunks": dict(chunks=(1, 2, N, D)),
    "half-row chunks": dict(chunks=(1, 1, N // 2, D)),
    "gzip": dict(chunks=(1, 1, N, D), compression="gzip"),
    "shuffle": dict(chunks=(1, 1, N, D), shuffle=True),
    "big-endian float32": dict(dtype=">f4"),
    "float32 per-head chunks": dict(dtype="<f4", chunks=(1, 1, N, D)),
    "float64": dict(dtype="<f8"),
    "user block, latest format": dict(chunks=(1, 1, N, D), file=dict(userblock_size=1024, libver="latest")),
}
results = {}
for name, opts in layouts.items():
    opts = dict(opts)
    file_opts = opts.pop("file", {})
    path = os.path.join(tmp, "layout.h5")
    with h5py.File(path, "w", **file_opts) as f:
        f.attrs.update({"paro_format": "paro-dump", "paro_version": 1, "grid": np.array(grid, np.int64),
                        "text_tokens": text, "text_position": "prefix"})
        f["samples/timestep"] = np.array([900.0, 500.0])
        f["samples/prompt"] = np.array([0, 1])
        for l in range(L):
            for t, v in values.items():
                dtype = opts.get("dtype", np.float16)
                f.create_dataset(f"layers/{l}/{t}", data=v.astype(dtype), **{k: x for k, x in opts.items() if k != "dtype"})
    out = os.path.join(tmp, "layout_pattern.h5")
    r = subprocess.run([PARO, "calibrate", path, "-o", out, "--block", "32", "--density", "0.5", "-q"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"layout {name}: calibrate exit {r.returncode}: {r.stderr}")
    if r.returncode == 0:
        with h5py.File(out, "r") as pf:
            results[name] = (pf.attrs["source_checksum"], pf["layers/0/orders"][...].tolist(),
                             pf["layers/1/masks"][...].tobytes())
first = next(iter(results.values()), None)
for name, got in results.items():
    check(got[0] == first[0], f"layout {name}: source checksum {got[0]}, the contiguous dump's {first[0]}")
    check(got[1:] == first[1:], f"layout {name}: another pattern than the contiguous dump's")

print(f"{len(failures)} failed" if failures else "h5py interop: all checks passed")
sys.exit(1 if failures else 0)
