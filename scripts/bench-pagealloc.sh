#!/bin/sh
# scripts/bench-pagealloc.sh BENCH_BINARY [ROUNDS]
#
# 1. The page allocator's own benchmarks: median/min/max ns/op over 7 samples.
# 2. The benchmarks Go's runtime also has (BenchmarkPallocBitsSummarize,
#    BenchmarkFindBitRange64), interleaved: each round runs Go 1.19's own
#    `go test -bench` in /usr/share/go-1.19/src/runtime and then ours, so both see
#    the same machine conditions; the table gives, per benchmark, the median and
#    minimum over the rounds for each, and the ratio of the medians (ours / Go).
set -eu
bench=${1:?usage: bench-pagealloc.sh BENCH_BINARY [ROUNDS]}
rounds=${2:-5}
gosrc=/usr/share/go-1.19/src/runtime
gobin=/usr/lib/go-1.19/bin/go

echo "== heapscope page allocator ($(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))"
"$bench" --reps 7 --min-ms 100

if [ ! -x "$gobin" ] || [ ! -d "$gosrc" ]; then
	echo "== Go comparison skipped: golang-1.19-go and golang-1.19-src are not installed"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo
echo "== against Go 1.19's runtime benchmarks, $rounds interleaved rounds"
echo "   go: cd $gosrc && go test -run NONE -bench 'PallocBitsSummarize|FindBitRange64' -benchtime=100ms -count=1 ."
echo "   us: $bench --go-compare --reps 1 --min-ms 100"
for r in $(seq "$rounds"); do
	printf '   round %s/%s\n' "$r" "$rounds" >&2
	(cd "$gosrc" && "$gobin" test -run NONE -bench 'PallocBitsSummarize|FindBitRange64' \
		-benchtime=100ms -count=1 .) |
		awk '/^Benchmark/ { n = $1; sub(/^Benchmark/, "", n); sub(/-[0-9]+$/, "", n); print "go", n, $3 }' \
		>>"$tmp/all"
	"$bench" --go-compare --reps 1 --min-ms 100 | awk '{ print "hs", $1, $2 }' >>"$tmp/all"
done

# Per (side, name): sort the samples, take the median and the minimum.
sort -k1,1 -k2,2 -k3,3g "$tmp/all" | awk '
	function flush() {
		if (key == "") return
		med[key] = (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
		mn[key] = v[1]; mx[key] = v[cnt]
	}
	{ k = $1 " " $2; if (k != key) { flush(); key = k; cnt = 0 } v[++cnt] = $3; names[$2] = 1 }
	END {
		flush()
		printf "%-46s %9s %9s %9s %9s %7s\n", "benchmark", "go med", "go min", "hs med", "hs min", "hs/go"
		for (n in names) order[++m] = n
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (order[j] < order[i]) { t = order[i]; order[i] = order[j]; order[j] = t }
		for (i = 1; i <= m; i++) {
			n = order[i]; g = "go " n; h = "hs " n
			if (!(g in med) || !(h in med)) continue
			printf "%-46s %7.2fns %7.2fns %7.2fns %7.2fns %7.2f\n", n, med[g], mn[g], med[h], mn[h], med[h] / med[g]
		}
	}'
