/*
 * bench/bench_rss.c — how fast an allocator gives memory back: a workload grows
 * to a given size, frees everything, and RSS is sampled afterwards.
 *
 *   bench_rss --alloc heapscope|system [--mib N] [--seconds S] [--rounds R]
 *
 * Each round allocates N MiB (default 512) in mixed sizes (95% of 16..4096
 * bytes, 5% of 40..240 KiB), touching every byte, then frees it all in
 * allocation order, then samples RSS every 50 ms for S seconds (default 6).
 * Output, one line per round and one per sample:
 *   round R work_ms W peak_mib P release_ms T cpu_ms C scav_ms S
 *   rss R t_ms MiB
 * where work_ms is the time to allocate, touch and free (what the scavenger may
 * slow down), cpu_ms the CPU time all the process's threads spent meanwhile (the
 * scavenger's included; on a shared machine it varies less than the wall time,
 * since it leaves out the time spent waiting for a CPU), scav_ms the CPU time
 * heapscope's background scavenger spent meanwhile (0 for the other
 * allocators), and release_ms the time after the last free until RSS is back
 * within 10% of the peak above where it started (-1 if it never was).
 * "system" is whatever malloc is loaded (glibc, or an LD_PRELOADed allocator).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_alloc.h"
#include "splitmix.h"

static bench_alloc a;

static double now_ms(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	const char *alloc = NULL;
	uint64_t mib = 512, rounds = 1;
	double seconds = 6;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--alloc") == 0)
			alloc = argv[i + 1];
		else if (strcmp(argv[i], "--mib") == 0)
			mib = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = strtoull(argv[i + 1], NULL, 0);
	}
	if (!bench_alloc_select(alloc, &a)) {
		fprintf(stderr, "usage: bench_rss --alloc heapscope|system [--mib N] [--seconds S] [--rounds R]\n");
		return 2;
	}
	size_t cap = (size_t)(mib << 20) / 64;
	char **p = calloc(cap, sizeof *p);
	uint64_t seed = 7, base = bench_rss_bytes();
	for (uint64_t r = 0; r < rounds; r++) {
		/* Only heapscope's: reading the stats would set its heap up beside
		 * another allocator and count in that one's RSS. */
		hs_heap_stats_t s0 = { 0 }, s1 = { 0 };
		if (a.alloc == hs_malloc)
			hs_heap_stats(&s0);
		double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
		size_t n = 0;
		uint64_t total = 0;
		while (total < (mib << 20) && n < cap) {
			uint64_t x = hs_splitmix64(&seed);
			size_t sz = x % 100 < 95 ? 16 + (x >> 16) % 4081 : 40960 + (x >> 16) % 204800;
			p[n] = a.alloc(sz);
			memset(p[n++], 1, sz);
			total += sz;
		}
		uint64_t peak = bench_rss_bytes();
		for (size_t i = 0; i < n; i++)
			a.free(p[i]);
		double t1 = now_ms(CLOCK_MONOTONIC), c1 = now_ms(CLOCK_PROCESS_CPUTIME_ID), release = -1;
		if (a.alloc == hs_malloc)
			hs_heap_stats(&s1);
		uint64_t target = base + (peak - base) / 10;
		printf("rss %llu 0 %llu\n", (unsigned long long)r, (unsigned long long)(peak >> 20));
		for (double t = 0; t <= seconds * 1e3; t = now_ms(CLOCK_MONOTONIC) - t1) {
			uint64_t rss = bench_rss_bytes();
			if (release < 0 && rss <= target)
				release = t;
			printf("rss %llu %.0f %llu\n", (unsigned long long)r, t, (unsigned long long)(rss >> 20));
			usleep(50000);
		}
		printf("round %llu work_ms %.1f peak_mib %llu release_ms %.0f cpu_ms %.1f scav_ms %.2f\n",
		       (unsigned long long)r, t1 - t0, (unsigned long long)((peak - base) >> 20), release, c1 - c0,
		       (double)(s1.scav_cpu_ns - s0.scav_cpu_ns) / 1e6);
		fflush(stdout);
	}
	free(p);
	return 0;
}
