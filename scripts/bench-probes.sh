#!/bin/sh
# scripts/bench-probes.sh HEAPSCOPE [ROUNDS]
#
# The eBPF transport's benchmarks (issue 9), side by side with the in-process
# ring, all in one run (needs root; says so and stops otherwise):
#   - per-event cost in the workload: churn untraced (probes compiled in, no
#     tracer attached: the state a detach returns to), traced at heap level and
#     at object level through the ring and through eBPF, the recorder draining
#     to a null sink; interleaved round by round. Each time is the workload's
#     own ("done in"), so start-up and attaching are not counted. The cost per
#     event is (median traced - median untraced) / events.
#   - events/s sustained, and the records lost: object-level `threads` (four
#     threads on this machine's CPUs) for 3 s through eBPF with the default
#     16 MiB ring buffer, the recorder draining to a null sink (the transport
#     alone) and storing and modelling (the whole recorder); and through the
#     ring, where producers wait instead of losing.
set -eu
hs=${1:?usage: bench-probes.sh HEAPSCOPE [ROUNDS]}
rounds=${2:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$hs" run --transport bpf --workload sizeclasses --headless --no-store >"$tmp/o" 2>&1; then
	echo "bench-probes: cannot attach here: $(tail -1 "$tmp/o")"
	exit 0
fi

done_secs() { sed -n 's/.*done in \([0-9.]*\) s.*/\1/p' | tail -1; }
nevents() { sed -n 's/.*: \([0-9]*\) events in.*/\1/p' | tail -1; }

echo "== per-event cost on churn: $rounds interleaved rounds ($(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))"
for r in $(seq "$rounds"); do
	printf '   round %s/%s\n' "$r" "$rounds" >&2
	echo "off $("$hs" workloads --run churn | done_secs) 0" >>"$tmp/t"
	for t in ring bpf; do
		for l in heap objects; do
			out=$("$hs" run --workload churn --events $l --transport $t --no-store --no-model --headless 2>&1)
			echo "$t-$l $(echo "$out" | done_secs) $(echo "$out" | nevents)" >>"$tmp/t"
		done
	done
done
sort -k1,1 -k2,2g "$tmp/t" | awk '
	{ v[$1, ++n[$1]] = $2; e[$1] += $3 }
	END {
		split("off ring-heap bpf-heap ring-objects bpf-objects", ks, " ")
		for (i = 1; i <= 5; i++) {
			k = ks[i]; c = n[k]
			med[k] = (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
			mn[k] = v[k, 1]; mx[k] = v[k, c]; ev[k] = e[k] / c
		}
		printf "%-13s %9s %9s %9s %10s %10s %14s\n", "tracing", "median s", "min s", "max s", "events", "median/off", "ns/event"
		for (i = 1; i <= 5; i++) {
			k = ks[i]
			cost = ev[k] > 0 ? sprintf("%.0f", (med[k] - med["off"]) * 1e9 / ev[k]) : "-"
			printf "%-13s %9.3f %9.3f %9.3f %10d %10.2f %14s\n", k, med[k], mn[k], mx[k], ev[k], med[k] / med["off"], cost
		}
	}'

echo "== events/s sustained: object-level threads, 3 s"
rate() {
	label=$1
	shift
	out=$("$hs" run --workload threads --duration 3 --events objects --headless "$@" 2>&1)
	echo "$out" | sed -n "s/^heapscope run: threads: \([0-9]*\) events in \([0-9.]*\) s (\([0-9.]*\) M events\/s), \([0-9]*\) lost.*/$label \3 M events\/s, \4 lost of \1/p"
}
rate "eBPF, null sink:      " --transport bpf --no-store --no-model
rate "eBPF, store + model:  " --transport bpf -o "$tmp/b.db"
rate "ring, null sink:      " --no-store --no-model
rate "ring, store + model:  " -o "$tmp/r.db"
