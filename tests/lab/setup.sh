#!/usr/bin/env bash
# Installs the real parts the integration tests use: each tests/lab/setup.d/*.sh in turn.
# Every part is idempotent and quick when its part is already installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for part in "$here"/setup.d/*.sh; do
  [ -e "$part" ] || continue
  echo "lab: $(basename "$part")"
  bash "$part"
done
