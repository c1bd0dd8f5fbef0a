#!/usr/bin/python3
"""The report's "samples disagree at a cost" table against the pattern file read with h5py.

usage: check_disagreements.py PATTERN.h5 REPORT_DIR/index.html [--cost 0.001]
A head is listed when the shared mask keeps at least COST less of a disagreeing sample's attention
mass than, on average, of the samples agreeing with the plan (all samples when none agree); the
table is sorted by that cost, costliest first, and the heads that disagree at no such cost are
counted in the note. Exit 0 when the page says exactly that, 1 otherwise.
"""
import argparse
import html
import re
import sys

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pattern")
    ap.add_argument("index")
    ap.add_argument("--cost", type=float, default=1e-3)
    a = ap.parse_args()
    listed, free = {}, 0
    with h5py.File(a.pattern, "r") as f:
        for l in range(int(f["layers"].attrs["count"])):
            g = f["layers"][str(l)]
            orders, so, sr = g["orders"][()], g["sample_order"][()], g["sample_recall"][()]
            for h in range(len(orders)):
                agree = so[h] == orders[h]
                if agree.all():
                    continue
                ref = sr[h][agree].mean() if agree.any() else sr[h].mean()
                cost = max(0.0, ref - sr[h][~agree].min())
                if abs(cost - a.cost) < 1e-9:
                    print(f"head {l}:{h}: cost {cost} on the threshold; pick another seed")
                    return 1
                if cost >= a.cost:
                    listed[(l, h)] = cost
                else:
                    free += 1
    page = open(a.index, encoding="utf-8").read()
    table = re.search(r'<table id="disagree-table".*?</table>', page, re.S)
    rows = []
    if table:
        for tr in re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S):
            cells = [html.unescape(re.sub(r"<[^>]*>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            if not cells:
                continue  # the header row
            rows.append(((int(cells[0]), int(cells[1])), float(cells[-1])))
    fails = []
    shown = {k: v for k, v in rows}
    if set(shown) != set(listed):
        fails.append(f"listed heads {sorted(shown)} but the costly ones are {sorted(listed)}")
    for k, v in shown.items():
        if k in listed and abs(v - listed[k]) > 6e-5:
            fails.append(f"head {k}: cost shown {v}, computed {listed[k]:.6f}")
    costs = [v for _, v in rows]
    if costs != sorted(costs, reverse=True):
        fails.append(f"the table is not sorted by cost: {costs}")
    m = re.search(r"(\d+) more heads have samples that prefer another order", page)
    if (int(m.group(1)) if m else 0) != free:
        fails.append(f"the page counts {m.group(1) if m else 0} heads disagreeing at no cost, the file has {free}")
    for f_ in fails:
        print("FAIL:", f_)
    if not fails:
        print(f"disagreements: {len(listed)} costly heads listed in order, {free} free ones counted")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
