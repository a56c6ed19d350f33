#!/bin/sh
# Copies what building the workspace's dependencies needs (manifests, lock file, build scripts,
# protos) into DIR, with stub sources for every target, so that a Docker layer built from DIR
# changes only when dependencies do, never on a source-only change.
set -eu
out=${1:?usage: cargo-plan.sh DIR}
mkdir -p "$out"
cp Cargo.toml Cargo.lock "$out/"
cp -R proto "$out/proto"
find . -name Cargo.toml -not -path './target/*' -not -path ./Cargo.toml | sort | while read -r manifest; do
    dir=${manifest%/Cargo.toml}
    mkdir -p "$out/$dir/src"
    cp "$manifest" "$out/$dir/Cargo.toml"
    if [ -f "$dir/build.rs" ]; then cp "$dir/build.rs" "$out/$dir/build.rs"; fi
    : >"$out/$dir/src/lib.rs"
    # Explicit targets ([[bin]], [[test]], [[bench]]) must exist for the manifest to load.
    sed -n 's/^path *= *"\([^"]*\)".*/\1/p' "$manifest" | while read -r target; do
        mkdir -p "$(dirname "$out/$dir/$target")"
        printf 'fn main() {}\n' >"$out/$dir/$target"
    done
done
