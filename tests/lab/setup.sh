#!/usr/bin/env bash
# Installs the real parts the integration tests use (nothing yet beyond Python packages).
set -euo pipefail
exit 0
