#!/usr/bin/env bash
# The host packages a make goal needs, in one list: `make up`, `make test` and .ci/run all call this.
#
#   tools/host/packages.sh up|test [--check]
#
# For each tool the goal needs that is not on PATH, the Debian package that ships it is collected.
# Missing packages are installed with apt-get when this runs as root on a Debian-like machine and
# --check is not given; otherwise the script prints one line with the exact command and exits 1.
# apt-get talks to whatever the machine's apt configuration names: no mirror is written here.
set -euo pipefail

goal=${1:-}
check_only=0
[[ ${2:-} == --check ]] && check_only=1

# tool:package pairs. `up` builds the images (local bases come from debootstrap) and runs compose.
up_needs=(curl:curl make:make git:git python3:python3 debootstrap:debootstrap docker-compose:docker-compose)
# `test` adds the browser tests' Chromium with its own chromedriver (never a downloaded one), and
# promtool and amtool for the rule and route tests.
test_needs=("${up_needs[@]}" chromium:chromium chromedriver:chromium-driver promtool:prometheus amtool:prometheus-alertmanager)

case $goal in
up) needs=("${up_needs[@]}") ;;
test) needs=("${test_needs[@]}") ;;
*) echo "usage: $0 up|test [--check]" >&2; exit 2 ;;
esac

missing=()
for pair in "${needs[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# venv and ensurepip: Debian splits them out of python3.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

# `test` lints with rustfmt and clippy: rustup components, not Debian packages.
if [[ $goal == test ]] && command -v rustup >/dev/null 2>&1; then
    for component in rustfmt clippy; do
        tool=$component; [[ $component == rustfmt ]] && tool=fmt
        cargo "$tool" --version >/dev/null 2>&1 && continue
        if ((check_only)); then
            printf '[host] missing for make test: run `rustup component add %s`\n' "$component" >&2
            exit 1
        fi
        rustup component add "$component"
    done
fi
((${#missing[@]})) || exit 0

if ((check_only == 0)) && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    printf '[host] installing %s\n' "${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    exit 0
fi
printf '[host] missing for make %s: run `sudo apt-get install -y %s` and try again\n' "$goal" "${missing[*]}" >&2
exit 1
