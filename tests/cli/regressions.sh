#!/bin/sh
# tests/cli/regressions.sh — heap settings, `heapscope replay-workload` and
# the walk-through of docs/regressions.md, on the real binary. $HEAPSCOPE
# names the binary. Each check prints one line; the script fails at the end
# if any check failed. Needs python3 (JSON). About 20 s.
#
# What is expected, and why (no figure here was copied from an output):
#   --page-cache off  every span's pages come from the page allocator under
#                     heap.lock, one call per span: the session has no
#                     page_cache_alloc event, and its "page allocations under
#                     heap.lock" equal its "spans allocated"; with the cache a
#                     call fills a cache that serves many spans, so the diff
#                     names that figure first.
#   --scavenger-budget 0  no background scavenging: the scavenger releases
#                     0 B in 0 cycles, so retained memory stays up; the diff
#                     names the scavenger's released bytes (-100%, the most a
#                     figure can fall) or a retained figure (up by what the
#                     scavenger gave back) first.
#   --search-addr off the page allocator finds the same pages: the heap-level
#                     event stream is the baseline's.
#   --arena-hints     go: the first arena at one of Go's hints, i << 40 |
#                     0x00c0 << 32 for i = 0 .. 0x7f (0x0040 << 32 on arm64;
#                     the first the OS grants: a sanitizer's shadow takes i = 0);
#                     kernel: at none of them.
#   --memory-limit    allocations over the limit scavenge themselves
#                     (scav_start reason 1, an assist); without a limit none do.
#   determinism       two replays of one session: the same heap-level stream,
#                     by kind and arguments, but for proc_start's pid and ppid
#                     and the stats' rss (the OS's facts); the object-level
#                     stream too.
set -u
. "$(dirname "$0")/lib.sh"

# json FILE EXPR: evaluates the Python expression EXPR over the JSON document d.
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# q FILE SQL: the one value a query returns.
q() { "$HS" query "$1" "$2" --csv 2>/dev/null | tail -n +2; }
# heap_stream FILE SESSION: the heap-level events as the determinism test
# compares them (docs/regressions.md has the same query).
heap_stream() {
	"$HS" query "$1" "SELECT name, CASE name WHEN 'proc_start' THEN 0 ELSE a0 END,
		CASE name WHEN 'proc_start' THEN 0 ELSE a1 END, a2, a3,
		CASE name WHEN 'stats' THEN 0 ELSE a4 END, a5
		FROM events JOIN kinds USING (kind) WHERE session = $2 AND level = 'heap' ORDER BY seq" --csv
}
object_stream() {
	"$HS" query "$1" "SELECT kind, a0, a1, a2 FROM events WHERE session = $2 AND kind IN (32, 33) ORDER BY seq" --csv
}
# largest NAME DIFF-OUTPUT-FILE PATTERN: the diff's first line names PATTERN.
largest() { check "$1 ($(head -1 "$3"))" "head -1 '$3' | grep -q '^largest change: $2'"; }

# --- the settings ------------------------------------------------------------------

expect "run --help" 0 "heap settings" "" -- run --help
for f in scavenger-budget scavenger-retain memory-limit sweep-trigger page-cache search-addr arena-hints; do
	grep -q -- "--$f " "$tmp/out" && pass "run --help lists --$f" || fail "run --help lists --$f"
done
bad "run: budget above 100" run --workload sizeclasses --headless -o "$tmp/x.db" --scavenger-budget 101
bad "run: budget not a number" run --workload sizeclasses --headless -o "$tmp/x.db" --scavenger-budget x
bad "run: retain below 100" run --workload sizeclasses --headless -o "$tmp/x.db" --scavenger-retain 99
bad "run: memory limit not bytes" run --workload sizeclasses --headless -o "$tmp/x.db" --memory-limit 12apples
bad "run: sweep trigger too large" run --workload sizeclasses --headless -o "$tmp/x.db" --sweep-trigger 99999999999GiB
bad "run: page cache maybe" run --workload sizeclasses --headless -o "$tmp/x.db" --page-cache maybe
bad "run: search addr without a value" run --workload sizeclasses --headless -o "$tmp/x.db" --search-addr
bad "run: arena hints unknown" run --workload sizeclasses --headless -o "$tmp/x.db" --arena-hints random
HEAPSCOPE_MEMORY_LIMIT=abc "$HS" run --workload sizeclasses --headless -o "$tmp/x.db" >"$tmp/out" 2>"$tmp/err"
check "run: a bad inherited variable is a one-line error" \
	'[ $? -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "HEAPSCOPE_MEMORY_LIMIT=.abc." "$tmp/err"'
bad "run: the replay workload is not for run" run --workload replay --headless -o "$tmp/x.db"

# Every setting in the config, with where it came from.
cfg=$tmp/config.db
HEAPSCOPE_SCAVENGER_BUDGET=0.5 HEAPSCOPE_PAGE_CACHE=0 "$HS" run --workload sizeclasses --headless -o "$cfg" \
	--page-cache on --memory-limit 512MiB >"$tmp/out" 2>"$tmp/err"
check "config: recorded" '[ $? -eq 0 ]'
v() { q "$cfg" "SELECT json_extract(config, '\$.heap.$1.value') || ' ' || json_extract(config, '\$.heap.$1.from') FROM sessions"; }
check "config: budget 0.5 from the environment ($(v scavenger_budget))" '[ "$(v scavenger_budget)" = "0.5 environment" ]'
check "config: retain 110 by default ($(v scavenger_retain))" '[ "$(v scavenger_retain)" = "110 default" ]'
check "config: 512MiB from the flag, in bytes ($(v memory_limit))" '[ "$(v memory_limit)" = "536870912 flag" ]'
check "config: sweep trigger 0 by default ($(v sweep_trigger))" '[ "$(v sweep_trigger)" = "0 default" ]'
check "config: the page cache flag wins over the variable ($(v page_cache))" '[ "$(v page_cache)" = "on flag" ]'
check "config: searchAddr on by default ($(v search_addr))" '[ "$(v search_addr)" = "on default" ]'
check "config: Go's arena hints by default ($(v arena_hints))" '[ "$(v arena_hints)" = "go default" ]'

# Each setting reaches the heap.
pc=$tmp/pagecache.db
"$HS" run --workload sizeclasses --headless -o "$pc" >"$tmp/out" 2>&1
"$HS" run --workload sizeclasses --headless -o "$pc" --page-cache off >>"$tmp/out" 2>&1
check "page cache on: page_cache_alloc events" '[ "$(q "$pc" "SELECT count(*) FROM page_cache_alloc WHERE session = 1")" -gt 0 ]'
check "page cache off: no page_cache_alloc event" '[ "$(q "$pc" "SELECT count(*) FROM page_cache_alloc WHERE session = 2")" -eq 0 ]'
check "page cache off: the model agrees with the heap" '[ "$(grep -c "all equal" "$tmp/out")" -eq 2 ]'
case $(uname -m) in aarch64) hint=$((0x0040 << 32)) ;; *) hint=$((0x00c0 << 32)) ;; esac
ah=$tmp/hints.db
"$HS" run --workload sizeclasses --headless -o "$ah" --arena-hints go >"$tmp/out" 2>&1
"$HS" run --workload sizeclasses --headless -o "$ah" --arena-hints kernel >>"$tmp/out" 2>&1
first_arena() { q "$ah" "SELECT base FROM arena_reserve WHERE session = $1 ORDER BY seq LIMIT 1"; }
# at_hint ADDR: whether ADDR is one of Go's hints.
at_hint() { [ -n "$1" ] && [ "$1" -ge "$hint" ] && [ $((($1 - hint) % (1 << 40))) -eq 0 ] && [ $(($1 >> 40)) -le 127 ]; }
check "arena hints go: the first arena at a Go hint ($(first_arena 1))" 'at_hint "$(first_arena 1)"'
check "arena hints kernel: the first arena elsewhere ($(first_arena 2))" \
	'[ -n "$(first_arena 2)" ] && ! at_hint "$(first_arena 2)"'
check "arena hints: the model agrees with the heap" '[ "$(grep -c "all equal" "$tmp/out")" -eq 2 ]'
ml=$tmp/limit.db
"$HS" run --workload sizeclasses --headless -o "$ml" >"$tmp/out" 2>&1
"$HS" run --workload sizeclasses --headless -o "$ml" --memory-limit 8MiB >>"$tmp/out" 2>&1
assists() { q "$ml" "SELECT count(*) FROM scav_start WHERE session = $1 AND reason = 1"; }
check "memory limit: none, no assist ($(assists 1))" '[ "$(assists 1)" -eq 0 ]'
check "memory limit 8MiB: assists ($(assists 2))" '[ "$(assists 2)" -gt 0 ]'

# --- the walk-through (docs/regressions.md) -----------------------------------------

db=$tmp/gs.db
"$HS" run --workload grow-shrink --events objects --headless -o "$db" >"$tmp/out" 2>"$tmp/err"
check "record grow-shrink with --events objects" '[ $? -eq 0 ] && grep -q "session 1 in" "$tmp/out"'
ops=$(q "$db" "SELECT count(*) FROM events WHERE session = 1 AND kind IN (32, 33)")
replay() { # replay NAME SESSION-IT-BECOMES ARGS...
	name=$1 want=$2
	shift 2
	"$HS" replay-workload "$db" --session 1 --headless "$@" >"$tmp/out" 2>"$tmp/err"
	st=$?
	check "replay: $name (session $want)" '[ $st -eq 0 ] && grep -q "session $want in .* (complete)" "$tmp/out" &&
		grep -q "model: .* all equal" "$tmp/out" && grep -q ": $ops operations" "$tmp/out"'
}
replay baseline 2
replay "page cache off" 3 --page-cache off
replay "scavenger budget 0" 4 --scavenger-budget 0
replay "searchAddr off" 5 --search-addr off
replay "baseline again, its process named" 6 --pid "$(q "$db" "SELECT pid FROM sessions WHERE id = 1")"

check "replay: the session names what it replays" \
	'[ "$(q "$db" "SELECT command FROM sessions WHERE id = 2")" = "replay $db:1" ] &&
	 [ "$(q "$db" "SELECT json_extract(config, \"\$.replay.session\") FROM sessions WHERE id = 2")" = 1 ]'
check "replay: recorded at level objects" '[ "$(q "$db" "SELECT level FROM sessions WHERE id = 2")" = objects ]'
check "replay: the setting is in the config" \
	'[ "$(q "$db" "SELECT json_extract(config, \"\$.heap.page_cache.value\") FROM sessions WHERE id = 3")" = off ]'

"$HS" diff "$db" 2 3 >"$tmp/pc.txt" 2>"$tmp/err"
largest "page cache off: diff names page allocations under heap.lock" "page allocations under heap\.lock" "$tmp/pc.txt"
"$HS" diff "$db" 2 3 --json >"$tmp/pc.json" 2>"$tmp/err"
m() { json "$1" "{x['name']: x for x in d['metrics']}['$2']['$3']"; }
check "page cache off: one page allocation per span ($(m "$tmp/pc.json" "page allocations under heap.lock" b))" \
	'[ "$(m "$tmp/pc.json" "page allocations under heap.lock" b)" = "$(m "$tmp/pc.json" "spans allocated" b)" ]'
check "page cache off: no page_cache_alloc event" '[ "$(q "$db" "SELECT count(*) FROM page_cache_alloc WHERE session = 3")" -eq 0 ]'

"$HS" diff "$db" 2 4 >"$tmp/scav.txt" 2>"$tmp/err"
largest "budget 0: diff names the scavenger's releases or retained memory" \
	"\(scavenger released\|final retained\|peak retained\)" "$tmp/scav.txt"
"$HS" diff "$db" 2 4 --json >"$tmp/scav.json" 2>"$tmp/err"
check "budget 0: the scavenger released 0 B in 0 cycles" \
	'[ "$(m "$tmp/scav.json" "scavenger released" b)" = 0 ] && [ "$(m "$tmp/scav.json" "scavenger cycles" b)" = 0 ] &&
	 [ "$(json "$tmp/scav.json" "{x[\"name\"]: x for x in d[\"metrics\"]}[\"scavenger released\"][\"a\"] > 0")" = True ]'
check "budget 0: final retained climbs" \
	'[ "$(json "$tmp/scav.json" "(lambda t: t[\"b\"] > t[\"a\"])({x[\"name\"]: x for x in d[\"metrics\"]}[\"final retained\"])")" = True ]'

heap_stream "$db" 2 >"$tmp/s2"
heap_stream "$db" 5 >"$tmp/s5"
heap_stream "$db" 6 >"$tmp/s6"
check "determinism: two replays, the same heap-level stream ($(($(wc -l <"$tmp/s2") - 1)) events)" \
	'[ "$(wc -l <"$tmp/s2")" -gt 1000 ] && cmp -s "$tmp/s2" "$tmp/s6"'
object_stream "$db" 2 >"$tmp/o2"
object_stream "$db" 6 >"$tmp/o6"
check "determinism: ... and the same object-level stream" '[ "$(wc -l <"$tmp/o2")" -gt 1000 ] && cmp -s "$tmp/o2" "$tmp/o6"'
check "searchAddr off: the same heap-level stream as the baseline" 'cmp -s "$tmp/s2" "$tmp/s5"'
"$HS" diff "$db" 2 6 >"$tmp/same.txt" 2>"$tmp/err"
check "determinism: diff of the two replays changes no heap figure" \
	'! grep -E "^  (peak|final) retained|^  scavenger|^  spans|^  page allocations|^  heap growth" "$tmp/same.txt" | grep -qv " =$"'

# Threads: the first half second of the threads workload (two producers hand
# objects to two consumers, which free them: frees on other threads than the
# mallocs, records out of order across threads), replayed twice.
th=$tmp/threads.db
timeout -s INT 0.5 "$HS" run --workload threads --events objects --headless -o "$th" >"$tmp/out" 2>&1
for n in 2 3; do
	"$HS" replay-workload "$th" --session 1 --headless >"$tmp/out" 2>"$tmp/err"
	check "threads: replay (session $n) on 4 threads" \
		'[ $? -eq 0 ] && grep -q "on 4 threads" "$tmp/out" && grep -q "session $n in .* (complete)" "$tmp/out"'
done
heap_stream "$th" 2 >"$tmp/t2"
heap_stream "$th" 3 >"$tmp/t3"
object_stream "$th" 2 >"$tmp/u2"
object_stream "$th" 3 >"$tmp/u3"
check "threads: two replays, the same heap-level and object-level streams" \
	'[ "$(wc -l <"$tmp/t2")" -gt 1000 ] && cmp -s "$tmp/t2" "$tmp/t3" && cmp -s "$tmp/u2" "$tmp/u3"'
check "threads: each recorded thread replayed on a thread of its own" \
	'[ "$(q "$th" "SELECT count(DISTINCT tid) FROM events WHERE session = 2 AND kind IN (32, 33)")" -eq 4 ]'

# A replay can be replayed: it recorded its own malloc and free events.
rr=$tmp/rr.db
"$HS" replay-workload "$db" --session 2 --headless -o "$rr" >"$tmp/out" 2>"$tmp/err"
check "a replay of a replay: as many operations" '[ $? -eq 0 ] && grep -q ": $ops operations" "$tmp/out" &&
	[ "$(q "$rr" "SELECT command FROM sessions")" = "replay $db:2" ]'

# --- bad input ---------------------------------------------------------------------------

heap_only=$tmp/heap.db
"$HS" run --workload sizeclasses --headless -o "$heap_only" >/dev/null 2>&1
bad "replay: no such session" replay-workload "$db" --session 42 --headless
bad "replay: no such file" replay-workload "$tmp/missing.db" --session 1 --headless
bad "replay: a session recorded without --events objects" replay-workload "$heap_only" --session 1 --headless
grep -q "recorded without --events objects" "$tmp/err" && pass "replay: ... says so" || fail "replay: ... says so"
bad "replay: no --session" replay-workload "$db" --headless
bad "replay: no FILE" replay-workload --session 1
bad "replay: no such process" replay-workload "$db" --session 1 --pid 1 --headless
bad "replay: bad budget" replay-workload "$db" --session 1 --scavenger-budget -1 --headless
bad "replay: bad page cache" replay-workload "$db" --session 1 --page-cache no --headless
bad "replay: bad arena hints" replay-workload "$db" --session 1 --arena-hints linux --headless
bad "replay: unknown option" replay-workload "$db" --session 1 --bogus
expect "replay-workload --help" 0 "usage: heapscope replay-workload" "" -- replay-workload --help

finish regressions
