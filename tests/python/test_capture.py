"""paro.Capture on the toy model (examples/toy_video_dit.py), with Debian's CPU PyTorch.

Independent reference: the test installs its own attention function first (a plain softmax
attention that also keeps every q/k/v it sees); Capture wraps it, so the dump must hold exactly
those tensors (rounded to fp16), the outputs must be that function's, and the file must pass
`paro check` and `paro calibrate`.
Usage: python3 test_capture.py SOURCE_DIR PARO_BINARY   (exit 0 ok, 77 without torch)
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("no torch: skipped")
    sys.exit(77)
import h5py
import numpy as np

source, paro_bin = Path(sys.argv[1]), sys.argv[2]
sys.path[:0] = [str(source / "python"), str(source / "examples")]
import paro  # noqa: E402
import toy_video_dit  # noqa: E402

seen = []


def reference_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    seen.append((q.detach().clone(), k.detach().clone(), v.detach().clone()))
    s = torch.einsum("bhnd,bhmd->bhnm", q, k) / (q.shape[-1] ** 0.5 if scale is None else 1 / scale)
    return torch.einsum("bhnm,bhmd->bhnd", s.softmax(-1), v)


had = hasattr(F, "scaled_dot_product_attention")
original = getattr(F, "scaled_dot_product_attention", None)
F.scaled_dot_product_attention = reference_sdpa
tmp = Path(tempfile.mkdtemp())
model = toy_video_dit.ToyVideoDiT(grid=(3, 8, 10), text=10, blocks=3, heads=4)
x = torch.randn(4, model.tokens, 64)  # batch 4 = [uncond 0, uncond 1, cond 0, cond 1]
with torch.no_grad():
    seen.clear()
    plain = [model(x) for _ in range(3)]
    plain_seen = list(seen)

# 1. Steps 0 and 2 of 3, layers 0 and 2 of 3, heads 1 and 3, the cond half, two prompts, with v.
path = tmp / "d.h5"
seen.clear()
with torch.no_grad(), paro.Capture(path, grid=model.grid, text_tokens=model.text, num_steps=3, steps=[0, 2],
                                   layers=[0, 2], heads=[1, 3], with_v=True, model="toy") as cap:
    outs = []
    for s in range(3):
        cap.step(s, timestep=1000 - 300 * s)
        cap.set_prompts(["a red fox", "a cat"])
        outs.append(model(x))
for a, b in zip(outs, plain):
    assert torch.equal(a, b), "the capture changed the model's output"
assert not list(tmp.glob("*.tmp*")), "temporary file left"
with h5py.File(path, "r") as f:
    assert list(f["layers"]) == ["0", "1"]
    assert [f[f"layers/{l}"].attrs["model_layer"] for l in ("0", "1")] == [0, 2]
    assert list(f["samples/step"][()]) == [0, 0, 2, 2]
    assert list(f["samples/timestep"][()]) == [1000, 1000, 400, 400]
    assert list(f["samples/prompt"][()]) == [0, 1, 0, 1]
    assert list(f["samples"].attrs["prompt_names"]) == ["a red fox", "a cat"]
    assert f["samples"].attrs["num_steps"] == 3
    for dump_layer, model_layer in ((0, 0), (1, 2)):
        for sample, (step, b) in enumerate([(0, 2), (0, 3), (2, 2), (2, 3)]):
            q, k, v = seen[step * 3 + model_layer]  # 3 layers per step, all called
            for name, t in (("q", q), ("k", k), ("v", v)):
                want = t[b, [1, 3]].numpy().astype(np.float16)
                got = f[f"layers/{dump_layer}/{name}"][sample]
                assert got.dtype == np.float16 and np.array_equal(got, want), (name, dump_layer, sample)
    assert f["layers/0/q"].chunks == (1, 1, model.tokens, 64)

env = dict(os.environ)
check = subprocess.run([paro_bin, "check", str(path)], capture_output=True, text=True)
assert check.returncode == 0, check.stdout + check.stderr
cal = subprocess.run([paro_bin, "calibrate", "-q", str(path), "-o", str(tmp / "p.h5"), "--density", "0.5", "--no-force-text", "--no-force-ragged",
                      "--slots", "2"], capture_output=True, text=True)
assert cal.returncode == 0, cal.stderr

# 2. A prompt id without a name is bad input for paro.
with h5py.File(path, "r+") as f:
    f["samples/prompt"][3] = 7
bad = subprocess.run([paro_bin, "calibrate", "-q", str(path), "-o", str(tmp / "q.h5")], capture_output=True, text=True)
assert bad.returncode == 2 and "/samples/prompt" in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr

# 3. Failures leave nothing: an exception inside the block; a layer missing from a recorded step.
for case in ("raise", "missing layer"):
    target = tmp / f"{case.replace(' ', '_')}.h5"
    try:
        with torch.no_grad(), paro.Capture(target, grid=model.grid, text_tokens=model.text, guidance="all") as cap:
            cap.step(0)
            model(x)
            if case == "raise":
                raise KeyError("user error")
            cap.step(1)
            model.blocks[0](model.embed(x))  # only the first layer this step
    except (KeyError, RuntimeError) as e:
        assert case == "raise" or "model layer 1 was not called" in str(e), e
    else:
        raise SystemExit(f"FAIL: {case}: no error")
    assert not target.exists() and not list(tmp.glob(f"{target.name}.tmp*")), f"{case}: a file was left"

# 4. Calls of other lengths pass through unnumbered; the wrapper is removed afterwards.
with torch.no_grad(), paro.Capture(tmp / "e.h5", grid=model.grid, text_tokens=model.text, guidance="all") as cap:
    cap.step(0)
    F.scaled_dot_product_attention(x[:, None, :5], x[:, None, :5], x[:, None, :5])
    model(x)
with h5py.File(tmp / "e.h5", "r") as f:
    assert list(f["layers"]) == ["0", "1", "2"] and f["layers/0"].attrs["model_layer"] == 0
assert F.scaled_dot_product_attention is reference_sdpa

# 5. Bad arguments: refused at the constructor (or the call), naming the argument, no file made.
import warnings  # noqa: E402
out = tmp / "bad"
out.mkdir()
(out / "is_dir.h5").mkdir()
base = dict(grid=model.grid, text_tokens=model.text)
for kwargs, error, words in [
        (dict(path=out / "is_dir.h5"), ValueError, "is a directory"),
        (dict(path=out / "no" / "d.h5"), ValueError, "does not exist"),
        (dict(grid=None), TypeError, "grid"), (dict(grid=64), TypeError, "grid"),
        (dict(grid=(1, 8, 8.7)), TypeError, "grid"), (dict(text_tokens=2.5), TypeError, "text_tokens"),
        (dict(text_tokens=-8), ValueError, "text_tokens"), (dict(num_steps=0), ValueError, "num_steps"),
        (dict(num_steps=-5), ValueError, "num_steps"), (dict(num_steps=50, steps=[60]), ValueError, "steps"),
        (dict(heads=[]), ValueError, "heads"), (dict(heads=[-1]), ValueError, "heads"),
        (dict(heads=[1, 1]), ValueError, "heads"), (dict(layers=[-1]), ValueError, "layers"),
        (dict(with_v="no"), TypeError, "with_v"), (dict(model=None), TypeError, "model"),
        (dict(density=1.5), ValueError, "density"), (dict(density=0.0), ValueError, "density"),
        (dict(threads=-1), ValueError, "threads")]:
    kw = dict(dict(base, path=out / "d.h5"), **kwargs)
    try:
        paro.Capture(kw.pop("path"), **kw)
    except error as e:
        assert words in str(e), (kwargs, e)
    else:
        raise SystemExit(f"FAIL: {kwargs} accepted")
assert sorted(p.name for p in out.iterdir()) == ["is_dir.h5"], list(out.iterdir())


def refused(name, body, error, words, dtype="float16", **kwargs):
    """body(cap) inside a capture must raise `error` with `words`, leaving no file."""
    target = out / f"{name}.h5"
    try:
        with torch.no_grad(), paro.Capture(target, **dict(dict(base, dtype=dtype), **kwargs)) as cap:
            body(cap)
    except error as e:
        assert words in str(e), (name, e)
    else:
        raise SystemExit(f"FAIL: {name}: accepted")
    assert sorted(p.name for p in out.iterdir()) == ["is_dir.h5"], (name, list(out.iterdir()))


def scaled(factor, value=None):
    def body(cap):
        y = model.embed(x)
        q = torch.randn(4, 4, model.tokens, 16) * factor
        if value is not None:
            q[0, 0, 0, 0] = value
        F.scaled_dot_product_attention(q, q, q)
    return body


refused("overflow", scaled(1e5), ValueError, 'dtype="float32"', guidance="all")
refused("nan", scaled(1.0, float("nan")), ValueError, "NaN or Inf", guidance="all")
refused("inf", scaled(1.0, float("inf")), ValueError, "NaN or Inf", guidance="all", dtype="float32")
refused("negative step", lambda cap: cap.step(-3), ValueError, "step")
refused("step past num_steps", lambda cap: cap.step(4), ValueError, "step", num_steps=3)
refused("a call after the last step", lambda cap: (cap.step(3), model(x)), ValueError, "past the last", num_steps=3)
refused("prompts None", lambda cap: cap.set_prompts(None), TypeError, "prompts")
refused("prompts ints", lambda cap: cap.set_prompts([1, 2]), TypeError, "prompts")
refused("head past H", lambda cap: model(x), ValueError, "head 9", heads=[9])
# diffusers' callback marks step num_steps after the last one, and its timesteps are 0-d tensors.
with torch.no_grad(), paro.Capture(out / "callback.h5", num_steps=2, guidance="all", **base) as cap:
    on_step_end = cap.diffusers_callback()
    for i in range(2):
        model(x)
        on_step_end(None, i, torch.tensor(999.0 - i), {})
    cap.step(1, timestep=torch.tensor(500.0))
with h5py.File(out / "callback.h5", "r") as f:
    assert sorted(set(f["samples/step"][()])) == [0, 1], f["samples/step"][()]
(out / "callback.h5").unlink()
# fp32 above the fp16 range is fine in a float32 dump, and paro check takes it.
with torch.no_grad(), paro.Capture(out / "big.h5", dtype="float32", guidance="all", **base) as cap:
    scaled(1e5)(cap)
with h5py.File(out / "big.h5", "r") as f:
    assert np.abs(f["layers/0/q"][()]).max() > 65504 and np.isfinite(f["layers/0/q"][()]).all()
check = subprocess.run([paro_bin, "check", str(out / "big.h5")], capture_output=True, text=True)
assert check.returncode == 0, check.stdout + check.stderr
(out / "big.h5").unlink()

# 6. Nested captures ending out of order restore the function; a pass without step() warns.
outer = paro.Capture(tmp / "o.h5", guidance="all", **base)
inner = paro.Capture(tmp / "i.h5", guidance="all", **base)
with torch.no_grad():
    outer.__enter__()
    inner.__enter__()
    model(x)
    outer.__exit__(None, None, None)
    assert F.scaled_dot_product_attention == inner._sdpa and inner._original is reference_sdpa
    inner.__exit__(None, None, None)
assert F.scaled_dot_product_attention is reference_sdpa
for name in ("o.h5", "i.h5"):
    check = subprocess.run([paro_bin, "check", str(tmp / name)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
with warnings.catch_warnings(record=True) as caught, torch.no_grad():
    warnings.simplefilter("always")
    try:
        with paro.Capture(tmp / "w.h5", guidance="all", **base) as cap:
            model(x)
            cap.step(1)
            model(x)
            model(x)  # step() forgotten: warned at the call, refused at the end (layers missing from step 0)
    except RuntimeError as e:
        assert "model layer 3 was not called" in str(e), e
    else:
        raise SystemExit("FAIL: a pass without step() accepted")
assert not list(tmp.glob("w.h5*"))
assert [str(w.message) for w in caught if "without .step()" in str(w.message)], [str(w.message) for w in caught]
if had:
    F.scaled_dot_product_attention = original
else:
    del F.scaled_dot_product_attention
print("capture ok")
