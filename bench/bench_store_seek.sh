#!/bin/sh
# bench/bench_store_seek.sh — the store's figures for docs/PERFORMANCE.md
# (issue 6): seek time, reader memory, bytes per event, ingest rate.
#
#   bench/bench_store_seek.sh [DIR]
#
# Records one churn session at object level long enough for about ten million
# events (--duration, default 6 s; SEEK_DURATION to change it) into DIR (default
# a temporary directory, removed afterwards), then measures:
#   seek    `heapscope state FILE --at SEQ --no-spans --chunks 0` at 20 random
#           seqs (fixed seed): median, min, max wall time of the whole command
#           (target: <= 200 ms to rebuild the model)
#   memory  peak RSS of query count(*), verify, and state at the end and in the
#           middle of the session (/usr/bin/time; target < 200 MiB)
#   size    bytes of the file per event
#   ingest  `heapscope run --workload churn --events objects` into a new file,
#           with and without --no-model, RUNS times each (default 3): events/s
#           as the recorder prints it, and events lost (target >= 2 M/s, 0 lost)
# $HEAPSCOPE names the binary (default build/bin/heapscope).
set -u
HS=${HEAPSCOPE:-build/bin/heapscope}
DURATION=${SEEK_DURATION:-6}
RUNS=${RUNS:-3}
if [ $# -ge 1 ]; then
	dir=$1
	mkdir -p "$dir"
else
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
fi
db=$dir/seek.db
[ -x /usr/bin/time ] || { echo "bench_store_seek: needs /usr/bin/time (GNU time)" >&2; exit 2; }

now_ns() { date +%s%N; }

echo "== recording: churn --events objects --duration $DURATION into $db"
rm -f "$db" "$db-wal" "$db-shm"
"$HS" run --workload churn --events objects --duration "$DURATION" --headless -o "$db" | sed 's/^/  /'
nev=$("$HS" query "$db" "SELECT nevents FROM sessions ORDER BY id DESC LIMIT 1" --csv | tail -1)
last=$("$HS" query "$db" "SELECT max(last_seq) FROM event_ranges WHERE session = (SELECT max(id) FROM sessions)" --csv | tail -1)
nkf=$("$HS" query "$db" "SELECT count(*), sum(length(state)) FROM keyframes" --csv | tail -1)
size=$(stat -c %s "$db")
echo "  $nev events (last seq $last), keyframes (count, bytes): $nkf"
echo "== size"
awk -v s="$size" -v n="$nev" 'BEGIN { printf "  %d bytes, %.1f bytes per event\n", s, s / n }'

echo "== seek: state --at SEQ --no-spans --chunks 0, 20 random seqs"
seqs=$(awk -v n="$last" 'BEGIN { srand(42); for (i = 0; i < 20; i++) printf "%d\n", int(rand() * (n + 1)) }')
: >"$dir/seek.ms"
for q in $seqs; do
	t0=$(now_ns)
	"$HS" state "$db" --at "$q" --no-spans --chunks 0 >/dev/null || echo "  state --at $q failed" >&2
	t1=$(now_ns)
	echo "$q $(((t1 - t0) / 1000000))" >>"$dir/seek.ms"
done
awk '{ printf "  seq %9d  %4d ms\n", $1, $2 }' "$dir/seek.ms"
sort -n -k2 "$dir/seek.ms" | awk '{ v[NR] = $2 } END { printf "  median %d ms, min %d ms, max %d ms (target <= 200 ms)\n", (v[10] + v[11]) / 2, v[1], v[NR] }'

echo "== memory: peak RSS (/usr/bin/time, target < 200 MiB)"
rss() {
	label=$1
	shift
	/usr/bin/time -f "%M %e" -o "$dir/time.out" "$HS" "$@" >/dev/null 2>"$dir/err"
	awk -v l="$label" '{ printf "  %-44s %6.1f MiB  %6.2f s\n", l, $1 / 1024, $2 }' "$dir/time.out"
}
rss "query \"SELECT count(*) FROM events\"" query "$db" "SELECT count(*) FROM events"
rss "verify" verify "$db"
rss "state (the end, full dump)" state "$db"
rss "state --at $((last / 2)) (full dump)" state "$db" --at $((last / 2))

echo "== ingest: churn --events objects, $RUNS runs each"
for mode in model no-model; do
	for i in $(seq "$RUNS"); do
		f=$dir/ingest.db
		rm -f "$f" "$f-wal" "$f-shm"
		if [ "$mode" = model ]; then
			"$HS" run --workload churn --events objects --headless -o "$f" >"$dir/run.out" 2>&1
		else
			"$HS" run --workload churn --events objects --no-model --headless -o "$f" >"$dir/run.out" 2>&1
		fi
		sed -n "s/^heapscope run: churn: \(.*\)$/  $mode: \1/p" "$dir/run.out"
	done
done
