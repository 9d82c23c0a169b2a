#!/bin/sh
# tests/cli/store.sh — the store's reading commands on real recorded sessions
# (issue 6): `sessions`, `query` (formats, refusals), `state` (keyframe seek
# equals full replay, --at SEQ and TIME), every query of docs/querying.md, and
# the bad inputs (not SQLite, truncated, empty, a directory, a newer or older
# schema, unknown sessions), each one line on stderr and exit status 2. No reading
# command may change the file. $HEAPSCOPE names the binary; sqlite3 and
# python3 must be installed.
set -u
. "$(dirname "$0")/lib.sh"
# Absolute: some checks run the binary from another directory.
case $HS in
*/*) HS=$(cd "$(dirname "$HS")" && pwd)/$(basename "$HS") ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
doc=$here/../../docs/querying.md
for tool in sqlite3 python3 sha256sum; do
	command -v $tool >/dev/null 2>&1 || { echo "store tests: $tool is not installed" >&2; exit 1; }
done

# A fingerprint of a file that reading must not change: contents and mtime,
# and the size of its write-ahead log (a reader may create an empty one, as
# store/store.h says, but never write to it).
stamp() { printf '%s %s %s\n' "$(sha256sum <"$1")" "$(stat -c %y "$1")" "$(stat -c %s "$1-wal" 2>/dev/null || echo 0)"; }

# --- the example file of docs/querying.md ------------------------------------
db=$tmp/example.db
ok=0
"$HS" run --workload grow-shrink --events objects --headless -o "$db" >"$tmp/out" 2>"$tmp/err" || ok=1
"$HS" run --workload fragment --events objects --headless -o "$db" >>"$tmp/out" 2>>"$tmp/err" || ok=1
"$HS" run --workload large --headless -o "$db" >>"$tmp/out" 2>>"$tmp/err" || ok=1
check "record the example file (3 sessions)" '[ $ok -eq 0 ]'
before=$(stamp "$db")

# --- sessions ----------------------------------------------------------------
"$HS" sessions "$db" >"$tmp/out" 2>"$tmp/err"
check "sessions exits 0" '[ $? -eq 0 ]'
check "sessions header names the columns" \
	'head -1 "$tmp/out" | grep -Eq "^ID +STATUS +COMMAND +SEED +PID +EVENTS +LOST +DURATION +TRANSPORT +LEVEL +START$"'
check "sessions lists 3 complete sessions" '[ "$(awk "NR > 1 && \$2 == \"complete\"" "$tmp/out" | wc -l)" -eq 3 ]'
check "sessions: commands and levels in id order" \
	'[ "$(awk "NR > 1 { printf \"%s:%s:%s \", \$1, \$3, \$10 }" "$tmp/out")" = "1:grow-shrink:objects 2:fragment:objects 3:large:heap " ]'
n2=$("$HS" query "$db" "SELECT count(*) FROM events WHERE session = 2" --csv 2>/dev/null | tail -1)
check "sessions: EVENTS is what the file holds ($n2)" '[ "$(awk "\$1 == 2 { print \$6 }" "$tmp/out")" = "$n2" ]'
check "sessions: 0 lost" '[ "$(awk "NR > 1 { s += \$7 } END { print s }" "$tmp/out")" = 0 ]'

# Statuses as a reader sees them: a running session whose recorder is gone is
# interrupted, one whose recorder lives is running; the events are counted
# from the file while a session has not ended.
st=$tmp/status.db
cp "$db" "$st"
sh -c 'exit 0' &
dead=$!
wait $dead
sqlite3 "$st" "UPDATE sessions SET status = 'running', end_ns = 0, nevents = 0, recorder_pid = $dead WHERE id = 1;
	UPDATE sessions SET status = 'crashed' WHERE id = 2;
	UPDATE sessions SET status = 'running', end_ns = 0, nevents = 0, recorder_pid = $$ WHERE id = 3;"
"$HS" sessions "$st" >"$tmp/out" 2>"$tmp/err"
check "sessions: statuses interrupted, crashed, running" \
	'[ "$(awk "NR > 1 { printf \"%s \", \$2 }" "$tmp/out")" = "interrupted crashed running " ]'
n1=$("$HS" query "$db" "SELECT nevents FROM sessions WHERE id = 1" --csv 2>/dev/null | tail -1)
check "sessions: a session not ended counts its stored events ($n1)" '[ "$(awk "\$1 == 1 { print \$6 }" "$tmp/out")" = "$n1" ]'

# --- query: formats ------------------------------------------------------------
"$HS" query "$db" "SELECT id, command, level FROM sessions ORDER BY id" >"$tmp/out" 2>"$tmp/err"
check "query text: header, rule, rows" \
	'[ "$(sed -n 1p "$tmp/out" | tr -s " ")" = "id command level" ] && sed -n 2p "$tmp/out" | grep -Eq "^-+  -+  -+$" && [ "$(wc -l <"$tmp/out")" -eq 5 ]'
"$HS" query "$db" "SELECT id, command, level FROM sessions ORDER BY id" --csv >"$tmp/out" 2>"$tmp/err"
check "query --csv: header and rows" \
	'[ "$(sed -n 1p "$tmp/out")" = "id,command,level" ] && [ "$(sed -n 2p "$tmp/out")" = "1,grow-shrink,objects" ] && [ "$(wc -l <"$tmp/out")" -eq 4 ]'
"$HS" query "$db" "SELECT 'a,b' AS x, 'say \"hi\"' AS y, NULL AS z" --csv >"$tmp/out" 2>"$tmp/err"
check "query --csv quotes as RFC 4180" '[ "$(sed -n 2p "$tmp/out")" = "\"a,b\",\"say \"\"hi\"\"\"," ]'
"$HS" query "$db" "SELECT id, command, nevents, 1.5 AS r, NULL AS n, x'00ff' AS b FROM sessions ORDER BY id" --json \
	>"$tmp/out" 2>"$tmp/err"
check "query --json parses" 'python3 -m json.tool "$tmp/out" >/dev/null 2>&1'
check "query --json: objects with typed values" \
	'python3 -c "import json,sys; r = json.load(open(sys.argv[1])); assert len(r) == 3 and r[0][\"command\"] == \"grow-shrink\" and isinstance(r[0][\"nevents\"], int) and r[0][\"r\"] == 1.5 and r[0][\"n\"] is None and r[0][\"b\"] == \"00ff\"" "$tmp/out"'
"$HS" query "$db" "SELECT * FROM sessions WHERE id = 99" --json >"$tmp/out" 2>"$tmp/err"
check "query --json: no rows is []" 'python3 -c "import json,sys; assert json.load(open(sys.argv[1])) == []" "$tmp/out"'
"$HS" query "$db" "SELECT count(*) AS n FROM span_alloc WHERE session = 3; SELECT count(*) AS m FROM free WHERE session = 2" \
	--csv >"$tmp/out" 2>"$tmp/err"
check "query: two statements, two results" '[ "$(grep -c "^[nm]$" "$tmp/out")" -eq 2 ] && [ "$(wc -l <"$tmp/out")" -eq 4 ]'

# --- query: refusals and invalid SQL ---------------------------------------------
sqlite3 "$tmp/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
other_before=$(stamp "$tmp/other.db")
for sql in "INSERT INTO sessions(status) VALUES ('complete')" "UPDATE sessions SET seed = 7" \
	"DELETE FROM sessions" "DROP TABLE sessions" "DROP VIEW malloc" "CREATE TABLE x(a)" \
	"CREATE TEMP TABLE x(a)" "ALTER TABLE sessions ADD COLUMN x" "VACUUM" "REINDEX" "ANALYZE" \
	"PRAGMA user_version = 5" "PRAGMA journal_mode = DELETE" "PRAGMA wal_checkpoint(TRUNCATE)" \
	"SELECT 1; DELETE FROM sessions" "ATTACH '$tmp/new.db' AS z" "ATTACH '$tmp/other.db' AS z" \
	"ATTACH 'file:$tmp/other.db?mode=rw' AS z"; do
	bad "query refuses: $sql" query "$db" "$sql"
done
check "query: ATTACH made no file" '[ ! -e "$tmp/new.db" ]'
check "query: an attached file is unchanged" '[ "$(stamp "$tmp/other.db")" = "$other_before" ]'
bad "query: invalid SQL" query "$db" "SELEC 1"
bad "query: unknown table" query "$db" "SELECT * FROM no_such_table"
bad "query: an empty statement" query "$db" " ; "
bad "query: --csv with --json" query "$db" "SELECT 1" --csv --json

# --- bad files, for every reading command ----------------------------------------
echo "not a database" >"$tmp/text.db"
: >"$tmp/empty.db"
mkdir "$tmp/dir.db"
head -c $(($(stat -c %s "$db") / 2)) "$db" >"$tmp/truncated.db"
head -c 4096 "$db" >"$tmp/short.db"
cp "$db" "$tmp/newer.db"
sqlite3 "$tmp/newer.db" "UPDATE meta SET value = 99 WHERE key = 'schema_version'"
cp "$db" "$tmp/older.db"
sqlite3 "$tmp/older.db" "UPDATE meta SET value = 1 WHERE key = 'schema_version'"
for f in text empty dir truncated short newer older other missing; do
	file=$tmp/$f.db
	bad "sessions, $f file" sessions "$file"
	bad "query, $f file" query "$file" "SELECT 1"
	bad "state, $f file" state "$file"
	bad "verify, $f file" verify "$file"
done
bad "state: unknown session" state "$db" --session 99
bad "verify: unknown session" verify "$db" --session 99
bad "state: unknown pid" state "$db" --pid 1
bad "state: seq beyond the end" state "$db" --session 3 --at 99999999
bad "state: not a seq or a time" state "$db" --at 1.5x
bad "state: a time without digits" state "$db" --at ms
bad "state: a negative time" state "$db" --at -1s
bad "state: a time beyond the end" state "$db" --session 3 --at 1000s
bad "state: --at without a value" state "$db" --at
bad "state: unknown option" state "$db" --bogus
bad "state: no file" state

# --- state ---------------------------------------------------------------------
"$HS" state --help >"$tmp/out" 2>"$tmp/err"
check "state --help" '[ $? -eq 0 ] && grep -q "usage: heapscope state FILE" "$tmp/out"'
"$HS" state "$db" --session 2 >"$tmp/out" 2>"$tmp/err"
check "state exits 0 at the end of a session" '[ $? -eq 0 ]'
check "state: header, statistics, every summary level, chunks, spans" \
	'grep -q "^session 2: fragment" "$tmp/out" && grep -q "^statistics" "$tmp/out" && [ "$(grep -c "^  L[0-9] (" "$tmp/out")" -eq "$("$HS" query "$db" "SELECT value FROM meta WHERE key = '"'summary_levels'"'" --csv | tail -1)" ] && grep -q "^chunk bitmaps" "$tmp/out" && grep -q "^spans by address" "$tmp/out"'
check "state: chunk grids of 32 pages a row" 'grep -Eq "^ +[0-9]+ [#.:@!]{32}( +[#.:@!]{32})?$" "$tmp/out"'
check "state: searchAddr is marked" 'grep -q "@search" "$tmp/out" || grep -q "searchAddr: none" "$tmp/out"'
check "state: lines fit 80 columns" '[ "$(awk "length > 80" "$tmp/out" | wc -l)" -eq 0 ]'
last=$(sed -n 's/^at seq \([0-9]*\) of.*/\1/p' "$tmp/out")
check "state: events applied = seq + 1 (a lossless session)" 'grep -q "^events applied: $((last + 1)), " "$tmp/out"'
"$HS" state "$db" --session 2 --no-spans --chunks 0 >"$tmp/out" 2>"$tmp/err"
check "state --no-spans --chunks 0" '[ $? -eq 0 ] && ! grep -q "^spans by address" "$tmp/out" && ! grep -q "^chunk bitmaps" "$tmp/out"'
"$HS" state "$db" --session 2 --chunks 1 --no-spans >"$tmp/out" 2>"$tmp/err"
check "state --chunks 1 says how many it left out" 'grep -q "(1 of [0-9]* chunks shown" "$tmp/out"'
pid=$("$HS" query "$db" "SELECT pid FROM sessions WHERE id = 1" --csv | tail -1)
"$HS" state "$db" --session 1 --pid "$pid" --no-spans --chunks 0 >"$tmp/out" 2>"$tmp/err"
check "state --pid" '[ $? -eq 0 ] && grep -q "^== heap of pid $pid" "$tmp/out"'

# A session the model cannot replay: one page_alloc of session 3 moved by a
# page (before its first keyframe, so the replay meets it). state prints the
# divergence and the replica as it stood, and exits 1.
cp "$db" "$tmp/diverged.db"
sqlite3 "$tmp/diverged.db" "UPDATE event_rows SET a0 = a0 + 8192 WHERE id = (SELECT e.id FROM event_ranges AS r
	JOIN event_rows AS e ON e.id BETWEEN r.first_row AND r.last_row WHERE r.session = 3 AND e.ts_kind & 65535 = 7
	ORDER BY e.id LIMIT 1 OFFSET 20)"
bseq=$("$HS" query "$tmp/diverged.db" "SELECT seq FROM page_alloc WHERE session = 3 LIMIT 1 OFFSET 20" --csv | tail -1)
"$HS" state "$tmp/diverged.db" --session 3 --at $((bseq + 3)) --no-spans >"$tmp/out" 2>"$tmp/err"
check "state of a diverging session: exit 1, DIVERGED at seq $bseq" \
	'[ $? -eq 1 ] && grep -q "^DIVERGED: the model stopped at seq $bseq (page_alloc" "$tmp/out" && grep -q "^at seq $bseq of" "$tmp/out" && grep -q "^summary levels" "$tmp/out"'

# --at TIME: the first event at or after that time into the session.
"$HS" state "$db" --session 1 --at 0s --no-spans --chunks 0 >"$tmp/out" 2>"$tmp/err"
check "state --at 0s is the first event" '[ $? -eq 0 ] && grep -q "^at seq 0 of" "$tmp/out"'
"$HS" state "$db" --session 1 --at 0.5s --no-spans >"$tmp/a" 2>"$tmp/err"
"$HS" state "$db" --session 1 --at 500ms --no-spans >"$tmp/b" 2>"$tmp/err"
check "state --at 0.5s equals --at 500ms" 'cmp -s "$tmp/a" "$tmp/b" && grep -q "0.5[0-9][0-9] s into the session" "$tmp/a"'
seq=$(sed -n 's/^at seq \([0-9]*\) of.*/\1/p' "$tmp/a")
"$HS" state "$db" --session 1 --at "$seq" --no-spans >"$tmp/b" 2>"$tmp/err"
check "state --at 500ms equals --at its seq ($seq)" 'cmp -s "$tmp/a" "$tmp/b"'

# Keyframe seek equals full replay: the state at a seq is the same whether the
# model starts from the nearest keyframe or from the session's first event (a
# copy of the file without keyframes). Both files are named example.db, in two
# directories, so that the whole output can be compared.
mkdir "$tmp/nokf"
cp "$db" "$tmp/nokf/example.db"
sqlite3 "$tmp/nokf/example.db" "DELETE FROM keyframes"
nkf=$("$HS" query "$db" "SELECT count(*) FROM keyframes WHERE seq < (SELECT max(last_seq) FROM event_ranges WHERE session = keyframes.session)" --csv | tail -1)
check "the sessions have keyframes before their ends ($nkf)" '[ "${nkf:-0}" -ge 3 ]'
for s in 1 2; do
	seqs=$("$HS" query "$db" "SELECT seq - 1, seq, seq + 1 FROM keyframes WHERE session = $s" --csv | tail -n +2 | tr ',' ' ')
	end=$("$HS" query "$db" "SELECT max(last_seq) FROM event_ranges WHERE session = $s" --csv | tail -1)
	for q in 0 1 $((end / 3)) $((end / 2 + 7)) $seqs; do
		[ "$q" -gt "$end" ] && continue
		(cd "$tmp" && "$HS" state example.db --session $s --at $q) >"$tmp/a" 2>"$tmp/err"
		sa=$?
		(cd "$tmp/nokf" && "$HS" state example.db --session $s --at $q) >"$tmp/b" 2>>"$tmp/err"
		sb=$?
		check "keyframe seek equals full replay: session $s at seq $q" \
			'[ $sa -eq 0 ] && [ $sb -eq 0 ] && cmp -s "$tmp/a" "$tmp/b" && grep -q "^at seq $q of" "$tmp/a"'
	done
done

# --- verify ----------------------------------------------------------------------
for s in 1 2 3; do
	"$HS" verify "$db" --session $s >"$tmp/out" 2>"$tmp/err"
	check "verify session $s" '[ $? -eq 0 ] && grep -q "invariants hold" "$tmp/out"'
done

# --- docs/querying.md: every query runs and returns rows ----------------------------
awk -v dir="$tmp/q" 'BEGIN { n = 0; system("mkdir -p " dir) }
	/^```sql$/ { n++; f = sprintf("%s/%02d.sql", dir, n); inside = 1; next }
	/^```$/ && inside { inside = 0; close(f); next }
	inside { print > f }' "$doc"
nq=$(ls "$tmp/q" 2>/dev/null | wc -l)
check "docs/querying.md holds at least 10 queries ($nq)" '[ "$nq" -ge 10 ]'
for f in "$tmp"/q/*.sql; do
	[ -f "$f" ] || continue
	title=$(head -c 60 "$f" | tr '\n' ' ')
	"$HS" query "$db" "$(cat "$f")" --csv >"$tmp/out" 2>"$tmp/err"
	check "querying.md query $(basename "$f" .sql) ($title...) returns rows" \
		'[ $? -eq 0 ] && [ "$(wc -l <"$tmp/out")" -ge 2 ]'
done

# --- the file is as recorded -----------------------------------------------------------
check "no reading command changed the file" '[ "$(stamp "$db")" = "$before" ]'

if [ "$failures" -ne 0 ]; then
	echo "store tests: $failures failed" >&2
	exit 1
fi
