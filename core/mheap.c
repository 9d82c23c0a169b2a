/*
 * core/mheap.c — the heap: Go's mheap (mheap.go) and mallocinit (malloc.go), in C.
 *
 * Overview. heapscope's heap is Go's, adapted to programs that call free. Memory
 * comes from the OS in arenas (core/arena.c) and is handed to the page allocator
 * (core/pagealloc.c) a few chunks at a time as the heap grows. Runs of pages become
 * spans (core/mspan.c). A span holds objects of one size class, or one large
 * object. Each thread allocates objects from the spans its mcache holds
 * (core/mcache.c), which refills from the mcentral of the span class
 * (core/mcentral.c), which in turn takes fresh spans from here:
 *
 *   hs_malloc ─► mcache (thread-local, no lock) ─► mcentral (lock per class)
 *             ─► mheap.allocSpan (heap.lock, or the mcache's page cache)
 *             ─► pageAlloc ─► arenas ─► OS
 *
 * Go frees objects by collecting garbage; heapscope frees what hs_free is given.
 * A free sets the object's bit in its span's free bitmap (one atomic or, from
 * any thread). Sweeping folds those bits into the span's allocation bitmap. It
 * happens when the thread that owns a span runs out of room in it, when an
 * mcentral hands out a span that needs sweeping, and in a background sweeper
 * after enough bytes were freed (core/sweep.c). A span with no objects left goes
 * back here, and its pages go back to the page allocator. A large object
 * (> 32 KiB) is freed at once. See docs/heap.md.
 *
 * This file: initialization, growing the heap (grow), allocating and initializing
 * spans (allocSpan, initSpan), freeing them (freeSpan), and needzero tracking.
 *
 * Invariants:
 *   every page of an in-use span is allocated in the page allocator, and its
 *     spans[] entry points to the span; pageInUse has the span's first page;
 *   in_use == sum over in-use spans of npages * pageSize;
 *   mem_reserved >= mem_prepared + mem_ready (bytes per OS state; released
 *     pages are Prepared, pages ever handed out are Ready);
 *   an arena's zeroed_base only grows: [base, base+zeroed_base) may be dirty.
 *
 * Locking: heap.lock protects the page allocator, allspans, the arena hints and
 * curArena, and the fixallocs. Statistics are atomic. A small span can be made
 * without heap.lock, from the mcache's page cache and its cache of span structs.
 * Freeing a span (to the page allocator) takes heap.lock.
 */
#include <stdlib.h>
#include <string.h>

#include "heap.h"

hs_mheap hs_heap = {
	.lock = HS_MUTEX_INIT,
	.bits_lock = HS_MUTEX_INIT,
	.sweeper_mu = PTHREAD_MUTEX_INITIALIZER,
	.sweeper_cv = PTHREAD_COND_INITIALIZER,
	.scav = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER },
};

static hs_mutex init_lock = HS_MUTEX_INIT;

/* Set while this thread runs mallocinit: a call back into the heap from inside
 * it (atexit or pthread_atfork growing their tables with malloc) finds the heap
 * usable already and must not wait for init_lock, which this thread holds. */
static __thread int tls_initializing __attribute__((tls_model("initial-exec")));

static void fork_register(void);

/*
 * First use of the heap (Go's mallocinit + mheap.init). Idempotent.
 *
 * Every call that might allocate comes after the heap's structures and the
 * mcache key exist: pthread_atfork and atexit (in fork_register and the tracer)
 * may call malloc, and when this heap *is* malloc (the LD_PRELOAD shim) that
 * call comes straight back here; tls_initializing lets it through, onto a heap
 * that can already serve it. getenv never allocates.
 */
void hs_mallocinit(void)
{
	if (atomic_load_explicit(&hs_heap.inited, memory_order_acquire) || tls_initializing)
		return;
	hs_lock(&init_lock);
	if (!atomic_load_explicit(&hs_heap.inited, memory_order_relaxed)) {
		tls_initializing = 1;
		if (hs_pagealloc_init(&hs_heap.pages, &hs_heap.lock, &hs_heap.meta_stat, 0) != 0)
			hs_throw("mallocinit: cannot reserve page allocator metadata");
		hs_fixalloc_init(&hs_heap.spanalloc, sizeof(hs_mspan), &hs_heap.meta_stat);
		hs_fixalloc_init(&hs_heap.cachealloc, sizeof(hs_mcache), &hs_heap.meta_stat);
		hs_fixalloc_init(&hs_heap.hintalloc, sizeof(hs_arena_hint), &hs_heap.meta_stat);
		for (unsigned k = 0; k < HS_BITS_ORDERS; k++)
			hs_fixalloc_init(&hs_heap.bitsalloc[k], 3 * sizeof(uint64_t) << k, &hs_heap.meta_stat);
		for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++)
			hs_mcentral_init(&hs_heap.central[i]);
		hs_heap_read_env(); /* before the hints: it chooses their policy */
		hs_lock(&hs_heap.lock);
		hs_arena_init_hints();
		hs_unlock(&hs_heap.lock);
		atomic_store(&hs_heap.sweepgen, 4); /* so that sweepgen - 2 never wraps */
		if (pthread_key_create(&hs_heap.mcache_key, hs_mcache_thread_exit) != 0)
			hs_throw("mallocinit: no thread-specific key for mcaches");
		fork_register();
		tls_initializing = 0;
		atomic_store_explicit(&hs_heap.inited, 1, memory_order_release);
	}
	hs_unlock(&init_lock);
}

/*
 * Fork. The child is a copy of one thread: every lock another thread held at
 * the fork would stay held in it for ever, and the structure it protected would
 * be half-changed. So the forking thread takes every heap lock first, in the
 * lock order (core/heap.h), and holds them across fork():
 *
 *   sweeper_mu -> every mcentral lock (in class order) -> heap.lock
 *              -> bits_lock -> scav.mu
 *
 * An mcentral lock and heap.lock are never held together anywhere else, so no
 * thread can be holding heap.lock while it waits for an mcentral lock, and
 * taking both here cannot deadlock; no thread takes two mcentral locks.
 * The tracer's own handlers (core/trace.c) take heap.lock and
 * the tracer's order lock and emit proc_fork; pthread_atfork runs prepare
 * handlers in the reverse order of registration and the others in order, so
 * the heap registers two sets around the tracer's:
 *
 *   registered:  leaves (bits_lock, scav.mu), tracer (heap.lock, order), outer
 *   prepare:     outer -> tracer -> leaves
 *   parent/child: leaves -> tracer -> outer
 *
 * The tracer registers whether or not it traces (a tracer may attach later
 * through eBPF), so heap.lock is always its handlers' to take.
 *
 * Lock-free work in flight on other threads (an mcache refilling, a span being
 * swept off its set, a run the scavenger took while it madvises) is frozen in
 * the child as it was; it belongs to threads the child does not have, so the
 * child never touches it again: their caches and spans stay allocated in the
 * child, like their stacks. The child's background threads do not exist:
 * the scavenger and the sweeper restart on demand (the tracer's sampler too),
 * and their condition variables are new.
 */
/*
 * ThreadSanitizer's deadlock detector follows at most 64 locks held by one
 * thread at once, and the fork handlers hold about 140. Under TSan each
 * mcentral lock is reported let go right after it is taken and taken again
 * just before it really is let go; the locks are held exactly as without TSan.
 */
#if defined(__SANITIZE_THREAD__)
#define HS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HS_TSAN 1
#endif
#endif
#ifdef HS_TSAN
#include <sanitizer/tsan_interface.h>
static void tsan_hide(hs_mutex *l)
{
	__tsan_mutex_pre_unlock(&l->m, 0);
	__tsan_mutex_post_unlock(&l->m, 0);
}

static void tsan_show(hs_mutex *l)
{
	__tsan_mutex_pre_lock(&l->m, 0);
	__tsan_mutex_post_lock(&l->m, 0, 0);
}
#else
static inline void tsan_hide(hs_mutex *l)
{
	(void)l;
}

static inline void tsan_show(hs_mutex *l)
{
	(void)l;
}
#endif

static void fork_leaves_prepare(void)
{
	hs_lock(&hs_heap.bits_lock);
	pthread_mutex_lock(&hs_heap.scav.mu);
}

static void fork_leaves_parent(void)
{
	pthread_mutex_unlock(&hs_heap.scav.mu);
	hs_unlock(&hs_heap.bits_lock);
}

static void fork_leaves_child(void)
{
	pthread_mutex_init(&hs_heap.scav.mu, NULL);
	pthread_cond_init(&hs_heap.scav.cv, NULL);
	hs_mutex_init(&hs_heap.bits_lock);
}

static void fork_outer_prepare(void)
{
	pthread_mutex_lock(&hs_heap.sweeper_mu);
	for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++) {
		hs_lock(&hs_heap.central[i].lock);
		tsan_hide(&hs_heap.central[i].lock);
	}
}

static void fork_outer_parent(void)
{
	for (unsigned i = HS_NUM_SPAN_CLASSES; i-- > 0;) {
		tsan_show(&hs_heap.central[i].lock);
		hs_unlock(&hs_heap.central[i].lock);
	}
	pthread_mutex_unlock(&hs_heap.sweeper_mu);
}

static void fork_outer_child(void)
{
	for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++)
		hs_mutex_init(&hs_heap.central[i].lock);
	pthread_mutex_init(&hs_heap.sweeper_mu, NULL);
	pthread_cond_init(&hs_heap.sweeper_cv, NULL);
	hs_heap.sweeper_pending = 0;
	hs_heap.scav.in_cycle = 0;
	hs_heap.scav.wake = 0;
#ifndef HS_TSAN
	/* Started again on demand. (TSan cannot follow threads started after a
	 * multi-threaded fork: under it the child sweeps only as it allocates and
	 * releases memory only through hs_heap_scavenge_all.) */
	hs_heap.sweeper_started = 0;
	atomic_store(&hs_heap.scav.started, 0);
#endif
	hs_mutex_init(&init_lock);
}

/* Registers the fork handlers around the tracer's (see above). init_lock held. */
static void fork_register(void)
{
	if (pthread_atfork(fork_leaves_prepare, fork_leaves_parent, fork_leaves_child) != 0)
		hs_throw("mallocinit: cannot register fork handlers");
	hs_trace_init_from_env();
	if (pthread_atfork(fork_outer_prepare, fork_outer_parent, fork_outer_child) != 0)
		hs_throw("mallocinit: cannot register fork handlers");
}

/* on/1 or off/0 from the environment; def when unset or anything else. */
static int env_switch(const char *name, int def)
{
	const char *v = getenv(name);
	if (v != NULL && (strcmp(v, "on") == 0 || strcmp(v, "1") == 0))
		return 1;
	if (v != NULL && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0))
		return 0;
	return def;
}

/* Reads the heap's settings from the environment (see heapscope.h). */
void hs_heap_read_env(void)
{
	hs_heap.sweep_trigger = hs_env_bytes("HEAPSCOPE_SWEEP_TRIGGER", 0); /* 0: scale with the heap */
	hs_heap.scav.memory_limit = hs_env_bytes("HEAPSCOPE_MEMORY_LIMIT", 0);
	hs_scavenger_read_env();
	const char *bf = getenv("HEAPSCOPE_BADFREE");
	hs_heap.badfree_warn = bf != NULL && strcmp(bf, "warn") == 0;
	hs_heap.page_cache_off = !env_switch("HEAPSCOPE_PAGE_CACHE", 1);
	hs_heap.pages.search_addr_off = !env_switch("HEAPSCOPE_SEARCH_ADDR", 1);
	const char *hints = getenv("HEAPSCOPE_ARENA_HINTS");
	hs_heap.arena_hints_kernel = hints != NULL && strcmp(hints, "kernel") == 0;
}

/* A byte count from the environment: digits with an optional KiB/MiB/GiB suffix. */
uint64_t hs_env_bytes(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0')
		return def;
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	if (end == v)
		return def;
	if (strcmp(end, "KiB") == 0)
		n <<= 10;
	else if (strcmp(end, "MiB") == 0)
		n <<= 20;
	else if (strcmp(end, "GiB") == 0)
		n <<= 30;
	else if (*end != '\0')
		return def;
	return n;
}

/* --- growing -------------------------------------------------------------------- */

/* Hands [v, v+n) of the current arena to the page allocator: Reserved -> Prepared. */
static void grow_into(uintptr_t v, uintptr_t n)
{
	if (hs_sys_map((void *)v, n, NULL) != 0)
		hs_throw("mheap.grow: cannot map reserved arena memory");
	atomic_fetch_add_explicit(&hs_heap.mem_prepared, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&hs_heap.released, n, memory_order_relaxed);
	HS_TRACE(arena_map, v, n);
	HS_TRACE(page_grow, v, n);
	hs_pagealloc_grow(&hs_heap.pages, v, n);
}

/*
 * Adds at least npages to the page allocator, in whole chunks (Go's mheap.grow).
 * Returns 0 when the OS has no more address space. heap.lock must be held.
 */
static int grow(uintptr_t npages)
{
	hs_assert_lock_held(&hs_heap.lock);

	uintptr_t ask = hs_align_up(npages, HS_PALLOC_CHUNK_PAGES) << HS_PAGE_SHIFT;
	uintptr_t end = hs_heap.cur_arena.base + ask;
	if (end > hs_heap.cur_arena.end || end < hs_heap.cur_arena.base) {
		uintptr_t av, asize;
		if (hs_arena_sys_alloc(ask, &av, &asize) != 0)
			return 0;
		if (av == hs_heap.cur_arena.end) {
			/* Contiguous with the current arena: extend it. */
			hs_heap.cur_arena.end = av + asize;
		} else {
			/* Switch arenas; what is left of the old one is grown into first
			 * so that it is not lost. */
			if (hs_heap.cur_arena.end > hs_heap.cur_arena.base)
				grow_into(hs_heap.cur_arena.base, hs_heap.cur_arena.end - hs_heap.cur_arena.base);
			hs_heap.cur_arena.base = av;
			hs_heap.cur_arena.end = av + asize;
		}
	}
	uintptr_t v = hs_heap.cur_arena.base;
	hs_heap.cur_arena.base = v + ask;
	HS_TRACE(heap_grow, npages, ask);
	grow_into(v, ask);
	return 1;
}

/* Pages from the page allocator, growing the heap if needed. heap.lock held. */
static uintptr_t alloc_pages_locked(uintptr_t npages, uintptr_t *scav)
{
	uintptr_t base = hs_pagealloc_alloc(&hs_heap.pages, npages, scav);
	if (base == 0 && grow(npages)) {
		base = hs_pagealloc_alloc(&hs_heap.pages, npages, scav);
		if (base == 0)
			hs_throw("mheap: grew the heap, but no adequate free space found");
	}
	if (base != 0)
		HS_TRACE(page_alloc, base, npages, *scav);
	return base;
}

/* --- span structures ---------------------------------------------------------- */

/*
 * A dead span struct: a reused one, or a new one recorded in allspans (Go's
 * recordspan). Every struct stays in allspans for the life of the heap, as in Go.
 * heap.lock held.
 */
static hs_mspan *alloc_mspan_locked(void)
{
	hs_assert_lock_held(&hs_heap.lock);
	hs_mspan *s = hs_heap.free_mspans;
	if (s != NULL) {
		hs_heap.free_mspans = s->next;
		memset(s, 0, sizeof *s);
		return s;
	}
	if (hs_heap.nallspans == hs_heap.capallspans) {
		uint32_t ncap = hs_heap.capallspans == 0 ? 1024 : hs_heap.capallspans * 2;
		void *p;
		if (hs_sys_alloc(ncap * sizeof(hs_mspan *), &hs_heap.meta_stat, &p) != 0)
			hs_throw("mheap: out of memory for allspans");
		if (hs_heap.allspans != NULL) {
			memcpy(p, hs_heap.allspans, hs_heap.nallspans * sizeof(hs_mspan *));
			hs_sys_free(hs_heap.allspans, hs_heap.capallspans * sizeof(hs_mspan *), &hs_heap.meta_stat);
		}
		hs_heap.allspans = p;
		hs_heap.capallspans = ncap;
	}
	s = hs_fixalloc_alloc(&hs_heap.spanalloc);
	hs_heap.allspans[hs_heap.nallspans++] = s;
	return s;
}

/* A span struct from the mcache's cache, refilled under heap.lock when empty. */
static hs_mspan *mcache_mspan(hs_mcache *c)
{
	if (c->nmspancache == 0) {
		hs_lock(&hs_heap.lock);
		while (c->nmspancache < HS_MSPAN_CACHE / 2)
			c->mspancache[c->nmspancache++] = alloc_mspan_locked();
		hs_unlock(&hs_heap.lock);
	}
	return c->mspancache[--c->nmspancache];
}

/*
 * Whether [base, base+npages) may hold stale data, advancing each arena's zeroed
 * high-water mark past it (Go's allocNeedsZero). Pages never handed out before
 * are zero from the OS. Lock-free: the marks only grow, by compare-and-swap.
 */
int hs_mheap_alloc_needs_zero(uintptr_t base, uintptr_t npages)
{
	int need = 0;
	while (npages > 0) {
		hs_heap_arena *ha = hs_arena_of(base);
		uintptr_t off = (base - HS_ARENA_BASE_OFFSET) % HS_HEAP_ARENA_BYTES;
		uintptr_t limit = off + (npages << HS_PAGE_SHIFT);
		if (limit > HS_HEAP_ARENA_BYTES)
			limit = HS_HEAP_ARENA_BYTES;
		uintptr_t z = atomic_load_explicit(&ha->zeroed_base, memory_order_relaxed);
		if (off < z)
			need = 1;
		while (limit > z && !atomic_compare_exchange_weak(&ha->zeroed_base, &z, limit))
			;
		base += limit - off;
		npages -= (limit - off) >> HS_PAGE_SHIFT;
	}
	return need;
}

/*
 * Sets a span's state. While someone traces, the state and its span_alloc or
 * span_free event change together under the tracer's order lock
 * (hs_trace_span_state). Otherwise a sequentially consistent exchange and a
 * second, sequentially consistent look at the probe: a tracer attaching
 * meanwhile raises the semaphore before its snapshot reads the span states
 * (with the same ordering), so either the snapshot sees this store or this
 * thread sees the semaphore and emits (Dekker's pattern). An exchange rather
 * than a fence: ThreadSanitizer understands the one and not the other.
 */
static void span_set_state(hs_mspan *s, unsigned state)
{
	int on = state == HS_MSPAN_IN_USE ? HS_TRACE_ON(span_alloc) : HS_TRACE_ON(span_free);
	if (!on) {
		atomic_exchange_explicit(&s->state, (uint8_t)state, memory_order_seq_cst);
		on = state == HS_MSPAN_IN_USE ? HS_TRACE_ON_SC(span_alloc) : HS_TRACE_ON_SC(span_free);
	}
	if (on)
		hs_trace_span_state(s, state);
}

/* Publishes s as the owner of its pages (Go's initSpan + setSpans). */
static void init_span(hs_mspan *s, uintptr_t base, uintptr_t npages, hs_span_class sc)
{
	s->start_addr = base;
	s->needzero = (uint8_t)hs_mheap_alloc_needs_zero(base, npages);
	atomic_store_explicit(&s->sweepgen, atomic_load(&hs_heap.sweepgen), memory_order_relaxed);
	hs_span_init_objects(s, npages, sc);
	span_set_state(s, HS_MSPAN_IN_USE);

	hs_heap_arena *ha = hs_arena_of(base);
	uintptr_t pi = (base >> HS_PAGE_SHIFT) % HS_PAGES_PER_ARENA;
	atomic_fetch_or_explicit((_Atomic uint8_t *)&ha->page_in_use[pi / 8], (uint8_t)(1u << (pi % 8)),
				 memory_order_relaxed);
	for (uintptr_t p = 0; p < npages; p++) {
		uintptr_t a = base + (p << HS_PAGE_SHIFT);
		atomic_store_explicit(&hs_arena_of(a)->spans[(a >> HS_PAGE_SHIFT) % HS_PAGES_PER_ARENA], s,
				      memory_order_release);
	}
}

/* Accounts for pages handed out (scav bytes of them come back from the OS) and
 * lets the scavenger react: start, track the peak, assist over the limit.
 * Called without heap.lock. */
static void account_alloc(uintptr_t base, uintptr_t npages, uintptr_t scav)
{
	uintptr_t bytes = npages << HS_PAGE_SHIFT;
	if (scav != 0) {
		HS_TRACE(recommit, base, scav);
		hs_sys_used((void *)base, bytes);
		atomic_fetch_sub_explicit(&hs_heap.released, scav, memory_order_relaxed);
		atomic_fetch_sub_explicit(&hs_heap.mem_prepared, scav, memory_order_relaxed);
		atomic_fetch_add_explicit(&hs_heap.mem_ready, scav, memory_order_relaxed);
	}
	uint64_t now = atomic_fetch_add_explicit(&hs_heap.in_use, bytes, memory_order_relaxed) + bytes;
	atomic_fetch_add_explicit(&hs_heap.pages_in_use, npages, memory_order_relaxed);
	hs_scavenger_note_alloc(now);
	if (!hs_heap.vclock.on)
		hs_scavenger_start();
	hs_trace_start_sampler();
	hs_scavenger_assist();
}

/*
 * Allocates a span of npages for span class sc (Go's allocSpan). Fast path: a
 * small span from the mcache's page cache and span-struct cache, without
 * heap.lock (never under HEAPSCOPE_PAGE_CACHE=off, which measures what the
 * cache saves). Otherwise under heap.lock, growing the heap as needed. Returns NULL
 * when the OS has no more memory. heap.lock must not be held.
 */
hs_mspan *hs_mheap_alloc_span(hs_mcache *c, uintptr_t npages, hs_span_class sc)
{
	uintptr_t base = 0, scav = 0;
	hs_mspan *s = NULL;

	if (c != NULL && npages < HS_PAGE_CACHE_PAGES / 4 && !hs_heap.page_cache_off) {
		if (c->pcache.cache == 0) {
			hs_lock(&hs_heap.lock);
			c->pcache = hs_pagealloc_alloc_to_cache(&hs_heap.pages);
			if (c->pcache.cache == 0 && grow(npages))
				c->pcache = hs_pagealloc_alloc_to_cache(&hs_heap.pages);
			if (c->pcache.cache != 0)
				HS_TRACE(page_cache_alloc, c->pcache.base, c->pcache.cache, c->pcache.scav);
			hs_unlock(&hs_heap.lock);
		}
		base = hs_page_cache_alloc(&c->pcache, npages, &scav);
		if (base != 0)
			s = mcache_mspan(c);
	}
	if (base == 0) {
		hs_lock(&hs_heap.lock);
		base = alloc_pages_locked(npages, &scav);
		if (base != 0)
			s = alloc_mspan_locked();
		hs_unlock(&hs_heap.lock);
		if (base == 0)
			return NULL;
	}
	account_alloc(base, npages, scav);
	init_span(s, base, npages, sc);
	return s;
}

/*
 * A large-object span of npages whose base is aligned to `align` (a power of two
 * larger than a page): find a run with room for the alignment, then allocate only
 * the aligned part, as the seeds' allocSpan does for physical-page-aligned stacks.
 * Freeing the unaligned edges afterwards would be wrong: alloc reports scavenged
 * bytes for the whole run it took.
 */
hs_mspan *hs_mheap_alloc_span_aligned(uintptr_t npages, uintptr_t align)
{
	uintptr_t extra = (align >> HS_PAGE_SHIFT) - 1, scav;
	hs_off_addr unused;

	hs_lock(&hs_heap.lock);
	uintptr_t base = hs_pagealloc_find(&hs_heap.pages, npages + extra, &unused);
	if (base == 0 && grow(npages + extra))
		base = hs_pagealloc_find(&hs_heap.pages, npages + extra, &unused);
	if (base == 0) {
		hs_unlock(&hs_heap.lock);
		return NULL;
	}
	base = hs_align_up(base, align);
	scav = hs_pagealloc_alloc_range(&hs_heap.pages, base, npages);
	HS_TRACE(page_alloc_range, base, npages, scav);
	hs_mspan *s = alloc_mspan_locked();
	hs_unlock(&hs_heap.lock);

	account_alloc(base, npages, scav);
	init_span(s, base, npages, hs_make_span_class(0));
	return s;
}

/*
 * Returns an in-use span's pages to the page allocator and its struct to the span
 * allocator (Go's freeSpan / freeSpanLocked). The caller owns the span and nobody
 * can reach its objects. Takes heap.lock.
 */
/*
 * Large spans of at least this many pages go back to the OS as they are freed,
 * as glibc unmaps a block above its mmap threshold (128 KiB) on free: programs
 * that free a big buffer expect their resident memory to drop then, not when
 * the scavenger's pacing gets to it. A large span comes here only when the
 * freeing thread's large cache (core/mcache.c; 32 pages in all) has no room
 * for it.
 */
#define RELEASE_ON_FREE_PAGES 16

static void account_release(uintptr_t bytes);

/* Frees a run whose memory was just released: chunk by chunk, as scav_range
 * events (the model replays them as released frees). heap.lock held. */
static void free_released_locked(uintptr_t base, uintptr_t npages)
{
	while (npages > 0) {
		uintptr_t k = HS_PALLOC_CHUNK_PAGES - hs_chunk_page_index(base);
		if (k > npages)
			k = npages;
		HS_TRACE(scav_range, base, k);
		hs_pagealloc_free_released(&hs_heap.pages, base, k);
		base += k << HS_PAGE_SHIFT;
		npages -= k;
	}
}

void hs_mheap_free_span(hs_mspan *s)
{
	uintptr_t base = s->start_addr, npages = hs_span_npages(s);
	int release = hs_span_class_size(s->spanclass) == 0 && npages >= RELEASE_ON_FREE_PAGES;
	hs_heap_arena *ha = hs_arena_of(base);
	uintptr_t pi = (base >> HS_PAGE_SHIFT) % HS_PAGES_PER_ARENA;

	span_set_state(s, HS_MSPAN_DEAD);
	for (uintptr_t p = 0; p < npages; p++) {
		uintptr_t a = base + (p << HS_PAGE_SHIFT);
		atomic_store_explicit(&hs_arena_of(a)->spans[(a >> HS_PAGE_SHIFT) % HS_PAGES_PER_ARENA], NULL,
				      memory_order_release);
	}
	atomic_fetch_and_explicit((_Atomic uint8_t *)&ha->page_in_use[pi / 8], (uint8_t) ~(1u << (pi % 8)),
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&hs_heap.in_use, npages << HS_PAGE_SHIFT, memory_order_relaxed);
	atomic_fetch_sub_explicit(&hs_heap.pages_in_use, npages, memory_order_relaxed);
	if (hs_span_class_size(s->spanclass) != 0)
		atomic_fetch_add_explicit(&hs_heap.spans_released, 1, memory_order_relaxed);

	hs_span_release_bits(s);
	/* Nobody can reach the pages: release them before taking the lock. */
	if (release)
		hs_sys_unused((void *)base, npages << HS_PAGE_SHIFT, hs_heap.pages.release_lazy);
	hs_lock(&hs_heap.lock);
	if (release) {
		/* Accounted before the lock drops: an allocation that takes these
		 * pages at once subtracts them from released again. */
		free_released_locked(base, npages);
		account_release(npages << HS_PAGE_SHIFT);
	} else {
		HS_TRACE(page_free, base, npages);
		hs_pagealloc_free(&hs_heap.pages, base, npages, 0);
	}
	s->next = hs_heap.free_mspans;
	hs_heap.free_mspans = s;
	hs_unlock(&hs_heap.lock);
}

/* Returns unused span structs (an exiting thread's mspan cache). Takes heap.lock. */
void hs_mheap_put_mspans(hs_mspan **spans, unsigned n)
{
	hs_lock(&hs_heap.lock);
	for (unsigned i = 0; i < n; i++) {
		spans[i]->next = hs_heap.free_mspans;
		hs_heap.free_mspans = spans[i];
	}
	hs_unlock(&hs_heap.lock);
}

/* One released run: Ready -> Prepared, counted as released. */
static void account_release(uintptr_t bytes)
{
	atomic_fetch_add_explicit(&hs_heap.released, bytes, memory_order_relaxed);
	atomic_fetch_sub_explicit(&hs_heap.mem_ready, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&hs_heap.mem_prepared, bytes, memory_order_relaxed);
}

/*
 * Returns up to nbytes of free pages to the OS, highest addresses first, and
 * accounts for them. Each run is accounted before the lock is dropped again for
 * the next one, so an allocation that takes a released run meanwhile finds it
 * counted. Takes heap.lock (dropped by the page allocator around each madvise).
 * Returns the bytes released.
 */
uint64_t hs_mheap_scavenge(uintptr_t nbytes)
{
	hs_lock(&hs_heap.lock);
	uintptr_t released = hs_pagealloc_scavenge(&hs_heap.pages, nbytes, account_release);
	hs_unlock(&hs_heap.lock);
	return released;
}
