#!/bin/sh
# tests/cli/run.sh — integration tests that run the real heapscope binary.
# $HEAPSCOPE names the binary. Each check prints one line; the script fails at
# the end if any check failed.
set -u
. "$(dirname "$0")/lib.sh"

expect "help lists commands" 0 "demo" "" -- --help
expect "version names the arch" 0 "linux/amd64" "" -- --version
expect "no arguments is a usage error" 2 "" "usage: heapscope" --
expect "unknown command" 2 "" "unknown command 'frobnicate'" -- frobnicate
one_line_error "unknown command"
expect "demo --help" 0 "--seed N" "" -- demo --help
expect "demo bad number" 2 "" "option --seed: 'x' is not a number" -- demo --seed x
one_line_error "demo bad number"
expect "demo missing value" 2 "" "option --frames needs a value" -- demo --frames
one_line_error "demo missing value"
expect "demo out of range" 2 "" "option --chunks: 5000 is outside" -- demo --chunks 5000
expect "demo unknown option" 2 "" "unknown option '--bogus'" -- demo --bogus

# The demo draws every summary level and a chunk grid, and its invariant check
# passes on each of 20 frames of a long run.
expect "demo frames" 0 "summary levels" "" -- demo --frames 20 --interval 0 --ops 2000 --seed 3
levels=$(grep -c '^  L[0-9] (' "$tmp/out")
[ "$levels" -eq 100 ] && pass "demo draws 5 levels per frame" || fail "demo draws 5 levels per frame (got $levels rows)"
grep -q '^  [#.:@]\{32\}$' "$tmp/out" && pass "demo draws chunk rows" || fail "demo draws chunk rows"

# The same seed gives the same frames; another seed does not.
"$HS" demo --frames 3 --interval 0 --seed 11 >"$tmp/a" 2>&1
"$HS" demo --frames 3 --interval 0 --seed 11 >"$tmp/b" 2>&1
"$HS" demo --frames 3 --interval 0 --seed 12 >"$tmp/c" 2>&1
cmp -s "$tmp/a" "$tmp/b" && pass "demo is deterministic" || fail "demo is deterministic"
cmp -s "$tmp/a" "$tmp/c" && fail "demo seeds differ" || pass "demo seeds differ"

if [ "$failures" -ne 0 ]; then
	echo "cli tests: $failures failed" >&2
	exit 1
fi
