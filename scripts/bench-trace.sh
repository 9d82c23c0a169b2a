#!/bin/sh
# scripts/bench-trace.sh HEAPSCOPE [ROUNDS [BASELINE]]
#
# The tracer's benchmarks (issue 5), all in one run:
#   - the churn workload untraced, traced at heap level and traced at object
#     level (the recorder draining to a null sink, no model), interleaved round by
#     round; each time is the workload's own (its "done in" line), so the
#     recorder's start-up is not counted. Ratios against untraced, of the medians
#     and of the minima.
#   - with BASELINE, another heapscope binary (an older build) traced the same
#     two ways in the same rounds, its rows marked "(base)": a change measured
#     against the build before it under the same load.
#   - end-to-end events/s through the ring: object-level churn, the recorder
#     draining to a null sink (its summary line), median and minimum over rounds.
set -eu
hs=${1:?usage: bench-trace.sh HEAPSCOPE [ROUNDS [BASELINE]]}
rounds=${2:-11}
base=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

done_secs() { sed -n 's/.*done in \([0-9.]*\) s.*/\1/p' | tail -1; }

# traced BINARY LEVEL NAME: one traced run, its time under NAME; the rate of an
# object-level run of HEAPSCOPE itself goes to the throughput figures.
traced() {
	out=$("$1" run --workload churn --events "$2" --no-store --no-model --headless)
	echo "$3 $(echo "$out" | done_secs)" >>"$tmp/t"
	if [ "$1" = "$hs" ] && [ "$2" = objects ]; then
		echo "$out" | sed -n 's/.* (\([0-9.]*\) M events\/s).*/\1/p' >>"$tmp/rate"
	fi
}

echo "== tracing overhead on churn: $rounds interleaved rounds ($(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))"
kinds="off heap objects"
[ -n "$base" ] && kinds="$kinds heap(base) objects(base)"
for r in $(seq "$rounds"); do
	printf '   round %s/%s\n' "$r" "$rounds" >&2
	echo "off $("$hs" workloads --run churn | done_secs)" >>"$tmp/t"
	traced "$hs" heap heap
	traced "$hs" objects objects
	if [ -n "$base" ]; then
		traced "$base" heap "heap(base)"
		traced "$base" objects "objects(base)"
	fi
done

sort -k1,1 -k2,2g "$tmp/t" | awk -v kinds="$kinds" '
	{ v[$1, ++n[$1]] = $2 }
	END {
		nk = split(kinds, ks, " ")
		for (i = 1; i <= nk; i++) {
			k = ks[i]; c = n[k]
			med[k] = (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
			mn[k] = v[k, 1]; mx[k] = v[k, c]
		}
		printf "%-14s %10s %10s %10s %12s %12s\n", "tracing", "median s", "min s", "max s", "median/off", "min/off"
		for (i = 1; i <= nk; i++) {
			k = ks[i]
			printf "%-14s %10.3f %10.3f %10.3f %12.3f %12.3f\n", k, med[k], mn[k], mx[k], med[k] / med["off"], mn[k] / mn["off"]
		}
	}'
sort -g "$tmp/rate" | awk '{ v[++n] = $1 } END {
	med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	printf "ring throughput (object-level churn, null sink): median %.2f M events/s, min %.2f, max %.2f\n", med, v[1], v[n] }'
