"""Writes mutants of a valid pattern file (argument 1) into a folder (argument 2), one per case, with
h5py; prints the case names. Each mutant breaks one rule of the pattern format that the reader must
refuse (exit 2) and `paro check` must report."""
import os
import shutil
import sys

import h5py
import numpy as np

src, out = sys.argv[1], sys.argv[2]


def mutant(name, edit):
    path = os.path.join(out, name + ".h5")
    shutil.copy(src, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    print(name)


def replace(f, path, data):
    del f[path]
    f[path] = data


mutant("mask_encoding", lambda f: f.attrs.__setitem__("mask_encoding", "bits-column-major"))
for v in (0, -1, 2**62):
    mutant(f"tiles_per_side_{v}".replace("-", "m"), lambda f, v=v: f.attrs.__setitem__("tiles_per_side", np.int64(v)))
mutant("slots_count", lambda f: f["slots"].attrs.__setitem__("count", np.int64(5)))
mutant("objective", lambda f: f.attrs.__setitem__("objective", "best"))
mutant("layers_count_short", lambda f: f["layers"].attrs.__setitem__("count", np.int64(1)))
for name, v in (("density_2", 2.0), ("density_neg", -0.5), ("density_nan", np.nan)):
    mutant(name, lambda f, v=v: replace(f, "layers/0/density", np.full(f["layers/0/density"].shape, v)))
for v in (0, 3):
    mutant(f"qk_bits_{v}", lambda f, v=v: replace(f, "layers/0/qk_bits", np.full(f["layers/0/qk_bits"].shape, v, np.uint8)))
def nan_scores(f):
    f["layers/0/scores"][0, 0, 0] = np.nan


mutant("scores_nan", nan_scores)
mutant("orders_negative", lambda f: replace(f, "layers/0/orders", -np.ones(f["layers/0/orders"].shape, np.int8)))
mutant("orders_rank2", lambda f: replace(f, "layers/0/orders", f["layers/0/orders"][()].reshape(1, -1)))
mutant("masks_huge_claim", lambda f: (f.__delitem__("layers/0/masks"),
                                      f.create_dataset("layers/0/masks", shape=(2**20, 2**20, 2**10), dtype=np.uint8,
                                                       chunks=(1, 1, 1024))))
mutant("masks_never_written", lambda f: (shape := f["layers/0/masks"].shape, f.__delitem__("layers/0/masks"),
                                         f.create_dataset("layers/0/masks", shape=shape, dtype=np.uint8,
                                                          chunks=(1,) + shape[1:])))

# Rules the reader applied and `paro check` did not (check passed these), and rules of the schema
# the reader did not apply (it read these): one definition now, the schema and the reader's rules
# run by both.
mutant("boundaries_not_covering", lambda f: replace(f, "slots/boundaries", np.array([0.1, 0.5, 0.9])))
mutant("boundaries_equal", lambda f: replace(f, "slots/boundaries", np.array([0.0, 0.0, 1.0])))
mutant("options_array", lambda f: f.attrs.__setitem__("options", "[1,2,3]"))
mutant("options_depth_17", lambda f: f.attrs.__setitem__("options", '{"a":' * 17 + "1" + "}" * 17))
mutant("scores_metrics_missing", lambda f: f["layers/0/scores"].attrs.__delitem__("metrics"))
mutant("scores_short", lambda f: (m := f["layers/0/scores"].attrs["metrics"],
                                  replace(f, "layers/0/scores", f["layers/0/scores"][()][:, :, :5]),
                                  f["layers/0/scores"].attrs.__setitem__("metrics", m)))
mutant("layer1_softlink_layer0", lambda f: (f.__delitem__("layers/1"), f.__setitem__("layers/1", h5py.SoftLink("/layers/0"))))
mutant("orders_float", lambda f: replace(f, "layers/0/orders", f["layers/0/orders"][()].astype(np.float32)))
mutant("pv_format_names_dup", lambda f: f.attrs.__setitem__("pv_format_names", ["fp16", "fp16", "fp8_e4m3"]))
mutant("pv_format_names_short", lambda f: f.attrs.__setitem__("pv_format_names", ["int8", "fp16"]))


# Masks whose bits contradict their stored density (calibrate stores the set bits over nb * nb).
def masks_all_zero(f):
    f["layers/0/masks"][...] = 0


def density_mismatch_bits(f):
    f["layers/0/density"][0, 0] = 0.1


mutant("masks_all_zero", masks_all_zero)
mutant("density_mismatch_bits", density_mismatch_bits)
