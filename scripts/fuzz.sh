#!/usr/bin/env bash
# libFuzzer over the readers: builds build-fuzz/ with clang (coverage + ASan + UBSan on every
# target, CPU only), makes a seed corpus with the normal build's paro (a dump, a pattern, a statistics
# file, and the committed files that once crashed libhdf5), and runs each harness for FUZZ_SECONDS (default 30).
# Any crash, sanitizer report, leak of a non-paro exception or timeout is a finding: exit 1, the
# input saved under build-fuzz/findings/. FUZZ_RUNS=N runs N executions per harness instead;
# FUZZ_HARNESSES="fuzz_dump_reader ..." picks harnesses (a campaign runs one per core this way).
# The child-process walk gets 0.05 s (PARO_HDF5_PROBE_SECONDS): the walk of an input this small takes
# a few ms, and about one mutant in twelve makes libhdf5 loop, so the limit sets the pace.
# No RSS thread (-rss_limit_mb=0; -malloc_limit_mb caps allocations instead): the harness process
# must stay single-threaded for paro's child-process walk of each input (lib/core/paro/hdf5_probe.hpp),
# the way the paro command runs. allow_user_segv_handler=1 lets that child restore the default
# action of SIGSEGV, so a libhdf5 crash in it ends it quietly, not in ASan's report and libFuzzer's
# crash artifact (a known libhdf5 bug, which paro already turns into one error line).
# allocator_may_return_null=1: a corrupt size makes libhdf5 ask malloc for petabytes, which fails
# (NULL) and libhdf5 reports as an error, as in a normal build; ASan would abort instead. Requests
# above 4 GiB that could succeed still count as findings (-malloc_limit_mb).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
CLANG=${CLANG:-$(command -v clang++ || command -v clang++-14 || true)}
[ -n "$CLANG" ] || { echo "fuzz: clang++ not found (scripts/setup.sh installs clang)"; exit 1; }
flags="-O1 -g1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER="$CLANG" -DPARO_WITH_CUDA=OFF \
    -DPARO_BUILD_TESTS=OFF -DPARO_FUZZ=ON -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >build-fuzz.configure.log 2>&1 ||
    { cat build-fuzz.configure.log; exit 1; }
cmake --build build-fuzz -j"$jobs" --target fuzz_dump_reader fuzz_pattern_reader fuzz_schema_check paro_cli
paro=build-fuzz/paro
seeds=build-fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds" build-fuzz/findings
"$paro" synth -q -o "$seeds/dump.h5" --grid 2x4x4 --text 8 --layers 1 --heads 2 --samples 2 --head-dim 64
"$paro" calibrate -q "$seeds/dump.h5" -o "$seeds/pattern.h5" --density 0.5 --slots 2 --stats-out "$seeds/stats.h5"
cp tests/data/corrupt/pattern_*.h5 "$seeds/"  # crashers; not the looper (each run of it costs the time limit)
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:quarantine_size_mb=16:allow_user_segv_handler=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PARO_HDF5_PROBE_SECONDS=${PARO_HDF5_PROBE_SECONDS:-0.05} PARO_MEMORY_LIMIT=1G  # the budget refuses below -malloc_limit_mb
fail=0
for h in ${FUZZ_HARNESSES:-fuzz_dump_reader fuzz_pattern_reader fuzz_schema_check}; do
    corpus=build-fuzz/corpus/$h
    mkdir -p "$corpus"
    budget=${FUZZ_RUNS:+-runs=$FUZZ_RUNS}
    budget=${budget:--max_total_time=${FUZZ_SECONDS:-30}}
    if ! build-fuzz/fuzz/$h "$corpus" "$seeds" $budget -timeout=30 -rss_limit_mb=0 -malloc_limit_mb=4096 -max_len=65536 \
            -artifact_prefix=build-fuzz/findings/$h- -print_final_stats=1 >"build-fuzz/$h.log" 2>&1; then
        echo "fuzz: $h found a problem:"; grep -E "ERROR|SUMMARY|runtime error|Test unit written" "build-fuzz/$h.log" | head -10
        fail=1
    fi
    echo "fuzz: $h: $(grep -E 'stat::number_of_executed_units' "build-fuzz/$h.log" | awk '{print $2}') executions," \
         "$(grep -cE '^#[0-9]+.*(NEW|REDUCE)' "build-fuzz/$h.log") corpus growths"
done
exit $fail
