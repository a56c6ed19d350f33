#!/usr/bin/env bash
# Makes local stand-ins for the public base images, for machines that reach Debian's packages
# but no container registry. Idempotent: images that exist are kept (FORCE=1 rebuilds), and the
# debootstrap tree is cached, so a second run takes seconds.
#
#   axiom25-local/debian:bookworm        Debian minbase with apt (stand-in for debian:bookworm-slim)
#   axiom25-local/rust-builder:bookworm  + gcc, libc6-dev and this machine's Rust toolchain
#                                          (stand-in for rust:<version>-bookworm)
#   axiom25-local/cc-runtime:bookworm    glibc, libgcc, CA certificates, user 65532, no shell
#                                          (stand-in for gcr.io/distroless/cc-debian12:nonroot)
#
# The Debian mirror is read from this machine's apt configuration; the TLS trust store of this
# machine goes into the builder so cargo can reach the crate registry through it.
set -euo pipefail

SUITE=${SUITE:-bookworm}
PREFIX=${BASE_PREFIX:-axiom25-local}
CACHE=${BOOTSTRAP_CACHE:-/var/tmp/axiom25-bootstrap}
FORCE=${FORCE:-0}
HOST_CA=${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}

log() { printf '[bootstrap] %s\n' "$*" >&2; }
have_image() { [[ $FORCE != 1 ]] && docker image inspect "$1" >/dev/null 2>&1; }

debian_mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }')
    if [[ -z $uri ]]; then
        uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
            awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) if ($i ~ /debian\/?$/) { print $i; exit } }')
    fi
    [[ -n $uri ]] || { log "no Debian mirror in this machine's apt configuration"; exit 1; }
    printf '%s\n' "$uri"
}

# One debootstrap tree, shared by the images below.
rootfs() {
    local tree=$CACHE/rootfs-$SUITE
    if [[ ! -f $tree/.complete ]]; then
        command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
        log "debootstrap $SUITE (about a minute)"
        rm -rf "$tree" && mkdir -p "$CACHE"
        debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$tree" "$(debian_mirror)" >&2
        rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
        touch "$tree/.complete"
    fi
    printf '%s\n' "$tree"
}

import_tree() { # import_tree DIR IMAGE [--change ...]
    local dir=$1 image=$2
    shift 2
    tar --numeric-owner -C "$dir" --exclude=./.complete -c . | docker import "$@" - "$image" >/dev/null
    log "built $image"
}

build_debian() {
    local image=$PREFIX/debian:$SUITE
    have_image "$image" && { log "$image exists"; return; }
    # A separate assignment, so that a failed debootstrap stops the script before anything is imported.
    local tree
    tree=$(rootfs)
    import_tree "$tree" "$image" --change 'CMD ["/bin/bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
}

build_rust_builder() {
    local image=$PREFIX/rust-builder:$SUITE tree=$CACHE/builder-$SUITE sysroot base
    have_image "$image" && { log "$image exists"; return; }
    sysroot=$(rustc --print sysroot)
    base=$(rootfs)
    log "assembling $image from $(rustc --version)"
    rm -rf "$tree" && cp -a "$base" "$tree" && rm -f "$tree/.complete"
    cp /etc/resolv.conf "$tree/etc/resolv.conf"
    chroot "$tree" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    chroot "$tree" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends gcc libc6-dev >&2
    rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
    mkdir -p "$tree/usr/local/rust" "$tree/usr/local/cargo"
    tar -C "$sysroot" --exclude=./share/doc --exclude=./share/man -c . | tar -C "$tree/usr/local/rust" -x
    cp "$HOST_CA" "$tree/etc/ssl/certs/ca-certificates.crt"
    import_tree "$tree" "$image" \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'WORKDIR /src' --change 'CMD ["/bin/bash"]'
    rm -rf "$tree"
}

build_cc_runtime() {
    local image=$PREFIX/cc-runtime:$SUITE tree=$CACHE/runtime-$SUITE src lib
    have_image "$image" && { log "$image exists"; return; }
    src=$(rootfs)
    rm -rf "$tree" && mkdir -p "$tree"/{etc/ssl/certs,lib/x86_64-linux-gnu,lib64,tmp,home/nonroot,usr/lib}
    for lib in libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 libpthread.so.0 librt.so.1 ld-linux-x86-64.so.2; do
        cp -L "$src/lib/x86_64-linux-gnu/$lib" "$tree/lib/x86_64-linux-gnu/$lib"
    done
    ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$tree/lib64/ld-linux-x86-64.so.2"
    cp -L "$src/etc/ssl/certs/ca-certificates.crt" "$tree/etc/ssl/certs/"
    cp -L "$src/usr/lib/os-release" "$tree/usr/lib/os-release"
    ln -s ../usr/lib/os-release "$tree/etc/os-release"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$tree/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' >"$tree/etc/group"
    printf 'hosts: files dns\n' >"$tree/etc/nsswitch.conf"
    chmod 1777 "$tree/tmp"
    chown 65532:65532 "$tree/home/nonroot"
    import_tree "$tree" "$image" --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
    rm -rf "$tree"
}

started=$SECONDS
build_debian
build_rust_builder
build_cc_runtime
log "base images ready in $((SECONDS - started))s"
