/*
 * core/pagealloc.h — the page allocator's internal interface. The overview of
 * the structure, its invariants and its algorithms is the essay at the top of
 * core/pagealloc.c; the public metadata-only interface is
 * include/heapscope/pagealloc.h.
 *
 * Functions here take real addresses and page counts, as Go's do, and every one
 * except init/destroy requires the allocator's lock (heap.lock for the real heap);
 * they assert it in debug builds.
 */
#ifndef HS_PAGEALLOC_H
#define HS_PAGEALLOC_H

#include <stdint.h>

#include "../arch/arch.h"
#include "addrrange.h"
#include "lock.h"
#include "pallocbits.h"
#include "pallocsum.h"
#include "scavindex.h"
#include "sys.h"

/*
 * hs_off_addr: an address in Go's offset address space, stored linearized as
 * addr - arenaBaseOffset (mod 2^64), so that integer order is Go's offAddr order
 * and every valid value is below 1 << heapAddrBits. Fields of this type are
 * named *_off.
 */
typedef uintptr_t hs_off_addr;

/* Index of a chunk in the offset address space (Go's chunkIdx). */
typedef uintptr_t hs_chunk_idx;

/* The highest offset address; searchAddr takes it when the heap is exhausted. */
#define HS_MAX_SEARCH_ADDR ((hs_off_addr)HS_MAX_OFF_ADDR_INDEX)

static inline hs_off_addr hs_off(uintptr_t addr)
{
	return addr - HS_ARENA_BASE_OFFSET;
}

static inline uintptr_t hs_off_to_addr(hs_off_addr off)
{
	return off + HS_ARENA_BASE_OFFSET;
}

static inline hs_chunk_idx hs_chunk_index(uintptr_t addr)
{
	return hs_off(addr) >> HS_LOG_PALLOC_CHUNK_BYTES;
}

static inline uintptr_t hs_chunk_base(hs_chunk_idx ci)
{
	return hs_off_to_addr(ci << HS_LOG_PALLOC_CHUNK_BYTES);
}

static inline unsigned hs_chunk_page_index(uintptr_t addr)
{
	return (unsigned)((addr & (HS_PALLOC_CHUNK_BYTES - 1)) >> HS_PAGE_SHIFT);
}

static inline uintptr_t hs_chunk_l1(hs_chunk_idx ci)
{
	return HS_PALLOC_CHUNKS_L1_BITS == 0 ? 0 : ci >> HS_PALLOC_CHUNKS_L2_BITS;
}

static inline uintptr_t hs_chunk_l2(hs_chunk_idx ci)
{
	return ci & (((uintptr_t)1 << HS_PALLOC_CHUNKS_L2_BITS) - 1);
}

/* Per-level shape of the radix tree (Go's levelBits, levelShift, levelLogPages). */
static inline unsigned hs_level_bits(unsigned l)
{
	return l == 0 ? HS_SUMMARY_L0_BITS : HS_SUMMARY_LEVEL_BITS;
}

static inline unsigned hs_level_shift(unsigned l)
{
	return HS_HEAP_ADDR_BITS - HS_SUMMARY_L0_BITS - l * HS_SUMMARY_LEVEL_BITS;
}

static inline unsigned hs_level_log_pages(unsigned l)
{
	return HS_LOG_PALLOC_CHUNK_PAGES + (HS_SUMMARY_LEVELS - 1 - l) * HS_SUMMARY_LEVEL_BITS;
}

/* Number of entries of summary level l over the whole address space. */
static inline uintptr_t hs_level_entries(unsigned l)
{
	return (uintptr_t)1 << (HS_HEAP_ADDR_BITS - hs_level_shift(l));
}

#define HS_LEAF_LEVEL (HS_SUMMARY_LEVELS - 1)

typedef struct hs_pagealloc {
	/*
	 * Radix tree of summaries, one array per level over the whole address space,
	 * reserved at init and committed in blocks as the heap grows. summary_len[l]
	 * is one past the highest entry ever grown into (Go's len(p.summary[l]));
	 * entries outside the in-use ranges read as 0 where committed and fault
	 * where not, so iterate using in_use. Protected by heap.lock.
	 */
	hs_palloc_sum *summary[HS_SUMMARY_LEVELS];
	uintptr_t summary_len[HS_SUMMARY_LEVELS];

	/*
	 * The chunk map: a sparse two-level array of per-chunk bitmaps; a second-level
	 * block is allocated on first growth into it and never freed while the
	 * allocator lives (never transitions back to NULL). Protected by heap.lock.
	 */
	hs_palloc_data *chunks[(size_t)1 << HS_PALLOC_CHUNKS_L1_BITS];

	/*
	 * Every free page in the heap lies at or above search_off, or search_off is
	 * HS_MAX_SEARCH_ADDR. Apart from that value it lies inside in_use.
	 * Protected by heap.lock.
	 */
	hs_off_addr search_off;

	/*
	 * Set: searches ignore search_off and walk from the root every time
	 * (HEAPSCOPE_SEARCH_ADDR=off, an experiment). search_off is still kept,
	 * so the invariant above holds, and since no free page lies below it the
	 * first fit found is the same; only the search is longer. Written once
	 * before the allocator is used, protected by heap.lock after.
	 */
	int search_addr_off;

	/* Chunk indices [start, end) bound everything ever grown. Protected by heap.lock. */
	hs_chunk_idx start, end;

	/* Address ranges passed to grow, merged. Protected by heap.lock. */
	hs_addr_ranges in_use;

	/* Chunks that may hold free pages not yet released to the OS. heap.lock. */
	hs_scav_index scav;

	hs_mutex *lock;		     /* heap.lock, or the owner's lock in metadata-only mode */
	hs_sys_stat *sys_stat;	     /* where metadata memory is counted */
	uintptr_t summary_mapped_ready; /* bytes of summary committed; protected by heap.lock */
	uintptr_t meta_page_size;    /* granularity of committing summary memory */
	unsigned scav_min_pages;     /* pages per physical page: the scavenger's unit */
	int release_lazy;	     /* release with MADV_FREE instead of MADV_DONTNEED */
	uintptr_t scav_in_flight;    /* pages taken by a scavenger while it has dropped the lock */
	int metadata_only;	     /* never touches heap pages (Go's test mode) */
} hs_pagealloc;

int hs_pagealloc_init(hs_pagealloc *p, hs_mutex *lock, hs_sys_stat *stat, int metadata_only);
void hs_pagealloc_destroy(hs_pagealloc *p);

static inline hs_palloc_data *hs_pagealloc_try_chunk_of(const hs_pagealloc *p, hs_chunk_idx ci)
{
	hs_palloc_data *l2 = p->chunks[hs_chunk_l1(ci)];
	return l2 == NULL ? NULL : &l2[hs_chunk_l2(ci)];
}

static inline hs_palloc_data *hs_pagealloc_chunk_of(const hs_pagealloc *p, hs_chunk_idx ci)
{
	return &p->chunks[hs_chunk_l1(ci)][hs_chunk_l2(ci)];
}

/* Grows the allocator into [base, base+size), rounded out to chunks; the range
 * must not overlap anything grown before. New pages are free and scavenged. */
void hs_pagealloc_grow(hs_pagealloc *p, uintptr_t base, uintptr_t size);

/* Recomputes the summaries over [base, base+npages*pageSize) after the bitmaps
 * changed. contig: the change was one contiguous alloc (alloc != 0) of pages that
 * were all free, or free of pages that were all allocated; otherwise anything. */
void hs_pagealloc_update(hs_pagealloc *p, uintptr_t base, uintptr_t npages, int contig, int alloc);

/* Marks [base, base+npages) allocated; returns how many of its bytes were scavenged. */
uintptr_t hs_pagealloc_alloc_range(hs_pagealloc *p, uintptr_t base, uintptr_t npages);

/* Address-ordered first fit over the radix tree; 0 if nothing fits. *new_search_off
 * receives a valid (possibly higher) searchAddr. */
uintptr_t hs_pagealloc_find(hs_pagealloc *p, uintptr_t npages, hs_off_addr *new_search_off);

/* Allocates npages (>= 1); returns the base or 0 (nothing changed). *scav receives
 * the bytes of the run that were scavenged. */
uintptr_t hs_pagealloc_alloc(hs_pagealloc *p, uintptr_t npages, uintptr_t *scav);

/* Frees [base, base+npages); throws, naming the address, if any page of it is
 * not allocated. scavenged: the pages come back from the scavenger (their memory
 * is released), so the scavenger index is not told about them. */
void hs_pagealloc_free(hs_pagealloc *p, uintptr_t base, uintptr_t npages, int scavenged);

/* --- core/pagescav.c: the page allocator's half of the scavenger ----------------- */

/*
 * Releases up to max bytes (rounded up to pages) from chunk ci, searching down
 * from page search_idx: the highest free, unscavenged run of whole physical
 * pages. Returns the bytes released; 0 clears the chunk from the index. In the
 * real heap the pages are released with sysUnused with the lock dropped (it is
 * held on entry and on return). Mirrors scavengeOne.
 */
uintptr_t hs_pagealloc_scavenge_one(hs_pagealloc *p, hs_chunk_idx ci, unsigned search_idx, uintptr_t max);
/* Gives back a run the scavenger took (within one chunk), released: freed and
 * marked scavenged. The model replays a scav_range event with it. */
void hs_pagealloc_free_released(hs_pagealloc *p, uintptr_t addr, uintptr_t npages);

/* Releases at least nbytes if there is that much to release, highest addresses
 * first; returns the bytes released. account (may be NULL) is told each run's
 * bytes with the lock held, before it is dropped for the next run. Lock held.
 * Mirrors pageAlloc.scavenge. */
uintptr_t hs_pagealloc_scavenge(hs_pagealloc *p, uintptr_t nbytes, void (*account)(uintptr_t bytes));

/* The smallest in-use offset address >= off, or HS_MAX_SEARCH_ADDR. */
hs_off_addr hs_pagealloc_find_mapped_addr(const hs_pagealloc *p, hs_off_addr off);

/* --- core/pagecache.c --------------------------------------------------- */

#define HS_PAGE_CACHE_PAGES 64

/*
 * A run of up to 64 pages handed to one mcache (Go's pageCache): the 64-page
 * aligned block at `base`; bit i of `cache` set means page i is free in the
 * cache; bit i of `scav` that it is also scavenged. scav is a subset of cache.
 * Owned by one mcache: no lock for alloc; flush needs heap.lock.
 */
typedef struct hs_page_cache {
	uintptr_t base;
	uint64_t cache;
	uint64_t scav;
} hs_page_cache;

hs_page_cache hs_pagealloc_alloc_to_cache(hs_pagealloc *p);
uintptr_t hs_page_cache_alloc(hs_page_cache *c, uintptr_t npages, uintptr_t *scav);
void hs_page_cache_flush(hs_page_cache *c, hs_pagealloc *p);

/* --- core/pagealloc_check.c ------------------------------------------- */

/*
 * Checks every invariant of the allocator: each summary equals the merge of its
 * children, each leaf the summary of its chunk, no page is both allocated and
 * scavenged, no free page lies below searchAddr, start/end bound in_use. Returns 0,
 * or -1 with a one-line description of the first violation in msg.
 */
int hs_pagealloc_check(const hs_pagealloc *p, char *msg, size_t msglen);

/*
 * A hash of every summary level over the in-use ranges, in address order, and
 * the number of chunks grown into. The real heap's tracer and the model compute
 * it with this one function, so equal digests mean equal summaries. Caller
 * holds the allocator's lock.
 */
uint64_t hs_pagealloc_digest(const hs_pagealloc *p, uint64_t *nchunks);
/* The checker restricted to the chunks covering [base, limit) and the summary
 * entries above them: what a change there can have broken. */
int hs_pagealloc_check_range(const hs_pagealloc *p, uintptr_t base, uintptr_t limit, char *msg, size_t msglen);

#endif /* HS_PAGEALLOC_H */
