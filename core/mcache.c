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
 * Otherwise the span goes back to its mcentral and a new one is taken.
 *
 * Locking: none for the owner; releasing takes the mcentral and heap locks one
 * at a time.
 */
#include <string.h>

#include "heap.h"

/* The fast path's "no span": nelems 0 and an empty allocCache, so it always fails. */
static hs_mspan empty_mspan;

static __thread hs_mcache *tls_mcache __attribute__((tls_model("initial-exec")));

static hs_mcache *mcache_new(void)
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
	tls_mcache = c;
	pthread_setspecific(hs_heap.mcache_key, c);
	return c;
}

hs_mcache *hs_mcache_get(void)
{
	hs_mcache *c = tls_mcache;
	return c != NULL ? c : mcache_new();
}

static int has_pending_frees(const hs_mspan *s)
{
	for (unsigned w = 0; w < hs_span_bitmap_words(s); w++) {
		if (atomic_load_explicit(&s->free_bits[w], memory_order_relaxed) != 0)
			return 1;
	}
	return 0;
}

/* The owner sweeps its cached span; it stays cached, swept for this cycle. */
static void sweep_cached(hs_mspan *s)
{
	hs_span_sweep(s);
	atomic_store_explicit(&s->sweepgen, atomic_load(&hs_heap.sweepgen) + 3, memory_order_relaxed);
}

/*
 * Gives the mcache a span of class sc with a free object (Go's refill); NULL when
 * the heap cannot grow. The current span, if any, is full.
 */
hs_mspan *hs_mcache_refill(hs_mcache *c, hs_span_class sc)
{
	hs_mspan *s = c->alloc[sc];
	if (s != &empty_mspan) {
		if (has_pending_frees(s)) {
			sweep_cached(s);
			if ((unsigned)(s->nelems - s->alloc_count) * 8 >= s->nelems)
				return s;
		}
		hs_mcentral_uncache_span(&hs_heap.central[sc], s);
		c->alloc[sc] = &empty_mspan;
	}
	s = hs_mcentral_cache_span(&hs_heap.central[sc], c);
	if (s == NULL)
		return NULL;
	c->alloc[sc] = s;
	return s;
}

/* Returns every cached span and page to the heap (Go's releaseAll). */
void hs_mcache_release_all(hs_mcache *c)
{
	for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++) {
		hs_mspan *s = c->alloc[i];
		if (s == &empty_mspan)
			continue;
		if (has_pending_frees(s))
			sweep_cached(s);
		hs_mcentral_uncache_span(&hs_heap.central[i], s);
		c->alloc[i] = &empty_mspan;
	}
	hs_lock(&hs_heap.lock);
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
	if (tls_mcache == c)
		tls_mcache = NULL;
	hs_lock(&hs_heap.lock);
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
