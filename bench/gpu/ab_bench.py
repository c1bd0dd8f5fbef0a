"""Two builds of `paro bench` in one process tree, interleaved: before/after timings of a refactor.

Usage: python3 bench/gpu/ab_bench.py --a PARO_A --a-args "--pv-bits 8,16" --b PARO_B --b-args "--pv-format int8,fp16"
           [--rounds 3] [--head-dims 64,128] [--iters 20] [--out results.json]
Each round runs A then B (then B then A in the next round, so neither always goes first) for every
head dim, `paro bench --json`; the table gives, per (head dim, PV, density), the median over rounds
of each build's median total, attention-kernel and quantization (K mean + permute/quantize)
milliseconds, and B / A.
"""
import argparse
import json
import shlex
import statistics
import subprocess
import sys


def bench(paro, extra, head_dim, iters):
    cmd = [paro, "bench", "--json", "--head-dim", str(head_dim), "--iters", str(iters), *shlex.split(extra)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--a-args", default="")
    ap.add_argument("--b", required=True)
    ap.add_argument("--b-args", default="")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--out")
    o = ap.parse_args()
    parts = {"total": "total_ms", "attn": "attention_ms", "quant": "quantize_ms"}
    runs = {"A": {}, "B": {}}  # build -> (D, pv, density) -> {"total": [...], "attn": [...], "quant": [...]}
    device = kernel = None
    for r in range(o.rounds):
        for d in map(int, o.head_dims.split(",")):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for which in order:
                paro, extra = (o.a, o.a_args) if which == "A" else (o.b, o.b_args)
                doc = bench(paro, extra, d, o.iters)
                device, kernel = doc["device"], doc["kernel"]
                for row in doc["rows"]:
                    qk = row.get("qk", "plan")
                    key = (d, row["pv"] if qk == "plan" else f'{row["pv"]} qk{qk}', round(row["density"], 3))
                    slot = runs[which].setdefault(key, {p: [] for p in parts})
                    for p, field in parts.items():
                        slot[p].append(row[field])
    print(f"{device}, kernel {kernel}; medians over {o.rounds} rounds of paro bench medians ({o.iters} iters)")
    print(f"{'D':>4} {'PV':>5} {'density':>8}" + "".join(f" {'A ' + p:>9} {'B ' + p:>9} {'B/A':>6}" for p in parts))
    table = []
    for key in sorted(runs["A"]):
        if key not in runs["B"]:
            continue
        a, b = runs["A"][key], runs["B"][key]
        row = dict(head_dim=key[0], pv=key[1], density=key[2])
        line = f"{key[0]:>4} {key[1]:>5} {key[2]:>8.3f}"
        for p in parts:
            row["a_" + p], row["b_" + p] = statistics.median(a[p]), statistics.median(b[p])
            line += f" {row['a_' + p]:>9.3f} {row['b_' + p]:>9.3f} {row['b_' + p] / row['a_' + p]:>6.3f}"
        table.append(row)
        print(line)
    if o.out:
        with open(o.out, "w") as f:
            json.dump(dict(device=device, kernel=kernel, rounds=o.rounds, rows=table, raw={k: {str(kk): vv for kk, vv in v.items()} for k, v in runs.items()}), f, indent=1)


if __name__ == "__main__":
    main()
