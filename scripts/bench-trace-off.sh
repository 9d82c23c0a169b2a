#!/bin/sh
# scripts/bench-trace-off.sh BASELINE_BENCH_HEAP CANDIDATE_BENCH_HEAP [ROUNDS]
#
# What compiled-in tracepoints cost while tracing is off: the heap benchmarks
# (bench/bench_heap.c) of a build without tracepoints (BASELINE, e.g. built from
# the commit before them) and of the current build, interleaved round by round.
# Prints each benchmark's median ns/op for both, the ratio of the medians and of
# the minima (candidate / baseline; 1.00 is no cost).
set -eu
base=${1:?usage: bench-trace-off.sh BASELINE CANDIDATE [ROUNDS]}
cand=${2:?usage: bench-trace-off.sh BASELINE CANDIDATE [ROUNDS]}
rounds=${3:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== tracepoints compiled in, tracing off: $rounds interleaved rounds ($(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))"
for r in $(seq "$rounds"); do
	printf '   round %s/%s\n' "$r" "$rounds" >&2
	"$base" --alloc heapscope --min-ms 100 | awk '{ print "base", $1, $2 }' >>"$tmp/all"
	"$cand" --alloc heapscope --min-ms 100 | awk '{ print "cand", $1, $2 }' >>"$tmp/all"
done
printf "%-22s %12s %12s %10s %10s\n" "ns/op (median)" "no probes" "probes" "ratio" "(min)"
sort -k1,1 -k2,2 -k3,3g "$tmp/all" | awk '
	function flush() { if (key == "") return; med[key] = (c % 2) ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2; mn[key] = v[1] }
	{ k = $1 " " $2; if (k != key) { flush(); key = k; c = 0 } v[++c] = $3; if ($1 == "base") names[$2] = 1 }
	END {
		flush()
		for (n in names) printf "%-22s %12.2f %12.2f %10.3f %10.3f\n", n, med["base " n], med["cand " n], med["cand " n] / med["base " n], mn["cand " n] / mn["base " n]
	}' | sort
