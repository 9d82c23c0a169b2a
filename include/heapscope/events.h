/*
 * heapscope/events.h — the event table: every state change of the heap, once.
 *
 * One X-macro list names every event, its numeric kind, its level and its
 * arguments. Everything else is generated from it: the enum below, the record
 * layout's argument names, the USDT probe sites and their semaphores
 * (core/trace.c), the SQL views of the store, the names shown by the TUI and by
 * `heapscope query`. Adding an event is one line here and one HS_TRACE call at
 * the site; docs/events.md describes each event and the ordering rules.
 *
 * A row is X(NAME, name, kind, level, nargs, a0, a1, a2, a3, a4, a5): the upper-
 * case name for the enum, the lower-case name for probes and SQL, a kind number
 * that never changes once released (stored sessions depend on it), the level at
 * which the event is recorded, and six argument names ("-" for unused slots;
 * the first nargs are used). Every argument is an unsigned 64-bit integer.
 *
 * Levels: HEAP events are every change of the heap's metadata (pages, spans,
 * sweeping, scavenging) plus statistics samples and digests; a model replaying
 * them rebuilds the metadata exactly. OBJECT events are every malloc and free;
 * they are recorded only when asked for (`--events objects`).
 */
#ifndef HEAPSCOPE_EVENTS_H
#define HEAPSCOPE_EVENTS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HS_EVENT_TABLE(X)                                                                                       \
	/* a process's heap begins tracing: pid, parent's pid, level traced, and for a fork child the seq of */   \
	/* its parent's proc_fork (its heap starts as a copy of the parent's as of that event), else 0 */          \
	X(PROC_START, proc_start, 1, HEAP, 4, pid, ppid, level, fork_seq, -, -)                                   \
	/* a process forks (emitted under heap.lock, held across the fork) */                                     \
	X(PROC_FORK, proc_fork, 25, HEAP, 1, pid, -, -, -, -, -)                                                   \
	/* the process's tracing ends (exit or explicit stop); final digest precedes it */                         \
	X(PROC_END, proc_end, 2, HEAP, 1, status, -, -, -, -, -)                                                   \
	/* address space reserved for heap arenas (sysReserve), and arena memory mapped (sysMap) */                \
	X(ARENA_RESERVE, arena_reserve, 3, HEAP, 2, base, size, -, -, -, -)                                        \
	X(ARENA_MAP, arena_map, 4, HEAP, 2, base, size, -, -, -, -)                                                \
	/* mheap.grow: asked for npages, grew the page allocator by size bytes */                                  \
	X(HEAP_GROW, heap_grow, 5, HEAP, 2, npages, size, -, -, -, -)                                              \
	/* pageAlloc.grow over [base, base+size) */                                                                \
	X(PAGE_GROW, page_grow, 6, HEAP, 2, base, size, -, -, -, -)                                                \
	/* pageAlloc.alloc (first fit): the pages found and the scavenged bytes among them */                      \
	X(PAGE_ALLOC, page_alloc, 7, HEAP, 3, base, npages, scav, -, -, -)                                         \
	/* pageAlloc.allocRange at a chosen base (aligned large spans) */                                          \
	X(PAGE_ALLOC_RANGE, page_alloc_range, 8, HEAP, 3, base, npages, scav, -, -, -)                             \
	/* pageAlloc.free */                                                                                       \
	X(PAGE_FREE, page_free, 9, HEAP, 2, base, npages, -, -, -, -)                                              \
	/* pageAlloc.allocToCache: a 64-page block, its free pages (cache) and which were scavenged */             \
	X(PAGE_CACHE_ALLOC, page_cache_alloc, 10, HEAP, 3, base, cache, scav, -, -, -)                             \
	/* pageCache.flush: the cache's remaining pages go back to the page allocator */                           \
	X(PAGE_CACHE_FLUSH, page_cache_flush, 11, HEAP, 3, base, cache, scav, -, -, -)                             \
	/* a span made (state in_use) or returned to the page allocator (state dead) */                            \
	X(SPAN_ALLOC, span_alloc, 12, HEAP, 4, base, npages, spanclass, state, -, -)                               \
	X(SPAN_FREE, span_free, 13, HEAP, 4, base, npages, spanclass, state, -, -)                                 \
	/* a span swept: objects freed by the sweep, allocCount after it */                                        \
	X(SWEEP, sweep, 14, HEAP, 4, base, spanclass, freed, alloc_count, -, -)                                    \
	/* a span put into an mcentral set (0 partial swept, 1 partial unswept, 2 full swept, 3 full unswept) */   \
	X(MCENTRAL_MOVE, mcentral_move, 15, HEAP, 4, base, spanclass, to_set, alloc_count, -, -)                \
	/* a span enters an mcache from its mcentral (refill), or goes back to it (flush) */                       \
	X(MCACHE_REFILL, mcache_refill, 16, HEAP, 3, base, spanclass, alloc_count, -, -, -)                        \
	X(MCACHE_FLUSH, mcache_flush, 17, HEAP, 3, base, spanclass, alloc_count, -, -, -)                          \
	/* a background scavenger cycle (or an assist, or hs_heap_scavenge_all) starts and ends */                 \
	X(SCAV_START, scav_start, 18, HEAP, 4, goal, retained, released, reason, -, -)                             \
	X(SCAV_END, scav_end, 19, HEAP, 5, goal, retained, released, cycle_bytes, cpu_ns, -)                       \
	/* a free run taken by the scavenger (allocated while heap.lock is dropped for madvise) */                 \
	X(SCAV_TAKE, scav_take, 20, HEAP, 2, base, npages, -, -, -, -)                                             \
	/* ... and given back released: freed and marked scavenged */                                              \
	X(SCAV_RANGE, scav_range, 21, HEAP, 2, base, npages, -, -, -, -)                                           \
	/* scavenged pages handed out again and re-committed (sysUsed) */                                          \
	X(RECOMMIT, recommit, 22, HEAP, 2, base, bytes, -, -, -, -)                                                \
	/* statistics every 100 ms: bytes in spans, free, released, mapped, resident, heap metadata */            \
	X(STATS, stats, 23, HEAP, 6, in_use, free, released, sys, rss, metadata)                                   \
	/* a hash of the summary levels over the in-use range and of the span table */                             \
	X(DIGEST, digest, 24, HEAP, 4, summaries, spans, nspans, nchunks, -, -)                                    \
	/* A snapshot of a running heap, taken when an eBPF tracer attaches (core/trace.c): snap_begin starts the */ \
	/* process's heap afresh; then its grown ranges, every 64-page group not all free and scavenged (bits: */    \
	/* allocated, scavenged), every live span, and snap_end with the counts. All under heap.lock. */             \
	X(SNAP_BEGIN, snap_begin, 26, HEAP, 3, pid, ppid, level, -, -, -)                                          \
	X(SNAP_RANGE, snap_range, 27, HEAP, 2, base, size, -, -, -, -)                                             \
	X(SNAP_PAGES, snap_pages, 28, HEAP, 3, base, alloc, scav, -, -, -)                                         \
	X(SNAP_SPAN, snap_span, 29, HEAP, 4, base, npages, spanclass, state, -, -)                                 \
	X(SNAP_END, snap_end, 30, HEAP, 3, nranges, ngroups, nspans, -, -, -)                                      \
	/* every object allocated (size asked; spanclass 0 for large objects) and freed */                         \
	X(MALLOC, malloc, 32, OBJECT, 3, addr, size, spanclass, -, -, -)                                           \
	X(FREE, free, 33, OBJECT, 1, addr, -, -, -, -, -)

#define HS_EVENT_MAX_ARGS 6

typedef enum hs_event_level {
	HS_EVL_OFF = 0,
	HS_EVL_HEAP = 1,
	HS_EVL_OBJECT = 2,
} hs_event_level;

typedef enum hs_event_kind {
#define HS_EVENT_ENUM_(NAME, name, kind, level, nargs, ...) HS_EV_##NAME = kind,
	HS_EVENT_TABLE(HS_EVENT_ENUM_)
#undef HS_EVENT_ENUM_
	HS_EV_KIND_LIMIT = 64 /* kinds are below this */
} hs_event_kind;

/*
 * One record, the same on every transport (the in-process ring, the eBPF ring
 * buffer) and in the store's events table. seq orders all records of a session:
 * heap-level events take theirs under the lock that orders the change they
 * describe (see docs/events.md). ts is CLOCK_MONOTONIC in nanoseconds.
 */
typedef struct hs_event {
	uint64_t seq;
	uint64_t ts;
	uint32_t pid;
	uint32_t tid;
	uint16_t kind;
	uint16_t flags; /* reserved, 0 */
	uint32_t reserved;
	uint64_t arg[HS_EVENT_MAX_ARGS];
} hs_event;

_Static_assert(sizeof(hs_event) == 80, "hs_event is part of the stored format");

/* What the table says about one kind. */
typedef struct hs_event_info {
	const char *name;
	hs_event_kind kind;
	hs_event_level level;
	unsigned nargs;
	const char *args[HS_EVENT_MAX_ARGS];
} hs_event_info;

/* The table entry for kind, or NULL for a kind the table does not have. */
const hs_event_info *hs_event_lookup(unsigned kind);
/* The kind named name (lower case, as in the table), or -1. */
int hs_event_by_name(const char *name);
/* Every entry, in table order; *n receives the count. */
const hs_event_info *hs_event_all(unsigned *n);

/* Values of the span_alloc/span_free state argument (Go's mSpanState). */
enum { HS_EV_SPAN_DEAD = 0, HS_EV_SPAN_IN_USE = 1, HS_EV_SPAN_MANUAL = 2 };
/* Values of scav_start's reason argument. */
enum { HS_EV_SCAV_BACKGROUND = 0, HS_EV_SCAV_ASSIST = 1, HS_EV_SCAV_ALL = 2 };

#ifdef __cplusplus
}
#endif

#endif /* HEAPSCOPE_EVENTS_H */
