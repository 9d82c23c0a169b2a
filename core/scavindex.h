/*
 * core/scavindex.h — the scavenger index: which chunks may hold free pages not yet
 * returned to the OS. Mirrors Go's scavengeIndex (mgcscavenge.go, Go 1.19/1.20).
 *
 * One bit per chunk over the whole address space (8 MiB of address space on
 * 48-bit, reserved at init and committed as the heap grows, like the summaries).
 * A bit is set when pages of the chunk are freed and cleared when the scavenger
 * finds nothing to release in the chunk, so a set bit means "maybe", and a clear
 * bit means "nothing here". The scavenger searches from the free high-water mark
 * downwards: search_off is at or above the last page freed since the search last
 * passed it, and no chunk above it has its bit set.
 *
 * Invariants (checked by hs_pagealloc_check):
 *   a chunk with a page that is free and not scavenged has its bit set;
 *   every chunk with its bit set lies at or below search_off's chunk, unless
 *   has_search is 0, in which case no bit is set.
 *
 * Locking: protected by the page allocator's lock (heap.lock). Go reads it with
 * atomics so that its background scavenger can search without the lock;
 * heapscope's scavenger takes the lock for each step, which is short.
 */
#ifndef HS_SCAVINDEX_H
#define HS_SCAVINDEX_H

#include <stdint.h>

#include "sys.h"

typedef struct hs_scav_index {
	uint8_t *chunks;	 /* bit ci % 8 of byte ci / 8: chunk ci may have free unscavenged pages */
	uintptr_t min, max;	 /* committed bytes of chunks[], page aligned */
	uintptr_t min_heap_byte; /* the lowest byte of chunks[] the heap has grown into */
	uintptr_t search_off;	 /* the free high-water mark (offset address), if has_search */
	int has_search;
	uintptr_t meta_page;
} hs_scav_index;

int hs_scav_index_init(hs_scav_index *s, uintptr_t meta_page);
void hs_scav_index_destroy(hs_scav_index *s);

/* Commits the bits for chunk-aligned offset range [base, limit); returns the
 * bytes newly committed (counted in stat). */
uintptr_t hs_scav_index_grow(hs_scav_index *s, uintptr_t base, uintptr_t limit, hs_sys_stat *stat);

/* Pages of [base, limit) (offset addresses) were freed: set their chunks' bits
 * and raise the search address to the last of them. */
void hs_scav_index_mark(hs_scav_index *s, uintptr_t base, uintptr_t limit);

/* Nothing left to release in chunk ci. */
void hs_scav_index_clear(hs_scav_index *s, uintptr_t ci);

/* Whether chunk ci's bit is set. */
int hs_scav_index_get(const hs_scav_index *s, uintptr_t ci);

/*
 * The highest chunk at or below the search address with its bit set, in *ci, and
 * the page to search down from in *page (the search address's page in its own
 * chunk, the chunk's last page otherwise). Lowers the search address past the
 * chunks it skipped. Returns 0 when no chunk is marked.
 */
int hs_scav_index_find(hs_scav_index *s, uintptr_t *ci, unsigned *page);

#endif /* HS_SCAVINDEX_H */
