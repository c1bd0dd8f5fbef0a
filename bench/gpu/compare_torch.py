#!/usr/bin/env python3
"""paro runtime vs PyTorch on the same GPU in the same call:
  1. correctness: paro (bf16 and fp16 in; INT8 QK with INT8, fp16 and, on Hopper, FP8 PV) vs SDPA (math backend,
     fp32) with the equivalent boolean mask in original token order, at small N with text tokens, every
     order, D 64 and 128;
  2. speed at the CogVideoX-5B shape (B1 H48 N17776, D 64 and 128) and, with --wan, the Wan 2.1 720p
     shape (B1 H40 N75600 = 21x45x80, no text, D 128): SDPA cuDNN and FlashAttention-2 dense,
     FlexAttention with the SAME 64x64 tile masks (on pre-permuted inputs, i.e. the permutation
     given to Flex for free), and paro's whole op (permutation + quantization included).
paro and cuDNN are timed in turn (--rounds), each paro ratio against the cuDNN time of its round.
Usage: python3 compare_torch.py LIB [--wan] [--rounds R] [--iters I] [--head-dims 64,128] [--skip-correctness]
       [--no-speed] [--out results.json]"""
import argparse
import json
import os
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention as sdpa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import numpy as np  # noqa: E402

import paro  # noqa: E402
from paro.pattern import ORDER_NAMES, order_gather  # noqa: E402


# PV formats timed and checked (main adds FP8 where the runtime has it: Hopper).
FORMATS = ("int8", "fp16")


def random_masks(heads, nb, density, gen):
    """bool [heads, nb, nb] with the diagonal kept, like paro bench."""
    m = torch.rand(heads, nb, nb, generator=gen) < density
    m[:, torch.arange(nb), torch.arange(nb)] = True
    if density >= 1.0:
        m[:] = True
    return m


def random_pattern(heads, nb, density):
    """The benchmarks' masks and orders: random_masks and a random order per head, from seed 1 (the same
    draw in every script, so their numbers describe the same pattern)."""
    g = torch.Generator().manual_seed(1)
    m = random_masks(heads, nb, density, g)
    return m, [int(x) for x in torch.randint(0, 6, (heads,), generator=g)]


def pack_bits(m):
    """bool [..., nb, nb] -> the pattern file's packed bits per mask (bit r * nb + c, LSB first)."""
    flat = m.reshape(m.shape[0], -1).numpy().astype(np.uint8)
    return np.packbits(flat, axis=1, bitorder="little").reshape(-1)


def bench(f, it=20):
    for _ in range(3):
        f()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(it):
        s.record()
        f()
        e.record()
        torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    return sorted(ts)[len(ts) // 2]


def median(xs):
    return sorted(xs)[len(xs) // 2]


def interleaved(fns, iters, rounds):
    """{name: [ms of each round]}: bench() of every function in turn, `rounds` times over, so that each one
    sees the same drift of clocks and temperature (a long dense run heats the card; in one pass the
    methods timed last ran up to 8% slower than when timed first, H200)."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            times[name].append(bench(f, iters))
    return times


def correctness(rows):
    print("== correctness vs SDPA math fp32 with the same mask (original token order)")
    cases = [((3, 5, 7), 12, False), ((4, 12, 16), 32, True), ((5, 16, 16), 225, False)]  # N = 117, 800, 1505
    worst = 1.0
    for grid, text, suffix in cases:
        N = text + grid[0] * grid[1] * grid[2]
        nb = (N + 63) // 64
        for D, dt, dens in [(64, torch.bfloat16, 0.4), (64, torch.float16, 1.0), (128, torch.bfloat16, 1.0),
                            (128, torch.float16, 0.4)]:
            H = 6
            g = torch.Generator().manual_seed(N + D)
            m = random_masks(H, nb, dens, g)
            orders = list(range(6))
            plan = paro.Plan.from_arrays(grid, text, orders, pack_bits(m), text_suffix=suffix)
            q, k, v = [torch.randn(2, H, N, D, device="cuda") for _ in range(3)]
            outs = {}
            for pv in FORMATS:
                plan.set_pv_format(pv)
                outs[pv] = paro.attention(q.to(dt), k.to(dt), v.to(dt), plan, 0, slot=0).float()
            # dense boolean mask in original order
            allowed = torch.empty(H, N, N, dtype=torch.bool)
            for h in range(H):
                gi = torch.as_tensor(order_gather(ORDER_NAMES[orders[h]], grid, text, "suffix" if suffix else "prefix"))
                pos = torch.empty(N, dtype=torch.long)
                pos[gi] = torch.arange(N)
                t = pos // 64
                allowed[h] = m[h][t[:, None], t[None, :]]
            with sdpa_kernel(SDPBackend.MATH):
                ref = sdpa(q, k, v, attn_mask=allowed.cuda()[None])
            for pv, out in outs.items():
                for h in range(H):
                    a, b = out[:, h].flatten().double(), ref[:, h].flatten().double()
                    cos = torch.nn.functional.cosine_similarity(a, b, dim=0).item()
                    l1 = ((a - b).abs().sum() / b.abs().sum()).item()
                    worst = min(worst, cos)
                    rows.append(dict(kind="correctness", N=N, D=D, dtype=str(dt), pv_format=pv, head=h,
                                     order=ORDER_NAMES[h], cosine=cos, rel_l1=l1))
                cs = [r["cosine"] for r in rows[-H:]]
                ls = [r["rel_l1"] for r in rows[-H:]]
                print(f"N={N:5d} text={text:3d}{' suffix' if suffix else ' prefix'} D={D:3d} {str(dt):15s} "
                      f"PV {pv} density {dens:.1f} "
                      f"min cos {min(cs):.6f}  max rel L1 {100 * max(ls):.2f}%  "
                      f"{'ok' if min(cs) >= 0.9995 and max(ls) <= 0.03 else 'MISS'}")
            plan.close()
    return worst


COGVIDEOX = dict(name="CogVideoX-5B", B=1, H=48, grid=(13, 30, 45), text=226)
WAN = dict(name="Wan 2.1 720p", B=1, H=40, grid=(21, 45, 80), text=0)


def speed(D, densities, rows, iters, rounds, shape=COGVIDEOX):
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
    B, H, grid, text = shape["B"], shape["H"], shape["grid"], shape["text"]
    N = text + grid[0] * grid[1] * grid[2]
    nb = (N + 63) // 64
    print(f"== speed {shape['name']}: B{B} H{H} N{N} D{D} bf16, median of {iters}; paro and cuDNN interleaved "
          f"over {rounds} rounds, ratios to the cuDNN time of the same round, median of the rounds")
    q, k, v = [torch.randn(B, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]

    def cudnn():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return sdpa(q, k, v)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        t_fa2 = bench(lambda: sdpa(q, k, v), iters)
    cudnn_all = []
    flex = torch.compile(flex_attention)
    print(f"{'density':>8} {'flex64 ms':>10} {'flex128cov':>11} {'flex128 same':>12} | " +
          " | ".join(f"{'paro ' + pv:>14} {'x cuDNN':>8} {'vs flex64':>9}" for pv in FORMATS))
    for dens in densities:
        m, orders = random_pattern(H, nb, dens)
        plans = {}  # a plan per format: set_pv_format must not run while calls of its plan are in flight
        for pv in FORMATS:
            plans[pv] = paro.Plan.from_arrays(grid, text, orders, pack_bits(m))
            plans[pv].set_pv_format(pv)
        real = plans[FORMATS[0]].info().density
        out = torch.empty_like(q)
        fns = {"cudnn": cudnn}
        fns.update({pv: (lambda p: lambda: p.run(q, k, v, out, 0, 0))(plans[pv]) for pv in FORMATS})
        times = interleaved(fns, iters, rounds)
        cudnn_all += times["cudnn"]
        t_pv = {pv: median(times[pv]) for pv in FORMATS}
        x_pv = {pv: median([c / t for c, t in zip(times["cudnn"], times[pv])]) for pv in FORMATS}
        # Flex with the same 64x64 tile masks, on inputs already permuted (Flex cannot fuse it).
        mc = m.cuda()
        idx = torch.argsort(mc.int(), dim=-1, descending=True, stable=True).int()[None]
        cnt = mc.sum(-1).int()[None]
        t_flex64 = float("nan")
        try:
            bm = BlockMask.from_kv_blocks(cnt, idx, BLOCK_SIZE=64, seq_lengths=(N, N))
            t_flex64 = bench(lambda: flex(q, k, v, block_mask=bm, kernel_options={"BLOCK_M": 64, "BLOCK_N": 64}),
                             iters)
        except Exception as ex:  # noqa: BLE001
            print(f"  flex 64-tile masks failed: {type(ex).__name__}: {str(ex)[:200]}")
        # Flex at its usual 128 tiles: a 128 tile is kept when any of its four 64 tiles is (denser).
        nb2 = (nb + 1) // 2
        m2 = torch.zeros(H, nb2 * 2, nb2 * 2, dtype=torch.bool)
        m2[:, :nb, :nb] = m
        m2 = m2.view(H, nb2, 2, nb2, 2).any(4).any(2).cuda()
        idx2 = torch.argsort(m2.int(), dim=-1, descending=True, stable=True).int()[None]
        bm2 = BlockMask.from_kv_blocks(m2.sum(-1).int()[None], idx2, BLOCK_SIZE=128, seq_lengths=(N, N))
        t_flex128 = bench(lambda: flex(q, k, v, block_mask=bm2), iters)
        # Flex as in shared/bench/attention_anchors.py: its own random 128x128 masks at the same density.
        g3 = torch.Generator().manual_seed(1)
        m3 = random_masks(H, nb2, dens, g3).cuda()
        idx3 = torch.argsort(m3.int(), dim=-1, descending=True, stable=True).int()[None]
        bm3 = BlockMask.from_kv_blocks(m3.sum(-1).int()[None], idx3, BLOCK_SIZE=128, seq_lengths=(N, N))
        t_flexeq = bench(lambda: flex(q, k, v, block_mask=bm3), iters)
        print(f"{real:8.3f} {t_flex64:10.3f} {t_flex128:11.3f} {t_flexeq:12.3f} | " +
              " | ".join(f"{t_pv[pv]:14.3f} {x_pv[pv]:7.2f}x {t_flex64 / t_pv[pv]:8.2f}x" for pv in FORMATS))
        rows.append(dict(kind="speed", shape=shape["name"], D=D, method="flex128_random_same_density", density=m3.float().mean().item(),
                         ms=t_flexeq))
        for pv in FORMATS:
            rows.append(dict(kind="speed", shape=shape["name"], D=D, method=f"paro_{pv}_pv", density=real, ms=t_pv[pv],
                             ms_rounds=times[pv], cudnn_ms_rounds=times["cudnn"], speedup_vs_cudnn=x_pv[pv]))
        rows.append(dict(kind="speed", shape=shape["name"], D=D, method="flex64_same_masks", density=real, ms=t_flex64))
        rows.append(dict(kind="speed", shape=shape["name"], D=D, method="flex128_covering_masks",
                         density=m2.float().mean().item(), ms=t_flex128))
        for p in plans.values():
            p.close()
    t_cudnn = median(cudnn_all)
    print(f"SDPA cuDNN {t_cudnn:.3f} ms (median over its {len(cudnn_all)} rounds), FlashAttention-2 {t_fa2:.3f} ms")
    rows.append(dict(kind="speed", shape=shape["name"], D=D, method="sdpa_cudnn", density=1.0, ms=t_cudnn))
    rows.append(dict(kind="speed", shape=shape["name"], D=D, method="sdpa_fa2", density=1.0, ms=t_fa2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--out", default="")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of cuDNN and paro per density")
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--skip-correctness", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--wan", action="store_true", help="also the Wan 2.1 720p shape (D 128, densities 1.0 and 0.2)")
    a = ap.parse_args()
    os.environ["PARO_RUNTIME_LIBRARY"] = a.lib
    global FORMATS
    if paro.kernel_name().startswith("wgmma"):
        FORMATS += ("fp8_e4m3",)
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__, "paro kernel:", paro.kernel_name())
    rows = []
    if not a.skip_correctness:
        correctness(rows)
    dens = [1.0, 0.5, 0.3, 0.2]
    for D in ([] if a.no_speed else [int(x) for x in a.head_dims.split(",")]):
        speed(D, dens, rows, a.iters, a.rounds)
    if a.wan and not a.no_speed:
        speed(128, [1.0, 0.2], rows, max(3, a.iters // 4), a.rounds, WAN)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), kernel=paro.kernel_name(), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
