/*
 * heapscope/pagealloc.h — the metadata-only page allocator, a supported API.
 *
 * This is heapscope's copy of Go's page allocator (runtime.pageAlloc) running over
 * a simulated address space: it keeps the chunk bitmaps, the radix tree of
 * summaries, the in-use ranges and searchAddr exactly as the real heap does, but
 * reserves nothing for the pages themselves, so any address of the build's
 * configuration (linux/amd64, linux/arm64 or 32-bit; see hs_pam_arch()) can be
 * used. Tests, the event model and the TUI build on it; docs/pagealloc.md
 * describes the structure.
 *
 * Units: addresses are plain integers of the configuration's address space; a page
 * is 8 KiB (hs_pam_page_size()); a chunk is 512 pages. Ranges are half-open.
 *
 * Errors: functions returning int give 0 or an errno value (EINVAL for arguments
 * that do not describe a valid state, ENOMEM when metadata cannot be reserved).
 * An allocation that cannot be satisfied returns 0 and changes nothing. Freeing
 * pages that are not allocated is a caller bug: it is reported on stderr with the
 * address and the process aborts, as in the real heap.
 *
 * Thread safety: each allocator has its own lock, taken by every call; distinct
 * allocators are independent.
 */
#ifndef HEAPSCOPE_PAGEALLOC_H
#define HEAPSCOPE_PAGEALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_pam hs_pam;

/* Pages [i, i+n) of one chunk. */
typedef struct hs_pam_bit_range {
	unsigned i, n;
} hs_pam_bit_range;

/*
 * The initial state of one chunk for hs_pam_new (Go's NewPageAlloc): the chunk at
 * `base` (chunk-aligned) is grown into the allocator, then the `scav` ranges are
 * marked scavenged and the `alloc` ranges allocated (allocation clears scavenged).
 */
typedef struct hs_pam_chunk_init {
	uintptr_t base;
	const hs_pam_bit_range *alloc;
	size_t nalloc;
	const hs_pam_bit_range *scav;
	size_t nscav;
} hs_pam_chunk_init;

/* A unpacked summary (Go's pallocSum): free pages at the start, longest run, at the end. */
typedef struct hs_pam_sum {
	unsigned start, max, end;
} hs_pam_sum;

/* A page cache taken by hs_pam_alloc_to_cache (Go's pageCache). */
typedef struct hs_pam_page_cache {
	uintptr_t base;	/* 64-page aligned; 0 when the heap had no free page */
	uint64_t cache; /* bit i: page base + i*pageSize is free in the cache */
	uint64_t scav;	/* bit i: ... and scavenged */
} hs_pam_page_cache;

typedef struct hs_pam_addr_range {
	uintptr_t base, limit;
} hs_pam_addr_range;

/* --- the configuration this library was built for ------------------------ */
const char *hs_pam_arch(void);		/* "linux/amd64", "linux/arm64" or "32-bit" */
unsigned hs_pam_heap_addr_bits(void);
uintptr_t hs_pam_arena_base_offset(void);
unsigned hs_pam_levels(void);		/* summary levels: 5, or 4 on 32-bit */
unsigned hs_pam_level_bits(unsigned level);	/* radix bits of the level (root: the rest) */
unsigned hs_pam_level_log_pages(unsigned level); /* log2 pages one entry covers */
uintptr_t hs_pam_level_entries(unsigned level);
uintptr_t hs_pam_page_size(void);	/* 8192 */
unsigned hs_pam_chunk_pages(void);	/* 512 */
uintptr_t hs_pam_chunk_bytes(void);	/* 4 MiB */
uint64_t hs_pam_chunk_index(uintptr_t addr);
uintptr_t hs_pam_chunk_base(uint64_t chunk_index);
/* The index in summary level `level` of the entry covering addr. */
uint64_t hs_pam_level_index(unsigned level, uintptr_t addr);
uintptr_t hs_pam_level_index_base(unsigned level, uint64_t index);

/* --- lifetime ----------------------------------------------------------- */
/* *out receives a new allocator grown into the given chunks (which may be none). */
int hs_pam_new(const hs_pam_chunk_init *chunks, size_t nchunks, hs_pam **out);
void hs_pam_destroy(hs_pam *p);

/* --- operations (Go's pageAlloc methods) ------------------------------------ */
/* Adds [base, base+size), rounded out to chunks; EINVAL if it leaves the address
 * space, contains address 0, or overlaps what was grown before. */
int hs_pam_grow(hs_pam *p, uintptr_t base, uintptr_t size);
/* First-fit npages (>= 1); 0 if none. *scav (may be NULL): scavenged bytes taken. */
uintptr_t hs_pam_alloc(hs_pam *p, uintptr_t npages, uintptr_t *scav);
void hs_pam_free(hs_pam *p, uintptr_t base, uintptr_t npages);
hs_pam_page_cache hs_pam_alloc_to_cache(hs_pam *p);
/* Allocates from a cache without the allocator's lock; 0 if nothing fits. */
uintptr_t hs_pam_cache_alloc(hs_pam_page_cache *c, uintptr_t npages, uintptr_t *scav);
void hs_pam_cache_flush(hs_pam *p, hs_pam_page_cache *c);

/*
 * Releases at least nbytes of free pages to the (simulated) OS if there are that
 * many, highest addresses first, through the scavenger index; returns the bytes
 * marked scavenged. Mirrors pageAlloc.scavenge.
 */
uintptr_t hs_pam_scavenge(hs_pam *p, uintptr_t nbytes);
/* Whether the scavenger index has the chunk marked as maybe holding free,
 * unscavenged pages. */
int hs_pam_scav_marked(hs_pam *p, uint64_t chunk_index);

/* --- inspection ----------------------------------------------------------- */
/* Summary at (level, index); EINVAL if outside the levels or never grown into
 * (reads of ungrown entries would fault). */
int hs_pam_summary(hs_pam *p, unsigned level, uint64_t index, hs_pam_sum *out);
/* The chunk's allocation and scavenged bitmaps (8 words each, bit i of word w is
 * page 64w+i); EINVAL if the chunk was never grown into. */
int hs_pam_chunk_bitmaps(hs_pam *p, uint64_t chunk_index, uint64_t alloc[8], uint64_t scav[8]);
/* Copies up to max in-use ranges into out; returns how many there are. */
size_t hs_pam_in_use(hs_pam *p, hs_pam_addr_range *out, size_t max);
/* searchAddr: every free page lies at or above it. Meaningless when exhausted. */
uintptr_t hs_pam_search_addr(hs_pam *p);
/* Whether searches start at searchAddr (on, the default) or at the root of the
 * summary tree every time (off: HEAPSCOPE_SEARCH_ADDR=off in the heap). The
 * results are the same either way. */
void hs_pam_set_search_addr(hs_pam *p, int on);
/* Non-zero when searchAddr says the heap has no free page. */
int hs_pam_exhausted(hs_pam *p);
/* Bytes of metadata committed (summaries, chunk maps, range lists). */
uint64_t hs_pam_metadata_bytes(hs_pam *p);
/* Runs the invariant checker: 0, or -1 with a one-line description in msg. */
int hs_pam_check(hs_pam *p, char *msg, size_t msglen);

/* --- summaries as values ----------------------------------------------------- */
/* Summarizes a 512-bit bitmap (1 = allocated). */
hs_pam_sum hs_pam_summarize(const uint64_t bits[8]);

#ifdef __cplusplus
}
#endif

#endif /* HEAPSCOPE_PAGEALLOC_H */
