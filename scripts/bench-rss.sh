#!/bin/sh
# scripts/bench-rss.sh BENCH_RSS_BINARY [ROUNDS [MIB [SECONDS]]]
#
# How fast each allocator gives memory back (bench/bench_rss.c): grow to MIB MiB,
# free everything, sample RSS for SECONDS. heapscope, glibc, and jemalloc,
# mimalloc and tcmalloc when installed (LD_PRELOAD), interleaved round by round.
# Then heapscope with its scavenger off (HEAPSCOPE_SCAVENGER_BUDGET=0) against
# on, interleaved, to show what the scavenger costs the workload itself
# (COST_ROUNDS rounds, default 9).
set -eu
bench=${1:?usage: bench-rss.sh BENCH_RSS_BINARY [ROUNDS [MIB [SECONDS]]]}
rounds=${2:-3}
mib=${3:-512}
secs=${4:-10}
cost_rounds=${COST_ROUNDS:-9}
. "$(dirname "$0")/allocators.sh"

run() { # ALLOC [VAR=VALUE] -> output of one bench_rss run
	with_alloc "$1" env ${2:-} "$bench" --alloc "$(alloc_arg "$1")" --mib "$mib" --seconds "$secs"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== grow to $mib MiB, free it all, RSS for $secs s: $allocs; $rounds rounds ($(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))"
for r in $(seq "$rounds"); do
	printf '   round %s/%s\n' "$r" "$rounds" >&2
	for a in $allocs; do
		run "$a" | awk -v a="$a" -v r="$r" '
			/^round/ { print "sum", a, r, $4, $6, $8 }
			/^rss/ { print "rss", a, r, $3, $4 }' >>"$tmp/all"
	done
done

echo
echo "time from the last free until RSS is within 10% of the peak above its start (median of rounds; never = not within $secs s)"
printf '%-10s %10s %12s %14s %14s %14s\n' allocator peak_MiB release_ms RSS@1s_MiB RSS@3s_MiB RSS_at_end_MiB
for a in $allocs; do
	rel=$(awk -v a="$a" '$1 == "sum" && $2 == a { print ($6 < 0 ? 1e12 : $6) }' "$tmp/all" | sort -g | awk '{ v[NR] = $1 } END { x = v[int((NR + 1) / 2)]; print (x >= 1e12 ? "never" : x) }')
	peak=$(awk -v a="$a" '$1 == "sum" && $2 == a { print $5 }' "$tmp/all" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	at() { awk -v a="$a" -v t="$1" '$1 == "rss" && $2 == a && $3 == 1 { last = $5 } $1 == "rss" && $2 == a && $3 == 1 && $4 >= t * 1000 && !done { print $5; done = 1 } END { if (!done) print last }' "$tmp/all"; }
	printf '%-10s %10s %12s %14s %14s %14s\n' "$a" "$peak" "$rel" "$(at 1)" "$(at 3)" "$(at "$secs")"
done

echo
echo "RSS after the last free, round 1, one column per 0.5 s (blank = 0, @ = the peak):"
for a in $allocs; do
	awk -v a="$a" -v secs="$secs" '
		$1 == "rss" && $2 == a && $3 == 1 { b = int($4 / 500); if (!(b in v)) v[b] = $5; if ($4 == 0) peak = $5 }
		END {
			ramp = " .:-=+*#%@"; line = ""
			for (b = 0; b <= secs * 2; b++) {
				x = (b in v) ? v[b] : last; last = x
				i = peak > 0 ? int(x / peak * 9 + 0.5) : 0; if (i > 9) i = 9
				line = line substr(ramp, i + 1, 1)
			}
			printf "%-10s |%s|\n", a, line
		}' "$tmp/all"
done

echo
echo "what the scavenger costs the workload: heapscope's allocate+touch+free, scavenger off vs on, $cost_rounds interleaved rounds"
echo "(wall time, and the CPU time of all the process's threads, the scavenger's included)"
for r in $(seq "$cost_rounds"); do
	for mode in off on; do
		budget=; [ "$mode" = off ] && budget=HEAPSCOPE_SCAVENGER_BUDGET=0
		secs=1 run heapscope $budget | awk -v m="$mode" '/^round/ { print m, "wall", $4; print m, "cpu", $10; print m, "scav", $12 }' >>"$tmp/cost"
	done
done
for what in wall cpu; do
	awk -v w="$what" '$2 == w { print $1, $3 }' "$tmp/cost" | sort -k1,1 -k2,2g | awk -v w="$what" '
		{ v[$1, ++n[$1]] = $2 }
		END {
			for (k = 1; k <= 2; k++) { s = k == 1 ? "off" : "on"; c = n[s]; m[s] = c % 2 ? v[s, (c + 1) / 2] : (v[s, c / 2] + v[s, c / 2 + 1]) / 2; lo[s] = v[s, 1]; hi[s] = v[s, c] }
			printf "%-4s scavenger off: median %.1f ms (%.1f..%.1f); on: median %.1f ms (%.1f..%.1f); on/off %.3f (minima %.3f)\n",
				w, m["off"], lo["off"], hi["off"], m["on"], lo["on"], hi["on"], m["on"] / m["off"], lo["on"] / lo["off"]
		}'
done
awk '$1 == "on" && $2 == "wall" { w[++n] = $3 } $1 == "on" && $2 == "scav" { s[++k] = $3 }
	END { for (i = 1; i <= n; i++) { f = 100 * s[i] / w[i]; if (f > hi) hi = f; t += s[i] }
		printf "scavenger CPU during the work phase (on): %.2f ms in all %d rounds, at most %.2f%% of a round'"'"'s wall time\n", t, n, hi }' "$tmp/cost"
