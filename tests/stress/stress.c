/*
 * tests/stress/stress.c — the heap under threads: 4 threads, 10 million
 * operations, a third of all frees made by a thread other than the allocator.
 *
 *   stress [--threads N] [--ops N] [--seed N]
 *
 * Each thread mixes allocation (mostly small sizes, some up to 32 KiB, a few
 * large objects) and frees of its own objects with handing objects over through
 * a shared array of mailboxes: it swaps a new object into a random mailbox and
 * frees whatever it got out, which another thread usually allocated. Every object
 * carries its size and a tag derived from its address at both ends; they are
 * checked before the object is freed, so overlapping or corrupted objects are
 * caught. At the end all objects are freed, the sweep is finished and
 * hs_heap_check must pass. Exit status 0 on success; failures name the seed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heapscope/heapscope.h"
#include "splitmix.h"

#define MAILBOXES 4096
#define LOCAL 2048

static _Atomic(uint64_t *) mailbox[MAILBOXES];
static uint64_t seed0 = 1;
static uint64_t ops_per_thread;

static uint64_t next_rand(uint64_t *s)
{
	return hs_splitmix64(s);
}

static size_t random_size(uint64_t *s)
{
	uint64_t x = next_rand(s), r = x % 1000;
	if (r < 700)
		return 1 + (x >> 12) % 256;
	if (r < 950)
		return 257 + (x >> 12) % 3840;
	if (r < 999)
		return 4097 + (x >> 12) % 28672;
	return 32769 + (x >> 12) % (512 << 10);
}

static uint64_t tag_of(const uint64_t *p)
{
	return (uintptr_t)p * UINT64_C(0x9e3779b97f4a7c15) ^ seed0;
}

static uint64_t *new_object(uint64_t *s)
{
	size_t n = random_size(s);
	if (n < 24)
		n = 24;
	uint64_t *p = hs_malloc(n);
	if (p == NULL) {
		fprintf(stderr, "stress: malloc(%zu) failed (seed %llu)\n", n, (unsigned long long)seed0);
		exit(1);
	}
	p[0] = n;
	p[1] = tag_of(p);
	memcpy((char *)p + n - 8, &p[1], 8);
	return p;
}

static void check_and_free(uint64_t *p)
{
	uint64_t n = p[0], tail;
	memcpy(&tail, (char *)p + n - 8, 8);
	if (p[1] != tag_of(p) || tail != tag_of(p) || hs_malloc_usable_size(p) < n) {
		fprintf(stderr, "stress: object %p (size %llu) was overwritten (seed %llu)\n", (void *)p,
			(unsigned long long)n, (unsigned long long)seed0);
		exit(1);
	}
	hs_free(p);
}

static void *worker(void *arg)
{
	uint64_t s = seed0 * 1000 + (uintptr_t)arg;
	uint64_t *local[LOCAL] = { 0 };
	for (uint64_t op = 0; op < ops_per_thread; op++) {
		uint64_t x = next_rand(&s);
		if (x % 3 == 0) {
			/* Hand an object over and free what was there: a cross-thread free. */
			uint64_t *old = atomic_exchange(&mailbox[(x >> 8) % MAILBOXES], new_object(&s));
			if (old != NULL)
				check_and_free(old);
		} else {
			unsigned k = (unsigned)((x >> 8) % LOCAL);
			if (local[k] != NULL) {
				check_and_free(local[k]);
				local[k] = NULL;
			} else {
				local[k] = new_object(&s);
			}
		}
	}
	for (unsigned k = 0; k < LOCAL; k++)
		if (local[k] != NULL)
			check_and_free(local[k]);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned threads = 4;
	uint64_t ops = 10000000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--threads") == 0)
			threads = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--ops") == 0)
			ops = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--seed") == 0)
			seed0 = strtoull(argv[i + 1], NULL, 0);
	}
	if (threads == 0 || threads > 64) {
		fprintf(stderr, "stress: --threads must be 1..64\n");
		return 2;
	}
	ops_per_thread = ops / threads;

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t t[64];
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	for (unsigned k = 0; k < MAILBOXES; k++) {
		uint64_t *p = atomic_exchange(&mailbox[k], NULL);
		if (p != NULL)
			check_and_free(p);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	hs_heap_sweep();

	char msg[256];
	if (hs_heap_check(msg, sizeof msg) != 0) {
		fprintf(stderr, "stress: heap check failed (seed %llu): %s\n", (unsigned long long)seed0, msg);
		return 1;
	}
	hs_heap_stats_t st;
	hs_heap_stats(&st);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("stress: %u threads, %llu operations in %.2f s (%.1f M ops/s), seed %llu; %llu sweep cycles, "
	       "%llu spans swept, %llu released; heap check passed\n",
	       threads, (unsigned long long)(ops_per_thread * threads), secs,
	       (double)(ops_per_thread * threads) / secs / 1e6, (unsigned long long)seed0,
	       (unsigned long long)st.sweep_cycles, (unsigned long long)st.spans_swept,
	       (unsigned long long)st.spans_released);
	return 0;
}
