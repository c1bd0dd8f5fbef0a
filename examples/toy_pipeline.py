"""paro end to end on a small video transformer (examples/toy_video_dit.py), as a user would run it
on a real pipeline:

  1. capture q/k/v of a few sampling steps into a paro-dump (paro.Capture), and on a GPU, in the
     same run, the statistics-mode file (Capture(stats=...): the tile statistics scored in the
     forward pass, no q/k written),
  2. calibrate both (`paro calibrate`: an order per head, masks per timestep slot) and check they
     give the same orders and masks,
  3. export the pattern for FlexAttention and for the authors' runtime (`paro export`),
  4. on a GPU: run the model with the pattern through paro's runtime (paro.apply) and through
     FlexAttention, and print each path's output error against dense SDPA and its speed.

    python3 examples/toy_pipeline.py [--grid 8x24x32 --text 64 --heads 8 --blocks 4] [--out DIR]

Needs the paro command (PARO, else build/paro) and, for step 4, CUDA PyTorch with the built
libparo_runtime.so (found as docs/pytorch.md says). Without a GPU it stops after step 3, and the
default size becomes the small one (--grid 2x8x12 --text 64 --heads 2 --blocks 2 --steps 2
--density 0.6, seconds on a CPU; the GPU default takes over 10 minutes there); options given win.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "python"), str(HERE)]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import paro  # noqa: E402
from paro import export, pattern as pattern_mod  # noqa: E402
import toy_video_dit  # noqa: E402


def paro_command():
    cmd = os.environ.get("PARO") or str(HERE.parent / "build" / "paro")
    if not Path(cmd).exists():
        sys.exit(f"toy_pipeline: no paro command at {cmd} (build paro, or set PARO)")
    return cmd


def rel_l1(got, want):
    return ((got.float() - want.float()).abs().sum() / want.float().abs().sum()).item()


def median_ms(fn, reps=10):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def main():
    gpu_default = dict(grid="8x24x32", text=64, heads=8, blocks=4, steps=4, density=0.3)
    cpu_default = dict(grid="2x8x12", text=64, heads=2, blocks=2, steps=2, density=0.6)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Defaults: with a CUDA GPU "
                                 f"{gpu_default}; without one {cpu_default} (the GPU size takes over 10 minutes on "
                                 "a CPU). Options given win.")
    ap.add_argument("--grid", help="video token grid FxHxW")
    ap.add_argument("--text", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--blocks", type=int)
    ap.add_argument("--steps", type=int, help="sampling steps captured")
    ap.add_argument("--density", type=float)
    ap.add_argument("--out", help="folder for the dump, pattern and exports (default: a temporary one)")
    a = ap.parse_args()
    defaults = gpu_default if torch.cuda.is_available() else cpu_default
    if not torch.cuda.is_available() and any(getattr(a, k) is None for k in defaults):
        print("no CUDA GPU: the small CPU size by default (" +
              " ".join(f"--{k} {v}" for k, v in cpu_default.items()) + ")")
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    grid = tuple(int(x) for x in a.grid.split("x"))
    out = Path(a.out or tempfile.mkdtemp(prefix="paro_toy_"))
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    dtype = torch.float16 if cuda else torch.float32
    model = toy_video_dit.ToyVideoDiT(grid=grid, text=a.text, blocks=a.blocks, heads=a.heads).to(device, dtype)
    x = torch.randn(1, model.tokens, 64, device=device, dtype=dtype)
    print(f"toy model: {a.blocks} blocks x {a.heads} heads, N = {model.tokens} ({a.text} text + {grid}), {device}")

    # 1. Capture.
    dump = out / "dump.h5"
    t0 = time.time()
    stats = out / "stats.h5" if cuda else None
    with torch.no_grad(), paro.Capture(dump, grid=grid, text_tokens=a.text, num_steps=a.steps, guidance="all",
                                       with_v=True, model="toy_video_dit", stats=stats, density=a.density) as cap:
        cap.set_prompts("a toy prompt")
        for s in range(a.steps):
            cap.step(s)
            model(x)
    print(f"1. captured {a.steps} steps into {dump} ({dump.stat().st_size / 2**20:.1f} MiB) in {time.time() - t0:.1f} s")

    # 2. Calibrate, 3. export.
    pattern = out / "pattern.h5"
    paro_bin = paro_command()
    subprocess.run([paro_bin, "calibrate", str(dump), "-o", str(pattern), "--density", str(a.density),
                    "--slots", "2"], check=True)
    if stats:
        from_stats = out / "pattern.from_stats.h5"
        subprocess.run([paro_bin, "calibrate", "-q", str(stats), "-o", str(from_stats), "--slots", "2"], check=True)
        p_dump, p_stats = pattern_mod.load(pattern), pattern_mod.load(from_stats)
        same = p_dump.orders == p_stats.orders and all(
            (a == b).all() for a, b in zip(p_dump.masks_bits, p_stats.masks_bits))
        print(f"2. statistics mode: {stats.name} ({stats.stat().st_size / 2**20:.2f} MiB) calibrates into "
              f"{'the same' if same else 'DIFFERENT'} orders and masks as the dump")
        if not same:
            return 1
    env = dict(os.environ, PARO_PYTHON=sys.executable)
    subprocess.run([paro_bin, "export", str(pattern), "--flex", str(out / "pattern.flex.pt"), "--authors",
                    str(out / "pattern.authors.pth"), "--num-steps", str(a.steps)], check=True, env=env)
    if not cuda:
        print("4. no CUDA device: the runtime and FlexAttention paths are skipped")
        return 0

    # 4. Run: dense SDPA, the same with the pattern's masks (the target), paro's runtime, FlexAttention.
    plan = paro.Plan(pattern)
    flex = paro.FlexPattern.load(out / "pattern.flex.pt")
    p = pattern_mod.load(pattern)
    with torch.no_grad():
        dense = [model(x) for _ in range(a.steps)]
        with paro.apply(plan, num_steps=a.steps) as run:
            runtime_out = []
            for s in range(a.steps):
                run.step(s)
                runtime_out.append(model(x))
        original = F.scaled_dot_product_attention
        state = {"call": 0}

        def flex_sdpa(q, k, v, *args, **kwargs):
            layer = state["call"] % a.blocks
            step = state["call"] // a.blocks
            state["call"] += 1
            return flex.attention(q, k, v, layer, p.slot_of_step(step, a.steps)).to(q.dtype)
        F.scaled_dot_product_attention = flex_sdpa
        try:
            flex_out = [model(x) for _ in range(a.steps)]
        finally:
            F.scaled_dot_product_attention = original
    print(f"4. model output vs dense SDPA (rel L1, worst step): paro runtime "
          f"{max(rel_l1(g, w) for g, w in zip(runtime_out, dense)):.4f} ({run.routed} calls routed, "
          f"{run.fallbacks} fallbacks), FlexAttention {max(rel_l1(g, w) for g, w in zip(flex_out, dense)):.4f}")

    q, k, v = (torch.randn(1, a.heads, model.tokens, 64, device=device, dtype=dtype) for _ in range(3))
    sdpa_ms = median_ms(lambda: original(q, k, v))
    paro_ms = median_ms(lambda: paro.attention(q, k, v, plan, 0, slot=0))
    flex_ms = median_ms(lambda: flex.attention(q, k, v, 0, 0))
    print(f"   one attention call (layer 0, slot 0, density {a.density}): SDPA dense "
          f"{sdpa_ms:.3f} ms, paro runtime {paro_ms:.3f} ms, FlexAttention (compiled) {flex_ms:.3f} ms "
          f"on {torch.cuda.get_device_name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
