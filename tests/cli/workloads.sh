#!/bin/sh
# tests/cli/workloads.sh — the built-in workloads through the real binary:
# `heapscope workloads` lists and describes them, rejects bad input with one
# line and status 2, and `--run` runs each one's default pass to the end (with
# the heap's invariant check after it), ends a timed run on time, and ends an
# endless one soon after SIGINT. $HEAPSCOPE names the binary. Each check prints
# one line; the script fails at the end if any check failed.
set -u
. "$(dirname "$0")/lib.sh"
names="demo churn fragment grow-shrink large sizeclasses threads"

# ends_within PID TENTHS: whether the background process PID ends within TENTHS
# tenths of a second. (The shell reaps it while a foreground sleep runs, so
# kill -0 stops finding it.)
ends_within() {
	n=0
	while kill -0 "$1" 2>/dev/null; do
		[ "$n" -ge "$2" ] && return 1
		sleep 0.1
		n=$((n + 1))
	done
	return 0
}

# --- listing and describing
expect "workloads lists" 0 "" "" -- workloads
for w in $names; do
	grep -q "^  $w  *[^ ]" "$tmp/out" && pass "list names $w" || fail "list names $w"
done
expect "workloads --help" 0 "run a workload here, untraced (for testing)" "" -- workloads --help
expect "heapscope --help names workloads" 0 "workloads  *list the built-in workloads" "" -- --help
expect "describe one" 0 "replaces a random one" "" -- workloads churn
grep -q "sizeclasses" "$tmp/out" && fail "describe one (prints others too)" || pass "describe one prints only it"

# --- bad input: status 2, one line
expect "unknown workload" 2 "" "heapscope: unknown workload 'frobnicate' (see 'heapscope workloads')" -- workloads frobnicate
one_line_error "unknown workload"
expect "unknown workload to run" 2 "" "unknown workload 'frobnicate'" -- workloads --run frobnicate
one_line_error "unknown workload to run"
expect "bad seed" 2 "" "option --seed: 'x' is not a number" -- workloads --run churn --seed x
one_line_error "bad seed"
expect "negative seed" 2 "" "option --seed: '-1' is not a number" -- workloads --run churn --seed -1
one_line_error "negative seed"
for d in -1 abc 1e3 . 0x10 "1.5s" ""; do
	expect "bad duration '$d'" 2 "" "option --duration: '$d' is not a number of seconds" -- workloads --run demo --duration "$d"
	one_line_error "bad duration '$d'"
done
expect "missing duration" 2 "" "option --duration needs a value" -- workloads --run demo --duration
one_line_error "missing duration"
expect "huge duration" 2 "" "option --duration: 99999999999 is more than" -- workloads --run demo --duration 99999999999
one_line_error "huge duration"
expect "seed without run" 2 "" "workloads: --seed and --duration go with --run" -- workloads --seed 3
one_line_error "seed without run"
expect "unknown option" 2 "" "workloads: unknown option '--bogus'" -- workloads --bogus
one_line_error "unknown option"

# --- each default pass runs to the end on a heap whose invariants hold after it
for w in $names; do
	if [ "$w" = demo ]; then set -- --duration 1; else set --; fi
	HEAPSCOPE_CHECK=1 "$HS" workloads --run "$w" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	if [ "$got" -eq 0 ] && grep -q "^$w: done in [0-9]*\.[0-9][0-9][0-9] s$" "$tmp/out" && [ ! -s "$tmp/err" ]; then
		pass "run $w ($(sed -n "s/^$w: done in //p" "$tmp/out"))"
	else
		fail "run $w (exit $got)"
	fi
done
expect "run with a seed" 0 "^sizeclasses: done in" "" -- workloads --run sizeclasses --seed 0xdeadbeef

# --- a timed run ends on time; an endless one ends soon after SIGINT
"$HS" workloads --run demo --duration 0.5 >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
if ends_within "$pid" 30; then
	wait "$pid" && pass "demo --duration 0.5 ends within 3 s" || fail "demo --duration 0.5 ends within 3 s (exit $?)"
else
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	fail "demo --duration 0.5 ends within 3 s (still running)"
fi

"$HS" workloads --run demo >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
sleep 1
kill -INT "$pid"
if ends_within "$pid" 10; then
	wait "$pid"
	got=$?
	[ "$got" -eq 0 ] && grep -q "^demo: done in" "$tmp/out" && pass "SIGINT stops demo within 1 s, status 0" ||
		fail "SIGINT stops demo within 1 s, status 0 (exit $got)"
else
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	fail "SIGINT stops demo within 1 s, status 0 (still running)"
fi

if [ "$failures" -ne 0 ]; then
	echo "workload tests: $failures failed" >&2
	exit 1
fi
