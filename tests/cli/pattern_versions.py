"""Round trips of the per-head PV format through both pattern-file versions, checked with h5py."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

PARO = os.environ["PARO"]
failures = []


def run(*args, want=0):
    r = subprocess.run([PARO, *args], capture_output=True, text=True)
    if r.returncode != want:
        failures.append(f"exit {r.returncode}, wanted {want}: paro {' '.join(args)}\n{r.stdout}{r.stderr}")
    return r


def report_and_exit():
    for f in failures:
        print("FAIL:", f)
    print(f"{0 if failures else 1} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


def inspect_formats(path):
    doc = json.loads(run("inspect", path, "--json").stdout)
    return [[h["pv_format"] for h in layer["heads"]] for layer in doc["layers"]]


with tempfile.TemporaryDirectory() as d:
    dump, v2 = f"{d}/dump.h5", f"{d}/v2.h5"
    run("synth", "-o", dump, "--grid", "4x16x18", "--text", "7", "--layers", "2", "--heads", "3", "-q", "--seed", "5")
    run("calibrate", dump, "-o", v2, "--density", "0.5", "--pv-format", "fp16", "-q")
    if failures:
        report_and_exit()
    with h5py.File(v2) as f:
        assert int(f.attrs["paro_version"]) == 2
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["pv_format_names"]]
        assert names == ["int8", "fp16", "fp8_e4m3"], names
        assert "pv_bits" not in f["layers/0"]
        assert (f["layers/0/pv_format"][()] == names.index("fp16")).all()
    run("check", v2)
    assert inspect_formats(v2) == [["fp16"] * 3] * 2

    # Without --pv-format calibrate writes fp16 PV (the fastest format on Hopper, the most accurate);
    # int8 when asked.
    default, int8 = f"{d}/default.h5", f"{d}/int8.h5"
    run("calibrate", dump, "-o", default, "--density", "0.5", "-q")
    run("calibrate", dump, "-o", int8, "--density", "0.5", "--pv-format", "int8", "-q")
    if failures:
        report_and_exit()
    assert inspect_formats(default) == [["fp16"] * 3] * 2, inspect_formats(default)
    assert inspect_formats(int8) == [["int8"] * 3] * 2, inspect_formats(int8)

    # Per-head codes written by another tool, with the names in another order: mapped by name.
    mixed = f"{d}/mixed.h5"
    shutil.copy(v2, mixed)
    with h5py.File(mixed, "r+") as f:
        f.attrs["pv_format_names"] = np.array([b"fp8_e4m3", b"int8", b"fp16"], dtype=h5py.string_dtype("ascii"))
        f["layers/0/pv_format"][...] = np.array([0, 1, 2], np.uint8)
        f["layers/1/pv_format"][...] = np.array([2, 2, 1], np.uint8)
    assert inspect_formats(mixed) == [["fp8_e4m3", "int8", "fp16"], ["fp16", "fp16", "int8"]]

    # The same pattern as a version-1 file: pv_bits 4 / 8 / 16.
    v1 = f"{d}/v1.h5"
    shutil.copy(v2, v1)
    with h5py.File(v1, "r+") as f:
        f.attrs["paro_version"] = np.int64(1)
        del f.attrs["pv_format_names"]
        for layer, bits in (("0", [16, 8, 4]), ("1", [8, 16, 16])):
            del f[f"layers/{layer}/pv_format"]
            f[f"layers/{layer}"].create_dataset("pv_bits", data=np.array(bits, np.uint8))
    run("check", v1)
    assert inspect_formats(v1) == [["fp16", "int8", "int8"], ["int8", "fp16", "fp16"]]

    # Bad values: one line naming the file and dataset, exit 2; paro check reports them (exit 1).
    for name, edit, where in (
        ("bad_v1_bits", lambda f: f["layers/0/pv_bits"].__setitem__(0, 12), "/layers/0/pv_bits"),
        ("bad_v2_code", None, "/layers/1/pv_format"),
        ("bad_v2_name", None, "pv_format_names"),
    ):
        path = f"{d}/{name}.h5"
        shutil.copy(v1 if name.startswith("bad_v1") else v2, path)
        with h5py.File(path, "r+") as f:
            if name == "bad_v1_bits":
                edit(f)
            elif name == "bad_v2_code":
                f["layers/1/pv_format"][1] = 9
            else:
                f.attrs["pv_format_names"] = np.array([b"int8", b"fp16", b"fp4"], dtype=h5py.string_dtype("ascii"))
        r = run("inspect", path, want=2)
        err = r.stderr.strip()
        if len(err.splitlines()) != 1 or path not in err or where not in err:
            failures.append(f"{name}: wanted one line naming {path} and {where}, got: {err!r}")
        run("check", path, want=1)

    run("calibrate", dump, "-o", f"{d}/x.h5", "--pv-format", "int4", want=2)
    run("calibrate", dump, "-o", f"{d}/x.h5", "--pv-bits", "12", want=2)
    run("calibrate", dump, "-o", f"{d}/x.h5", "--pv-bits", "16", "--pv-format", "fp16", want=2)
    run("calibrate", dump, "-o", f"{d}/old.h5", "--pv-bits", "16", "-q")
    assert inspect_formats(f"{d}/old.h5") == [["fp16"] * 3] * 2

report_and_exit()
