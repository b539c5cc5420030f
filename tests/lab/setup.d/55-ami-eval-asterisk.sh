#!/usr/bin/env bash
# The private Asterisk 22 root filesystem used by tests/test_ami_asterisk.py and
# bench/ami_restart.py (config: tests/fixtures/asterisk-eval, AMI on 127.0.0.1:26038).
# Idempotent: does nothing when the root filesystem is already there.
set -euo pipefail
rootfs="${CTGW_AMI_EVAL_ROOTFS:-/var/cache/ctgw-ami-eval/rootfs}"
if [ -x "$rootfs/usr/sbin/asterisk" ]; then
  echo "ami-eval asterisk: present at $rootfs"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ami-eval asterisk: needs root (mmdebstrap, chroot); the asterisk tests will skip (fail under CI)"
  exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
  apt-get update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q mmdebstrap
fi
mkdir -p "$(dirname "$rootfs")"
tmp="$rootfs.partial"
rm -rf "$tmp"
# The shared lab's root filesystem (20-asterisk.sh) is the same build: copy it when present.
shared="${CTGW_ASTERISK_ROOT:-/var/cache/ctgw/asterisk-rootfs}"
if [ -x "$shared/usr/sbin/asterisk" ] && [ -e "$shared/.ctgw-complete" ]; then
  cp -a "$shared" "$tmp"
  mv "$tmp" "$rootfs"
  echo "ami-eval asterisk: copied from $shared"
  exit 0
fi
# Debian bookworm has no asterisk package; sid has 22. The package index snapshot reachable
# here has an expired Release file, hence Check-Valid-Until.
mmdebstrap --variant=essential --mode=root --include=asterisk \
  --aptopt='Acquire::Check-Valid-Until "false"' sid "$tmp"
mv "$tmp" "$rootfs"
echo "ami-eval asterisk: built at $rootfs"
