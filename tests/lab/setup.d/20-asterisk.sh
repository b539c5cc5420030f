#!/usr/bin/env bash
# Asterisk 22 (Debian sid) in a cached root filesystem, and baresip (the agent phone) on the host.
# Every Asterisk of the tests and benchmarks (the call lab, the AMI eval) runs from this one root
# filesystem, each with a config directory of its own (docs/lab.md).
# Idempotent: a complete cache is reused; an interrupted build is never taken for one.
set -euo pipefail

root="${CTGW_ASTERISK_ROOT:-/var/cache/ctgw/asterisk-rootfs}"
suite="${CTGW_ASTERISK_SUITE:-sid}"

if [ "$(id -u)" != 0 ]; then
  echo "lab: asterisk needs root (mmdebstrap --mode=root, chroot); skipped" >&2
  exit 0
fi

# Earlier versions kept a second copy of it for the AMI eval: 328 MB no longer used.
if [ -d /var/cache/ctgw-ami-eval/rootfs ]; then
  umount /var/cache/ctgw-ami-eval/rootfs/proc 2>/dev/null || true
  rm -rf --one-file-system /var/cache/ctgw-ami-eval
fi

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v baresip >/dev/null || need+=(baresip-core)
if [ ${#need[@]} -gt 0 ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "${need[@]}"
fi

# The marker file is written last, inside the temp dir, so a cache without it is never used.
if [ -x "$root/usr/sbin/asterisk" ] && [ -e "$root/.ctgw-complete" ]; then
  exit 0
fi

mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
# Another run may have finished the build while we waited for the lock.
if [ -x "$root/usr/sbin/asterisk" ] && [ -e "$root/.ctgw-complete" ]; then
  exit 0
fi

# Builds cut short earlier (machine reset, kill -9) left only temp dirs: remove them.
rm -rf --one-file-system "$root".build.*
tmp="$(mktemp -d "$root.build.XXXXXX")"
trap 'rm -rf --one-file-system "$tmp"' EXIT
trap 'exit 1' INT TERM
# The package index reached here is a snapshot whose Release file has expired (docs/lab.md).
mmdebstrap --variant=essential --mode=root --include=asterisk \
  --aptopt='Acquire::Check-Valid-Until "false"' "$suite" "$tmp"
"$tmp/usr/sbin/asterisk" -V >/dev/null 2>&1 || chroot "$tmp" /usr/sbin/asterisk -V
touch "$tmp/.ctgw-complete"
rm -rf --one-file-system "$root"
mv "$tmp" "$root"
trap - EXIT
echo "lab: asterisk root filesystem ready at $root"
