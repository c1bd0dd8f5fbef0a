"""Writes one malformed paro-dump per case into DIR (argument), with h5py. Prints the case names."""
import os, sys
import h5py, numpy as np

out = sys.argv[1]
rng = np.random.default_rng(3)
GRID, TEXT, S, NH, D = (2, 3, 5), 4, 2, 2, 64
N = TEXT + 2 * 3 * 5


def write(name, root=None, layer=None, skip_layers=False, samples=True, step=None, file_options=None):
    path = os.path.join(out, name + ".h5")
    with h5py.File(path, "w", **(file_options or {})) as f:
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


# Valid files in the other layouts libhdf5 writes: object headers of version 2 (with checksums),
# attributes in dense storage and with creation order, a user block before the superblock (paro's
# raw reading of attribute messages must accept them all).
notes = {f"note_{i}": i for i in range(12)}  # more than 8 attributes: dense storage in the latest format
write("valid_latest_format", root=notes, file_options={"libver": "latest", "track_order": True})
write("valid_latest_compact", file_options={"libver": "latest"})
write("valid_user_block", root=notes, file_options={"userblock_size": 512})
# An external link: the walk follows it into another file, whose header addresses are not this one's.
write("valid_external_link")
with h5py.File(os.path.join(out, "linked.h5"), "w", libver="latest") as f:
    g = f.create_group("notes/deeper/still")
    for i in range(20):
        g.attrs[f"a{i}"] = np.arange(i + 1)
with h5py.File(os.path.join(out, "valid_external_link.h5"), "a") as f:
    f["notes"] = h5py.ExternalLink("linked.h5", "/notes/deeper/still")


def lookup3(data, initval=0):
    """Bob Jenkins' lookup3 hashlittle, the checksum of HDF5's version 2 metadata."""
    m = 0xFFFFFFFF
    rot = lambda x, k: ((x << k) | (x >> (32 - k))) & m
    a = b = c = (0xDEADBEEF + len(data) + initval) & m
    word = lambda i: int.from_bytes(data[i:i + 4].ljust(4, b"\0"), "little")
    i, n = 0, len(data)
    while n > 12:
        a, b, c = (a + word(i)) & m, (b + word(i + 4)) & m, (c + word(i + 8)) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m
        i, n = i + 12, n - 12
    if n == 0:
        return c
    tail = data[i:i + n].ljust(12, b"\0")
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - rot(b, 14)) & m
    a ^= c; a = (a - rot(c, 11)) & m
    b ^= a; b = (b - rot(a, 25)) & m
    c ^= b; c = (c - rot(b, 16)) & m
    a ^= c; a = (a - rot(c, 4)) & m
    b ^= a; b = (b - rot(a, 14)) & m
    c ^= b; c = (c - rot(b, 24)) & m
    return c


def overrun_attribute(name, version2):
    """A dump whose text_tokens attribute message claims a 32,264-byte dataspace in a message of
    about 50 bytes: libhdf5 1.10 reads the value from past the message without an error. In the
    latest format the header's checksum is recomputed, as a hostile file would."""
    write(name, file_options={"libver": "latest"} if version2 else None)
    path = os.path.join(out, name + ".h5")
    b = bytearray(open(path, "rb").read())
    at = b.index(b"text_tokens\0")
    fields = at - (9 if version2 else 8)  # version, flags, name/type/space sizes (2 each), [encoding]
    assert b[fields] == (3 if version2 else 1), "not an attribute message"
    b[fields + 6:fields + 8] = (32264).to_bytes(2, "little")
    if version2:
        start = b.rindex(b"OHDR", 0, at)
        flags = b[start + 5]
        size_at = start + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        end = size_at + width + int.from_bytes(b[size_at:size_at + width], "little")
        assert end > at, "text_tokens is not in chunk 0 of the root's header"
        b[end:end + 4] = lookup3(bytes(b[start:end])).to_bytes(4, "little")
    open(path, "wb").write(bytes(b))


write("valid_latest_checksum", file_options={"libver": "latest"})  # lookup3 against libhdf5's own checksum
check = bytearray(open(os.path.join(out, "valid_latest_checksum.h5"), "rb").read())
start = check.index(b"OHDR")
flags = check[start + 5]
size_at = start + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
end = size_at + (1 << (flags & 3)) + int.from_bytes(check[size_at:size_at + (1 << (flags & 3))], "little")
assert lookup3(bytes(check[start:end])) == int.from_bytes(check[end:end + 4], "little"), "lookup3 is wrong"
overrun_attribute("attribute_overrun", False)
overrun_attribute("attribute_overrun_latest_format", True)
# Samples the schema refuses and calibrate read: a timestep of shape [1, 2], repeated prompt names.
write("timestep_rank2", samples=False)
with h5py.File(os.path.join(out, "timestep_rank2.h5"), "a") as f:
    f["samples/timestep"] = np.array([[1.0, 2.0]])
    f["samples/prompt"] = np.array([0, 0])
write("prompt_names_dup")
with h5py.File(os.path.join(out, "prompt_names_dup.h5"), "a") as f:
    f["samples"].attrs["prompt_names"] = ["a cat", "a cat"]
# Attention rows must sum to 1 (within 0.25): all zeros gave recall 1.0. A real fp16 softmax passes.
write("attn_zero_rows", layer={"q": None, "k": None, "attn": np.zeros((S, NH, N, N), np.float16)})
logits = rng.standard_normal((S, NH, N, N)) * 3
soft = np.exp(logits - logits.max(-1, keepdims=True)); soft /= soft.sum(-1, keepdims=True)
write("valid_attn_fp16", layer={"q": None, "k": None, "attn": soft.astype(np.float16)})
# A layer holds q/k or attn, not both (which would calibrate?).
write("qk_and_attn", layer={"attn": soft.astype(np.float32)})
# Compressed with a filter libhdf5 cannot decode (h5py's own LZF): named, not "corrupt".
if h5py.h5z.filter_avail(h5py.h5z.FILTER_LZF):
    write("lzf_compressed")
    with h5py.File(os.path.join(out, "lzf_compressed.h5"), "a") as f:
        data = f["layers/0/q"][()]
        del f["layers/0/q"]
        f.create_dataset("layers/0/q", data=data, chunks=(1, 1, N, D), compression="lzf")
write("k_and_attn", layer={"q": None, "attn": soft.astype(np.float32)})
# Rules the dump reader applies beyond the schema, which check reports from the reader itself: a step
# not below num_steps, a prompt without a name, a layer scale of inf.
write("step_beyond", step=np.array([10, 50]))
with h5py.File(os.path.join(out, "step_beyond.h5"), "a") as f:
    f["samples"].attrs["num_steps"] = 50
write("prompt_unnamed")
with h5py.File(os.path.join(out, "prompt_unnamed.h5"), "a") as f:
    f["samples/prompt"][...] = np.array([0, 1])
    f["samples"].attrs["prompt_names"] = ["a cat"]
write("scale_inf")
with h5py.File(os.path.join(out, "scale_inf.h5"), "a") as f:
    f["layers/0"].attrs["scale"] = np.inf
