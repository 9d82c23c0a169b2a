/*
 * bench/bench_heap.c — the heap's allocation benchmarks, for one allocator per
 * process.
 *
 *   bench_heap --alloc heapscope|system [--min-ms MS] [--filter SUBSTR]
 *
 * "heapscope" calls hs_malloc/hs_free (linked in statically); "system" calls the
 * C library's malloc/free, which is glibc's unless another allocator is
 * LD_PRELOADed (scripts/bench-heap.sh runs jemalloc, mimalloc and tcmalloc that
 * way). Both go through the same function pointers, so the harness costs each
 * allocator the same. Output: one "name ns/op" line per benchmark; the script
 * interleaves allocators round by round and takes medians.
 *
 *   pair/N             malloc(N) then free, on one thread
 *   churn/100k-1KiB    a live set of 100,000 objects of 1..1024 bytes; each op
 *                      frees a random one and allocates a new random size
 *   prodcons/2threads  a producer thread allocates 1..256-byte objects and hands
 *                      them through a ring to a consumer thread that frees them
 *                      (every free is cross-thread); ns per object
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_alloc.h"
#include "splitmix.h"

#define OPAQUE(x) __asm__ volatile("" : "+r"(x))

static bench_alloc a;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng = 12345;

static uint64_t next_rand(void)
{
	return hs_splitmix64(&rng);
}

/* --- benchmarks: each runs n operations ------------------------------------------- */

static size_t pair_size;

static void run_pair(uint64_t n)
{
	size_t size = pair_size;
	for (uint64_t i = 0; i < n; i++) {
		OPAQUE(size);
		void *p = a.alloc(size);
		OPAQUE(p);
		*(volatile char *)p = 1;
		a.free(p);
	}
}

#define CHURN_LIVE 100000
static void *churn_slots[CHURN_LIVE];

static void churn_fill(void)
{
	for (unsigned i = 0; i < CHURN_LIVE; i++)
		churn_slots[i] = a.alloc(1 + next_rand() % 1024);
}

static void run_churn(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = next_rand();
		unsigned k = (unsigned)(x % CHURN_LIVE);
		a.free(churn_slots[k]);
		churn_slots[k] = a.alloc(1 + (x >> 32) % 1024);
		*(volatile char *)churn_slots[k] = 1;
	}
}

#define RING 1024
static _Atomic(void *) ring[RING];
static uint64_t prodcons_n;

static void *consumer(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < prodcons_n; i++) {
		void *p;
		while ((p = atomic_exchange_explicit(&ring[i % RING], NULL, memory_order_acquire)) == NULL)
			;
		a.free(p);
	}
	return NULL;
}

static void run_prodcons(uint64_t n)
{
	pthread_t t;
	prodcons_n = n;
	pthread_create(&t, NULL, consumer, NULL);
	for (uint64_t i = 0; i < n; i++) {
		void *p = a.alloc(1 + (i * 2654435761u) % 256);
		*(volatile char *)p = 1;
		while (atomic_load_explicit(&ring[i % RING], memory_order_relaxed) != NULL)
			;
		atomic_store_explicit(&ring[i % RING], p, memory_order_release);
	}
	pthread_join(t, NULL);
}

/* One sample: ns/op over a run long enough to last min_ms. */
static double sample(void (*fn)(uint64_t), double min_ms)
{
	uint64_t n = 1000;
	for (;;) {
		double t0 = now_ns();
		fn(n);
		double dt = now_ns() - t0;
		if (dt >= min_ms * 1e6)
			return dt / (double)n;
		n = dt < 1e5 ? n * 10 : (uint64_t)((double)n * min_ms * 1e6 * 1.2 / dt) + 1;
	}
}

int main(int argc, char **argv)
{
	const char *alloc = NULL, *filter = NULL;
	double min_ms = 200;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--alloc") == 0)
			alloc = argv[i + 1];
		else if (strcmp(argv[i], "--min-ms") == 0)
			min_ms = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--filter") == 0)
			filter = argv[i + 1];
	}
	if (!bench_alloc_select(alloc, &a)) {
		fprintf(stderr, "usage: bench_heap --alloc heapscope|system [--min-ms MS] [--filter SUBSTR]\n");
		return 2;
	}

	static const size_t pair_sizes[] = { 16, 64, 256, 4096, 32768, 100000 };
	char name[64];
	for (size_t i = 0; i < sizeof pair_sizes / sizeof pair_sizes[0]; i++) {
		snprintf(name, sizeof name, "pair/%zu", pair_sizes[i]);
		if (filter && !strstr(name, filter))
			continue;
		pair_size = pair_sizes[i];
		printf("%s %.3f\n", name, sample(run_pair, min_ms));
		fflush(stdout);
	}
	if (!filter || strstr("churn/100k-1KiB", filter)) {
		churn_fill();
		printf("churn/100k-1KiB %.3f\n", sample(run_churn, min_ms));
		fflush(stdout);
	}
	if (!filter || strstr("prodcons/2threads", filter))
		printf("prodcons/2threads %.3f\n", sample(run_prodcons, min_ms));
	return 0;
}
