#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/browser): Debian's own build, no browser download.
# Playwright for Python drives it through executable_path=/usr/bin/chromium.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium fonts-dejavu-core
