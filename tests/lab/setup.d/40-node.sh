#!/usr/bin/env bash
# Node.js runs the JavaScript webhook verification recipe of docs/webhooks.md against a real
# delivery (tests/api/test_webhooks.py): Debian's own package.
set -euo pipefail
if command -v node >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nodejs
