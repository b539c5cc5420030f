#!/usr/bin/env bash
# The sizing replay against the bench: `ctgw report pools` on a kept bench run's store, at the
# run's own pool size, for the period of its sessions and calls (README "Accuracy").
# Usage: bash bench/attribution_replay.sh FOLDER   (a folder printed by bench/attribution.py --keep)
set -euo pipefail
folder=${1:?a folder kept by bench/attribution.py --keep}
root="$(cd "$(dirname "$0")/.." && pwd)"
db="$folder/ctgw.db"
since=$(sqlite3 "$db" "SELECT min(created_at) FROM sessions")
until=$(sqlite3 "$db" "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', max(started_at), '+1 minute') FROM calls")
size=$(sqlite3 "$db" "SELECT count(*) FROM numbers")
"$root/.venv/bin/ctgw" report pools --config "$folder/gateway.toml" \
    --since "$since" --until "$until" --sizes "$size" 2>/dev/null
