#!/bin/sh
# tests/cli/recorder.sh — the recorder and the model end to end (issue 5):
# `heapscope run` records every built-in workload into a real SQLite file, the
# model replays it live and checks every digest, `heapscope verify` replays the
# stored session again; crashes and interruptions keep what was recorded.
# $HEAPSCOPE names the binary.
set -u
. "$(dirname "$0")/lib.sh"

# Record, replay live, verify from the file: for every workload, at both levels.
for w in $("$HS" workloads | awk '/^  [a-z][a-z-]*  / { print $1 }'); do
	[ "$w" = demo ] && continue
	for level in heap objects; do
		db=$tmp/$w-$level.db
		"$HS" run --workload "$w" --events "$level" --seed 7 --headless -o "$db" >"$tmp/out" 2>"$tmp/err"
		st=$?
		check "run $w ($level) exits 0" '[ $st -eq 0 ]'
		check "run $w ($level): model digests all equal" 'grep -q "digests checked, all equal" "$tmp/out"'
		check "run $w ($level): 0 lost" 'grep -q ", 0 lost," "$tmp/out"'
		"$HS" verify "$db" >"$tmp/out" 2>"$tmp/err"
		check "verify $w ($level)" '[ $? -eq 0 ] && grep -q "invariants hold" "$tmp/out"'
	done
done

# demo loops forever without --duration: bounded run.
db=$tmp/demo.db
"$HS" run --workload demo --duration 1 --headless -o "$db" >"$tmp/out" 2>"$tmp/err"
check "run demo --duration 1" '[ $? -eq 0 ] && grep -q "all equal" "$tmp/out"'
"$HS" verify "$db" >"$tmp/out" 2>"$tmp/err"
check "verify demo" '[ $? -eq 0 ]'

# Object level records every malloc and free: churn makes at least 2M of each.
db=$tmp/churn-objects.db
"$HS" run --workload churn --events objects --headless -o "$db" >"$tmp/out" 2>"$tmp/err"
n=$("$HS" query "$db" "SELECT count(*) FROM malloc" --csv 2>/dev/null | tail -1)
check "object level records mallocs ($n)" '[ "${n:-0}" -ge 2000000 ]'

# A workload killed with SIGKILL: the session is marked crashed and keeps every
# event that reached the recorder; the events verify.
db=$tmp/killed.db
run_killed 1.5 "$db"
st=$?
check "killed workload: recorder exits 128+9 ($st)" '[ $st -eq 137 ]'
"$HS" sessions "$db" >"$tmp/out" 2>"$tmp/err"
check "killed workload: session crashed" 'grep -q crashed "$tmp/out"'
"$HS" verify "$db" >"$tmp/out" 2>"$tmp/err"
check "killed workload: recorded events verify" '[ $? -eq 0 ]'

# The recorder told to stop: the session is interrupted, the events kept.
db=$tmp/stopped.db
"$HS" run --workload demo --headless -o "$db" >"$tmp/out" 2>"$tmp/err" &
rec=$!
sleep 1
kill -INT "$rec"
wait "$rec"
"$HS" sessions "$db" >"$tmp/out" 2>"$tmp/err"
check "SIGINT to the recorder: session interrupted" 'grep -q interrupted "$tmp/out"'
"$HS" verify "$db" >"$tmp/out" 2>"$tmp/err"
check "interrupted session verifies" '[ $? -eq 0 ]'

# Lossy: a tiny ring that nobody can keep up with drops, and says so; the
# count the recorder prints is the count the session stores.
db=$tmp/lossy.db
"$HS" run --workload churn --events objects --lossy --ring-slots 1024 --no-model --headless -o "$db" \
	>"$tmp/out" 2>"$tmp/err"
lost=$(sed -n 's/.*, \([0-9]*\) lost,.*/\1/p' "$tmp/out")
stored=$("$HS" query "$db" "SELECT nlost FROM sessions" --csv 2>/dev/null | tail -1)
check "lossy run drops ($lost) and stores the count ($stored)" '[ "${lost:-0}" -gt 0 ] && [ "$lost" = "$stored" ]'

# Bad input: one line, exit 2.
for args in "run --workload nosuch" "run --events everything" "run --duration -1" "run --ring-slots 1000" \
	"run --bogus" "verify" "verify $tmp/nonexistent.db"; do
	# shellcheck disable=SC2086
	"$HS" $args >"$tmp/out" 2>"$tmp/err" </dev/null
	st=$?
	check "'$args' is a one-line error" '[ $st -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -s "$tmp/out" ]'
done

# docs/events.md describes every event of the table.
docs=$(dirname "$0")/../../docs/events.md
for name in $("$HS" query "$tmp/demo.db" "SELECT name FROM kinds" --csv | tail -n +2); do
	grep -q "\`$name\`" "$docs" || { echo "  docs/events.md lacks $name"; failures=$((failures + 1)); }
done
pass "docs/events.md names every event"

[ "$failures" -eq 0 ] || { echo "recorder: $failures failed"; exit 1; }
