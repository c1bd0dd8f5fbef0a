"""Two builds of `paro bench` in one process tree, interleaved: before/after timings of a refactor.

Usage: python3 bench/gpu/ab_bench.py --a PARO_A --a-args "--pv-bits 8,16" --b PARO_B --b-args "--pv-format int8,fp16"
           [--rounds 3] [--head-dims 64,128] [--iters 20] [--out results.json]
Each round runs A then B (then B then A in the next round, so neither always goes first) for every
head dim, `paro bench --json`; the table gives, per (head dim, PV, density), the median over rounds
of each build's median total and attention-kernel milliseconds, and B / A.
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
    runs = {"A": {}, "B": {}}  # build -> (D, pv, density) -> {"total": [...], "attn": [...]}
    device = kernel = None
    for r in range(o.rounds):
        for d in map(int, o.head_dims.split(",")):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for which in order:
                paro, extra = (o.a, o.a_args) if which == "A" else (o.b, o.b_args)
                doc = bench(paro, extra, d, o.iters)
                device, kernel = doc["device"], doc["kernel"]
                for row in doc["rows"]:
                    key = (d, row["pv"], round(row["density"], 3))
                    slot = runs[which].setdefault(key, {"total": [], "attn": []})
                    slot["total"].append(row["total_ms"])
                    slot["attn"].append(row["attention_ms"])
    print(f"{device}, kernel {kernel}; medians over {o.rounds} rounds of paro bench medians ({o.iters} iters)")
    print(f"{'D':>4} {'PV':>5} {'density':>8} {'A total':>9} {'B total':>9} {'B/A':>6} {'A attn':>9} {'B attn':>9} {'B/A':>6}")
    table = []
    for key in sorted(runs["A"]):
        if key not in runs["B"]:
            continue
        a, b = runs["A"][key], runs["B"][key]
        row = dict(head_dim=key[0], pv=key[1], density=key[2],
                   a_total=statistics.median(a["total"]), b_total=statistics.median(b["total"]),
                   a_attn=statistics.median(a["attn"]), b_attn=statistics.median(b["attn"]))
        table.append(row)
        print(f"{key[0]:>4} {key[1]:>5} {key[2]:>8.3f} {row['a_total']:>9.3f} {row['b_total']:>9.3f} "
              f"{row['b_total'] / row['a_total']:>6.3f} {row['a_attn']:>9.3f} {row['b_attn']:>9.3f} "
              f"{row['b_attn'] / row['a_attn']:>6.3f}")
    if o.out:
        with open(o.out, "w") as f:
            json.dump(dict(device=device, kernel=kernel, rounds=o.rounds, rows=table, raw={k: {str(kk): vv for kk, vv in v.items()} for k, v in runs.items()}), f, indent=1)


if __name__ == "__main__":
    main()
