#!/usr/bin/env bash
# Statistics grow with more prompts: `paro calibrate --stats-out` on two dumps of one model and
# `paro merge` of their statistics give the statistics file (and, through `paro calibrate`, the
# pattern) of one run over a dump of all the samples, bit for bit, also where the merged samples
# choose another order than a file did (the masses then come from other_mass, checked with h5py).
# The merge matches prompts by name, and refuses files of another layout or scoring, a file given
# twice or copied, and a head whose merged order a file keeps no masses of: exit 2, one line naming
# the file, no output left.
set -uo pipefail
source "$(dirname "$0")/common.bash"

# Two dumps of one layout whose heads prefer other orders (the head kinds rotated by one), and their
# concatenation (the second dump's prompts numbered after the first's, as the merge numbers them).
kinds=(spatial,temporal,row,column temporal,row,column,spatial)
for s in 1 2; do
    "$PARO" synth -q -o "$dir/d$s.h5" --grid 4x12x12 --text 32 --layers 3 --heads 4 --samples 4 --prompts 2 \
        --head-dim 64 --seed $s --kinds "${kinds[s - 1]}"
done
"$PYTHON" - "$dir" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/d1.h5", "r") as a, h5py.File(f"{d}/d2.h5", "r") as b, h5py.File(f"{d}/d12.h5", "w") as o:
    o.attrs.update(dict(a.attrs))
    o.create_group("samples").attrs.update(dict(a["samples"].attrs))
    for name in ("timestep", "step"):
        o[f"samples/{name}"] = np.concatenate([a[f"samples/{name}"][()], b[f"samples/{name}"][()]])
    o["samples/prompt"] = np.concatenate([a["samples/prompt"][()], b["samples/prompt"][()] + a["samples/prompt"][()].max() + 1])
    for l in a["layers"]:
        for name in a[f"layers/{l}"]:
            o[f"layers/{l}/{name}"] = np.concatenate([a[f"layers/{l}/{name}"][()], b[f"layers/{l}/{name}"][()]])
        o[f"layers/{l}"].attrs.update(dict(a[f"layers/{l}"].attrs))
PY
opts=(--density 0.4 --device cpu)
for d in 1 2 12; do run 0 "$PARO" calibrate -q "$dir/d$d.h5" -o "$dir/p$d.h5" --stats-out "$dir/s$d.h5" "${opts[@]}"; done
run 0 "$PARO" check "$dir/s1.h5"

# The merge is the statistics of all the samples, and some heads change order.
run 0 "$PARO" merge "$dir/s1.h5" "$dir/s2.h5" -o "$dir/m.h5" --json
same_hdf5 "$dir/m.h5" "$dir/s12.h5"
"$PYTHON" - "$dir/out.txt" "$SOURCE_DIR/schemas/merge-stats-summary.schema.json" <<'PY' || fail=1
import json, sys, jsonschema
j = json.load(open(sys.argv[1]))
jsonschema.validate(j, json.load(open(sys.argv[2])))
assert j["samples"] == 8 and j["heads"] == 12 and j["all_orders"] and not j["prompts_by_name"], j
assert j["reordered_heads"] > 0, "the test needs heads whose merged order differs from a file's"
PY
# Where a head's merged order is not the one an input stored, its masses are that input's other_mass
# entry j: the five orders other than the stored one, in the documented numbering.
"$PYTHON" - "$dir" <<'PY' || { echo "FAIL: other_mass numbering"; fail=1; }
import sys, h5py, numpy as np
d = sys.argv[1]
m, parts = h5py.File(f"{d}/m.h5", "r"), [h5py.File(f"{d}/s{k}.h5", "r") for k in (1, 2)]
checked = 0
for l in m["layers"]:
    first = 0
    for p in parts:
        n = p["samples/timestep"].shape[0]
        for h, (got, stored) in enumerate(zip(m[f"layers/{l}/order"][()], p[f"layers/{l}/order"][()])):
            want = p[f"layers/{l}/mass"][h] if got == stored else \
                p[f"layers/{l}/other_mass"][h][:, [o for o in range(6) if o != stored].index(got)]
            assert np.array_equal(m[f"layers/{l}/mass"][h, first:first + n], want), (l, h)
            checked += got != stored
        first += n
assert checked > 0
PY
run 0 "$PARO" check "$dir/m.h5"
# inspect reads it: samples, prompts, masses kept, and each layer's stored orders as h5py reads them.
run 0 "$PARO" inspect "$dir/m.h5"
grep -q "all six orders" "$dir/out.txt" || { echo "FAIL: inspect does not say the masses of all orders are kept"; fail=1; }
run 0 "$PARO" inspect --json "$dir/m.h5"
"$PYTHON" - "$dir/out.txt" "$dir/m.h5" <<'PY' || { echo "FAIL: inspect --json of statistics"; fail=1; }
import json, sys, h5py, numpy as np
j, f = json.load(open(sys.argv[1])), h5py.File(sys.argv[2], "r")
names = ["FHW", "FWH", "HFW", "HWF", "WFH", "WHF"]
assert j["format"] == "paro-stats" and j["all_orders"] is True and len(j["samples"]) == 8, j
assert [s["prompt"] for s in j["samples"]] == list(f["samples/prompt"][()])
assert j["scoring"]["density"] == f.attrs["density"]
for l, layer in enumerate(j["layers"]):
    counts = np.bincount(f[f"layers/{l}/order"][()], minlength=6)
    assert layer["orders"] == {n: int(c) for n, c in zip(names, counts)}, (l, layer["orders"], counts)
PY
# Its pattern is the dump's, but for the provenance that names the source.
for slots in 1 2; do
    run 0 "$PARO" calibrate -q "$dir/m.h5" -o "$dir/pm.h5" --slots $slots
    run 0 "$PARO" calibrate -q "$dir/d12.h5" -o "$dir/pd.h5" "${opts[@]}" --slots $slots
    same_hdf5 "$dir/pm.h5" "$dir/pd.h5" source_dump source_checksum
done
# Prompts by name: the first file's names (one unused) keep their ids, the second's new ones follow.
# A file whose samples repeat a prompt, step and timestep (guidance halves) merges like any other.
"$PYTHON" - "$dir" <<'PY'
import sys, shutil, h5py, numpy as np
d = sys.argv[1]
names = {"s1n": ["alpha", "beta", "unused"], "s2n": ["gamma", "alpha"], "s1d": ["alpha", "beta"]}
for out, n in names.items():
    shutil.copy(f"{d}/{'s2' if out == 's2n' else 's1'}.h5", f"{d}/{out}.h5")
    with h5py.File(f"{d}/{out}.h5", "a") as f:
        f["samples"].attrs["prompt_names"] = np.array(n, dtype=h5py.string_dtype())
        if out == "s2n":  # two guidance halves of each step: one prompt, step and timestep twice
            f["samples/step"][...] = [0, 0, 25, 25]
            f["samples/timestep"][...] = [1000, 1000, 500, 500]
            f["samples/prompt"][...] = [1, 1, 0, 0]
PY
run 0 "$PARO" merge -q "$dir/s1n.h5" "$dir/s2n.h5" -o "$dir/mn.h5"
"$PYTHON" - "$dir/mn.h5" <<'PY' || { echo "FAIL: prompts not matched by name"; fail=1; }
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert [s.decode() if isinstance(s, bytes) else s for s in f["samples"].attrs["prompt_names"]] == ["alpha", "beta", "unused", "gamma"]
assert list(f["samples/prompt"][()]) == [0, 1, 0, 1, 0, 0, 3, 3], list(f["samples/prompt"][()])
PY
# The same samples twice, under other names or as a copy: refused.
run 2 "$PARO" merge -q "$dir/s1n.h5" "$dir/s1d.h5" -o "$dir/x.h5"
one_line_naming "s1d.h5"
# One equal sample (the unconditional half of two prompts' first step, with a fixed seed) is kept.
"$PYTHON" - "$dir" <<'PY'
import sys, shutil, h5py
d = sys.argv[1]
shutil.copy(f"{d}/s2.h5", f"{d}/s2one.h5")
with h5py.File(f"{d}/s1.h5", "r") as a, h5py.File(f"{d}/s2one.h5", "a") as b:
    for name in ("step", "timestep"):
        b[f"samples/{name}"][0] = a[f"samples/{name}"][0]
    b["layers/0/metrics"][:, 0] = a["layers/0/metrics"][:, 0]
PY
run 0 "$PARO" merge -q "$dir/s1.h5" "$dir/s2one.h5" -o "$dir/x.h5"
rm -f "$dir/x.h5"
cp "$dir/s1.h5" "$dir/s1copy.h5"
run 2 "$PARO" merge -q "$dir/s1.h5" "$dir/s2.h5" "$dir/s1copy.h5" -o "$dir/x.h5"
one_line_naming "s1copy.h5: /samples: every sample is also in an earlier input"

# Files kept with the chosen order's masses only: refused where the merged order needs another.
for d in 1 2; do
    run 0 "$PARO" calibrate -q "$dir/d$d.h5" -o "$dir/p$d.h5" --stats-out "$dir/c$d.h5" --stats-orders chosen "${opts[@]}"
done
run 2 "$PARO" merge -q "$dir/c1.h5" "$dir/c2.h5" -o "$dir/x.h5"
one_line_naming "all orders"

# Other layouts, scoring, the same file twice, mixed kinds, one file, the output among the inputs.
"$PARO" synth -q -o "$dir/d3.h5" --grid 4x12x16 --text 32 --layers 3 --heads 4 --samples 4 --head-dim 64
run 0 "$PARO" calibrate -q "$dir/d3.h5" -o "$dir/p3.h5" --stats-out "$dir/s3.h5" "${opts[@]}"
run 2 "$PARO" merge -q "$dir/s1.h5" "$dir/s3.h5" -o "$dir/x.h5"; one_line_naming "s3.h5: attribute grid"
run 0 "$PARO" calibrate -q "$dir/d2.h5" -o "$dir/p2.h5" --stats-out "$dir/s2x.h5" --device cpu --density 0.5
run 2 "$PARO" merge -q "$dir/s1.h5" "$dir/s2x.h5" -o "$dir/x.h5"; one_line_naming "s2x.h5: attribute density"
run 2 "$PARO" merge -q "$dir/s1.h5" "$dir/s1.h5" -o "$dir/x.h5"; one_line_naming "given twice"
run 2 "$PARO" merge -q "$dir/s1.h5" "$dir/p2.h5" -o "$dir/x.h5"; one_line_naming "p2.h5"
run 2 "$PARO" merge -q "$dir/s1.h5" -o "$dir/x.h5"; one_line_naming "at least two"
run 2 "$PARO" merge -q "$dir/s1.h5" "$dir/s2.h5" -o "$dir/s2.h5"; one_line_naming "one of the parts"
[ -e "$dir/x.h5" ] && { echo "FAIL: a refused merge left its output"; fail=1; }

# What --stats-out does not go with.
run 2 "$PARO" calibrate -q "$dir/d1.h5" -o "$dir/x.h5" --stats-out "$dir/y.h5" --layers 0:1; one_line_naming "--layers"
run 2 "$PARO" calibrate -q "$dir/d1.h5" -o "$dir/x.h5" --stats-out "$dir/y.h5" --objective output-error
one_line_naming "output-error"
run 2 "$PARO" calibrate -q "$dir/s1.h5" -o "$dir/x.h5" --stats-out "$dir/y.h5"; one_line_naming "already a statistics file"
run 2 "$PARO" calibrate -q "$dir/d1.h5" -o "$dir/x.h5" --stats-out "$dir/x.h5"; one_line_naming "another file"
run 2 "$PARO" calibrate -q "$dir/d1.h5" -o "$dir/x.h5" --stats-out "$dir/./x.h5"; one_line_naming "another file"
run 2 "$PARO" calibrate -q "$dir/d1.h5" -o "$dir/x.h5" --stats-orders chosen; one_line_naming "needs --stats-out"
run 2 "$PARO" calibrate -q "$dir/d1.h5" -o "$dir/x.h5" --stats-out "$dir/y.h5" --stats-orders some
one_line_naming "--stats-orders"
[ -e "$dir/x.h5" ] || [ -e "$dir/y.h5" ] && { echo "FAIL: a refused calibration left output"; fail=1; }
exit $fail
