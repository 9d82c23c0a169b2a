#!/bin/sh
# scripts/bench-heap.sh BENCH_BINARY [ROUNDS [MS_PER_SAMPLE]]
#
# The heap's benchmarks (bench/bench_heap.c) for heapscope and, in the same run,
# glibc malloc and every other allocator installed from Debian (jemalloc,
# mimalloc, tcmalloc, by LD_PRELOAD). Allocators are interleaved round by round so
# that they share the machine's conditions; the table gives each one's median
# ns/op over the rounds, then heapscope's minimum and maximum, and heapscope's
# ratio to glibc and to mimalloc (below 1: heapscope is faster), of the medians
# and of the minima (the minima are the less disturbed by a busy machine).
set -eu
bench=${1:?usage: bench-heap.sh BENCH_BINARY [ROUNDS [MS_PER_SAMPLE]]}
rounds=${2:-5}
ms=${3:-100}
. "$(dirname "$0")/allocators.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== heap benchmarks: $allocs; $rounds interleaved rounds ($(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))"
for r in $(seq "$rounds"); do
	printf '   round %s/%s\n' "$r" "$rounds" >&2
	for a in $allocs; do
		out=$(with_alloc "$a" "$bench" --alloc "$(alloc_arg "$a")" --min-ms "$ms")
		echo "$out" | awk -v a="$a" '{ print a, $1, $2 }' >>"$tmp/all"
	done
done

sort -k1,1 -k2,2 -k3,3g "$tmp/all" | awk -v allocs="$allocs" '
	function flush() {
		if (key == "") return
		med[key] = (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
		mn[key] = v[1]; mx[key] = v[cnt]
	}
	{ k = $1 " " $2; if (k != key) { flush(); key = k; cnt = 0 } v[++cnt] = $3; if (!($2 in seen)) { seen[$2] = 1; order[++nb] = $2 } }
	END {
		flush()
		na = split(allocs, al, " ")
		printf "%-20s", "ns/op (median)"
		for (i = 1; i <= na; i++) printf " %10s", al[i]
		printf " %12s %9s %9s %9s %9s\n", "hs min..max", "hs/glibc", "(min)", "hs/mi", "(min)"
		for (b = 1; b <= nb; b++) {
			n = order[b]
			printf "%-20s", n
			for (i = 1; i <= na; i++) printf " %10.2f", med[al[i] " " n]
			h = "heapscope " n
			printf " %5.1f..%-6.1f %9.2f %9.2f", mn[h], mx[h], med[h] / med["glibc " n], mn[h] / mn["glibc " n]
			if (("mimalloc " n) in med) printf " %9.2f %9.2f", med[h] / med["mimalloc " n], mn[h] / mn["mimalloc " n]
			printf "\n"
		}
	}'
