#!/usr/bin/env bash
# The memory estimates that calibrate and report check against PARO_MEMORY_LIMIT before work (the
# largest of them, found by raising the limit past each refusal), against the peak they reach: on a grid whose tile statistics dominate (block 16: 521 x 521 tiles an order),
# the estimate covers the measured peak resident size, for one thread and for two, and is not far
# above it.
set -uo pipefail
source "$(dirname "$0")/common.bash"
if [ -n "${ASAN_OPTIONS:-}" ] || ldd "$PARO" 2>/dev/null | grep -q libasan; then
    echo "a sanitized build: its shadow memory and quarantine are not the program's; skipped"; exit 77
fi
run 0 "$PARO" synth -o "$dir/d.h5" --grid 6x30x45 --text 226 --layers 1 --heads 1 --samples 1 --head-dim 64 --seed 5 -q
run 0 "$PARO" calibrate "$dir/d.h5" -o "$dir/p.h5" --block 16 --density 0.3 --device cpu -q
for threads in 1 2; do
    "$PYTHON" - "$PARO" "$dir" "$threads" <<'PY' || fail=1
import os, re, subprocess, sys
paro, d, threads = sys.argv[1:]
UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
def run(cmd, limit=None):
    env = dict(os.environ, **({"PARO_MEMORY_LIMIT": limit} if limit else {}))
    return subprocess.run(cmd, env=env, capture_output=True, text=True)
def peak_of(cmd):  # a real run's exit status and peak resident bytes (its own rusage, by wait4)
    with open(f"{d}/err.txt", "w") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"FAIL: {cmd}: exit {p.returncode}, {open(f'{d}/err.txt').read()!r}")
    return usage.ru_maxrss * 1024
def measured(cmd):  # the largest of the estimates checked (each refusal names one), then the peak of a real run
    limit, estimates = 1024, []
    while True:
        r = run(cmd, str(int(limit)))
        if r.returncode == 0:
            break
        m = re.search(r"needs about ([0-9.]+) (bytes|KiB|MiB|GiB)", r.stderr)
        if r.returncode != 2 or not m or len(estimates) > 20:
            sys.exit(f"FAIL: no estimate from {cmd}: exit {r.returncode}, {r.stderr!r}")
        estimates.append(float(m.group(1)) * UNITS[m.group(2)])
        limit = estimates[-1] * 1.01 + 1024  # past this one (printed to 0.1 of a unit)
    return max(estimates), peak_of(cmd)
base = 64 * 2**20  # the process without its data: binary, libhdf5, libgomp, allocator slack
cases = {
    "calibrate": [paro, "calibrate", f"{d}/d.h5", "-o", f"{d}/p{threads}.h5", "--block", "16", "--density", "0.3",
                  "--device", "cpu", "--threads", threads, "-q"],
    "report": [paro, "report", f"{d}/p.h5", "--dump", f"{d}/d.h5", "-o", f"{d}/r{threads}"],
}
for name, cmd in cases.items():
    if name == "report":
        os.environ["OMP_NUM_THREADS"] = threads
    estimate, peak = measured(cmd)
    print(f"{name}, {threads} thread(s): estimate {estimate / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB")
    if peak > estimate + base:
        sys.exit(f"FAIL: {name} peaked at {peak / 2**20:.1f} MiB, past its estimate of {estimate / 2**20:.1f} MiB")
    if estimate > 3 * peak:
        sys.exit(f"FAIL: {name}'s estimate {estimate / 2**20:.1f} MiB is over 3x its peak {peak / 2**20:.1f} MiB")
PY
done
exit $fail
