/*
 * core/pagealloc.c — the page allocator: Go's pageAlloc (runtime/mpagealloc.go,
 * with the 64-bit sysGrow of mpagealloc_64bit.go), in C.
 *
 * What it is. The page allocator hands out runs of 8 KiB pages from the address
 * ranges the heap has grown into, lowest address first (address-ordered first
 * fit), and takes them back. It never touches the pages: it keeps a bitmap per
 * 4 MiB chunk (core/pallocbits.h) and, above the bitmaps, a radix tree of packed
 * summaries (core/pallocsum.h) that lets a search skip any part of the address
 * space too full to help.
 *
 * The tree. Level l is one flat array over the whole offset address space; its
 * entry i summarises the 2^levelLogPages[l] pages at offset i << levelShift[l].
 * Each entry has 8 children in the next level (2^summaryL0Bits root entries), and
 * the leaves are the chunks. On linux/amd64 (48 bits, 5 levels):
 *
 *   level  entries  one entry covers   array size
 *   0      2^14     16 GiB             128 KiB
 *   1      2^17     2 GiB              1 MiB
 *   2      2^20     256 MiB            8 MiB
 *   3      2^23     32 MiB             64 MiB
 *   4      2^26     4 MiB (a chunk)    512 MiB
 *
 * The arrays are reserved as address space at init and committed as the heap
 * grows, a block of siblings (8 entries, or the whole root) at a time, so an
 * entry that is read is always committed. Chunk bitmaps live in a sparse
 * two-level map (13+13 bits on 48-bit, 0+10 on 32-bit).
 *
 * Invariants (checked by hs_pagealloc_check, core/pagealloc_check.c):
 *   leaf:      summary[L][ci] == summarize(chunk ci's bitmap)       for grown ci
 *   interior:  summary[l][i]  == merge(summary[l+1][8i .. 8i+8))     over in_use
 *   outside:   entries never grown into are 0 ("nothing free")
 *   search:    no free page at an offset address below search_off
 *   scavenged: a scavenged page is free
 *   bounds:    [start, end) covers every chunk of in_use
 *
 * Algorithms.
 *   alloc: if the searchAddr chunk's leaf says it holds a long enough run, search
 *          that chunk's bitmap from searchAddr (the common case: one summary load
 *          and a few words of bitmap); otherwise find.
 *          With search_addr_off (HEAPSCOPE_SEARCH_ADDR=off) there is no fast
 *          path and find does not skip below searchAddr: every search starts
 *          at the root. No free page lies below searchAddr, and the fast path
 *          finds the first fit (a run starting earlier in that chunk would be
 *          an earlier fit inside it), so the result is the same, only slower.
 *   find:  walk down from the root. In a block of entries, either some entry's
 *          max fits (descend into it), or a run crossing entries fits (done,
 *          without descending), or nothing does (only possible at the root). The
 *          first entry with any free page narrows a window that bounds the new
 *          searchAddr (Go's firstFree).
 *   update: after the bitmaps change, recompute the touched leaves — one chunk;
 *          or, for a contiguous change across chunks, the two ends plus the whole
 *          chunks in between set to full or free without looking; or, in general,
 *          every chunk — then merge upward level by level, stopping as soon as a
 *          level did not change.
 *   free:  validate the pages are allocated (a bad free is reported and aborts),
 *          clear the bits (one bit directly for one page), update, lower searchAddr,
 *          and mark the scavenger index (core/scavindex.c) unless the pages come
 *          back from the scavenger itself.
 *
 * Locking. Everything here requires p->lock (heap.lock for the real heap), which
 * each function asserts in debug builds. The metadata-only front end
 * (core/pagealloc_api.c) takes it around each call.
 *
 * Modes. The real heap's allocator and a metadata-only allocator run this same
 * code. Metadata-only mode is for the tests, the model and the TUI: it accepts
 * simulated addresses anywhere in the configuration's address space (so the
 * 32-bit layout works on a 64-bit host) and never touches heap pages. It differs
 * only where pages are touched (the scavenger's release, issue 4).
 *
 * Read next: core/pagecache.c (the 64-page per-mcache cache), core/pallocbits.c
 * (the chunk searches), docs/pagealloc.md (the same, with pictures).
 */
#include "pagealloc.h"

#include <string.h>

#include "panic.h"

int hs_pagealloc_init(hs_pagealloc *p, hs_mutex *lock, hs_sys_stat *stat, int metadata_only)
{
	_Static_assert(sizeof(hs_pagealloc) % sizeof(uintptr_t) == 0, "cleared a word at a time");
	/* The chunk map alone is 64 KiB of the heap singleton's .bss. */
	hs_store_lazily(p, NULL, sizeof *p);
	p->lock = lock;
	p->sys_stat = stat;
	p->metadata_only = metadata_only;
	p->search_off = HS_MAX_SEARCH_ADDR;
	p->meta_page_size = hs_sys_phys_page_size();
	/* Metadata-only mode releases the configuration's physical pages; the real
	 * heap, the running kernel's. */
	uintptr_t phys = metadata_only ? HS_PHYS_PAGE_SIZE : p->meta_page_size;
	p->scav_min_pages = phys > HS_PAGE_SIZE ? (unsigned)(phys / HS_PAGE_SIZE) : 1;
	hs_addr_ranges_init(&p->in_use, stat);
	int err = hs_scav_index_init(&p->scav, p->meta_page_size);
	if (err != 0)
		return err;

	for (unsigned l = 0; l < HS_SUMMARY_LEVELS; l++) {
		size_t bytes = hs_align_up(hs_level_entries(l) * sizeof(hs_palloc_sum), p->meta_page_size);
		void *r;
		err = hs_sys_reserve(bytes, &r);
		if (err != 0) {
			hs_pagealloc_destroy(p);
			return err;
		}
		p->summary[l] = r;
	}
	return 0;
}

/* Bytes committed for summaries are tracked in summary_mapped_ready and counted
 * in sys_stat; the reservations themselves are free of charge. */
void hs_pagealloc_destroy(hs_pagealloc *p)
{
	for (unsigned l = 0; l < HS_SUMMARY_LEVELS; l++) {
		if (p->summary[l] != NULL)
			hs_sys_free(p->summary[l],
				    hs_align_up(hs_level_entries(l) * sizeof(hs_palloc_sum), p->meta_page_size),
				    NULL);
	}
	if (p->sys_stat != NULL)
		p->sys_stat->bytes -= p->summary_mapped_ready;
	for (size_t i = 0; i < sizeof p->chunks / sizeof p->chunks[0]; i++) {
		if (p->chunks[i] != NULL)
			hs_sys_free(p->chunks[i], sizeof(hs_palloc_data) << HS_PALLOC_CHUNKS_L2_BITS,
				    p->sys_stat);
	}
	hs_addr_ranges_destroy(&p->in_use);
	hs_scav_index_destroy(&p->scav);
	memset(p, 0, sizeof *p);
}

/* --- growing ------------------------------------------------------------ */

/* Entries [lo, hi) of level l that cover offset addresses [base, limit). Mirrors
 * addrsToSummaryRange: hi is computed from the last byte so it stays exclusive. */
static void summary_range(unsigned l, hs_off_addr base, hs_off_addr limit, uintptr_t *lo, uintptr_t *hi)
{
	*lo = base >> hs_level_shift(l);
	*hi = ((limit - 1) >> hs_level_shift(l)) + 1;
}

/* The bytes of level l's array that must be committed for [base, limit): whole
 * blocks of siblings, rounded out to metadata pages. */
static hs_addr_range summary_commit_range(const hs_pagealloc *p, unsigned l, hs_off_addr base,
					  hs_off_addr limit)
{
	uintptr_t lo, hi, block = (uintptr_t)1 << hs_level_bits(l);
	summary_range(l, base, limit, &lo, &hi);
	lo = hs_align_down(lo, block);
	hi = hs_align_up(hi, block);
	uintptr_t a = (uintptr_t)p->summary[l];
	return (hs_addr_range){
		a + hs_align_down(lo * sizeof(hs_palloc_sum), p->meta_page_size),
		a + hs_align_up(hi * sizeof(hs_palloc_sum), p->meta_page_size),
	};
}

/*
 * Commits summary memory for chunk-aligned [base, limit) (Go's sysGrow). What the
 * neighbouring in-use ranges already committed is subtracted first: ranges are
 * sorted, so only the immediate predecessor and successor can share a page with
 * the new one.
 */
static void sys_grow(hs_pagealloc *p, hs_off_addr base, hs_off_addr limit)
{
	size_t succ = hs_addr_ranges_find_succ(&p->in_use, base);

	for (unsigned l = 0; l < HS_SUMMARY_LEVELS; l++) {
		uintptr_t lo, hi;
		summary_range(l, base, limit, &lo, &hi);
		hi = hs_align_up(hi, (uintptr_t)1 << hs_level_bits(l));
		if (hi > p->summary_len[l])
			p->summary_len[l] = hi;

		hs_addr_range need = summary_commit_range(p, l, base, limit);
		if (succ > 0) {
			hs_addr_range r = p->in_use.ranges[succ - 1];
			need = hs_addr_range_subtract(need, summary_commit_range(p, l, r.base, r.limit));
		}
		if (succ < p->in_use.len) {
			hs_addr_range r = p->in_use.ranges[succ];
			need = hs_addr_range_subtract(need, summary_commit_range(p, l, r.base, r.limit));
		}
		if (need.limit <= need.base)
			continue;
		if (hs_sys_map((void *)need.base, need.limit - need.base, p->sys_stat) != 0)
			hs_throw("pageAlloc: cannot commit summary memory");
		hs_sys_used((void *)need.base, need.limit - need.base);
		p->summary_mapped_ready += need.limit - need.base;
	}
	p->summary_mapped_ready += hs_scav_index_grow(&p->scav, base, limit, p->sys_stat);
}

void hs_pagealloc_grow(hs_pagealloc *p, uintptr_t base, uintptr_t size)
{
	hs_assert_lock_held(p->lock);

	hs_off_addr lo = hs_align_down(hs_off(base), HS_PALLOC_CHUNK_BYTES);
	hs_off_addr hi = hs_align_up(hs_off(base) + size, HS_PALLOC_CHUNK_BYTES);

	sys_grow(p, lo, hi);

	hs_chunk_idx sc = lo >> HS_LOG_PALLOC_CHUNK_BYTES, ec = hi >> HS_LOG_PALLOC_CHUNK_BYTES;
	if (p->in_use.len == 0 || sc < p->start)
		p->start = sc;
	if (ec > p->end)
		p->end = ec;
	hs_addr_ranges_add(&p->in_use, (hs_addr_range){ lo, hi });

	/* Growth frees pages, so it may lower searchAddr as free does. */
	if (lo < p->search_off)
		p->search_off = lo;

	for (hs_chunk_idx c = sc; c < ec; c++) {
		hs_palloc_data **l2 = &p->chunks[hs_chunk_l1(c)];
		if (*l2 == NULL) {
			void *r;
			if (hs_sys_alloc(sizeof(hs_palloc_data) << HS_PALLOC_CHUNKS_L2_BITS, p->sys_stat, &r) != 0)
				hs_throw("pageAlloc: out of memory for the chunk map");
			*l2 = r;
		}
		/* New memory has never been touched: it counts as scavenged. */
		hs_page_bits_set_all(&hs_pagealloc_chunk_of(p, c)->scavenged);
	}

	hs_pagealloc_update(p, hs_off_to_addr(lo), (hi - lo) >> HS_PAGE_SHIFT, 1, 0);
}

/* --- summaries ---------------------------------------------------------- */

/*
 * Recomputes the leaves of chunks [sc, ec]; Go's three paths. One difference: a
 * contiguous change inside one chunk derives the new leaf from the old one and
 * the bitmap around the change (hs_palloc_bits_summarize_after) instead of
 * summarizing the whole chunk, which is most of the cost of a small alloc or free.
 */
static void update_leaves(hs_pagealloc *p, uintptr_t base, uintptr_t npages, int contig, int alloc)
{
	hs_off_addr off = hs_off(base), last = off + (npages << HS_PAGE_SHIFT) - 1;
	hs_chunk_idx sc = off >> HS_LOG_PALLOC_CHUNK_BYTES, ec = last >> HS_LOG_PALLOC_CHUNK_BYTES;
	hs_palloc_sum *leaf = p->summary[HS_LEAF_LEVEL];

	if (sc == ec) {
		/* Fast path: one chunk. */
		const hs_palloc_bits *b = &hs_pagealloc_chunk_of(p, sc)->alloc;
		leaf[sc] = contig ? hs_palloc_bits_summarize_after(b, leaf[sc], hs_chunk_page_index(base),
								   (unsigned)npages, alloc)
				  : hs_palloc_bits_summarize(b);
	} else if (contig) {
		/* Slow contiguous path: the chunks strictly inside became wholly
		 * allocated or wholly free, so only the two ends need summarizing. */
		hs_palloc_sum whole = alloc ? 0 : HS_FREE_CHUNK_SUM;
		leaf[sc] = hs_palloc_bits_summarize(&hs_pagealloc_chunk_of(p, sc)->alloc);
		for (hs_chunk_idx c = sc + 1; c < ec; c++)
			leaf[c] = whole;
		leaf[ec] = hs_palloc_bits_summarize(&hs_pagealloc_chunk_of(p, ec)->alloc);
	} else {
		/* Slow general path: any chunk may have changed in any way. */
		for (hs_chunk_idx c = sc; c <= ec; c++)
			leaf[c] = hs_palloc_bits_summarize(&hs_pagealloc_chunk_of(p, c)->alloc);
	}
}

void hs_pagealloc_update(hs_pagealloc *p, uintptr_t base, uintptr_t npages, int contig, int alloc)
{
	hs_assert_lock_held(p->lock);

	/* [off, last] is inclusive. */
	hs_off_addr off = hs_off(base), last = off + (npages << HS_PAGE_SHIFT) - 1;
	hs_chunk_idx sc = off >> HS_LOG_PALLOC_CHUNK_BYTES, ec = last >> HS_LOG_PALLOC_CHUNK_BYTES;

	hs_palloc_sum before = p->summary[HS_LEAF_LEVEL][sc];
	update_leaves(p, base, npages, contig, alloc);
	if (sc == ec && before == p->summary[HS_LEAF_LEVEL][sc])
		return; /* nothing above can change */

	/* Merge upward; a level that did not change cannot change the ones above. */
	int changed = 1;
	for (int l = HS_SUMMARY_LEVELS - 2; l >= 0 && changed; l--) {
		const unsigned child_bits = hs_level_bits((unsigned)l + 1);
		const unsigned child_log_pages = hs_level_log_pages((unsigned)l + 1);
		uintptr_t lo, hi;
		summary_range((unsigned)l, off, last + 1, &lo, &hi);
		changed = 0;
		for (uintptr_t i = lo; i < hi; i++) {
			hs_palloc_sum sum = hs_palloc_sum_merge(&p->summary[l + 1][i << child_bits],
								1u << child_bits, child_log_pages);
			if (sum != p->summary[l][i]) {
				p->summary[l][i] = sum;
				changed = 1;
			}
		}
	}
}

/* --- allocation ----------------------------------------------------------- */

/*
 * Visits each chunk segment of [base, base+npages): fn(chunk, first page, count).
 * Every caller walks the same three shapes (first partial chunk, whole chunks,
 * last partial chunk), so they share this walk.
 */
#define HS_FOR_EACH_CHUNK_SEGMENT(p, base, npages, body)                                      \
	do {                                                                                 \
		hs_off_addr o_ = hs_off(base), l_ = o_ + ((npages) << HS_PAGE_SHIFT) - 1;    \
		hs_chunk_idx sc_ = o_ >> HS_LOG_PALLOC_CHUNK_BYTES;                          \
		hs_chunk_idx ec_ = l_ >> HS_LOG_PALLOC_CHUNK_BYTES;                          \
		for (hs_chunk_idx c_ = sc_; c_ <= ec_; c_++) {                               \
			unsigned si_ = c_ == sc_ ? hs_chunk_page_index(base) : 0;            \
			unsigned ei_ = c_ == ec_ ? (unsigned)((l_ & (HS_PALLOC_CHUNK_BYTES - 1)) >> \
							    HS_PAGE_SHIFT)                   \
						 : HS_PALLOC_CHUNK_PAGES - 1;                \
			body(c_, si_, ei_ + 1 - si_);                                        \
		}                                                                            \
	} while (0)

#define HS_ALLOC_SEGMENT(c, i, n)                                                             \
	do {                                                                                 \
		hs_palloc_data *d_ = hs_pagealloc_chunk_of(p, (c));                          \
		scav += hs_page_bits_popcnt_range(&d_->scavenged, (i), (n));                 \
		hs_palloc_data_alloc_range(d_, (i), (n));                                    \
	} while (0)

uintptr_t hs_pagealloc_alloc_range(hs_pagealloc *p, uintptr_t base, uintptr_t npages)
{
	hs_assert_lock_held(p->lock);

	uintptr_t scav = 0;
	if (npages == 1) {
		/* Fast path: one bit, known exactly (as in free). */
		hs_palloc_data *d = hs_pagealloc_chunk_of(p, hs_chunk_index(base));
		unsigned i = hs_chunk_page_index(base);
		scav = hs_page_bits_get(&d->scavenged, i);
		hs_page_bits_set(&d->alloc, i);
		hs_page_bits_clear(&d->scavenged, i);
	} else {
		HS_FOR_EACH_CHUNK_SEGMENT(p, base, npages, HS_ALLOC_SEGMENT);
	}
	hs_pagealloc_update(p, base, npages, 1, 1);
	return scav << HS_PAGE_SHIFT;
}

hs_off_addr hs_pagealloc_find_mapped_addr(const hs_pagealloc *p, hs_off_addr off)
{
	uintptr_t found;
	if (hs_addr_ranges_find_addr_ge(&p->in_use, off, &found))
		return found;
	return HS_MAX_SEARCH_ADDR;
}

/*
 * Go's firstFree: inclusive bounds [base, bound] of the region certain to hold the
 * first free page. A newly seen free region narrows it if it lies inside; one
 * that overlaps it only partly means the tree is inconsistent.
 */
typedef struct first_free {
	hs_off_addr base, bound;
} first_free;

static void found_free(first_free *ff, hs_off_addr addr, uintptr_t size)
{
	hs_off_addr last = addr + size - 1;
	if (ff->base <= addr && last <= ff->bound) {
		ff->base = addr;
		ff->bound = last;
	} else if (!(last < ff->base || ff->bound < addr)) {
		hs_print("heapscope: addr = %#lx, size = %lu, base = %#lx, bound = %#lx\n",
			 (unsigned long)addr, (unsigned long)size, (unsigned long)ff->base,
			 (unsigned long)ff->bound);
		hs_throw("pageAlloc.find: range partially overlaps");
	}
}

__attribute__((noreturn)) static void bad_summary(const hs_pagealloc *p, unsigned l, uintptr_t i,
						  uintptr_t npages)
{
	hs_print("heapscope: level = %u, block = %lu, npages = %lu, searchAddr = %#lx\n", l,
		 (unsigned long)i, (unsigned long)npages, (unsigned long)hs_off_to_addr(p->search_off));
	for (unsigned j = 0; l < HS_SUMMARY_LEVELS && j < (1u << hs_level_bits(l)) && j < 8; j++) {
		hs_palloc_sum s = p->summary[l][i + j];
		hs_print("heapscope: summary[%u][%lu] = (%u, %u, %u)\n", l, (unsigned long)(i + j),
			 hs_palloc_sum_start(s), hs_palloc_sum_max(s), hs_palloc_sum_end(s));
	}
	hs_throw("bad summary data");
}

uintptr_t hs_pagealloc_find(hs_pagealloc *p, uintptr_t npages, hs_off_addr *new_search_off)
{
	hs_assert_lock_held(p->lock);

	first_free ff = { 0, HS_MAX_SEARCH_ADDR };
	uintptr_t i = 0; /* first entry of the block being searched at level l */
	hs_off_addr search = p->search_addr_off ? 0 : p->search_off;

	if (p->in_use.len == 0) {
		/* Nothing grown: nothing free, and no summary committed to read. */
		*new_search_off = HS_MAX_SEARCH_ADDR;
		return 0;
	}

	for (unsigned l = 0; l < HS_SUMMARY_LEVELS; l++) {
		const uintptr_t entries = (uintptr_t)1 << hs_level_bits(l);
		const unsigned log_pages = hs_level_log_pages(l);
		const uintptr_t entry_pages = (uintptr_t)1 << log_pages;
		const hs_palloc_sum *block;
		uintptr_t j = 0, base = 0, size = 0;

		i <<= hs_level_bits(l);
		block = &p->summary[l][i];

		/* Skip entries below searchAddr when it falls in this block. */
		uintptr_t sidx = search >> hs_level_shift(l);
		if ((sidx & ~(entries - 1)) == i)
			j = sidx & (entries - 1);

		for (; j < entries; j++) {
			hs_palloc_sum sum = block[j];
			if (sum == 0) {
				size = 0;
				continue;
			}
			found_free(&ff, (i + j) << hs_level_shift(l), entry_pages << HS_PAGE_SHIFT);

			uintptr_t s = hs_palloc_sum_start(sum);
			if (size + s >= npages) {
				/* A run ending in this entry's start is long enough. */
				if (size == 0)
					base = j << log_pages;
				size += s;
				break;
			}
			if (hs_palloc_sum_max(sum) >= npages) {
				/* The entry holds a fit somewhere inside: descend. */
				i += j;
				goto next_level;
			}
			if (size == 0 || s < entry_pages) {
				/* Start a new run from this entry's end. */
				size = hs_palloc_sum_end(sum);
				base = ((j + 1) << log_pages) - size;
			} else {
				size += entry_pages;
			}
		}
		if (size >= npages) {
			hs_off_addr addr = (i << hs_level_shift(l)) + (base << HS_PAGE_SHIFT);
			*new_search_off = hs_pagealloc_find_mapped_addr(p, ff.base);
			return hs_off_to_addr(addr);
		}
		if (l == 0) {
			*new_search_off = HS_MAX_SEARCH_ADDR;
			return 0;
		}
		/* The parent promised a fit that its children do not have. */
		bad_summary(p, l, i, npages);
	next_level:;
	}

	/* i is a chunk index whose summary's max fits npages: search its bitmap. */
	unsigned sidx;
	unsigned j = hs_palloc_bits_find(&hs_pagealloc_chunk_of(p, i)->alloc, (unsigned)npages, 0, &sidx);
	if (j == HS_PALLOC_NOT_FOUND)
		bad_summary(p, HS_LEAF_LEVEL, i, npages);
	hs_off_addr chunk_off = i << HS_LOG_PALLOC_CHUNK_BYTES;
	hs_off_addr first = chunk_off + ((hs_off_addr)sidx << HS_PAGE_SHIFT);
	found_free(&ff, first, chunk_off + HS_PALLOC_CHUNK_BYTES - first);
	*new_search_off = hs_pagealloc_find_mapped_addr(p, ff.base);
	return hs_off_to_addr(chunk_off + ((hs_off_addr)j << HS_PAGE_SHIFT));
}

uintptr_t hs_pagealloc_alloc(hs_pagealloc *p, uintptr_t npages, uintptr_t *scav)
{
	hs_assert_lock_held(p->lock);

	hs_chunk_idx ci = p->search_off >> HS_LOG_PALLOC_CHUNK_BYTES;
	if (ci >= p->end && !p->search_addr_off) {
		/* searchAddr is above every chunk: nothing is free. */
		*scav = 0;
		return 0;
	}

	uintptr_t addr = 0;
	hs_off_addr new_search = 0;
	unsigned pi = (unsigned)((p->search_off & (HS_PALLOC_CHUNK_BYTES - 1)) >> HS_PAGE_SHIFT);

	/* Fast path: a fit may lie inside searchAddr's chunk at or after searchAddr. */
	if (!p->search_addr_off && HS_PALLOC_CHUNK_PAGES - pi >= npages &&
	    hs_palloc_sum_max(p->summary[HS_LEAF_LEVEL][ci]) >= npages) {
		unsigned sidx;
		unsigned j = hs_palloc_bits_find(&hs_pagealloc_chunk_of(p, ci)->alloc, (unsigned)npages, pi,
						 &sidx);
		if (j == HS_PALLOC_NOT_FOUND)
			bad_summary(p, HS_LEAF_LEVEL, ci, npages);
		addr = hs_chunk_base(ci) + ((uintptr_t)j << HS_PAGE_SHIFT);
		new_search = (ci << HS_LOG_PALLOC_CHUNK_BYTES) + ((hs_off_addr)sidx << HS_PAGE_SHIFT);
	} else {
		/* Slow path: the whole tree. */
		addr = hs_pagealloc_find(p, npages, &new_search);
		if (addr == 0) {
			/* Not even one page: the heap is exhausted. */
			if (npages == 1)
				p->search_off = HS_MAX_SEARCH_ADDR;
			*scav = 0;
			return 0;
		}
	}
	*scav = hs_pagealloc_alloc_range(p, addr, npages);
	if (p->search_off < new_search)
		p->search_off = new_search;
	return addr;
}

/* --- free ------------------------------------------------------------------- */

__attribute__((noreturn)) static void bad_free(uintptr_t base, uintptr_t npages, hs_chunk_idx c,
					       unsigned i, unsigned n, unsigned allocated)
{
	hs_print("heapscope: free of [%#lx, %#lx) (%lu pages): chunk %#lx pages [%u, %u) have only %u "
		 "of %u allocated\n",
		 (unsigned long)base, (unsigned long)(base + (npages << HS_PAGE_SHIFT)),
		 (unsigned long)npages, (unsigned long)hs_chunk_base(c), i, i + n, allocated, n);
	hs_throw("pageAlloc: freeing pages that are not allocated");
}

#define HS_CHECK_SEGMENT(c, i, n)                                                           \
	do {                                                                               \
		const hs_palloc_data *d_ = hs_pagealloc_try_chunk_of(p, (c));              \
		unsigned a_ = d_ == NULL ? 0 : hs_page_bits_popcnt_range(&d_->alloc, (i), (n)); \
		if (a_ != (n))                                                             \
			bad_free(base, npages, (c), (i), (n), a_);                         \
	} while (0)

#define HS_FREE_SEGMENT(c, i, n) hs_page_bits_clear_range(&hs_pagealloc_chunk_of(p, (c))->alloc, (i), (n))

void hs_pagealloc_free(hs_pagealloc *p, uintptr_t base, uintptr_t npages, int scavenged)
{
	hs_assert_lock_held(p->lock);

	hs_off_addr off = hs_off(base);
	/* The page count is checked before it is shifted, so that it cannot wrap. */
	if (npages == 0 || npages > (HS_MAX_SEARCH_ADDR >> HS_PAGE_SHIFT) + 1 || off > HS_MAX_SEARCH_ADDR ||
	    (npages << HS_PAGE_SHIFT) - 1 > HS_MAX_SEARCH_ADDR - off)
		bad_free(base, npages, off >> HS_LOG_PALLOC_CHUNK_BYTES, 0, 0, 0);

	if (npages == 1) {
		/* Fast path: one bit, known exactly. */
		hs_chunk_idx c = off >> HS_LOG_PALLOC_CHUNK_BYTES;
		unsigned i = hs_chunk_page_index(base);
		hs_palloc_data *d = hs_pagealloc_try_chunk_of(p, c);
		if (d == NULL || !hs_page_bits_get(&d->alloc, i))
			bad_free(base, npages, c, i, 1, 0);
		hs_page_bits_clear(&d->alloc, i);
	} else {
		HS_FOR_EACH_CHUNK_SEGMENT(p, base, npages, HS_CHECK_SEGMENT);
		HS_FOR_EACH_CHUNK_SEGMENT(p, base, npages, HS_FREE_SEGMENT);
	}
	if (off < p->search_off)
		p->search_off = off;
	if (!scavenged)
		hs_scav_index_mark(&p->scav, off, off + (npages << HS_PAGE_SHIFT));
	hs_pagealloc_update(p, base, npages, 1, 0);
}
