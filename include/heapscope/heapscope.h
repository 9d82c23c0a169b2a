/*
 * heapscope/heapscope.h — heapscope's heap: Go's runtime heap in C, as malloc.
 *
 * The hs_malloc family behaves like the C library's: alignment of at least 8
 * bytes for every object and of its size class's natural alignment, NULL with
 * errno ENOMEM when memory runs out, hs_free(NULL) does nothing, hs_realloc(NULL,
 * n) allocates and hs_realloc(p, 0) frees and returns NULL. Objects up to 32 KiB
 * come from Go's 68 size classes; larger ones get spans of their own.
 *
 * Bad frees (a pointer the heap did not return, an interior pointer, a double
 * free, a span in the wrong state) are reported on stderr with the span's
 * details and abort the process, like Go's throw. With HEAPSCOPE_BADFREE=warn the
 * report is printed and the free ignored.
 *
 * Environment: HEAPSCOPE_SWEEP_TRIGGER (bytes freed into uncached spans between
 * sweep cycles; a number with an optional KiB/MiB/GiB suffix; by default a
 * quarter of the heap in use, at least 4 MiB), HEAPSCOPE_BADFREE,
 * HEAPSCOPE_MEMORY_LIMIT (bytes, like GOMEMLIMIT), HEAPSCOPE_SCAVENGER_BUDGET
 * (percent of all CPUs, default 1; 0 turns the background scavenger off),
 * HEAPSCOPE_SCAVENGER_RETAIN (percent of the recent peak in use kept, default
 * 110), HEAPSCOPE_SCAVENGER_ADVICE (dontneed, the default, or free). Three more
 * exist for experiments (docs/regressions.md): HEAPSCOPE_PAGE_CACHE (on, the
 * default, or off: every span's pages come from the page allocator under its
 * lock), HEAPSCOPE_SEARCH_ADDR (on, the default, or off: every page search
 * starts at the root of the summary tree; the pages found are the same) and
 * HEAPSCOPE_ARENA_HINTS (go, the default: Go's hint addresses from
 * 0x00c000000000; kernel: no hints, mmap chooses). All are read once, when the
 * heap initializes; `heapscope run --help` lists them as flags.
 *
 * Every function is thread-safe. docs/heap.md explains the heap.
 */
#ifndef HEAPSCOPE_HEAPSCOPE_H
#define HEAPSCOPE_HEAPSCOPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void *hs_malloc(size_t size);
void hs_free(void *p);
void *hs_calloc(size_t n, size_t size);
void *hs_realloc(void *p, size_t size);
void *hs_aligned_alloc(size_t align, size_t size);
int hs_posix_memalign(void **out, size_t align, size_t size);
void *hs_memalign(size_t align, size_t size);
size_t hs_malloc_usable_size(void *p);

/* A snapshot of the heap's statistics (bytes unless named otherwise). */
typedef struct hs_heap_stats_t {
	uint64_t in_use;	/* in spans holding objects */
	uint64_t free;		/* grown into but in no span (includes released) */
	uint64_t released;	/* free and returned to the OS */
	uint64_t sys;		/* mapped for the heap and its metadata */
	uint64_t metadata;	/* of sys: the heap's own structures */
	uint64_t pages_in_use;	/* pages (8 KiB) in in-use spans */
	uint64_t reserved, prepared, ready; /* address space per OS memory state */
	uint64_t large_allocs, large_frees;
	uint64_t sweep_cycles, spans_swept, spans_released;
	/* The scavenger: retained = in_use + free not yet released. */
	uint64_t retained, scav_goal, memory_limit;
	uint64_t scav_released, scav_released_last_cycle, scav_cycles, scav_cpu_ns;
	uint64_t scav_assists, scav_assist_bytes;
} hs_heap_stats_t;

void hs_heap_stats(hs_heap_stats_t *out);

/*
 * Checks every invariant of the heap: the span table against the page
 * allocator's bitmaps and the pageInUse bits, the mcentral sets against their
 * spans' states, allocCount against the bitmaps, and the page allocator's own
 * invariants. Exact only while no other thread allocates or frees. Returns 0, or
 * -1 with a one-line description of the first violation in msg.
 */
int hs_heap_check(char *msg, size_t msglen);

/*
 * Runs a whole sweep cycle now, on the calling thread (for tests and tools):
 * the caller's own cached and owned spans are handed back first, every free
 * made so far into spans no thread holds is folded in, and spans left empty
 * return to the page allocator. Spans other threads hold are swept when those
 * threads next refill from them or exit.
 */
void hs_heap_sweep(void);

/*
 * Returns every free page to the OS now (Go's debug.FreeOSMemory): runs a sweep
 * cycle as hs_heap_sweep does, then releases all free pages with
 * madvise(MADV_DONTNEED). Returns the bytes released.
 */
uint64_t hs_heap_scavenge_all(void);

/*
 * A virtual clock for the heap's background work, so that replaying the same
 * allocations gives the same events (heapscope replay-workload;
 * docs/regressions.md). After hs_heap_virtual_clock() the background sweeper,
 * the background scavenger and the trace sampler never run on threads of
 * their own. They run only inside hs_heap_advance(now_ns), on the calling
 * thread, as they would have run up to now_ns nanoseconds after the heap
 * started: a woken sweep cycle is swept; every scavenger turn due by then is
 * taken, its work charged at a fixed CPU cost per byte released and paced to
 * HEAPSCOPE_SCAVENGER_BUDGET (0: none); a statistics sample and a digest are
 * emitted for each 100 ms (when traced). hs_heap_virtual_clock returns 0, or
 * -1 when the heap has allocated already (call it first). Call
 * hs_heap_advance before each allocation or free, from one thread at a time,
 * with times that never decrease. core/background.c explains the model.
 */
int hs_heap_virtual_clock(void);
void hs_heap_advance(uint64_t now_ns);

#ifdef __cplusplus
}
#endif

#endif /* HEAPSCOPE_HEAPSCOPE_H */
