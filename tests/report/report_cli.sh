#!/usr/bin/env bash
# `paro report` end to end through the real binary: the happy path, and every kind of bad input
# giving exit status 2, one line on stderr naming what is at fault, and no directory left behind.
source "$(dirname "$0")/common.sh"

make_small_example "$WORK"
"$PARO" report "$WORK/small_pattern.h5" --dump "$WORK/small_dump.h5" -o "$WORK/rep" -q
[ -f "$WORK/rep/index.html" ] || fail "no index.html"
[ -f "$WORK/rep/img/orders.png" ] || fail "no orders.png"
"$PARO" report "$WORK/small_pattern.h5" -o "$WORK/rep" --heads 1:3,0:0 >/dev/null 2>&1 || fail "re-running over an earlier report"
grep -q 'id="head-L1H3"' "$WORK/rep/index.html" || fail "--heads 1:3 not shown"
grep -q 'id="head-L0H0"' "$WORK/rep/index.html" || fail "--heads 0:0 not shown"
"$PARO" report --help | grep -q -- "--dump" || fail "--help"

expect_bad() {  # expect_bad WHAT_ON_STDERR ARGS...
  local want=$1; shift
  local err rc=0
  err=$("$PARO" report "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq 2 ] || fail "paro report $*: exit $rc, expected 2 (stderr: $err)"
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "paro report $*: more than one line on stderr: $err"
  printf '%s' "$err" | grep -q -- "$want" || fail "paro report $*: stderr '$err' does not name '$want'"
}
expect_bad "missing.h5" "$WORK/missing.h5" -o "$WORK/out1"
expect_bad "small_dump.h5" "$WORK/small_dump.h5" -o "$WORK/out1"            # a dump is not a pattern
printf 'not hdf5' > "$WORK/junk.h5"
expect_bad "junk.h5" "$WORK/junk.h5" -o "$WORK/out1"
expect_bad "--heads" "$WORK/small_pattern.h5" -o "$WORK/out1" --heads 7:0
expect_bad "--heads" "$WORK/small_pattern.h5" -o "$WORK/out1" --heads zero
expect_bad "nosuch.h5" "$WORK/small_pattern.h5" -o "$WORK/out1" --dump "$WORK/nosuch.h5"
"$PARO" synth -q -o "$WORK/other_dump.h5" --grid 2x12x16 --text 32 --layers 2 --heads 4 --samples 1
expect_bad "other_dump.h5" "$WORK/small_pattern.h5" -o "$WORK/out1" --dump "$WORK/other_dump.h5"
expect_bad "-o" "$WORK/small_pattern.h5" -o "$WORK/no/such/dir"
mkdir "$WORK/foreign" && echo keep > "$WORK/foreign/notes.txt"
expect_bad "foreign" "$WORK/small_pattern.h5" -o "$WORK/foreign"
[ "$(cat "$WORK/foreign/notes.txt")" = keep ] || fail "a foreign directory was touched"
rc=0; "$PARO" report "$WORK/small_pattern.h5" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "missing -o: exit $rc"

[ ! -e "$WORK/out1" ] || fail "a failed report left $WORK/out1"
if ls -a "$WORK" | grep -q '\.tmp'; then fail "a temporary directory was left: $(ls -a "$WORK")"; fi
echo "report_cli: ok"
