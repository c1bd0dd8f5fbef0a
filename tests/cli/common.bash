# Sourced by the command tests: a scratch directory removed on exit, and run(), which runs a
# command with its output in $dir/out.txt and $dir/err.txt and marks the test failed when the
# exit status is not the expected one.
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fail=0
run() {  # expected-exit command...
    local want=$1; shift
    "$@" >"$dir/out.txt" 2>"$dir/err.txt"; local rc=$?
    if [ "$rc" -ne "$want" ]; then echo "FAIL (exit $rc, wanted $want): $*"; cat "$dir/out.txt" "$dir/err.txt"; fail=1; fi
}
