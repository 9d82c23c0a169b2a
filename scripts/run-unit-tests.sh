#!/bin/sh
# scripts/run-unit-tests.sh BIN... — runs each cmocka test binary, prints one line
# per binary, and fails at the end if any failed (so one failure does not hide
# the others). The binary's path names its arch configuration.
set -u
failed=""
for t in "$@"; do
	log="$t.log"
	start=$(date +%s.%N)
	if "$t" >"$log" 2>&1; then
		printf '  PASS %-40s %6.2fs\n' "$t" "$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')"
	else
		printf '  FAIL %s (log: %s)\n' "$t" "$log"
		sed 's/^/    | /' "$log" | tail -40
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "unit tests failed:$failed" >&2
	exit 1
fi
