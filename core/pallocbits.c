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

/* Applies fn(word_index, mask) to each word that [i, i+n) touches. */
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

void hs_page_bits_set_range(hs_page_bits *b, unsigned i, unsigned n)
{
	HS_FOR_EACH_WORD_MASK(i, n, HS_SET_BODY);
}

void hs_page_bits_clear_range(hs_page_bits *b, unsigned i, unsigned n)
{
	HS_FOR_EACH_WORD_MASK(i, n, HS_CLEAR_BODY);
}

unsigned hs_page_bits_popcnt_range(const hs_page_bits *b, unsigned i, unsigned n)
{
	unsigned s = 0;
	HS_FOR_EACH_WORD_MASK(i, n, HS_POPCNT_BODY);
	return s;
}

/*
 * Summarize in two passes. The first finds start, end, and every run that touches
 * a word boundary (the free bits at the top of one word plus those at the bottom
 * of the next, across any number of wholly free words). The second looks for a
 * longer run strictly inside a word, but only in words that could hold one: a
 * word with no more free bits than the current max cannot, and a run strictly
 * inside a word is at most 62 long.
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

	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS && max < 62; k++) {
		uint64_t x = b->w[k];
		if (64 - hs_popcount64(x) <= max)
			continue;
		unsigned run = hs_max_run64(~x);
		if (run > max)
			max = run;
	}
	return hs_palloc_sum_pack(start, max, cur);
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
	return size >= npages ? base : HS_PALLOC_NOT_FOUND;
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
