#!/usr/bin/env python3
"""Where paro's whole op spends its time outside the attention kernel (GPU machine).

At the CogVideoX-5B shape (B1 H48 N17776, bf16, random 64x64 tile masks as compare_torch.py draws them),
for each head dim and density: the op timed as compare_torch.py times it (events around one call, a
synchronize after each: host overhead before the first launch included), timed over calls queued back
to back (host overhead hidden), the host's time per call, and one call's kernels on a timeline
(torch.profiler: start relative to the first, duration, ms). SDPA cuDNN dense the same way.
Usage: python3 op_timeline.py LIB [--head-dims 64,128] [--densities 1,0.2] [--pv-format fp16]"""
import argparse
import os
import re
import sys
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention as sdpa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, HERE)
from compare_torch import COGVIDEOX, bench, pack_bits, random_pattern  # noqa: E402


def queued(f, n=30):
    """(GPU ms per call, host ms per call) over n calls queued back to back."""
    for _ in range(3):
        f()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    h0 = time.perf_counter()
    for _ in range(n):
        f()
    h1 = time.perf_counter()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / n, (h1 - h0) / n * 1e3


def short_name(name):
    """attention_sm90_kernel<128, __nv_bfloat16, 1, 0, 0> from the demangled signature."""
    n = name.replace("void ", "").replace("paro::gpu::", "").replace("(anonymous namespace)::", "")
    n = re.sub(r"\([A-Za-z_:]+\)(?=-?\d)", "", n)  # enum casts: (PvFormat)1 -> 1
    return n.split(">(")[0] + ">" if ">(" in n else n


def timeline(f):
    from torch.profiler import ProfilerActivity, profile
    f()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as p:
        f()
        torch.cuda.synchronize()
    ev = sorted((e for e in p.events() if e.device_type == torch.autograd.DeviceType.CUDA),
                key=lambda e: e.time_range.start)
    t0 = ev[0].time_range.start
    return [(short_name(e.name), (e.time_range.start - t0) / 1e3, e.time_range.elapsed_us() / 1e3) for e in ev]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--densities", default="1,0.2")
    ap.add_argument("--pv-format", default="fp16")
    a = ap.parse_args()
    os.environ["PARO_RUNTIME_LIBRARY"] = a.lib
    import paro
    B, H, grid, text = COGVIDEOX["B"], COGVIDEOX["H"], COGVIDEOX["grid"], COGVIDEOX["text"]
    N = text + grid[0] * grid[1] * grid[2]
    nb = (N + 63) // 64
    print("device:", torch.cuda.get_device_name(), "paro kernel:", paro.kernel_name())
    for D in [int(x) for x in a.head_dims.split(",")]:
        q, k, v = [torch.randn(B, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            f = lambda: sdpa(q, k, v)  # noqa: E731
            gpu, host = queued(f)
            print(f"D {D} SDPA cuDNN dense: synchronized {bench(f, 20):.3f} ms, queued {gpu:.3f} ms, host {host:.3f} ms/call")
        for dens in [float(x) for x in a.densities.split(",")]:
            m, orders = random_pattern(H, nb, dens)
            plan = paro.Plan.from_arrays(grid, text, orders, pack_bits(m))
            plan.set_pv_format(a.pv_format)
            out = torch.empty_like(q)
            f = lambda: plan.run(q, k, v, out, 0, 0)  # noqa: E731
            gpu, host = queued(f)
            print(f"D {D} paro {a.pv_format} density {dens}: synchronized {bench(f, 20):.3f} ms, queued {gpu:.3f} ms, "
                  f"host {host:.3f} ms/call; one call's kernels (start, duration ms):")
            for name, start, dur in timeline(f):
                print(f"  {start:8.3f} {dur:8.3f}  {name[:90]}")
            plan.close()


if __name__ == "__main__":
    main()
