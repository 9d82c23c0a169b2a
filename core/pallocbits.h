/*
 * core/pallocbits.h — a chunk's page bitmaps: pageBits, pallocBits, pallocData.
 *
 * Mirrors Go's mpallocbits.go. A chunk is 512 pages; its allocation state is a
 * 512-bit bitmap, eight 64-bit words, bit i of word w describing page 64*w + i:
 *
 *   word:  [0]        [1]         ...  [7]
 *   pages: 0..63      64..127          448..511      (bit 0 of a word = lowest page)
 *
 * In pallocBits 1 means allocated and 0 free. pallocData adds a second bitmap of
 * the same shape, `scavenged`, where 1 means the page's memory has been returned
 * to the OS. Invariant of pallocData (checked by the page allocator's checker):
 *
 *   scavenged[i] == 1  implies  alloc[i] == 0
 *
 * which allocRange keeps by clearing the scavenged bits of what it allocates.
 *
 * Ranges are half-open [i, i+n) with n >= 1 and i+n <= 512. Searches return
 * HS_PALLOC_NOT_FOUND (~0u, Go's ^uint(0)) when nothing fits.
 *
 * Locking: a chunk belongs to its page allocator; callers hold that allocator's
 * lock (heap.lock for the real heap).
 */
#ifndef HS_PALLOCBITS_H
#define HS_PALLOCBITS_H

#include <stdint.h>

#include "../arch/arch.h"
#include "../arch/bits.h"
#include "pallocsum.h"

#define HS_PALLOC_CHUNK_WORDS (HS_PALLOC_CHUNK_PAGES / 64)
#define HS_PALLOC_NOT_FOUND (~0u)

typedef struct hs_page_bits {
	uint64_t w[HS_PALLOC_CHUNK_WORDS];
} hs_page_bits;

/* 1 = allocated, 0 = free. */
typedef hs_page_bits hs_palloc_bits;

typedef struct hs_palloc_data {
	hs_palloc_bits alloc;
	hs_page_bits scavenged; /* 1 = released to the OS; only ever set on free pages */
} hs_palloc_data;

_Static_assert(sizeof(hs_palloc_data) == 128, "two 512-bit bitmaps per chunk");

/* --- pageBits: plain bit operations ------------------------------------ */

static inline unsigned hs_page_bits_get(const hs_page_bits *b, unsigned i)
{
	return (unsigned)(b->w[i / 64] >> (i % 64)) & 1;
}

static inline void hs_page_bits_set(hs_page_bits *b, unsigned i)
{
	b->w[i / 64] |= UINT64_C(1) << (i % 64);
}

static inline void hs_page_bits_clear(hs_page_bits *b, unsigned i)
{
	b->w[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

/* Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64. */
static inline uint64_t hs_word_mask(unsigned lo, unsigned hi)
{
	uint64_t upto_hi = hi == 64 ? ~UINT64_C(0) : (UINT64_C(1) << hi) - 1;
	return upto_hi & ~((UINT64_C(1) << lo) - 1);
}

/* Out-of-line forms for ranges that cross a word boundary. */
void hs_page_bits_set_range_slow(hs_page_bits *b, unsigned i, unsigned n);
void hs_page_bits_clear_range_slow(hs_page_bits *b, unsigned i, unsigned n);
unsigned hs_page_bits_popcnt_range_slow(const hs_page_bits *b, unsigned i, unsigned n);

/* Fast path: most ranges (every span of up to a few dozen pages that does not
 * straddle) sit inside one word and take a single masked operation. */
static inline int hs_page_bits_one_word(unsigned i, unsigned n)
{
	return i % 64 + n <= 64;
}

static inline void hs_page_bits_set_range(hs_page_bits *b, unsigned i, unsigned n)
{
	if (hs_page_bits_one_word(i, n))
		b->w[i / 64] |= hs_word_mask(i % 64, i % 64 + n);
	else
		hs_page_bits_set_range_slow(b, i, n);
}

static inline void hs_page_bits_clear_range(hs_page_bits *b, unsigned i, unsigned n)
{
	if (hs_page_bits_one_word(i, n))
		b->w[i / 64] &= ~hs_word_mask(i % 64, i % 64 + n);
	else
		hs_page_bits_clear_range_slow(b, i, n);
}

static inline unsigned hs_page_bits_popcnt_range(const hs_page_bits *b, unsigned i, unsigned n)
{
	if (hs_page_bits_one_word(i, n))
		return hs_popcount64(b->w[i / 64] & hs_word_mask(i % 64, i % 64 + n));
	return hs_page_bits_popcnt_range_slow(b, i, n);
}

static inline void hs_page_bits_set_all(hs_page_bits *b)
{
	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++)
		b->w[k] = ~UINT64_C(0);
}

static inline void hs_page_bits_clear_all(hs_page_bits *b)
{
	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++)
		b->w[k] = 0;
}

/* The 64-bit word holding page i (Go's block64 / pages64). */
static inline uint64_t hs_page_bits_block64(const hs_page_bits *b, unsigned i)
{
	return b->w[i / 64];
}

/* --- pallocBits: summaries and searches -------------------------------- */

/* The (start, max, end) summary of the chunk's free pages. Mirrors summarize. */
hs_palloc_sum hs_palloc_bits_summarize(const hs_palloc_bits *b);

/*
 * The summary after a contiguous change to [i, i+n), derived from the summary
 * before it and the free runs that border the range now, without rescanning the
 * chunk. alloc: the range was wholly free and is now allocated; the old summary's
 * max can only be lost if the run it was carved from was a longest run, and only
 * then is the chunk summarized again. Free: the range was wholly allocated and is
 * now free; the freed run joins its neighbours and the result is exact.
 * Equals hs_palloc_bits_summarize(b) (the checker and tests hold it to that).
 */
hs_palloc_sum hs_palloc_bits_summarize_after(const hs_palloc_bits *b, hs_palloc_sum old, unsigned i,
					     unsigned n, int alloc);

/*
 * hs_palloc_bits_find returns the index of the first run of npages free pages at
 * or after search_idx's word, or HS_PALLOC_NOT_FOUND. search_idx is a hint in
 * Go's sense: every page below it is known to be allocated. *new_search_idx
 * receives the first free page the search saw (HS_PALLOC_NOT_FOUND if none),
 * which is a valid new hint. 1 <= npages <= 512. Mirrors pallocBits.find: one
 * page, up to 64 pages (runs may straddle two words) and more than 64 pages use
 * three different loops.
 */
unsigned hs_palloc_bits_find(const hs_palloc_bits *b, unsigned npages, unsigned search_idx,
			     unsigned *new_search_idx);

/* --- scavenging (core/pallocbits.c; mirrors mgcscavenge.go) ------------- */

/*
 * hs_fill_aligned returns x with every m-bit aligned group that has any bit set
 * turned all ones (m a power of two, 1..64). Mirrors fillAligned: it turns "some
 * 8 KiB page in this physical page is busy" into "the physical page is busy".
 */
uint64_t hs_fill_aligned(uint64_t x, unsigned m);

/*
 * hs_palloc_data_find_scavenge_candidate finds the highest run of free and
 * unscavenged pages in the 64-page words up to and including search_idx's (as
 * Go, it searches from the whole word holding search_idx), in whole min-page aligned
 * groups (min a power of two <= 64), at most max pages long (rounded up to min;
 * 0 means min). The run is extended downwards to the start of a huge page of
 * huge_pages pages when that keeps it inside the free run, so that releasing it
 * does not split a huge page that could otherwise stay whole (0: no huge pages).
 * Returns the number of pages (0 if none) and the first page in *start. Mirrors
 * findScavengeCandidate.
 */
unsigned hs_palloc_data_find_scavenge_candidate(const hs_palloc_data *d, unsigned search_idx, unsigned min,
						unsigned max, unsigned huge_pages, unsigned *start);

/* --- pallocData: allocation keeps the scavenged bitmap consistent ------ */

static inline void hs_palloc_data_alloc_range(hs_palloc_data *d, unsigned i, unsigned n)
{
	hs_page_bits_set_range(&d->alloc, i, n);
	hs_page_bits_clear_range(&d->scavenged, i, n);
}

static inline void hs_palloc_data_alloc_all(hs_palloc_data *d)
{
	hs_page_bits_set_all(&d->alloc);
	hs_page_bits_clear_all(&d->scavenged);
}

#endif /* HS_PALLOCBITS_H */
