#!/usr/bin/env bash
# Shell completion from the command definitions: bash's function driven as bash would call it
# (COMP_WORDS / COMP_CWORD), and zsh's script parsed and registered by compinit; both must offer
# every command and every option `paro COMMAND --help` lists.
set -uo pipefail
source "$(dirname "$0")/common.bash"
say() { echo "FAIL: $*"; fail=1; }
options_of() { "$PARO" "$1" --help | grep -oE -- '^ +(-[a-zA-Z],)?--[a-z][a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+' | sort -u; }
commands="calibrate inspect check synth validate bench report merge export help completion"

"$PARO" completion bash >"$dir/paro.bash" || say "paro completion bash"
bash -n "$dir/paro.bash" || say "the bash completion does not parse"
# shellcheck disable=SC1091
source "$dir/paro.bash"
complete -p paro | grep -q -- "-F _paro" || say "complete -F _paro paro is not registered"
offers() {  # offers WORD... : what bash would offer for the last word
    COMP_WORDS=(paro "$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
    _paro 2>/dev/null  # compopt complains outside a real completion
    printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect() {  # expect "WANTED WORDS" WORD...
    local want; want=$(printf '%s\n' $1 | sort); shift
    local got; got=$(offers "$@")
    [ "$got" = "$want" ] || say "paro $* <TAB>: offered [$(echo $got)], expected [$(echo $want)]"
}
expect "calibrate check completion" c
expect "calibrate" ca
expect "--objective" calibrate --obj
expect "recall paper output-error" calibrate --objective ""
expect "auto always never" inspect --color ""
expect "auto always never" inspect --color = ""       # --color=<TAB>: bash splits at '='
expect "prefix suffix" synth --text-position ""
expect "int8 fp16 fp8_e4m3" calibrate x.h5 --pv-format ""
expect "dense masked" validate --against ""
expect "exit-status" help exit-
expect "exit-status export" help ex
expect "bash zsh" completion ""
expect "" calibrate --density ""                      # a number: nothing to offer
[ "$(offers "")" = "$(printf '%s\n' $commands --help --version | sort)" ] || say "paro <TAB>: $(offers "" | xargs)"
touch "$dir/some_dump.h5"
[ "$(offers calibrate "$dir/some_")" = "$dir/some_dump.h5" ] || say "files are not offered for calibrate's input"
[ "$(offers calibrate x.h5 -o "$dir/some_")" = "$dir/some_dump.h5" ] || say "files are not offered after -o"
for sub in calibrate inspect check synth validate bench report merge export; do
    for opt in $(options_of "$sub"); do
        offers "$sub" "${opt:0:${#opt}-1}" | grep -qx -- "$opt" || say "paro $sub ${opt:0:${#opt}-1}<TAB> does not offer $opt"
    done
done

"$PARO" completion zsh >"$dir/_paro" || say "paro completion zsh"
if command -v zsh >/dev/null; then
    zsh -n "$dir/_paro" || say "the zsh completion does not parse"
    got=$(zsh -f -c 'fpath=($1 $fpath); autoload -Uz compinit; compinit -u -D; print -r -- ${_comps[paro]}' _ "$dir" 2>&1)
    [ "$got" = "_paro" ] || say "compinit does not register _paro for paro: '$got'"
    for sub in calibrate inspect check synth validate bench report merge export; do
        grep -q "^    $sub)" "$dir/_paro" || say "zsh: no case for $sub"
        for opt in $(options_of "$sub"); do
            # the spec lines of this command's case name the option
            awk -v s="    $sub)" '$0 == s {on = 1; next} on && /^    [a-z]+\)/ {on = 0} on' "$dir/_paro" |
                grep -q -- "$opt" || say "zsh: $sub lacks $opt"
        done
    done
    grep -q "(recall paper output-error)" "$dir/_paro" || say "zsh: --objective's values are not offered"
else
    echo "zsh not installed: its script is only generated (scripts/setup.sh installs zsh)"
fi
[ $fail -eq 0 ] && echo "completion: all checks passed"
exit $fail
