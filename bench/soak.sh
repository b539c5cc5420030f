#!/usr/bin/env bash
# The suite's load check (issue 9): `make test` N times in a row (default 10) in a fresh clone of
# this checkout's HEAD, with one CPU-burning process beside it. Prints one line a run; the logs
# stay in the work folder. Run by hand, as root, like `make test`: bash bench/soak.sh [N]
set -uo pipefail
runs="${1:-10}"
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/ctgw-soak.XXXXXX)"
git clone -q "$src" "$work/clone"
echo "soak: $(git -C "$work/clone" log --oneline -1) in $work"
python3 -c 'while True: pass' &
burner=$!
trap 'kill "$burner" 2>/dev/null' EXIT
failed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  (cd "$work/clone" && CI=true make test) >"$work/run$i.log" 2>&1
  rc=$?
  summary=$(grep -E '^=+ .*(passed|failed).* =+$' "$work/run$i.log" | tail -1)
  echo "run $i: exit $rc, $(( $(date +%s) - start )) s, $summary"
  [ "$rc" = 0 ] || failed=$((failed + 1))
done
echo "soak: $failed of $runs runs failed"
[ "$failed" = 0 ]
