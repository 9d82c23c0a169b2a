/*
 * core/pallocbits.c — range operations, summarize and find over a chunk's
 * 512-bit bitmap. See core/pallocbits.h for the layout and core/pagealloc.c for
 * how the page allocator uses a chunk.
 *
 * All loops work a 64-bit word at a time; the intrinsics of arch/bits.h turn
 * "where does the first free page start" and "how many free pages end this word"
 * into single instructions, and the word-straddling cases are handled by carrying
 * the free run at the top of one word into the next.
 */
#include "pallocbits.h"

#include "panic.h"

/* Applies body(word_index, mask) to each word that [i, i+n) touches. */
#define HS_FOR_EACH_WORD_MASK(i, n, body)                                                  \
	do {                                                                               \
		unsigned first_ = (i) / 64, last_ = ((i) + (n) - 1) / 64;                  \
		for (unsigned k_ = first_; k_ <= last_; k_++) {                             \
			unsigned lo_ = k_ == first_ ? (i) % 64 : 0;                         \
			unsigned hi_ = k_ == last_ ? ((i) + (n) - 1) % 64 + 1 : 64;          \
			uint64_t m_ = hs_word_mask(lo_, hi_);                               \
			body(k_, m_);                                                       \
		}                                                                          \
	} while (0)

#define HS_SET_BODY(k, m) (b->w[k] |= (m))
#define HS_CLEAR_BODY(k, m) (b->w[k] &= ~(m))
#define HS_POPCNT_BODY(k, m) (s += hs_popcount64(b->w[k] & (m)))

void hs_page_bits_set_range_slow(hs_page_bits *b, unsigned i, unsigned n)
{
	HS_FOR_EACH_WORD_MASK(i, n, HS_SET_BODY);
}

void hs_page_bits_clear_range_slow(hs_page_bits *b, unsigned i, unsigned n)
{
	HS_FOR_EACH_WORD_MASK(i, n, HS_CLEAR_BODY);
}

unsigned hs_page_bits_popcnt_range_slow(const hs_page_bits *b, unsigned i, unsigned n)
{
	unsigned s = 0;
	HS_FOR_EACH_WORD_MASK(i, n, HS_POPCNT_BODY);
	return s;
}

/*
 * Summarize in two passes. The first finds start, end, and every run that touches
 * a word boundary (the free bits at the top of one word plus those at the bottom
 * of the next, across any number of wholly free words). Those include each
 * word's own edge runs, so the second pass only looks for a longer run strictly
 * inside a word, and only where one could be: strictly between the word's lowest
 * and highest allocated bits (a span of at most 62), and only after a cheap test
 * that some run there beats the current max.
 */
hs_palloc_sum hs_palloc_bits_summarize(const hs_palloc_bits *b)
{
	unsigned start = HS_PALLOC_NOT_FOUND, max = 0, cur = 0;

	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (x == 0) {
			cur += 64;
			continue;
		}
		cur += hs_ctz64(x);
		if (start == HS_PALLOC_NOT_FOUND)
			start = cur;
		if (cur > max)
			max = cur;
		cur = hs_clz64(x);
	}
	if (start == HS_PALLOC_NOT_FOUND)
		return hs_palloc_sum_pack(HS_PALLOC_CHUNK_PAGES, HS_PALLOC_CHUNK_PAGES,
					  HS_PALLOC_CHUNK_PAGES);
	if (cur > max)
		max = cur;

	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (x == 0 || 64 - hs_ctz64(x) - hs_clz64(x) <= max + 2)
			continue;
		if (hs_find_bit_range64(~x, max + 1) < 64)
			max = hs_max_run64(~x);
	}
	return hs_palloc_sum_pack(start, max, cur);
}

/* Free pages immediately below page i (0 when i == 0 or page i-1 is allocated). */
static unsigned free_run_below(const hs_palloc_bits *b, unsigned i)
{
	unsigned run = 0;
	while (i > 0) {
		unsigned have = (i - 1) % 64 + 1; /* pages of this word below i */
		uint64_t x = b->w[(i - 1) / 64] << (64 - have);
		unsigned z = hs_clz64(x);
		if (z < have)
			return run + z;
		run += have;
		i -= have;
	}
	return run;
}

/* Free pages from page i upward (0 when i == 512 or page i is allocated). */
static unsigned free_run_from(const hs_palloc_bits *b, unsigned i)
{
	unsigned run = 0;
	while (i < HS_PALLOC_CHUNK_PAGES) {
		unsigned have = 64 - i % 64; /* pages of this word from i */
		unsigned z = hs_ctz64(b->w[i / 64] >> (i % 64));
		if (z < have)
			return run + z;
		run += have;
		i += have;
	}
	return run;
}

hs_palloc_sum hs_palloc_bits_summarize_after(const hs_palloc_bits *b, hs_palloc_sum old, unsigned i,
					     unsigned n, int alloc)
{
	unsigned left = free_run_below(b, i), right = free_run_from(b, i + n);
	unsigned run = left + n + right, first = i - left;
	unsigned start = hs_palloc_sum_start(old), max = hs_palloc_sum_max(old), end = hs_palloc_sum_end(old);

	if (alloc) {
		/* [first, first+run) was a free run; now [first, i) and [i+n, first+run). */
		if (run >= max)
			return hs_palloc_bits_summarize(b);
		if (first == 0)
			start = left;
		if (first + run == HS_PALLOC_CHUNK_PAGES)
			end = right;
	} else {
		/* [first, first+run) is now one free run. */
		if (run > max)
			max = run;
		if (first == 0)
			start = run;
		if (first + run == HS_PALLOC_CHUNK_PAGES)
			end = run;
	}
	return hs_palloc_sum_pack(start, max, end);
}

/* One page: the first word with a zero bit. */
static unsigned find1(const hs_palloc_bits *b, unsigned search_idx)
{
	for (unsigned k = search_idx / 64; k < HS_PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (~x != 0)
			return k * 64 + hs_ctz64(~x);
	}
	return HS_PALLOC_NOT_FOUND;
}

/*
 * Up to 64 pages: a fit either straddles into this word from the free bits that
 * ended the previous one (`end`), or lies wholly inside this word.
 */
static unsigned find_small_n(const hs_palloc_bits *b, unsigned npages, unsigned search_idx,
			     unsigned *new_search_idx)
{
	unsigned end = 0;

	*new_search_idx = HS_PALLOC_NOT_FOUND;
	for (unsigned k = search_idx / 64; k < HS_PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (~x == 0) {
			end = 0;
			continue;
		}
		if (*new_search_idx == HS_PALLOC_NOT_FOUND)
			*new_search_idx = k * 64 + hs_ctz64(~x);
		if (end + hs_ctz64(x) >= npages)
			return k * 64 - end;
		unsigned j = hs_find_bit_range64(~x, npages);
		if (j < 64)
			return k * 64 + j;
		end = hs_clz64(x);
	}
	return HS_PALLOC_NOT_FOUND;
}

/*
 * More than 64 pages: a fit must span at least two words, so only the runs that
 * touch word boundaries matter. `size` is the length of the run that reaches the
 * top of the previous word, starting at page `base`.
 */
static unsigned find_large_n(const hs_palloc_bits *b, unsigned npages, unsigned search_idx,
			     unsigned *new_search_idx)
{
	unsigned base = 0, size = 0;

	*new_search_idx = HS_PALLOC_NOT_FOUND;
	for (unsigned k = search_idx / 64; k < HS_PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (~x == 0) {
			size = 0;
			continue;
		}
		if (*new_search_idx == HS_PALLOC_NOT_FOUND)
			*new_search_idx = k * 64 + hs_ctz64(~x);
		if (size != 0) {
			unsigned low = hs_ctz64(x);
			if (size + low >= npages)
				return base;
			if (low == 64) {
				size += 64;
				continue;
			}
		}
		size = hs_clz64(x);
		base = k * 64 + 64 - size;
	}
	/* A run reaching the chunk's end was already returned when its last word was
	 * seen: a run that starts in the last word is shorter than 64 < npages. */
	return HS_PALLOC_NOT_FOUND;
}

unsigned hs_palloc_bits_find(const hs_palloc_bits *b, unsigned npages, unsigned search_idx,
			     unsigned *new_search_idx)
{
	if (npages == 1) {
		unsigned i = find1(b, search_idx);
		*new_search_idx = i;
		return i;
	}
	if (npages <= 64)
		return find_small_n(b, npages, search_idx, new_search_idx);
	return find_large_n(b, npages, search_idx, new_search_idx);
}

/*
 * fillAligned, in two steps. First, for each m-bit group, compute whether it has
 * any set bit: with c holding every bit of the group but the top one, (x & c) + c
 * carries into the top bit exactly when a low bit is set; or-ing x and c back in
 * and complementing leaves the top bit of each group clear when the group has a
 * set bit, and set when it is empty. Second, spread each group's verdict over
 * the whole group: subtracting the verdict shifted down to the group's lowest bit
 * fills the group below its top bit, and the final complement gives all ones for
 * busy groups and zeros for empty ones.
 */
uint64_t hs_fill_aligned(uint64_t x, unsigned m)
{
	uint64_t c;
	switch (m) {
	case 1: return x;
	case 2: c = UINT64_C(0x5555555555555555); break;
	case 4: c = UINT64_C(0x7777777777777777); break;
	case 8: c = UINT64_C(0x7f7f7f7f7f7f7f7f); break;
	case 16: c = UINT64_C(0x7fff7fff7fff7fff); break;
	case 32: c = UINT64_C(0x7fffffff7fffffff); break;
	case 64: c = UINT64_C(0x7fffffffffffffff); break;
	default:
		hs_print("heapscope: fillAligned m = %u\n", m);
		hs_throw("fillAligned: m must be a power of two <= 64");
	}
	x = ~((((x & c) + c) | x) | c);
	return ~((x - (x >> (m - 1))) | x);
}

/* Busy pages of word k for scavenging: allocated, already scavenged, or in a
 * min-page group that has either. */
static uint64_t scav_busy(const hs_palloc_data *d, unsigned k, unsigned min)
{
	return hs_fill_aligned(d->scavenged.w[k] | d->alloc.w[k], min);
}

unsigned hs_palloc_data_find_scavenge_candidate(const hs_palloc_data *d, unsigned search_idx, unsigned min,
						unsigned max, unsigned huge_pages, unsigned *start)
{
	if (min == 0 || (min & (min - 1)) != 0 || min > 64) {
		hs_print("heapscope: min = %u\n", min);
		hs_throw("findScavengeCandidate: min must be a power of two <= 64");
	}
	max = max == 0 ? min : (max + min - 1) & ~(min - 1);

	/* The highest word at or below search_idx with a free group. */
	int k = (int)(search_idx / 64);
	while (k >= 0 && scav_busy(d, (unsigned)k, min) == ~UINT64_C(0))
		k--;
	if (k < 0)
		return 0;

	/* Skip the busy bits at the top of word k; the run ends there. Then count
	 * its free bits downwards, into lower words while they are wholly free. */
	uint64_t x = scav_busy(d, (unsigned)k, min);
	unsigned top_busy = hs_clz64(~x);
	unsigned end = (unsigned)k * 64 + (64 - top_busy), run;
	if ((x << top_busy) != 0) {
		run = hs_clz64(x << top_busy);
	} else {
		run = 64 - top_busy;
		for (int j = k - 1; j >= 0; j--) {
			uint64_t y = scav_busy(d, (unsigned)j, min);
			run += hs_clz64(y);
			if (y != 0)
				break;
		}
	}

	unsigned size = run < max ? run : max;
	unsigned first = end - size;

	/* If a huge page boundary falls inside [first, end) and the free run reaches
	 * down to the huge page holding first, take the run from that huge page's
	 * start: it is free anyway, and leaving its bottom behind would keep a
	 * partly released huge page. */
	if (huge_pages > 1) {
		unsigned above = (first + huge_pages - 1) & ~(huge_pages - 1);
		if (above <= end) {
			unsigned below = first & ~(huge_pages - 1);
			if (below >= end - run) {
				size += first - below;
				first = below;
			}
		}
	}
	*start = first;
	return size;
}
