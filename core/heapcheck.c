/*
 * core/heapcheck.c — hs_heap_check: every invariant of the heap, checked from
 * scratch. See core/heap.h and core/mheap.c for the invariants.
 *
 * What it cross-checks:
 *   the page allocator's own invariants (core/pagealloc_check.c);
 *   each in-use span: its pages allocated in the page allocator's bitmaps, every
 *     page's spans[] entry pointing at it, pageInUse set on its first page only,
 *     objects within its pages, allocCount equal to what the bitmaps say, free
 *     bits only on allocated objects, sweepgen in a valid state;
 *   each mcentral set: spans of its class, in use, swept or unswept as the set
 *     says, partial sets with room and full sets without;
 *   each mcache: its spans and owned spans in use, of the right class, cached
 *     (an odd sweepgen no later than h+3), and in no mcentral set;
 *   the totals: pages of in-use spans plus pages held by page caches plus pages
 *     the scavenger holds while releasing them equal the allocated pages of the
 *     page allocator, and in_use/pages_in_use agree.
 *
 * Exact only while no other thread allocates or frees (a test calls it at a
 * quiet point). It holds the sweeper's lock throughout (so the background
 * sweeper has no span off its set), and takes heap.lock and each mcentral's lock
 * in turn under it.
 */
#include <string.h>

#include "check.h"
#include "heap.h"
#include "heapscope/heapscope.h"


static int page_allocated(uintptr_t a)
{
	const hs_palloc_data *d = hs_pagealloc_try_chunk_of(&hs_heap.pages, hs_chunk_index(a));
	return d != NULL && hs_page_bits_get(&d->alloc, hs_chunk_page_index(a));
}

static int check_span_pages(const hs_mspan *s, char *msg, size_t msglen)
{
	for (uintptr_t p = 0; p < hs_span_npages(s); p++) {
		uintptr_t a = s->start_addr + (p << HS_PAGE_SHIFT);
		hs_heap_arena *ha = hs_arena_of(a);
		uintptr_t pi = (a >> HS_PAGE_SHIFT) % HS_PAGES_PER_ARENA;
		if (ha == NULL || atomic_load(&ha->spans[pi]) != s)
			FAIL("span %#lx: page %#lx does not map back to it", (unsigned long)s->start_addr,
			     (unsigned long)a);
		if (!page_allocated(a))
			FAIL("span %#lx: page %#lx is free in the page allocator", (unsigned long)s->start_addr,
			     (unsigned long)a);
		if (((ha->page_in_use[pi / 8] >> (pi % 8)) & 1) != (p == 0))
			FAIL("span %#lx: pageInUse wrong for page %#lx", (unsigned long)s->start_addr,
			     (unsigned long)a);
	}
	return 0;
}

static int check_span_objects(const hs_mspan *s, char *msg, size_t msglen)
{
	unsigned fi = atomic_load(&s->freeindex), count = 0, nlocal = 0;
	if (fi > s->nelems || s->alloc_count > s->nelems)
		FAIL("span %#lx: freeindex %u / allocCount %u beyond nelems %u", (unsigned long)s->start_addr, fi,
		     s->alloc_count, s->nelems);
	if (hs_span_limit(s) > s->start_addr + (hs_span_npages(s) << HS_PAGE_SHIFT))
		FAIL("span %#lx: objects run past its pages", (unsigned long)s->start_addr);
	const uint64_t *own = hs_span_local_free(s);
	for (unsigned w = 0; w < hs_span_bitmap_words(s); w++) {
		uint64_t valid = (unsigned)s->nelems >= (w + 1) * 64 ? ~UINT64_C(0)
								     : (UINT64_C(1) << (s->nelems - w * 64)) - 1;
		uint64_t below = fi >= (w + 1) * 64 ? ~UINT64_C(0) : fi <= w * 64 ? 0 : (UINT64_C(1) << (fi - w * 64)) - 1;
		uint64_t a = atomic_load(&s->alloc_bits[w]), f = atomic_load(&hs_span_free_bits(s)[w]) | own[w];
		if (own[w] != 0 && atomic_load(&s->owner) == NULL)
			FAIL("span %#lx: owner-local frees on a span no mcache holds", (unsigned long)s->start_addr);
		if ((a | f) & ~valid)
			FAIL("span %#lx: bitmap bits beyond nelems in word %u", (unsigned long)s->start_addr, w);
		if (f & ~(a | below))
			FAIL("span %#lx: free bits on objects that are not allocated (word %u: %#llx)",
			     (unsigned long)s->start_addr, w, (unsigned long long)(f & ~(a | below)));
		count += hs_popcount64(a | below);
		nlocal += hs_popcount64(own[w]);
	}
	if (nlocal != s->local_nfree)
		FAIL("span %#lx: local_nfree %u, local_free holds %u", (unsigned long)s->start_addr, s->local_nfree,
		     nlocal);
	if (count != s->alloc_count)
		FAIL("span %#lx: allocCount %u, the bitmaps say %u", (unsigned long)s->start_addr, s->alloc_count,
		     count);
	return 0;
}

static int check_list(hs_mcentral *c, const hs_span_list *l, int full, int swept, uint32_t sg, char *msg,
		      size_t msglen)
{
	uint32_t n = 0;
	for (const hs_mspan *s = l->first; s != NULL; s = s->next, n++) {
		uint32_t g = atomic_load(&s->sweepgen);
		if (!s->listed || s->spanclass != hs_mcentral_class(c) || atomic_load(&s->state) != HS_MSPAN_IN_USE)
			FAIL("mcentral %u: span %#lx in a set it does not belong to", hs_mcentral_class(c),
			     (unsigned long)s->start_addr);
		if (g != (swept ? sg : sg - 2))
			FAIL("mcentral %u: span %#lx has sweepgen %u in a %s set (heap %u)", hs_mcentral_class(c),
			     (unsigned long)s->start_addr, g, swept ? "swept" : "unswept", sg);
		if (swept && full != (s->alloc_count == s->nelems))
			FAIL("mcentral %u: span %#lx with %u/%u objects in a %s set", hs_mcentral_class(c),
			     (unsigned long)s->start_addr, s->alloc_count, s->nelems, full ? "full" : "partial");
	}
	if (n != l->n)
		FAIL("mcentral %u: a set counts %u spans but holds %u", hs_mcentral_class(c), l->n, n);
	return 0;
}

static int check_mcentrals(uint32_t sg, uint64_t *listed, char *msg, size_t msglen)
{
	for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++) {
		hs_mcentral *c = &hs_heap.central[i];
		int r = 0;
		hs_lock(&c->lock);
		for (unsigned k = 0; k < 2 && r == 0; k++) {
			int swept = k == sg / 2 % 2;
			r = check_list(c, &c->partial[k], 0, swept, sg, msg, msglen);
			if (r == 0)
				r = check_list(c, &c->full[k], 1, swept, sg, msg, msglen);
			*listed += c->partial[k].n + c->full[k].n;
		}
		hs_unlock(&c->lock);
		if (r != 0)
			return r;
	}
	return 0;
}

static int check_mcaches(uint32_t sg, uint64_t *cached_spans, uint64_t *cached_pages, char *msg, size_t msglen)
{
	for (hs_mcache *c = hs_heap.mcaches; c != NULL; c = c->next) {
		*cached_pages += (uint64_t)hs_popcount64(c->pcache.cache);
		uintptr_t large_pages = 0;
		for (unsigned i = 0; i < c->nlarge; i++) {
			const hs_mspan *s = c->large[i];
			if (hs_span_class_size(s->spanclass) != 0 || s->alloc_count != 0 ||
			    atomic_load(&s->owner) != c || atomic_load(&s->state) != HS_MSPAN_IN_USE)
				FAIL("mcache: large span %#lx kept for reuse is not a free in-use large span",
				     (unsigned long)s->start_addr);
			large_pages += hs_span_npages(s);
		}
		if (large_pages != c->large_pages || large_pages > HS_LARGE_CACHE_PAGES)
			FAIL("mcache: its large spans hold %lu pages, it counts %lu (at most %u)",
			     (unsigned long)large_pages, (unsigned long)c->large_pages, HS_LARGE_CACHE_PAGES);
		for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++) {
			const hs_mspan *s = c->alloc[i];
			if (hs_mcache_span_is_empty(s))
				continue;
			uint32_t g = atomic_load(&s->sweepgen);
			if (s->spanclass != i || atomic_load(&s->state) != HS_MSPAN_IN_USE || s->listed)
				FAIL("mcache: span %#lx of class %u is not a cached in-use span of class %u",
				     (unsigned long)s->start_addr, s->spanclass, i);
			if (g % 2 != 1 || (int32_t)(g - (sg + 3)) > 0)
				FAIL("mcache: span %#lx has sweepgen %u, heap %u", (unsigned long)s->start_addr, g, sg);
			(*cached_spans)++;
		}
		for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++) {
			uint32_t n = 0;
			for (const hs_mspan *s = c->owned[i].first; s != NULL; s = s->next, n++) {
				uint32_t g = atomic_load(&s->sweepgen);
				if (s->spanclass != i || atomic_load(&s->state) != HS_MSPAN_IN_USE ||
				    !s->listed || atomic_load(&s->owner) != c)
					FAIL("mcache: owned span %#lx is not an owned in-use span of class %u",
					     (unsigned long)s->start_addr, i);
				if (g % 2 != 1 || (int32_t)(g - (sg + 3)) > 0)
					FAIL("mcache: owned span %#lx has sweepgen %u, heap %u",
					     (unsigned long)s->start_addr, g, sg);
			}
			if (n != c->owned[i].n)
				FAIL("mcache: owned list of class %u counts %u spans but holds %u", i, c->owned[i].n, n);
			*cached_spans += n;
		}
	}
	return 0;
}

/* Counts gathered while checking, for the totals at the end. */
typedef struct tally {
	uint64_t listed, cached, cached_pages, span_pages, small, allocated, scav_in_flight;
} tally;

static int check_spans(tally *t, char *msg, size_t msglen)
{
	for (uint32_t i = 0; i < hs_heap.nallspans; i++) {
		const hs_mspan *s = hs_heap.allspans[i];
		if (atomic_load(&s->state) != HS_MSPAN_IN_USE)
			continue;
		t->span_pages += hs_span_npages(s);
		t->small += hs_span_class_size(s->spanclass) != 0;
		if (check_span_pages(s, msg, msglen) != 0 || check_span_objects(s, msg, msglen) != 0)
			return -1;
	}
	for (size_t k = 0; k < hs_heap.pages.in_use.len; k++) {
		hs_addr_range ar = hs_heap.pages.in_use.ranges[k];
		for (hs_off_addr o = ar.base; o < ar.limit; o += HS_PALLOC_CHUNK_BYTES) {
			const hs_palloc_data *d = hs_pagealloc_chunk_of(&hs_heap.pages, o >> HS_LOG_PALLOC_CHUNK_BYTES);
			for (unsigned w = 0; w < HS_PALLOC_CHUNK_WORDS; w++)
				t->allocated += hs_popcount64(d->alloc.w[w]);
		}
	}
	return 0;
}

/* Everything but the totals; the caller holds the sweeper off. */
static int check_all(uint32_t sg, tally *t, char *msg, size_t msglen)
{
	if (check_mcentrals(sg, &t->listed, msg, msglen) != 0)
		return -1;
	hs_lock(&hs_heap.lock);
	int r = hs_pagealloc_check(&hs_heap.pages, msg, msglen);
	if (r == 0)
		r = check_mcaches(sg, &t->cached, &t->cached_pages, msg, msglen);
	if (r == 0)
		r = check_spans(t, msg, msglen);
	t->scav_in_flight = hs_heap.pages.scav_in_flight;
	hs_unlock(&hs_heap.lock);
	return r;
}

int hs_heap_check(char *msg, size_t msglen)
{
	hs_mallocinit();
	uint32_t sg = atomic_load(&hs_heap.sweepgen);
	tally t = { 0, 0, 0, 0, 0, 0, 0 };

	/* Keep the background sweeper from holding a span off its set meanwhile. */
	pthread_mutex_lock(&hs_heap.sweeper_mu);
	int r = check_all(sg, &t, msg, msglen);
	pthread_mutex_unlock(&hs_heap.sweeper_mu);
	if (r != 0)
		return r;

	if (t.span_pages + t.cached_pages + t.scav_in_flight != t.allocated)
		FAIL("page allocator has %llu pages allocated; spans hold %llu, page caches %llu and the "
		     "scavenger %llu", (unsigned long long)t.allocated, (unsigned long long)t.span_pages,
		     (unsigned long long)t.cached_pages, (unsigned long long)t.scav_in_flight);
	if (t.span_pages != atomic_load(&hs_heap.pages_in_use) ||
	    t.span_pages << HS_PAGE_SHIFT != atomic_load(&hs_heap.in_use))
		FAIL("statistics say %llu pages in use, the spans %llu",
		     (unsigned long long)atomic_load(&hs_heap.pages_in_use), (unsigned long long)t.span_pages);
	if (t.small != t.listed + t.cached)
		FAIL("%llu small spans in use, but mcentrals list %llu and mcaches hold %llu",
		     (unsigned long long)t.small, (unsigned long long)t.listed, (unsigned long long)t.cached);
	return 0;
}
