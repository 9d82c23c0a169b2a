/*
 * core/pagecache.c — the per-mcache page cache: Go's pageCache (mpagecache.go).
 * See core/pagealloc.c for the allocator it draws from.
 *
 * Small spans are allocated far more often than large ones, and each page
 * allocator call needs heap.lock. So an mcache takes, under one acquisition, every
 * free page of one 64-page aligned block — the block holding the lowest free page
 * — and serves later requests of up to 64 pages from that bitmap without the
 * lock. To the page allocator those pages are allocated; the cache remembers
 * which of them were scavenged, so that allocation from the cache still reports
 * the scavenged bytes it hands out.
 *
 *   base                        base + 64 pages (one 64-bit word of a chunk bitmap)
 *   |<-------------------- 64 pages ------------------------>|
 *   cache: 1 = free in the cache (allocated in the chunk bitmap)
 *   scav:  1 = free in the cache and scavenged  (scav & ~cache == 0)
 *
 * Invariants: base is aligned to 64 pages; scav is a subset of cache; an empty
 * cache (cache == 0) has no pages to give back.
 *
 * Locking: alloc touches only the cache, owned by one mcache (one thread).
 * allocToCache and flush need heap.lock.
 */
#include "pagealloc.h"

#include <string.h>

uintptr_t hs_page_cache_alloc(hs_page_cache *c, uintptr_t npages, uintptr_t *scav)
{
	if (c->cache == 0) {
		*scav = 0;
		return 0;
	}
	unsigned i = npages == 1 ? hs_ctz64(c->cache) : hs_find_bit_range64(c->cache, (unsigned)npages);
	if (i >= 64) {
		*scav = 0;
		return 0;
	}
	uint64_t mask = (npages == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << npages) - 1)) << i;
	*scav = (uintptr_t)hs_popcount64(c->scav & mask) << HS_PAGE_SHIFT;
	c->cache &= ~mask;
	c->scav &= ~mask;
	return c->base + ((uintptr_t)i << HS_PAGE_SHIFT);
}

void hs_page_cache_flush(hs_page_cache *c, hs_pagealloc *p)
{
	hs_assert_lock_held(p->lock);

	if (c->cache == 0)
		return;
	hs_palloc_data *d = hs_pagealloc_chunk_of(p, hs_chunk_index(c->base));
	unsigned w = hs_chunk_page_index(c->base) / 64;

	/* The cache's free pages become free again; those that were scavenged stay so. */
	d->alloc.w[w] &= ~c->cache;
	d->scavenged.w[w] |= c->scav;
	if (hs_off(c->base) < p->search_off)
		p->search_off = hs_off(c->base);
	/* The scavenger may have passed over this chunk while the pages were cached
	 * (they looked allocated); free unscavenged pages coming back must be seen. */
	if (c->cache & ~c->scav)
		hs_scav_index_mark(&p->scav, hs_off(c->base), hs_off(c->base) + ((uintptr_t)HS_PAGE_CACHE_PAGES << HS_PAGE_SHIFT));
	hs_pagealloc_update(p, c->base, HS_PAGE_CACHE_PAGES, 0, 0);
	memset(c, 0, sizeof *c);
}

/*
 * Takes the free pages of the 64-page block holding the lowest free page. An
 * empty cache (base 0) means the heap has no free page. Mirrors allocToCache.
 */
hs_page_cache hs_pagealloc_alloc_to_cache(hs_pagealloc *p)
{
	hs_assert_lock_held(p->lock);

	hs_page_cache c = { 0, 0, 0 };
	hs_chunk_idx ci = p->search_off >> HS_LOG_PALLOC_CHUNK_BYTES;
	if (ci >= p->end && !p->search_addr_off)
		return c;

	unsigned page;
	if (!p->search_addr_off && p->summary[HS_LEAF_LEVEL][ci] != 0) {
		/* Fast path: searchAddr's chunk has a free page at or after searchAddr. */
		unsigned unused;
		unsigned pi = (unsigned)((p->search_off & (HS_PALLOC_CHUNK_BYTES - 1)) >> HS_PAGE_SHIFT);
		page = hs_palloc_bits_find(&hs_pagealloc_chunk_of(p, ci)->alloc, 1, pi, &unused);
		if (page == HS_PALLOC_NOT_FOUND)
			hs_throw("pageAlloc.allocToCache: bad summary data");
	} else {
		hs_off_addr unused;
		uintptr_t addr = hs_pagealloc_find(p, 1, &unused);
		if (addr == 0) {
			p->search_off = HS_MAX_SEARCH_ADDR;
			return c;
		}
		ci = hs_chunk_index(addr);
		page = hs_chunk_page_index(addr);
	}

	hs_palloc_data *d = hs_pagealloc_chunk_of(p, ci);
	unsigned w = page / 64;
	c.base = hs_chunk_base(ci) + ((uintptr_t)w * 64 << HS_PAGE_SHIFT);
	c.cache = ~d->alloc.w[w];
	c.scav = d->scavenged.w[w] & c.cache;

	/* The pages now belong to the cache: allocated, and no longer marked scavenged
	 * in the chunk (the cache carries that fact). */
	d->alloc.w[w] = ~UINT64_C(0);
	d->scavenged.w[w] &= ~c.cache;
	hs_pagealloc_update(p, c.base, HS_PAGE_CACHE_PAGES, 0, 1);

	/* Everything up to the block's last page is now allocated. That page stays
	 * inside in_use, unlike the address just past the block. */
	p->search_off = hs_off(c.base) + ((uintptr_t)(HS_PAGE_CACHE_PAGES - 1) << HS_PAGE_SHIFT);
	return c;
}
