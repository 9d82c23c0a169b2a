/*
 * core/sys.c — Linux implementation of the states in core/sys.h.
 */
#include "sys.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "panic.h"

static void stat_add(hs_sys_stat *stat, size_t n)
{
	if (stat != NULL)
		atomic_fetch_add_explicit(&stat->bytes, n, memory_order_relaxed);
}

static void stat_sub(hs_sys_stat *stat, size_t n)
{
	if (stat != NULL)
		atomic_fetch_sub_explicit(&stat->bytes, n, memory_order_relaxed);
}

int hs_sys_reserve(size_t n, void **out)
{
	void *p = mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	*out = p;
	return 0;
}

int hs_sys_map(void *v, size_t n, hs_sys_stat *stat)
{
	if (mprotect(v, n, PROT_READ | PROT_WRITE) != 0)
		return errno;
	stat_add(stat, n);
	return 0;
}

/*
 * Prepared and Ready are the same thing to Linux: a page that was released with
 * MADV_DONTNEED faults back in as zeroes on first touch. The transition exists so
 * that callers state their intent and the counts stay right; the huge-page policy
 * of the scavenger hooks in here.
 */
void hs_sys_used(void *v, size_t n)
{
	(void)v;
	(void)n;
}

void hs_sys_unused(void *v, size_t n, int lazy)
{
	if (madvise(v, n, lazy ? MADV_FREE : MADV_DONTNEED) != 0) {
		hs_print("heapscope: madvise(%p, %zu) failed: errno %d\n", v, n, errno);
		hs_throw("sysUnused: madvise failed");
	}
}

int hs_sys_alloc(size_t n, hs_sys_stat *stat, void **out)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	stat_add(stat, n);
	*out = p;
	return 0;
}

void hs_sys_free(void *v, size_t n, hs_sys_stat *stat)
{
	if (munmap(v, n) != 0) {
		hs_print("heapscope: munmap(%p, %zu) failed: errno %d\n", v, n, errno);
		hs_throw("sysFree: munmap failed");
	}
	stat_sub(stat, n);
}

size_t hs_sys_phys_page_size(void)
{
	long n = sysconf(_SC_PAGESIZE);
	return n > 0 ? (size_t)n : 4096;
}
