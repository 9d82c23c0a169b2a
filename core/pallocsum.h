/*
 * core/pallocsum.h — pallocSum, the packed summary of a run of pages.
 *
 * Mirrors pallocSum in Go's mpagealloc.go. A summary describes a region of the
 * page bitmap by three counts of free pages: at its start, the longest run
 * anywhere in it, and at its end. Every entry of the page allocator's radix tree
 * is one, so it is packed into 8 bytes and eight siblings fill a cache line.
 *
 *   63  62           2W 2W-1           W W-1             0      W = logMaxPackedValue
 *   +---+-------------+-----------------+----------------+        (21 on 64-bit,
 *   | F |   unused    |       end       |      max       | start    18 on 32-bit)
 *   +---+-------------+-----------------+----------------+
 *
 * Each field holds 0 .. 2^W - 1. A region that is entirely free and as large as
 * the root entry has start == max == end == 2^W, which does not fit; it is
 * encoded by the flag bit F alone (all other bits zero). Since
 * max == 2^W implies start == end == max, pack() only has to look at max.
 *
 * Invariants of a well-formed summary of a region of P pages:
 *   start <= max, end <= max, max <= P,
 *   start == P  <=>  max == P  <=>  end == P   (the region is wholly free),
 *   start + end <= P unless the region is wholly free.
 * A summary of 0 means "no free page" — the zero value is a full region, which is
 * why unmapped but committed summary memory reads as allocated.
 *
 * Pure values: no locking.
 */
#ifndef HS_PALLOCSUM_H
#define HS_PALLOCSUM_H

#include <stdint.h>

#include "../arch/arch.h"

typedef uint64_t hs_palloc_sum;

#define HS_PALLOC_SUM_FLAG ((uint64_t)1 << 63)
#define HS_PALLOC_SUM_MASK (HS_MAX_PACKED_VALUE - 1)

static inline hs_palloc_sum hs_palloc_sum_pack(unsigned start, unsigned max, unsigned end)
{
	if (max == HS_MAX_PACKED_VALUE)
		return HS_PALLOC_SUM_FLAG;
	return ((uint64_t)start & HS_PALLOC_SUM_MASK) |
	       (((uint64_t)max & HS_PALLOC_SUM_MASK) << HS_LOG_MAX_PACKED_VALUE) |
	       (((uint64_t)end & HS_PALLOC_SUM_MASK) << (2 * HS_LOG_MAX_PACKED_VALUE));
}

static inline unsigned hs_palloc_sum_start(hs_palloc_sum s)
{
	if (s & HS_PALLOC_SUM_FLAG)
		return (unsigned)HS_MAX_PACKED_VALUE;
	return (unsigned)(s & HS_PALLOC_SUM_MASK);
}

static inline unsigned hs_palloc_sum_max(hs_palloc_sum s)
{
	if (s & HS_PALLOC_SUM_FLAG)
		return (unsigned)HS_MAX_PACKED_VALUE;
	return (unsigned)((s >> HS_LOG_MAX_PACKED_VALUE) & HS_PALLOC_SUM_MASK);
}

static inline unsigned hs_palloc_sum_end(hs_palloc_sum s)
{
	if (s & HS_PALLOC_SUM_FLAG)
		return (unsigned)HS_MAX_PACKED_VALUE;
	return (unsigned)((s >> (2 * HS_LOG_MAX_PACKED_VALUE)) & HS_PALLOC_SUM_MASK);
}

/* The summary of a wholly free chunk (Go's freeChunkSum). */
#define HS_FREE_CHUNK_SUM                                                                  \
	((hs_palloc_sum)HS_PALLOC_CHUNK_PAGES |                                            \
	 ((hs_palloc_sum)HS_PALLOC_CHUNK_PAGES << HS_LOG_MAX_PACKED_VALUE) |               \
	 ((hs_palloc_sum)HS_PALLOC_CHUNK_PAGES << (2 * HS_LOG_MAX_PACKED_VALUE)))

/*
 * hs_palloc_sum_merge combines n consecutive summaries, each describing a region
 * of 1<<log_pages_per_sum pages, into the summary of their concatenation.
 * Mirrors Go's mergeSummaries. n >= 1.
 */
hs_palloc_sum hs_palloc_sum_merge(const hs_palloc_sum *sums, unsigned n, unsigned log_pages_per_sum);

#endif /* HS_PALLOCSUM_H */
