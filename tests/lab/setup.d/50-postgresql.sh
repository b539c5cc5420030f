#!/usr/bin/env bash
# PostgreSQL (Debian's package) for the PostgreSQL tests (tests/postgres): only the server binaries.
# The tests start a private cluster of their own (tests/lab/postgres.py: initdb into a temp folder,
# a private port and socket dir, as the `postgres` user); the package's own cluster is not used.
# Idempotent: quick when Debian's initdb and postgres are already there.
set -euo pipefail
found() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    if [ -x "$bin/initdb" ] && [ -x "$bin/postgres" ]; then
      return 0
    fi
  done
  return 1
}
if found && id postgres >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "lab: postgresql needs root to install (apt-get); skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends postgresql
found
