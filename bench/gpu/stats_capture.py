#!/usr/bin/env python3
"""Statistics mode at the CogVideoX-5B attention shape (issue 11's target). A stand-in model: one
sampling step is 42 attention layers of 48 heads, N = 17,776 (226 text + 13x30x45), D 64, bf16,
batch 2 (classifier-free guidance), each layer one F.scaled_dot_product_attention call. Under
paro.Capture(stats=...) the cond half is recorded: 2,016 heads, one sample. Measured in one process:
  - the step alone and the step under the capture (entering the `with` to leaving it, the file
    written), medians of RUNS; the difference is what statistics mode adds;
  - the statistics file's size against the q/k dump of the same sample (fp16, as Capture writes it:
    2 x 2,016 x N x 64 x 2 bytes, computed, not written);
  - `paro calibrate` of the statistics file.
q/k are structured like real heads (each head attends locally along one axis of the grid), so the
masks and orders differ from head to head; 6 distinct layers' tensors are cycled over the 42.
Usage: python3 bench/gpu/stats_capture.py PARO_BINARY OUT_DIR [RUNS]
"""
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import paro  # noqa: E402

paro_bin, out = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
os.makedirs(out, exist_ok=True)
GRID, TEXT, LAYERS, HEADS, D, BATCH = (13, 30, 45), 226, 42, 48, 64, 2
N = TEXT + GRID[0] * GRID[1] * GRID[2]
dev = torch.device("cuda")
gen = torch.Generator(device=dev).manual_seed(0)


def layer_tensors(seed):
    """q, k, v [BATCH, HEADS, N, D]: head h is local along axis h % 3 (frequencies vary by head)."""
    f, y, x = torch.meshgrid(*(torch.arange(g, device=dev, dtype=torch.float32) for g in GRID), indexing="ij")
    coords = torch.stack([f.flatten(), y.flatten(), x.flatten()])  # [3, video tokens]
    qs, ks = [], []
    for h in range(HEADS):
        pos = coords[(h + seed) % 3]
        freq = torch.linspace(0.05, 1.0, D // 2, device=dev) * (1 + 0.1 * (h % 5))
        feat = torch.cat([torch.cos(pos[:, None] * freq), torch.sin(pos[:, None] * freq)], 1) * 2.5
        feat = torch.cat([torch.randn(TEXT, D, device=dev, generator=gen) * 0.5, feat])  # text tokens first
        qs.append(feat + 0.3 * torch.randn(N, D, device=dev, generator=gen))
        ks.append(feat + 0.3 * torch.randn(N, D, device=dev, generator=gen))
    q = torch.stack(qs)[None].expand(BATCH, -1, -1, -1).to(torch.bfloat16).contiguous()
    k = torch.stack(ks)[None].expand(BATCH, -1, -1, -1).to(torch.bfloat16).contiguous()
    return q, k, torch.randn(BATCH, HEADS, N, D, device=dev, generator=gen, dtype=torch.bfloat16)


tensors = [layer_tensors(i) for i in range(6)]


def step():
    for layer in range(LAYERS):
        q, k, v = tensors[layer % len(tensors)]
        F.scaled_dot_product_attention(q, k, v)
    torch.cuda.synchronize()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


step()  # warm-up (cuDNN plans, the stats library's first load below is inside the timing)
stats_path = os.path.join(out, "stats.h5")
base, captured, times = [], [], []
for r in range(runs):
    base.append(timed(step))

    def captured_step():
        with paro.Capture(stats=stats_path, grid=GRID, text_tokens=TEXT, num_steps=50, guidance="cond",
                          model="CogVideoX-5B-shape stand-in", density=0.3) as cap:
            cap.set_prompts("a stand-in prompt")
            step()
        times.append(cap.stats_times)
    captured.append(timed(captured_step))
    print(f"run {r}: step {base[-1]:.2f} s, step under the capture {captured[-1]:.2f} s, {times[-1]}", flush=True)

stats_bytes = os.path.getsize(stats_path)
dump_bytes = 2 * LAYERS * HEADS * N * D * 2
t0 = time.perf_counter()
cal = subprocess.run([paro_bin, "calibrate", stats_path, "-o", os.path.join(out, "pattern.h5")], capture_output=True,
                     text=True)
cal_s = time.perf_counter() - t0
assert cal.returncode == 0, cal.stderr
print(cal.stdout)
b, c = statistics.median(base), statistics.median(captured)
print(f"card: {torch.cuda.get_device_name()}, {os.cpu_count()} cores, torch {torch.__version__}")
print(f"CogVideoX-5B attention shape (42 layers x 48 heads, N {N}, D 64, bf16, batch 2; cond half recorded: "
      f"{LAYERS * HEADS} heads, 1 sample), medians of {runs}:")
print(f"  step alone {b:.2f} s; step under paro.Capture(stats=...) {c:.2f} s; added {c - b:.2f} s (target 20 s)")
print(f"  inside the capture (last run): {times[-1]}")
print(f"  statistics file {stats_bytes / 1e6:.0f} MB vs the q/k dump of the same sample {dump_bytes / 1e9:.2f} GB: "
      f"1/{dump_bytes / stats_bytes:.1f} (target 1/10)")
print(f"  paro calibrate of the statistics file: {cal_s:.2f} s")
