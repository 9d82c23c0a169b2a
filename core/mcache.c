/*
 * core/mcache.c — per-thread caches: Go's mcache (mcache.go). See core/heap.h
 * for the structure and core/mheap.c for the overview.
 *
 * Each thread gets an mcache on its first allocation or free. It is held in an
 * initial-exec TLS slot (no call into the dynamic linker, which could itself call
 * malloc), and registered with a pthread key whose destructor flushes it when the
 * thread exits. Slot i of alloc[] holds the span of class i that the thread
 * allocates from, or the shared empty span, on which the fast path always fails.
 *
 * Refill (Go's mcache.refill) is where heapscope differs from Go, because
 * programs free: when the owner runs out of room in a span, it first sweeps the
 * span itself if frees are pending on it. If at least an eighth of the span came
 * free, it keeps allocating from it. A malloc/free loop therefore keeps reusing
 * one span without a trip to the mcentral, and without waiting for a sweep cycle.
 * Otherwise the span goes back to its mcentral and a new one is taken. Spans
 * the thread holds but stopped using go back to the heap as it grows (idle
 * spans, below).
 *
 * Locking: none for the owner; releasing takes the mcentral and heap locks one
 * at a time.
 */
#include <string.h>

#include "heap.h"

/* The fast path's "no span": nelems 0 and an empty allocCache, so it always fails. */
static hs_mspan empty_mspan;

__thread hs_mcache *hs_tls_mcache __attribute__((tls_model("initial-exec")));

hs_mcache *hs_mcache_new(void)
{
	hs_mallocinit();
	hs_lock(&hs_heap.lock);
	hs_mcache *c = hs_fixalloc_alloc(&hs_heap.cachealloc);
	c->next = hs_heap.mcaches;
	if (c->next != NULL)
		c->next->prev = c;
	hs_heap.mcaches = c;
	hs_unlock(&hs_heap.lock);
	for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++)
		c->alloc[i] = &empty_mspan;
	hs_tls_mcache = c;
	pthread_setspecific(hs_heap.mcache_key, c);
	return c;
}

/* The owner sweeps its cached span; it stays cached, swept for this cycle. */
static void sweep_cached(hs_mcache *c, hs_mspan *s)
{
	hs_span_sweep(s);
	hs_stat_inc(&c->stats.spans_swept);
	atomic_store_explicit(&s->sweepgen, atomic_load(&hs_heap.sweepgen) + 3, memory_order_relaxed);
}

static int has_remote_frees(const hs_mspan *s)
{
	for (unsigned w = 0; w < hs_span_bitmap_words(s); w++) {
		if (atomic_load_explicit(&hs_span_free_bits(s)[w], memory_order_relaxed) != 0)
			return 1;
	}
	return 0;
}

static int has_pending_frees(const hs_mspan *s)
{
	return s->local_nfree != 0 || has_remote_frees(s);
}

/* Lets go of a cached span: frees pending on it are swept in first, because only
 * the owner may touch local_free. */
static void uncache(hs_mcache *c, hs_mspan *s, hs_span_class sc)
{
	if (has_pending_frees(s))
		sweep_cached(c, s);
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	HS_TRACE(mcache_flush, s->start_addr, sc, s->alloc_count);
	hs_mcentral_uncache_span(&hs_heap.central[sc], s);
}

/* room free objects make a span worth allocating from: at least an eighth of it,
 * or, near the memory limit, any (the heap should fill what it has before it
 * grows). */
static int worth_taking(const hs_mspan *s, unsigned room)
{
	return hs_room_worth_taking(room, s->nelems) || (room != 0 && hs_scavenger_tight());
}

static int has_room(const hs_mspan *s)
{
	return worth_taking(s, (unsigned)(s->nelems - s->alloc_count));
}

/*
 * Owned spans. When the owner fills a span it keeps owning it, in owned[sc],
 * instead of handing it straight back to the mcentral (up to HS_OWNED_BYTES of
 * spans per class; beyond that, back to the mcentral). While it owns a span, its own frees
 * into it stay plain stores (local_free) and need no sweep cycle. Refill looks
 * at a few owned spans first, sweeping those with pending frees, and rotates the
 * ones still too full to the back. An owned span that sweeps to empty goes back
 * to the heap. This is mimalloc's thread-local pages in Go's structures: the
 * mcentral still takes spans from exiting threads and from owners over the cap.
 */
#define OWNED_SCAN 4
#define OWNED_SCAN_TIGHT 64 /* near the memory limit: look harder before growing */

static hs_mspan *take_owned(hs_mcache *c, hs_span_class sc)
{
	hs_span_list *l = &c->owned[sc];
	int scan = hs_scavenger_tight() ? OWNED_SCAN_TIGHT : OWNED_SCAN;
	for (int k = 0; k < scan && l->first != NULL; k++) {
		hs_mspan *s = hs_span_list_pop_front(l);
		/* Judge by the owner's own frees first (counted in the span's first
		 * cache line); read the bitmaps only for a span worth taking, or when
		 * other threads may have freed into it. */
		unsigned room = (unsigned)(s->nelems - s->alloc_count) + s->local_nfree;
		if (worth_taking(s, room) || has_remote_frees(s))
			sweep_cached(c, s);
		if (s->alloc_count == 0 && l->n > 0) {
			atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
			hs_mheap_free_span(s);
			continue;
		}
		if (has_room(s))
			return s;
		hs_span_list_push_back(l, s);
	}
	return NULL;
}

/*
 * The owner's frees now account for every object of s it knows to be allocated
 * (local_nfree == alloc_count). A span it only keeps owning (parked) goes back to
 * the heap now, so that a thread that frees what it allocated and then goes quiet
 * does not hold the memory (mimalloc retires pages the same way). The span it
 * allocates from stays. Objects of s freed by other threads are not counted in
 * local_nfree, so such a span is retired later instead: when a refill scan
 * sweeps it to empty, or when the thread exits.
 */
void hs_mcache_retire(hs_mcache *c, hs_mspan *s)
{
	hs_span_class sc = s->spanclass;
	if (!s->listed) /* not parked: of the lists, only owned[sc] holds spans c owns */
		return;
	hs_span_list_remove(&c->owned[sc], s);
	sweep_cached(c, s);
	if (s->alloc_count != 0 || has_remote_frees(s)) {
		hs_span_list_push_back(&c->owned[sc], s);
		return;
	}
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	hs_mheap_free_span(s);
}

static void park(hs_mcache *c, hs_mspan *s, hs_span_class sc)
{
	if ((uintptr_t)c->owned[sc].n * (hs_span_npages(s) << HS_PAGE_SHIFT) < HS_OWNED_BYTES)
		hs_span_list_push_back(&c->owned[sc], s);
	else
		uncache(c, s, sc);
}

/*
 * Gives the mcache a span of class sc with a free object (Go's refill); NULL when
 * the heap cannot grow. The current span, if any, is full.
 *
 * Events: mcache_refill marks a span entering the mcache from its mcentral, as
 * in Go, and mcache_flush its leaving; a span's moves between alloc[] and
 * owned[] stay inside the mcache and are not events (the sweep that precedes
 * taking an owned span is). Under churn those moves are nearly every refill:
 * 468 k of 476 k in 2 M steps, each a record that told the model nothing new.
 */
hs_mspan *hs_mcache_refill(hs_mcache *c, hs_span_class sc)
{
	/* An attached tracer waits for this process's snapshot, which the sampler
	 * takes: start it here too, not only when the heap makes a span, since a
	 * program in a steady state can go seconds reusing the spans it owns.
	 * First, while the mcache is consistent: starting a thread may malloc. */
	hs_trace_start_sampler();
	hs_mspan *s = c->alloc[sc];
	if (s != &empty_mspan) {
		if (has_pending_frees(s)) {
			sweep_cached(c, s);
			if (has_room(s)) {
				s->idle_tick = c->ticks;
				return s;
			}
		}
		park(c, s, sc);
		c->alloc[sc] = &empty_mspan;
	}
	s = take_owned(c, sc);
	if (s == NULL) {
		hs_mcache_tick(c);
		s = hs_mcentral_cache_span(&hs_heap.central[sc], c);
		if (s == NULL)
			return NULL;
		atomic_store_explicit(&s->owner, c, memory_order_relaxed);
		HS_TRACE(mcache_refill, s->start_addr, sc, s->alloc_count);
	}
	s->idle_tick = c->ticks;
	c->alloc[sc] = s;
	return s;
}

/*
 * Large objects: a freed large span stays in use, its object marked free, in
 * the freeing thread's mcache while the cache has room (HS_LARGE_CACHE spans,
 * HS_LARGE_CACHE_PAGES pages in all), and the next large allocation of the
 * same page count takes it back without heap.lock or the page allocator. Go
 * has no such cache (its large objects are collected); C programs free and
 * reallocate buffers of the same size all the time.
 */
int hs_mcache_keep_large(hs_mcache *c, hs_mspan *s)
{
	uintptr_t npages = s->elemsize >> HS_PAGE_SHIFT; /* a large span's */
	if (c->nlarge == HS_LARGE_CACHE || c->large_pages + npages > HS_LARGE_CACHE_PAGES)
		return 0;
	c->large_pages += npages;
	s->idle_tick = c->ticks;
	atomic_store_explicit(&hs_span_free_bits(s)[0], 0, memory_order_relaxed);
	atomic_store_explicit(&s->alloc_bits[0], 0, memory_order_relaxed);
	s->alloc_count = 0;
	s->needzero = 1;
	atomic_store_explicit(&s->owner, c, memory_order_relaxed);
	c->large[c->nlarge++] = s;
	return 1;
}

hs_mspan *hs_mcache_take_large(hs_mcache *c, uintptr_t npages)
{
	for (unsigned i = c->nlarge; i-- > 0;) {
		hs_mspan *s = c->large[i];
		if (s->elemsize == npages << HS_PAGE_SHIFT) {
			c->large[i] = c->large[--c->nlarge];
			c->large_pages -= npages;
			atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
			return s;
		}
	}
	return NULL;
}

/*
 * Idle spans. A thread that stops using a size class keeps that class's span
 * in alloc[], and a large span it freed in its large cache, for as long as it
 * lives: memory that no other class and no other page count can use. Go never
 * holds them long, because every collection flushes every mcache. Here the
 * mcache counts the spans it takes from outside itself (ticks: refills from an
 * mcentral, large spans not found in its cache), the moments when it grows,
 * and stamps a span with the tick whenever it uses it on a slow path (a refill
 * that returns it, keeping a large span). At each tick it first hands back
 * what is unused: a kept large span, and an alloc[] span whose objects its
 * owner has all freed, once stamped HS_IDLE_TICKS ticks ago or more. Their
 * pages go back to the page allocator, where the span about to be taken can
 * reuse them.
 *
 * The free and malloc paths do nothing for this, so a malloc/free pair costs
 * what it did. A tick looks at IDLE_SCAN size classes in turn, not all 67, so
 * it stays cheap next to the refill it precedes; every class is looked at
 * every 17 ticks. A class in use that refills rarely (a span of many objects,
 * or one whose malloc/free pairs undo each other, see core/malloc.c) can be
 * found empty and old between a free and the next malloc: it then refills,
 * which stamps the new span, so that costs at most one span more per
 * HS_IDLE_TICKS ticks.
 */
#define IDLE_SCAN 4

/* Ticks count mod 2^16: a span unused for 65,536 of them may look recent, and
 * waits a few ticks more. */
static int idle_for_long(const hs_mcache *c, const hs_mspan *s)
{
	return (uint16_t)(c->ticks - s->idle_tick) >= HS_IDLE_TICKS;
}

static void release_if_idle(hs_mcache *c, hs_span_class sc)
{
	hs_mspan *s = c->alloc[sc];
	if (s == &empty_mspan || s->local_nfree != s->alloc_count || !idle_for_long(c, s))
		return;
	sweep_cached(c, s);
	if (s->alloc_count != 0)
		return;
	c->alloc[sc] = &empty_mspan;
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	hs_mheap_free_span(s);
}

void hs_mcache_tick(hs_mcache *c)
{
	c->ticks++;
	for (unsigned k = 0; k < IDLE_SCAN; k++) {
		release_if_idle(c, hs_make_span_class(c->idle_next));
		c->idle_next = c->idle_next + 1 < HS_NUM_SIZE_CLASSES ? c->idle_next + 1 : 1;
	}
	for (unsigned i = c->nlarge; i-- > 0;) {
		hs_mspan *s = c->large[i];
		if (!idle_for_long(c, s))
			continue;
		c->large[i] = c->large[--c->nlarge];
		c->large_pages -= s->elemsize >> HS_PAGE_SHIFT;
		atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
		hs_mheap_free_span(s);
	}
}

/* Returns every cached span and page to the heap (Go's releaseAll). */
void hs_mcache_release_all(hs_mcache *c)
{
	for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++) {
		hs_mspan *s = c->alloc[i];
		if (s != &empty_mspan)
			uncache(c, s, (hs_span_class)i);
		c->alloc[i] = &empty_mspan;
		while ((s = hs_span_list_pop_front(&c->owned[i])) != NULL)
			uncache(c, s, (hs_span_class)i);
	}
	while (c->nlarge > 0) {
		hs_mspan *s = c->large[--c->nlarge];
		atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
		hs_mheap_free_span(s);
	}
	c->large_pages = 0;
	hs_lock(&hs_heap.lock);
	if (c->pcache.cache != 0)
		HS_TRACE(page_cache_flush, c->pcache.base, c->pcache.cache, c->pcache.scav);
	hs_page_cache_flush(&c->pcache, &hs_heap.pages);
	hs_unlock(&hs_heap.lock);
	hs_mheap_put_mspans(c->mspancache, c->nmspancache);
	c->nmspancache = 0;
	hs_sweep_note_freed(c, 0);
}

/* pthread key destructor: the thread is exiting. Any allocation a later
 * destructor makes gets a fresh mcache, flushed on the next round. */
void hs_mcache_thread_exit(void *arg)
{
	hs_mcache *c = arg;
	hs_mcache_release_all(c);
	hs_trace_thread_exit();
	if (hs_tls_mcache == c)
		hs_tls_mcache = NULL;
	hs_lock(&hs_heap.lock);
	hs_heap.retired.large_allocs += c->stats.large_allocs;
	hs_heap.retired.large_frees += c->stats.large_frees;
	hs_heap.retired.spans_swept += c->stats.spans_swept;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		hs_heap.mcaches = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	hs_fixalloc_free(&hs_heap.cachealloc, c);
	hs_unlock(&hs_heap.lock);
}

/* Whether s is the empty placeholder span. */
int hs_mcache_span_is_empty(const hs_mspan *s)
{
	return s == &empty_mspan;
}
