/*
 * bench/bench_alloc.h — what the allocator benchmarks share: choosing the
 * allocator under test by name, and reading RSS. "heapscope" is hs_malloc and
 * hs_free, linked in; "system" is the C library's malloc and free, glibc's
 * unless another allocator is LD_PRELOADed (the scripts do that for jemalloc,
 * mimalloc and tcmalloc). Every allocator is called through the same pointers.
 */
#ifndef HS_BENCH_ALLOC_H
#define HS_BENCH_ALLOC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapscope/heapscope.h"

typedef struct bench_alloc {
	void *(*alloc)(size_t);
	void (*free)(void *);
} bench_alloc;

/* The allocator named by `name`; returns 0 for a name it does not know. */
static inline int bench_alloc_select(const char *name, bench_alloc *out)
{
	if (name != NULL && strcmp(name, "heapscope") == 0) {
		*out = (bench_alloc){ hs_malloc, hs_free };
		return 1;
	}
	if (name != NULL && strcmp(name, "system") == 0) {
		*out = (bench_alloc){ malloc, free };
		return 1;
	}
	return 0;
}

/* The process's resident bytes, from /proc/self/statm (0 if unreadable). */
static inline uint64_t bench_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	int ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
	fclose(f);
	return ok ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

#endif /* HS_BENCH_ALLOC_H */
