/*
 * core/pagescav.c — the page allocator's half of the scavenger: finding free,
 * unscavenged pages through the scavenger index and releasing them. Mirrors
 * pageAlloc.scavenge and scavengeOne (mgcscavenge.go). The background scavenger,
 * its pacing and its goals (issue 4) drive these; see core/scavindex.h for the
 * index and core/pallocbits.c for the candidate search.
 *
 * Releasing a run: the run is allocated first, so that nothing else takes it
 * while the lock is dropped for madvise (a system call that can take a while),
 * then freed back as scavenged and marked in the scavenged bitmap. Finding pages
 * that were already scavenged there means two scavengers raced: impossible under
 * the lock, so it throws.
 *
 * Locking: heap.lock held on entry and on return; dropped around the release.
 */
#include "pagealloc.h"

#include "panic.h"
#include "trace.h"

uintptr_t hs_pagealloc_scavenge_one(hs_pagealloc *p, hs_chunk_idx ci, unsigned search_idx, uintptr_t max)
{
	hs_assert_lock_held(p->lock);

	/* Divide, then round up: max may be close to UINTPTR_MAX (scavenge all). */
	uintptr_t max_pages = (max >> HS_PAGE_SHIFT) + ((max & (HS_PAGE_SIZE - 1)) != 0);
	if (max_pages > HS_PALLOC_CHUNK_PAGES)
		max_pages = HS_PALLOC_CHUNK_PAGES;
	unsigned min = p->scav_min_pages;

	if (hs_palloc_sum_max(p->summary[HS_LEAF_LEVEL][ci]) >= min) {
		unsigned start;
		unsigned n = hs_palloc_data_find_scavenge_candidate(hs_pagealloc_chunk_of(p, ci), search_idx, min,
								    (unsigned)max_pages,
								    (unsigned)HS_PAGES_PER_HUGE_PAGE, &start);
		if (n != 0) {
			uintptr_t addr = hs_chunk_base(ci) + ((uintptr_t)start << HS_PAGE_SHIFT);
			if (hs_pagealloc_alloc_range(p, addr, n) != 0)
				hs_throw("double scavenge");
			if (!p->metadata_only) {
				HS_TRACE(scav_take, addr, n);
				/* The run is allocated but in no span: the checker counts it here. */
				p->scav_in_flight += n;
				hs_unlock(p->lock);
				hs_sys_unused((void *)addr, (uintptr_t)n << HS_PAGE_SHIFT, p->release_lazy);
				hs_lock(p->lock);
				p->scav_in_flight -= n;
				HS_TRACE(scav_range, addr, n);
			}
			hs_pagealloc_free_released(p, addr, n);
			return (uintptr_t)n << HS_PAGE_SHIFT;
		}
	}
	hs_scav_index_clear(&p->scav, ci);
	return 0;
}

void hs_pagealloc_free_released(hs_pagealloc *p, uintptr_t addr, uintptr_t npages)
{
	hs_pagealloc_free(p, addr, npages, 1);
	hs_page_bits_set_range(&hs_pagealloc_chunk_of(p, hs_chunk_index(addr))->scavenged,
			       hs_chunk_page_index(addr), (unsigned)npages);
}

uintptr_t hs_pagealloc_scavenge(hs_pagealloc *p, uintptr_t nbytes, void (*account)(uintptr_t bytes))
{
	hs_assert_lock_held(p->lock);

	uintptr_t released = 0, ci;
	unsigned page;
	while (released < nbytes && hs_scav_index_find(&p->scav, &ci, &page)) {
		uintptr_t r = hs_pagealloc_scavenge_one(p, ci, page, nbytes - released);
		if (account != NULL)
			account(r);
		released += r;
	}
	return released;
}
