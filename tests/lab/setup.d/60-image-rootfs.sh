#!/usr/bin/env bash
# The images' bases as cached root filesystems (Debian minbase: what debian:trixie-slim and
# debian:sid-slim hold): tests/image/test_image_steps.py copies them and runs the Dockerfiles'
# steps in the copies, since no Docker engine runs on these machines (docs/operating.md,
# "Running the image"). Idempotent: a complete cache is reused; an interrupted build is never
# taken for one.
set -euo pipefail

cache="${CTGW_IMAGE_ROOTS:-/var/cache/ctgw}"

if [ "$(id -u)" != 0 ]; then
  echo "lab: image root filesystem needs root (mmdebstrap --mode=root, chroot); skipped" >&2
  exit 0
fi

if ! command -v mmdebstrap >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q mmdebstrap
fi

build() {
  local suite="$1" root="$cache/image-rootfs-$1"
  # The marker file is written last, inside the temp dir, so a cache without it is never used.
  [ -e "$root/.ctgw-complete" ] && return 0
  mkdir -p "$cache"
  exec 9>"$root.lock"
  flock 9
  if [ ! -e "$root/.ctgw-complete" ]; then
    rm -rf --one-file-system "$root".build.*
    tmp="$(mktemp -d "$root.build.XXXXXX")"
    trap 'rm -rf --one-file-system "$tmp"' EXIT
    trap 'exit 1' INT TERM
    # The package index reached here is a snapshot whose Release file has expired (docs/lab.md).
    mmdebstrap --variant=minbase --mode=root \
      --aptopt='Acquire::Check-Valid-Until "false"' "$suite" "$tmp"
    chmod 0755 "$tmp"
    touch "$tmp/.ctgw-complete"
    rm -rf --one-file-system "$root"
    mv "$tmp" "$root"
    trap - EXIT
    echo "lab: image root filesystem ready at $root"
  fi
  exec 9>&-
}

# trixie: the gateway image's base; sid: the Asterisk image's (only sid has asterisk).
build trixie
build sid
