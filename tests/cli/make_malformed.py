"""Writes one malformed paro-dump per case into DIR (argument), with h5py. Prints the case names."""
import os, sys
import h5py, numpy as np

out = sys.argv[1]
rng = np.random.default_rng(3)
GRID, TEXT, S, NH, D = (2, 3, 5), 4, 2, 2, 64
N = TEXT + 2 * 3 * 5


def write(name, root=None, layer=None, skip_layers=False, samples=True, step=None):
    path = os.path.join(out, name + ".h5")
    with h5py.File(path, "w") as f:
        attrs = {"paro_format": "paro-dump", "paro_version": 1, "grid": np.array(GRID), "text_tokens": TEXT,
                 "text_position": "prefix"}
        attrs.update(root or {})
        for k, v in attrs.items():
            if v is not None:
                f.attrs[k] = v
        if samples:
            f["samples/timestep"] = np.array([1.0, 2.0])
            f["samples/prompt"] = np.array([0, 0])
            if step is not None:
                f["samples/step"] = step
        f.create_group("layers")
        if skip_layers:
            print(name)
            return
        data = {"q": rng.standard_normal((S, NH, N, D)).astype(np.float16),
                "k": rng.standard_normal((S, NH, N, D)).astype(np.float16)}
        data.update(layer or {})
        for k, v in data.items():
            if v is not None:
                f[f"layers/0/{k}"] = v
    print(name)


q = rng.standard_normal((S, NH, N, D)).astype(np.float32)
nan_q = q.copy(); nan_q[1, 1, 7, 3] = np.nan
inf_k = q.copy(); inf_k[0, 1, 2, 0] = np.inf
write("missing_format", root={"paro_format": None})
write("wrong_format", root={"paro_format": "paro-pattern"})
write("unknown_version", root={"paro_version": 7})
write("grid_mismatch", root={"grid": np.array([2, 3, 6])})
write("zero_grid", root={"grid": np.array([0, 3, 5])})
write("unknown_text_position", root={"text_position": "middle"})
write("nan_in_q", layer={"q": nan_q})
write("inf_in_k", layer={"k": inf_k})
write("qk_shape_mismatch", layer={"k": rng.standard_normal((S, NH, N, 32)).astype(np.float16)})
write("integer_tensors", layer={"q": np.ones((S, NH, N, D), np.int32), "k": np.ones((S, NH, N, D), np.int32)})
write("no_layers", skip_layers=True)
write("missing_k", layer={"k": None})
write("missing_samples", samples=False)
write("float_steps", step=np.array([0.0, 0.7]))
attn = np.full((S, NH, N, N), 1.0 / N, np.float32); attn[1, 0, 3, 3] = -0.5
write("negative_attention", layer={"q": None, "k": None, "attn": attn})
huge = q.copy(); huge[0, 0, 5, :] = 1e20
write("overflowing_scores", layer={"q": huge, "k": huge})
write("grid_overflow", root={"grid": np.array([2**32, 2**32, 1], np.int64), "text_tokens": 64},
      layer={"q": q[:, :, :64], "k": q[:, :, :64]})
write("wrong_sample_count", layer={"q": q[:1], "k": q[:1]})
# A few kilobytes declaring enormous tensors, and tensors declared but never written.
for name, shape in (("huge_claim", (2**40, NH, N, D)), ("never_written", (S, NH, N, D))):
    write(name, layer={"q": None, "k": None})
    with h5py.File(os.path.join(out, name + ".h5"), "a") as f:
        for t in ("q", "k"):
            f.create_dataset(f"layers/0/{t}", shape=shape, dtype=np.float16, chunks=(1, 1, N, D))
# q as a 4-byte float with a wider exponent (fields 31, 21, 10, 0, 21) holding 1e100: finite as a
# double, infinite as the float32 paro reads tensors as.
write("wide_exponent_q", layer={"q": None})
with h5py.File(os.path.join(out, "wide_exponent_q.h5"), "a") as f:
    wide = h5py.h5t.IEEE_F32LE.copy()
    wide.set_fields(31, 21, 10, 0, 21)
    wide.set_ebias(511)
    values = q.astype(np.float64)
    values[0, 0, 0, 0] = 1e100
    ds = h5py.h5d.create(f["layers/0"].id, b"q", wide, h5py.h5s.create_simple(values.shape))
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, values, mtype=h5py.h5t.NATIVE_DOUBLE)
with open(os.path.join(out, "not_hdf5.h5"), "w") as f:
    f.write("this is not an HDF5 file\n" * 40)
print("not_hdf5")
write("valid")
data = open(os.path.join(out, "valid.h5"), "rb").read()
open(os.path.join(out, "truncated.h5"), "wb").write(data[: len(data) // 2])
print("truncated")
