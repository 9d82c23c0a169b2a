#!/bin/sh
# tests/cli/report.sh — `heapscope report` and `heapscope diff` on real
# recorded sessions. $HEAPSCOPE names the binary. Each check prints one line;
# the script fails at the end if any check failed. Needs python3 (JSON checks).
# About 25 s: it records six short sessions.
set -u
. "$(dirname "$0")/lib.sh"

# json FILE EXPR: evaluates the Python expression EXPR over the JSON document d.
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

record() { # record FILE WORKLOAD [ARGS...]
	f=$1 w=$2
	shift 2
	"$HS" run --workload "$w" --headless -o "$f" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
}

churn=$tmp/churn.db frag=$tmp/fragment.db gs=$tmp/gs.db leak=$tmp/leak.db
record "$churn" churn && pass "record churn" || fail "record churn"
record "$frag" fragment --duration 2 && pass "record fragment" || fail "record fragment"
HEAPSCOPE_SCAVENGER_BUDGET=0 record "$gs" grow-shrink && record "$gs" grow-shrink &&
	pass "record grow-shrink, scavenger off then on" || fail "record grow-shrink"
# A growing heap: the demo's first phase only grows (for at least 1 s: its
# naps alone take that); kill the workload there. Not SIGINT: a workload told
# to stop frees everything, and a statistics sample taken during those frees
# (it happened under ASan on a loaded machine) shows the live data fall.
run_killed 0.8 "$leak"
[ $? -eq 137 ] && [ -s "$leak" ] && pass "record a growing demo (killed)" || fail "record a growing demo (killed)"

sum_before=$(cat "$churn" "$frag" "$gs" | cksum)

# --- report: text ---------------------------------------------------------------
expect "report --help" 0 "usage: heapscope report" "" -- report --help
expect "report text" 0 "^verdict: " "" -- report "$churn"
check "report text has peaks, the RSS split, classes and the series" \
	'grep -q "^peaks" "$tmp/out" && grep -q "^where RSS goes" "$tmp/out" &&
	 grep -q "^heap growth by span class" "$tmp/out" && grep -q "^series: " "$tmp/out"'
check "report names the default session (the last)" 'grep -q "session 1 " "$tmp/out"'
q=$("$HS" query "$churn" "SELECT max(in_use) FROM samples WHERE session=1" --csv | tail -1)
check "text peak in-use equals max(in_use) of samples ($q)" 'grep -q "^  in-use .*($q bytes)" "$tmp/out"'
expect "report --session of the second grow-shrink" 0 "session 2 " "" -- report "$gs" --session 2

# --- report: json ---------------------------------------------------------------
"$HS" report "$churn" --format json >"$tmp/churn.json" 2>"$tmp/err"
check "report json parses" 'python3 -m json.tool "$tmp/churn.json" >/dev/null 2>&1'
check "json peak in-use equals max(in_use) of samples" '[ "$(json "$tmp/churn.json" "d[\"peaks\"][\"in_use\"][\"in_use\"]")" = "$q" ]'
check "json has the series, classes, verdict" \
	'[ "$(json "$tmp/churn.json" "len(d[\"series\"][\"samples\"]) >= 3 and len(d[\"classes\"]) > 10 and bool(d[\"verdict\"][\"text\"])")" = True ]'
check "json RSS split adds up: live + free slots == span bytes" \
	'[ "$(json "$tmp/churn.json" "all(s[\"live\"] + s[\"free_slots\"] == s[\"span_bytes\"] for s in d[\"series\"][\"samples\"] if s[\"model\"])")" = True ]'
check "json: the model agrees with the heap" '[ "$(json "$tmp/churn.json" "d[\"model\"][\"diverged\"]")" = False ]'

# --- report: html ---------------------------------------------------------------
expect "report html to a file (-o)" 0 "" "" -- report "$churn" --format html -o "$tmp/churn.html"
check "html has inline SVG charts" '[ "$(grep -c "<svg" "$tmp/churn.html")" -ge 3 ]'
check "html is self-contained (no script, no external asset)" \
	'! grep -qiE "<script|src=|href=|@import|url\(" "$tmp/churn.html"'
check "html names the verdict" 'grep -q "verdict:" "$tmp/churn.html"'
check "html's SVG charts are well-formed XML" \
	'python3 -c "import sys,re,xml.dom.minidom as m; [m.parseString(s) for s in re.findall(r\"<svg.*?</svg>\", open(sys.argv[1]).read(), re.S)]" "$tmp/churn.html"'

# --- verdicts ---------------------------------------------------------------------
"$HS" report "$frag" --format json >"$tmp/frag.json" 2>"$tmp/err"
check "fragment: verdict is fragmentation" '[ "$(json "$tmp/frag.json" "d[\"verdict\"][\"kind\"]")" = fragmentation ]'
check "fragment: high fragmentation of free pages (mean >= 30%)" \
	'[ "$(json "$tmp/frag.json" "d[\"means\"][\"fragmentation\"] >= 0.30")" = True ]'
check "fragment: growth while free pages were scattered" \
	'[ "$(json "$tmp/frag.json" "d[\"growth\"][\"fragmented_grow_bytes\"] > 0")" = True ]'
check "churn: no fragmentation verdict, lower fragmentation than fragment" \
	'[ "$(json "$tmp/churn.json" "d[\"verdict\"][\"kind\"]")" != fragmentation ] &&
	 [ "$(python3 -c "import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); print(a[\"means\"][\"fragmentation\"] < b[\"means\"][\"fragmentation\"])" "$tmp/churn.json" "$tmp/frag.json")" = True ]'
expect "fragment: text verdict line says fragmentation" 0 "^verdict: fragmentation" "" -- report "$frag"
expect "growing heap: verdict is live data growth" 0 "^verdict: live data grows" "" -- report "$leak"
expect "scavenger off: verdict is retained memory" 0 "^verdict: retained but unused memory" "" -- \
	report "$gs" --session 1

# A lossy recording: the model may diverge; the report says so and carries on.
lossy=$tmp/lossy.db
record "$lossy" threads --lossy --ring-slots 1024
expect "lossy session: report runs and states the model's fate" 0 "^model: \(diverged\|[0-9]* digests\)" "" -- \
	report "$lossy"
"$HS" report "$lossy" --format json >"$tmp/lossy.json" 2>"$tmp/err"
check "lossy session: json parses" 'python3 -m json.tool "$tmp/lossy.json" >/dev/null 2>&1'

# --- diff -------------------------------------------------------------------------
expect "diff --help" 0 "usage: heapscope diff" "" -- diff --help
expect "diff of a session with itself: no change" 0 "^largest change: none" "" -- diff "$churn" 1 1
expect "diff FILE_A FILE_B (last sessions)" 0 "^largest change: " "" -- diff "$churn" "$frag"
expect "diff FILE:N FILE:M" 0 "^largest change: " "" -- diff "$gs:1" "$gs:2"
# The scavenger turned off: its own work (released bytes, cycles, CPU) or the
# retained memory it leaves must lead. (Large spans are released as they are
# freed either way, so retained may differ less than the scavenger's work.)
expect "diff grow-shrink scavenger off vs on: the scavenger or retained leads" 0 \
	"^largest change: \(scavenger\|[a-z ]*retained\)" "" -- diff "$gs" 1 2
expect "diff the other way round: the scavenger or retained leads" 0 \
	"^largest change: \(scavenger\|[a-z ]*retained\)" "" -- diff "$gs" 2 1
"$HS" diff "$gs" 1 2 --json >"$tmp/diff.json" 2>"$tmp/err"
check "diff --json parses" 'python3 -m json.tool "$tmp/diff.json" >/dev/null 2>&1'
check "diff --json: largest first" \
	'[ "$(json "$tmp/diff.json" "d[\"largest\"][\"name\"] == d[\"metrics\"][0][\"name\"] and (\"retained\" in d[\"largest\"][\"name\"] or \"scavenger\" in d[\"largest\"][\"name\"])")" = True ]'

# --- bad input ----------------------------------------------------------------------
printf 'not a database\n' >"$tmp/text.db"
cp "$churn" "$tmp/newer.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE meta SET value=99 WHERE key='schema_version'\"); c.commit()" "$tmp/newer.db"
bad "report: missing file" report "$tmp/missing.db"
bad "report: not SQLite" report "$tmp/text.db"
bad "report: newer schema" report "$tmp/newer.db"
bad "report: unknown session" report "$churn" --session 42
bad "report: bad option" report "$churn" --frobnicate
bad "report: bad format" report "$churn" --format pdf
bad "report: no FILE" report
bad "report: -o onto the session file" report "$churn" -o "$churn"
bad "diff: missing file" diff "$churn" "$tmp/missing.db"
bad "diff: not SQLite" diff "$tmp/text.db" "$churn"
bad "diff: newer schema" diff "$churn" "$tmp/newer.db"
bad "diff: unknown session" diff "$churn" 1 42
bad "diff: unknown session (FILE:N)" diff "$churn:42" "$churn"
bad "diff: bad option" diff "$churn" 1 1 --frobnicate
bad "diff: one argument" diff "$churn"
check "reading never modified the files" '[ "$(cat "$churn" "$frag" "$gs" | cksum)" = "$sum_before" ]'

if [ "$failures" -ne 0 ]; then
	echo "report tests: $failures failed" >&2
	exit 1
fi
