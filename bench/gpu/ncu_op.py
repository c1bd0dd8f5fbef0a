#!/usr/bin/env python3
"""One paro call for Nsight Compute (GPU machine): the whole op at the CogVideoX-5B shape (B1 H48 N17776,
bf16, random 64x64 tile masks as compare_torch.py draws them), a warm-up call, then one call between
cudaProfilerStart and Stop, so that `ncu --profile-from-start off` sees exactly one op's kernels.
Usage: ncu --profile-from-start off -k regex:attention_sm90_kernel ... \\
           python3 ncu_op.py LIB HEAD_DIM DENSITY [--pv-format fp16]"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, HERE)
from compare_torch import COGVIDEOX, pack_bits, random_pattern  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("head_dim", type=int)
    ap.add_argument("density", type=float)
    ap.add_argument("--pv-format", default="fp16")
    a = ap.parse_args()
    os.environ["PARO_RUNTIME_LIBRARY"] = a.lib
    import paro
    B, H, grid, text = COGVIDEOX["B"], COGVIDEOX["H"], COGVIDEOX["grid"], COGVIDEOX["text"]
    N = text + grid[0] * grid[1] * grid[2]
    q, k, v = [torch.randn(B, H, N, a.head_dim, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    m, orders = random_pattern(H, (N + 63) // 64, a.density)
    plan = paro.Plan.from_arrays(grid, text, orders, pack_bits(m))
    plan.set_pv_format(a.pv_format)
    out = torch.empty_like(q)
    plan.run(q, k, v, out, 0, 0)
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    plan.run(q, k, v, out, 0, 0)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    plan.close()


if __name__ == "__main__":
    main()
