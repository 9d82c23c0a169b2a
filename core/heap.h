/*
 * core/heap.h — the heap above the page allocator: spans, arenas, mcentral,
 * mcache and the mheap singleton. An index header (prototypes grouped by the file
 * that defines them); the overview essay is core/mheap.c, and docs/heap.md tells
 * the same story with pictures.
 *
 * Lock order (core/lock.h), outermost first:
 *   sweeper_mu  (held by the background sweeper around a batch of spans, around
 *                a whole finishing sweep when a cycle starts, and by the checker)
 *   an mcentral's lock | heap.lock   (never both: taken one after the other)
 *   bits_lock   (a leaf; may be taken under heap.lock)
 * The page allocator's lock *is* heap.lock.
 */
#ifndef HS_HEAP_H
#define HS_HEAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../arch/arch.h"
#include "fixalloc.h"
#include "lock.h"
#include "pagealloc.h"
#include "sizeclasses.h"
#include "trace.h"

/*
 * Span classes: Go's encoding, sizeclass << 1 | noscan. heapscope has no
 * collector, so no object is ever scanned and every span is noscan; the scan
 * half of the numbering is kept so that class numbers read as Go's do. Class 0
 * (span class 1) is a large object in a span of its own.
 */
#define HS_NUM_SPAN_CLASSES (HS_NUM_SIZE_CLASSES << 1)
typedef uint8_t hs_span_class;

static inline hs_span_class hs_make_span_class(unsigned sizeclass)
{
	return (hs_span_class)(sizeclass << 1 | 1);
}

static inline unsigned hs_span_class_size(hs_span_class sc)
{
	return sc >> 1;
}

/* --- mspan ---------------------------------------------------------------------- */

enum {
	HS_MSPAN_DEAD = 0,   /* not in use; pages back in the page allocator */
	HS_MSPAN_IN_USE = 1, /* objects of one span class (or one large object) */
	HS_MSPAN_MANUAL = 2, /* pages owned by the runtime itself (Go: stacks); none yet */
};

struct hs_span_list;

/*
 * A run of pages holding objects of one size (Go's mspan). Object i lives at
 * start_addr + i*elemsize, for i < nelems.
 *
 * Allocation state, seen by the thread that owns the span (its mcache):
 *   allocated(i) = alloc_bits[i] || i < freeindex
 *   alloc_count  = popcount(alloc_bits | [0, freeindex))        (<= nelems)
 *   alloc_cache  = ~alloc_bits of freeindex's 64-object word, shifted so bit 0
 *                  is object freeindex (Go's allocCache)
 * Frees: the thread whose mcache holds the span (its owner) sets local_free[i]
 * with a plain or; any other thread sets free_bits[i] with an atomic or. A sweep
 * takes both and folds them in:
 *   alloc_bits := (alloc_bits | [0, freeindex)) & ~(free_bits | local_free)
 *   freeindex := 0
 * local_free is zero whenever the span is not cached (the owner sweeps before it
 * lets go), so only the owner ever touches it; local_nfree counts its bits.
 *
 * Sweep generations (Go's mspan.sweepgen), h = the heap's sweepgen (always even):
 *   h-2 needs sweeping; h-1 being swept; h swept; h+3 swept, then cached;
 *   h+1 cached when the cycle began, needs sweeping when uncached. Go flushes every
 *   mcache at each cycle, so a cached span is at most one cycle old; heapscope
 *   does not stop threads, so a span cached by an idle thread may be older: any
 *   odd value below h+3 means "cached, not swept this cycle" (hs_span_cached_stale).
 *
 * Ownership: a span is touched for allocation and sweeping only by whoever holds
 * it: the mcache that cached it, or the thread that took it off an mcentral set.
 */
#define HS_INLINE_BITS_WORDS 2 /* spans of up to 128 objects keep their bitmaps inline */

/*
 * Two cache lines, 128 bytes: one struct per span, resident for as long as the
 * heap lives (tclsh holds 1,200 spans, perl 2,200). What can be computed from
 * the rest is not stored: the page count (the size class's, or elemsize for a
 * large object), the end of the last object, and where the free bitmaps are
 * (after alloc_bits, bits_stride bytes apart).
 */
typedef struct hs_mspan {
	/* First cache line: everything hs_malloc's fast path and hs_free read. */
	_Atomic uint8_t state;	      /* written with heap.lock, read atomically */
	hs_span_class spanclass;
	uint8_t needzero;	      /* some object memory may be dirty; owner */
	uint8_t bits_stride;	      /* bytes per bitmap: 8 << k words, at least the bitmap */
	uint32_t div_mul;	      /* object index = (offset * div_mul) >> 32 */
	uintptr_t start_addr;	      /* never changes while the span is in use */
	uintptr_t elemsize;	      /* a large object's span: npages * pageSize */
	_Atomic uint16_t freeindex;   /* owner writes (release); hs_free reads (acquire) */
	uint16_t nelems;
	uint16_t alloc_count;	      /* owner */
	uint16_t local_nfree;	      /* bits set in local_free; owner */
	_Atomic uint32_t sweepgen;
	uint16_t idle_tick;	      /* the owner's tick when it last refilled from it or kept it */
	uint8_t listed;		      /* in a span list (an mcentral set or owned spans); its lock or owner */
	uint8_t traced;		      /* the trace stream has seen it alive; tracer's order lock */
	_Atomic(struct hs_mcache *) owner; /* the mcache holding the span, or NULL; set by it */
	/* The allocation bitmap, then the remote frees' (or'ed by hs_free on other
	 * threads, taken by the sweeper), then the owner's (owner only). Written by
	 * the span's sweeper, read by hs_free. */
	_Atomic uint64_t *alloc_bits;
	uint64_t alloc_cache;	      /* owner */
	/* Second cache line: the bitmaps of a span of up to 128 objects, so that a
	 * free into a cold span misses once, not twice; then the list links. */
	_Atomic uint64_t inline_bits[3 * HS_INLINE_BITS_WORDS];
	struct hs_mspan *next, *prev; /* in a span list; protected by its lock, or by its owner */
} __attribute__((aligned(64))) hs_mspan;

_Static_assert(offsetof(hs_mspan, inline_bits) == 64, "the fast paths' fields fill the span's first cache line");
_Static_assert(sizeof(hs_mspan) == 128, "a span struct is two cache lines");

static inline _Atomic uint64_t *hs_span_free_bits(const hs_mspan *s)
{
	return (_Atomic uint64_t *)((char *)s->alloc_bits + s->bits_stride);
}

static inline uint64_t *hs_span_local_free(const hs_mspan *s)
{
	return (uint64_t *)((char *)s->alloc_bits + 2 * s->bits_stride);
}

static inline int hs_span_bits_inline(const hs_mspan *s)
{
	return s->alloc_bits == s->inline_bits;
}

/* Loads the complement of allocation word w into alloc_cache (1 = free): Go's
 * refillAllocCache. Inline: the sweep and nextFreeIndex call it on every refill. */
static inline void hs_span_refill_alloc_cache(hs_mspan *s, unsigned w)
{
	s->alloc_cache = ~atomic_load_explicit(&s->alloc_bits[w], memory_order_relaxed);
}

static inline uintptr_t hs_span_npages(const hs_mspan *s)
{
	unsigned k = s->spanclass >> 1;
	return k != 0 ? hs_class_to_allocnpages[k] : s->elemsize >> HS_PAGE_SHIFT;
}

/* The end of the last object. */
static inline uintptr_t hs_span_limit(const hs_mspan *s)
{
	return s->start_addr + s->elemsize * s->nelems;
}

/* A cached span that has not been swept in the current cycle (see sweepgen). */
static inline int hs_span_cached_stale(uint32_t span_sg, uint32_t heap_sg)
{
	return (int32_t)(heap_sg + 3 - span_sg) > 0;
}

static inline uintptr_t hs_span_base(const hs_mspan *s)
{
	return s->start_addr;
}

static inline unsigned hs_span_bitmap_words(const hs_mspan *s)
{
	return ((unsigned)s->nelems + 63) / 64;
}

/* --- heapArena and the arena map --------------------------------------------- */

/*
 * Per-arena metadata (Go's heapArena): which span owns each page, and which pages
 * start an in-use span. spans[] entries are written with heap.lock and read
 * without it (hs_free); pages outside any in-use span point to no span.
 */
typedef struct hs_heap_arena {
	_Atomic(hs_mspan *) spans[HS_PAGES_PER_ARENA];
	uint8_t page_in_use[HS_PAGES_PER_ARENA / 8]; /* heap.lock */
	_Atomic uintptr_t zeroed_base; /* bytes from the arena start ever allocated */
} hs_heap_arena;

typedef uintptr_t hs_arena_idx;

static inline hs_arena_idx hs_arena_index(uintptr_t p)
{
	return (p - HS_ARENA_BASE_OFFSET) >> HS_LOG_HEAP_ARENA_BYTES;
}

static inline uintptr_t hs_arena_base(hs_arena_idx ai)
{
	return (ai << HS_LOG_HEAP_ARENA_BYTES) + HS_ARENA_BASE_OFFSET;
}

/* A candidate address for the next arena reservation (Go's arenaHint). */
typedef struct hs_arena_hint {
	uintptr_t addr; /* the next reservation is tried here; the hint grows upwards */
	struct hs_arena_hint *next;
} hs_arena_hint;

/* --- mcentral ------------------------------------------------------------------- */

/* A doubly linked list of spans (an mcentral set, or an mcache's owned spans). */
typedef struct hs_span_list {
	hs_mspan *first, *last;
	uint32_t n;
} hs_span_list;

static inline void hs_span_list_push_back(hs_span_list *l, hs_mspan *s)
{
	s->next = NULL;
	s->prev = l->last;
	if (l->last != NULL)
		l->last->next = s;
	else
		l->first = s;
	l->last = s;
	s->listed = 1;
	l->n++;
}

static inline void hs_span_list_remove(hs_span_list *l, hs_mspan *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		l->first = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		l->last = s->prev;
	s->next = s->prev = NULL;
	s->listed = 0;
	l->n--;
}

static inline hs_mspan *hs_span_list_pop_front(hs_span_list *l)
{
	hs_mspan *s = l->first;
	if (s != NULL)
		hs_span_list_remove(l, s);
	return s;
}

/*
 * The spans of one span class that no mcache holds (Go's mcentral): partial
 * (some free object) and full, each split into swept and unswept for the
 * current cycle. Which of the two arrays is "swept" flips with the sweep
 * generation (index sweepgen/2 % 2), so starting a cycle turns every swept set
 * into an unswept one without touching it. All fields protected by lock.
 */
typedef struct hs_mcentral {
	hs_mutex lock;
	hs_span_list partial[2], full[2];
} __attribute__((aligned(64))) hs_mcentral;

/* --- mcache --------------------------------------------------------------------- */

/*
 * A thread's cache (Go's mcache): one span per span class to allocate from
 * without locks, and a page cache for small span allocations. Owned by one
 * thread (thread-local); flushed when the thread exits. Linked into
 * mheap.mcaches under heap.lock so the checker can see every cache.
 */
/*
 * Counters an mcache keeps for its thread. Only the owner writes them, with a
 * plain load and store (hs_stat_inc): no locked instruction on the allocation
 * path. Readers sum them over the mcaches under heap.lock; an exiting thread's
 * counts are added to the heap's retired totals.
 */
typedef struct hs_mcache_stats {
	_Atomic uint64_t large_allocs, large_frees, spans_swept;
} hs_mcache_stats;

static inline void hs_stat_inc(_Atomic uint64_t *x)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1, memory_order_relaxed);
}

#define HS_MSPAN_CACHE 16
/* Bytes of spans of one class an mcache keeps owning after it has filled them. */
#define HS_OWNED_BYTES ((uintptr_t)64 << 20)
/*
 * Freed large-object spans an mcache keeps for reuse: at most HS_LARGE_CACHE
 * spans of HS_LARGE_CACHE_PAGES pages in all (256 KiB per thread). The memory is
 * dirty and serves only a large allocation of the same page count, so the bound
 * is on the total: python3's start-up alone used to park eight spans of 5 to 13
 * pages (584 KiB). (Aligned allocations make large spans of fewer pages.)
 */
#define HS_LARGE_CACHE 8
#define HS_LARGE_CACHE_PAGES 32
/*
 * A span the mcache holds without using it goes back to the heap once the
 * mcache has taken this many spans from outside itself since it last used it
 * (see core/mcache.c, idle spans): an empty span in alloc[], or a large span
 * kept for reuse. 16 spans: a class that a thread uses again within that many
 * keeps its span, and one released too early costs one span more per 16 the
 * mcache takes anyway.
 */
#define HS_IDLE_TICKS 16

typedef struct hs_mcache {
	hs_mspan *alloc[HS_NUM_SPAN_CLASSES];
	hs_page_cache pcache;	 /* flush needs heap.lock */
	hs_mspan *mspancache[HS_MSPAN_CACHE]; /* unused span structs (Go's p.mspancache) */
	unsigned nmspancache;
	hs_span_list owned[HS_NUM_SPAN_CLASSES]; /* spans it still owns, see core/mcache.c */
	hs_mspan *large[HS_LARGE_CACHE]; /* in-use large spans whose object is free */
	unsigned nlarge;
	uintptr_t large_pages;	 /* sum of npages over large[0..nlarge) */
	uint16_t ticks;		 /* spans taken from outside the mcache (mcentral, heap), mod 2^16 */
	unsigned idle_next;	 /* the size class the next tick looks at first */
	hs_mcache_stats stats;	 /* written by the owner only, read by hs_heap_stats */
	uint64_t freed_bytes;	 /* frees not yet added to the sweep trigger */
	struct hs_mcache *next, *prev; /* heap.lock */
} hs_mcache;

/* --- the heap -------------------------------------------------------------------- */

#define HS_BITS_ORDERS 5 /* span bitmaps of 1, 2, 4, 8 or 16 words, three per block */

typedef struct hs_mheap {
	hs_mutex lock;
	hs_pagealloc pages; /* the page allocator; its lock is this lock */

	_Atomic uint32_t sweepgen; /* +2 per cycle; written with lock, read atomically */

	hs_mspan **allspans; /* every span ever created, dead or not; lock */
	uint32_t nallspans, capallspans;

	/* The arena map: HS_ARENA_L1_BITS is 0 in every configuration, so one level. */
	_Atomic(hs_heap_arena *) *_Atomic arenas; /* set once, under heap.lock */
	hs_arena_hint *arena_hints; /* lock */
	struct {
		uintptr_t base, end; /* the part of the current arena not yet grown into */
	} cur_arena;

	hs_mcentral central[HS_NUM_SPAN_CLASSES];

	hs_fixalloc spanalloc, cachealloc, hintalloc; /* lock */
	hs_mspan *free_mspans;	/* dead span structs (still in allspans) for reuse; lock */
	hs_mcache *mcaches;	/* every live mcache; lock */
	hs_mutex bits_lock;	/* a leaf lock (may be taken under heap.lock) for: */
	hs_fixalloc bitsalloc[HS_BITS_ORDERS];

	/* Statistics, updated atomically (small spans are allocated without lock). */
	_Atomic uint64_t in_use;   /* bytes in in-use spans */
	_Atomic uint64_t released; /* free bytes returned to the OS (scavenged) */
	_Atomic uint64_t pages_in_use;
	_Atomic uint64_t mem_reserved, mem_prepared, mem_ready; /* bytes per OS state */
	hs_sys_stat meta_stat; /* heap metadata: arena map, heapArenas, fixallocs, summaries */

	/* Sweeping (core/sweep.c). */
	_Atomic uint64_t freed_since_cycle; /* bytes freed since the cycle began */
	uint64_t sweep_trigger;		    /* bytes freed that start a cycle; 0: scale with the heap */
	_Atomic uint64_t sweep_cycles, spans_swept, spans_released; /* spans_swept: off mcaches */
	hs_mcache_stats retired; /* counts of mcaches whose threads exited; lock */
	pthread_mutex_t sweeper_mu; /* outermost: the cycle boundary, the sweeper's batches, its wake-up */
	pthread_cond_t sweeper_cv;
	int sweeper_started, sweeper_pending; /* sweeper_mu */

	/* The background scavenger (core/scavenger.c). Settings are read once at
	 * init; the window fields belong to the scavenger thread; the rest is atomic. */
	struct hs_scavenger {
		pthread_mutex_t mu; /* a leaf: the wake-up */
		pthread_cond_t cv;
		_Atomic int started;
		int wake;
		double budget;		/* fraction of all CPUs' time; 0 turns it off */
		double capacity;	/* budget * CPUs online, set by the first turn */
		unsigned retain_pct;	/* retained goal, percent of the heap goal */
		uint64_t memory_limit;	/* bytes; 0 for none */
		_Atomic uint64_t window_peak; /* highest in_use in the current window */
		uint64_t last_peak;	/* the previous window's peak */
		uint64_t window_start_ns;
		_Atomic uint64_t goal;	/* the retained goal last computed */
		_Atomic uint64_t released, released_cycle, released_last_cycle, cycles;
		_Atomic uint64_t cpu_ns, assists, assist_bytes;
		int in_cycle;
		uint64_t due_ns;	/* when the next step of the cycle may start */
	} scav;

	/* The virtual clock (core/background.c): on is set once, before the
	 * heap's first span, and read without lock; the times belong to the
	 * caller of hs_heap_advance (one thread at a time). */
	struct hs_vclock {
		int on;
		uint64_t now, next_turn, next_sample;
	} vclock;

	int badfree_warn; /* HEAPSCOPE_BADFREE=warn */
	/* Experiments (docs/regressions.md), read once at init like the above. */
	int page_cache_off;	/* HEAPSCOPE_PAGE_CACHE=off: every span's pages under heap.lock */
	int arena_hints_kernel; /* HEAPSCOPE_ARENA_HINTS=kernel: no hints, mmap chooses */
	pthread_key_t mcache_key;
	_Atomic int inited;
} hs_mheap;

/* The heap singleton: the only mutable global of the heap. */
extern hs_mheap hs_heap;

/* The span class an mcentral serves: its index in hs_heap.central. Not stored,
 * so that an initialized mcentral is all zeros on glibc and hs_mcentral_init
 * leaves the pages of unused ones untouched (see hs_store_lazily). */
static inline hs_span_class hs_mcentral_class(const hs_mcentral *c)
{
	return (hs_span_class)(c - hs_heap.central);
}

/* --- core/mheap.c ------------------------------------------------------------------ */
void hs_mallocinit(void);
void hs_heap_read_env(void);
uint64_t hs_env_bytes(const char *name, uint64_t def);
hs_mspan *hs_mheap_alloc_span(hs_mcache *c, uintptr_t npages, hs_span_class sc);
hs_mspan *hs_mheap_alloc_span_aligned(uintptr_t npages, uintptr_t align);
void hs_mheap_free_span(hs_mspan *s);
void hs_mheap_put_mspans(hs_mspan **spans, unsigned n);
int hs_mheap_alloc_needs_zero(uintptr_t base, uintptr_t npages);
uint64_t hs_mheap_scavenge(uintptr_t nbytes);

/* NULL before the first arena exists, so lookups need no "initialized" check. */
static inline hs_heap_arena *hs_arena_of(uintptr_t p)
{
	hs_arena_idx ai = hs_arena_index(p);
	_Atomic(hs_heap_arena *) *map = atomic_load_explicit(&hs_heap.arenas, memory_order_acquire);
	if (ai >> HS_ARENA_L2_BITS != 0 || map == NULL)
		return NULL;
	return atomic_load_explicit(&map[ai], memory_order_acquire);
}

/* The span owning address p, or NULL. Lock-free. Mirrors spanOf. */
static inline hs_mspan *hs_span_of(uintptr_t p)
{
	hs_heap_arena *ha = hs_arena_of(p);
	if (ha == NULL)
		return NULL;
	return atomic_load_explicit(&ha->spans[(p >> HS_PAGE_SHIFT) % HS_PAGES_PER_ARENA],
				    memory_order_acquire);
}

/* --- core/arena.c -------------------------------------------------------------------- */
void hs_arena_init_hints(void);
unsigned hs_arena_hint_addrs(uintptr_t *out, unsigned max);
int hs_arena_sys_alloc(uintptr_t n, uintptr_t *base, uintptr_t *size);

/* --- core/mspan.c -------------------------------------------------------------------- */
void hs_span_init_objects(hs_mspan *s, uintptr_t npages, hs_span_class sc);
void hs_span_release_bits(hs_mspan *s);
void hs_span_sweep(hs_mspan *s);
unsigned hs_span_next_free_index(hs_mspan *s);

/* --- core/mcentral.c -------------------------------------------------------------- */
void hs_mcentral_init(hs_mcentral *c);
hs_mspan *hs_mcentral_cache_span(hs_mcentral *c, hs_mcache *mc);
void hs_mcentral_uncache_span(hs_mcentral *c, hs_mspan *s);
int hs_mcentral_sweep_one(hs_mcentral *c);

/* --- core/mcache.c ------------------------------------------------------------------ */
extern __thread hs_mcache *hs_tls_mcache __attribute__((tls_model("initial-exec")));
hs_mcache *hs_mcache_new(void);

/* The calling thread's mcache, created on first use. */
static inline hs_mcache *hs_mcache_get(void)
{
	hs_mcache *c = hs_tls_mcache;
	return c != NULL ? c : hs_mcache_new();
}

hs_mspan *hs_mcache_refill(hs_mcache *c, hs_span_class sc);
hs_mspan *hs_mcache_take_large(hs_mcache *c, uintptr_t npages);
void hs_mcache_retire(hs_mcache *c, hs_mspan *s);
void hs_mcache_tick(hs_mcache *c);

int hs_mcache_keep_large(hs_mcache *c, hs_mspan *s);
void hs_mcache_release_all(hs_mcache *c);
void hs_mcache_thread_exit(void *arg);
int hs_mcache_span_is_empty(const hs_mspan *s);

/* --- core/scavenger.c -------------------------------------------------------------- */
void hs_scavenger_read_env(void);
void hs_scavenger_note_alloc(uint64_t in_use_now);
void hs_scavenger_start(void);
void hs_scavenger_assist(void);
int hs_scavenger_near_limit(void);

/* Retained memory is within a tenth of the memory limit, if one is set. Inline,
 * since the mcache's refill asks on every span it looks at, and with no limit
 * (the usual case) the answer is one load. */
static inline int hs_scavenger_tight(void)
{
	return hs_heap.scav.memory_limit != 0 && hs_scavenger_near_limit();
}
uint64_t hs_scavenger_turn(uint64_t now, int virtual_cost);

/* --- core/sweep.c --------------------------------------------------------------------- */
void hs_sweep_note_freed(hs_mcache *c, uint64_t bytes);
void hs_sweep_start_cycle(void);
void hs_sweep_full_cycle(void);
void hs_sweep_under_pressure(void);
void hs_sweep_finish(void);
void hs_sweep_background_step(void);

/* --- core/background.c -------------------------------------------------------------- */
/* Starts fn(NULL) on a detached thread that blocks every signal, so that the
 * hosted program's signals go to its own threads; 0 or pthread_create's error.
 * Never under a heap lock (pthread_create may call malloc). */
int hs_background_thread(void *(*fn)(void *));

#endif /* HS_HEAP_H */
