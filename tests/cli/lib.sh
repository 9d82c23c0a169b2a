# tests/cli/lib.sh — what the integration scripts share: a scratch directory,
# PASS/FAIL lines, and the checks every script makes of the real binary.
# Sourced by each script after it sets nothing; $HEAPSCOPE names the binary.
# A script ends with `finish NAME`, which exits non-zero if any check failed.

HS=${HEAPSCOPE:?set HEAPSCOPE to the heapscope binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
: >"$tmp/out"
: >"$tmp/err"

pass() { printf '  PASS %s\n' "$1"; }
fail() { printf '  FAIL %s\n' "$1"; sed 's/^/    | /' "$tmp/out" "$tmp/err" 2>/dev/null | head -20; failures=$((failures + 1)); }
# check NAME SHELL-CONDITION
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }

# expect NAME STATUS PATTERN-IN-STDOUT PATTERN-IN-STDERR -- ARGS...
expect() {
	name=$1 want=$2 out_pat=$3 err_pat=$4
	shift 5
	"$HS" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$name (exit $got, want $want)"
	elif [ -n "$out_pat" ] && ! grep -q -- "$out_pat" "$tmp/out"; then
		fail "$name (stdout lacks '$out_pat')"
	elif [ -n "$err_pat" ] && ! grep -q -- "$err_pat" "$tmp/err"; then
		fail "$name (stderr lacks '$err_pat')"
	else
		pass "$name"
	fi
}

# One-line errors: exactly one line on stderr, nothing on stdout.
one_line_error() {
	if [ "$(wc -l <"$tmp/err")" -ne 1 ] || [ -s "$tmp/out" ]; then
		fail "$1 (error is not exactly one line on stderr)"
	fi
}

# bad NAME ARGS...: exit 2, exactly one line "heapscope: ..." on stderr, nothing on stdout.
bad() {
	name=$1
	shift
	"$HS" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	if [ "$got" -ne 2 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] || [ -s "$tmp/out" ] || ! grep -q '^heapscope: ' "$tmp/err"; then
		fail "$name (exit $got; want 2 and one line on stderr)"
	else
		pass "$name"
	fi
}

# run_killed SECONDS DB: records the demo workload into DB and, after SECONDS,
# kills the workload's process (not the recorder) with SIGKILL; returns the
# recorder's status (128 + 9 when it saw the kill).
run_killed() {
	"$HS" run --workload demo --headless -o "$2" >"$tmp/out" 2>"$tmp/err" </dev/null &
	rec=$!
	sleep "$1"
	child=$(pgrep -P "$rec" | head -1)
	[ -n "$child" ] && kill -KILL "$child"
	wait "$rec"
}

finish() {
	[ "$failures" -eq 0 ] || { echo "$1: $failures failed"; exit 1; }
}
