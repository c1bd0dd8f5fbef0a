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
if had:
    F.scaled_dot_product_attention = original
else:
    del F.scaled_dot_product_attention
print("capture ok")
