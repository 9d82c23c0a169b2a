/*
 * core/pagealloc_check.c — the page allocator's invariant checker. See the list of
 * invariants in core/pagealloc.c.
 *
 * It recomputes everything from the bitmaps up, with the fast summarize and merge
 * (whose own correctness the unit tests establish against slow oracles), over
 * every entry of every level that covers an in-use range, and compares. Cost is
 * proportional to the in-use chunks times the tree height, so tests call it after
 * every operation on small heaps.
 *
 * Requires the allocator's lock, or exclusive ownership.
 */
#include "check.h"
#include "splitmix.h"
#include "pagealloc.h"



static int check_chunk(const hs_pagealloc *p, hs_chunk_idx c, char *msg, size_t msglen)
{
	const hs_palloc_data *d = hs_pagealloc_try_chunk_of(p, c);
	if (d == NULL)
		FAIL("chunk %#lx is in use but has no bitmap", (unsigned long)hs_chunk_base(c));
	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++) {
		if (d->alloc.w[k] & d->scavenged.w[k])
			FAIL("chunk %#lx word %u: pages both allocated and scavenged (%#llx)",
			     (unsigned long)hs_chunk_base(c), k,
			     (unsigned long long)(d->alloc.w[k] & d->scavenged.w[k]));
	}
	hs_palloc_sum want = hs_palloc_bits_summarize(&d->alloc);
	hs_palloc_sum have = p->summary[HS_LEAF_LEVEL][c];
	if (want != have)
		FAIL("leaf summary of chunk %#lx is (%u,%u,%u), its bitmap says (%u,%u,%u)",
		     (unsigned long)hs_chunk_base(c), hs_palloc_sum_start(have), hs_palloc_sum_max(have),
		     hs_palloc_sum_end(have), hs_palloc_sum_start(want), hs_palloc_sum_max(want),
		     hs_palloc_sum_end(want));

	/* The scavenger index: a free page that is not scavenged has its chunk marked,
	 * at or below the search address. */
	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++) {
		if ((~d->alloc.w[k] & ~d->scavenged.w[k]) == 0)
			continue;
		if (!hs_scav_index_get(&p->scav, c))
			FAIL("chunk %#lx has free unscavenged pages but is not in the scavenger index",
			     (unsigned long)hs_chunk_base(c));
		if (!p->scav.has_search || (p->scav.search_off >> HS_LOG_PALLOC_CHUNK_BYTES) < c)
			FAIL("chunk %#lx has free unscavenged pages above the scavenger's search address",
			     (unsigned long)hs_chunk_base(c));
		break;
	}

	/* No free page below searchAddr. */
	hs_off_addr chunk_off = c << HS_LOG_PALLOC_CHUNK_BYTES;
	if (chunk_off < p->search_off) {
		uintptr_t below = (p->search_off - chunk_off) >> HS_PAGE_SHIFT;
		unsigned n = below >= HS_PALLOC_CHUNK_PAGES ? HS_PALLOC_CHUNK_PAGES : (unsigned)below;
		if (n > 0 && hs_page_bits_popcnt_range(&d->alloc, 0, n) != n)
			FAIL("a free page in chunk %#lx lies below searchAddr %#lx",
			     (unsigned long)hs_chunk_base(c), (unsigned long)hs_off_to_addr(p->search_off));
	}
	return 0;
}

static int check_level(const hs_pagealloc *p, unsigned l, hs_addr_range r, char *msg, size_t msglen)
{
	const unsigned child_bits = hs_level_bits(l + 1);
	uintptr_t lo = r.base >> hs_level_shift(l), hi = ((r.limit - 1) >> hs_level_shift(l)) + 1;
	for (uintptr_t i = lo; i < hi; i++) {
		hs_palloc_sum want = hs_palloc_sum_merge(&p->summary[l + 1][i << child_bits], 1u << child_bits,
							 hs_level_log_pages(l + 1));
		hs_palloc_sum have = p->summary[l][i];
		if (want != have)
			FAIL("summary[%u][%lu] is (%u,%u,%u), the merge of its children is (%u,%u,%u)", l,
			     (unsigned long)i, hs_palloc_sum_start(have), hs_palloc_sum_max(have),
			     hs_palloc_sum_end(have), hs_palloc_sum_start(want), hs_palloc_sum_max(want),
			     hs_palloc_sum_end(want));
	}
	return 0;
}

int hs_pagealloc_check(const hs_pagealloc *p, char *msg, size_t msglen)
{
	return hs_pagealloc_check_range(p, 0, ~(uintptr_t)0, msg, msglen);
}

int hs_pagealloc_check_range(const hs_pagealloc *p, uintptr_t base, uintptr_t limit, char *msg, size_t msglen)
{
	if (p->search_off != HS_MAX_SEARCH_ADDR && !hs_addr_ranges_contains(&p->in_use, p->search_off))
		FAIL("searchAddr %#lx is outside the in-use ranges", (unsigned long)hs_off_to_addr(p->search_off));

	/* Offsets of the whole chunks covering [base, limit). */
	hs_off_addr lo = base == 0 ? 0 : hs_off(base) & ~(uintptr_t)(HS_PALLOC_CHUNK_BYTES - 1);
	hs_off_addr hi = limit == ~(uintptr_t)0 ? ~(uintptr_t)0
						  : hs_align_up(hs_off(limit), HS_PALLOC_CHUNK_BYTES);
	for (size_t k = 0; k < p->in_use.len; k++) {
		hs_addr_range r = p->in_use.ranges[k];
		if (r.base < lo)
			r.base = lo;
		if (r.limit > hi)
			r.limit = hi;
		if (r.base >= r.limit)
			continue;
		hs_chunk_idx sc = r.base >> HS_LOG_PALLOC_CHUNK_BYTES, ec = r.limit >> HS_LOG_PALLOC_CHUNK_BYTES;
		if (sc < p->start || ec > p->end)
			FAIL("in-use range [%#lx, %#lx) lies outside chunks [start, end)",
			     (unsigned long)hs_off_to_addr(r.base), (unsigned long)hs_off_to_addr(r.limit));
		for (hs_chunk_idx c = sc; c < ec; c++) {
			if (check_chunk(p, c, msg, msglen) != 0)
				return -1;
		}
		for (int l = HS_SUMMARY_LEVELS - 2; l >= 0; l--) {
			if (check_level(p, (unsigned)l, r, msg, msglen) != 0)
				return -1;
		}
	}
	return 0;
}

/* Folds one value into a running hash: order matters, as it should here. */
static uint64_t fold(uint64_t h, uint64_t v)
{
	uint64_t st = h ^ v;
	return hs_splitmix64(&st) ^ (h << 1);
}

uint64_t hs_pagealloc_digest(const hs_pagealloc *p, uint64_t *nchunks)
{
	uint64_t h = 0, chunks = 0;
	for (size_t k = 0; k < p->in_use.len; k++) {
		hs_addr_range r = p->in_use.ranges[k];
		chunks += (r.limit - r.base) >> HS_LOG_PALLOC_CHUNK_BYTES;
		for (unsigned l = 0; l < HS_SUMMARY_LEVELS; l++) {
			uintptr_t lo = r.base >> hs_level_shift(l), hi = ((r.limit - 1) >> hs_level_shift(l)) + 1;
			h = fold(h, ((uint64_t)l << 56) ^ lo);
			for (uintptr_t i = lo; i < hi; i++)
				h = fold(h, p->summary[l][i]);
		}
	}
	*nchunks = chunks;
	return h;
}
