#!/usr/bin/env bash
# The sizing replay against the bench: `ctgw report pools` on a kept bench run's store, for the
# period of its sessions and calls, at the run's own pool size or at the sizes given (README
# "Accuracy"; e.g. a 1.2x run's store replayed at the 1.4x run's size, as an operator would).
# Usage: bash bench/attribution_replay.sh FOLDER [SIZES]   (FOLDER printed by attribution.py
# --keep; SIZES like 136,158). Each policy is shown: the pool's "reuse" (it shares called
# numbers unless the run's config says not), "reuse_no_sharing" and "overflow".
set -euo pipefail
folder=${1:?a folder kept by bench/attribution.py --keep}
root="$(cd "$(dirname "$0")/.." && pwd)"
db="$folder/ctgw.db"
since=$(sqlite3 "$db" "SELECT min(created_at) FROM sessions")
until=$(sqlite3 "$db" "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', max(started_at), '+1 minute') FROM calls")
sizes=${2:-$(sqlite3 "$db" "SELECT count(*) FROM numbers")}
"$root/.venv/bin/ctgw" report pools --config "$folder/gateway.toml" \
    --since "$since" --until "$until" --sizes "$sizes" 2>/dev/null
