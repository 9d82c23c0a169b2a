/*
 * tests/unit/test_pallocbits.c — a chunk's bitmaps (core/pallocbits.h): range
 * set/clear/popcount, hs_palloc_bits_summarize, hs_palloc_bits_find and
 * hs_palloc_data_alloc_range.
 *
 * Expectations come from Go 1.19's mpallocbits_test.go (TestPallocBitsAllocRange,
 * TestMallocBitsPopcntRange, TestPallocBitsSummarize, TestPallocBitsAlloc,
 * TestPallocBitsFree), from cases worked out by hand from the header's contract,
 * and from the page-at-a-time oracles in oracle.c (oracle_summarize,
 * oracle_find). Bitmaps are built with a bit-at-a-time helper here, not with the
 * code under test.
 *
 * find's search_idx is a hint that every page below it is allocated; cases only
 * use hints that satisfy that (checked by the test itself), and new_search_idx
 * is then the first free page at or after search_idx.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "oracle.h"
#include "pallocbits.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NF HS_PALLOC_NOT_FOUND
#define ONES (~UINT64_C(0))
#define RANDOM_SEED UINT64_C(0x66696e6462697473) /* "findbits" */
#define RANDOM_BITMAPS 20000

/* A half-open page range [i, i+n); lists end at the first n == 0. */
struct range {
	unsigned i, n;
};

#define MAX_RANGES 32

struct sum3 {
	unsigned start, max, end;
};

/* --- helpers ---------------------------------------------------------- */

static void put_bits(uint64_t w[8], unsigned i, unsigned n, int value)
{
	for (unsigned p = i; p < i + n; p++) {
		if (value)
			w[p / 64] |= UINT64_C(1) << (p % 64);
		else
			w[p / 64] &= ~(UINT64_C(1) << (p % 64));
	}
}

/* Pages in the listed ranges allocated, the rest free. */
static void bits_alloc_ranges(hs_palloc_bits *b, const struct range *r)
{
	memset(b, 0, sizeof *b);
	for (; r->n != 0; r++)
		put_bits(b->w, r->i, r->n, 1);
}

/* Pages in the listed ranges free, the rest allocated. */
static void bits_free_ranges(hs_palloc_bits *b, const struct range *r)
{
	memset(b, 0xff, sizeof *b);
	for (; r->n != 0; r++)
		put_bits(b->w, r->i, r->n, 0);
}

static void check_words(const uint64_t got[8], const uint64_t want[8], const char *what)
{
	for (unsigned k = 0; k < 8; k++) {
		if (got[k] != want[k]) {
			for (unsigned j = 0; j < 8; j++)
				print_message("  word %u: got %#018" PRIx64 " want %#018" PRIx64 "%s\n", j,
					      got[j], want[j], got[j] != want[j] ? "  <--" : "");
			fail_msg("%s: bitmaps differ at word %u", what, k);
		}
	}
}

static void check_sum(hs_palloc_sum s, struct sum3 want, const char *what)
{
	unsigned st = hs_palloc_sum_start(s), mx = hs_palloc_sum_max(s), en = hs_palloc_sum_end(s);
	if (st != want.start || mx != want.max || en != want.end)
		fail_msg("%s: summary (start %u, max %u, end %u), want (%u, %u, %u)", what, st, mx, en,
			 want.start, want.max, want.end);
}

static void dump_words(const uint64_t w[8])
{
	for (unsigned k = 0; k < 8; k++)
		print_message("  w[%u] = %#018" PRIx64 "\n", k, w[k]);
}

/* --- set_range / clear_range -------------------------------------------- */

enum range_op { OP_SET, OP_CLEAR };

struct range_op_case {
	const char *name;
	int start_full; /* initial state: 0 all free, 1 all allocated */
	struct range init[4]; /* then these pages flipped to the other state */
	enum range_op op;
	unsigned i, n;
	uint64_t want[8];
};

static const struct range_op_case range_op_cases[] = {
	/* Go's TestPallocBitsAllocRange */
	{ "set one low", 0, { { 0, 0 } }, OP_SET, 0, 1, { 1 } },
	{ "set one high", 0, { { 0, 0 } }, OP_SET, 511, 1, { 0, 0, 0, 0, 0, 0, 0, UINT64_C(1) << 63 } },
	{ "set inner", 0, { { 0, 0 } }, OP_SET, 129, 5, { 0, 0, 0x3e } },
	{ "set aligned", 0, { { 0, 0 } }, OP_SET, 128, 128, { 0, 0, ONES, ONES } },
	{ "set begin", 0, { { 0, 0 } }, OP_SET, 0, 321, { ONES, ONES, ONES, ONES, ONES, 1 } },
	{ "set end", 0, { { 0, 0 } }, OP_SET, 319, 193,
	  { 0, 0, 0, 0, UINT64_C(1) << 63, ONES, ONES, ONES } },
	{ "set all", 0, { { 0, 0 } }, OP_SET, 0, 512, { ONES, ONES, ONES, ONES, ONES, ONES, ONES, ONES } },
	/* more */
	{ "set bit 63", 0, { { 0, 0 } }, OP_SET, 63, 1, { UINT64_C(0x8000000000000000) } },
	{ "set bit 64", 0, { { 0, 0 } }, OP_SET, 64, 1, { 0, 1 } },
	{ "set straddling words 0/1", 0, { { 0, 0 } }, OP_SET, 60, 8,
	  { UINT64_C(0xf000000000000000), 0xf } },
	{ "set across three words", 0, { { 0, 0 } }, OP_SET, 100, 100,
	  { 0, UINT64_C(0xfffffff000000000), ONES, 0xff } },
	{ "set one whole word", 0, { { 0, 0 } }, OP_SET, 192, 64, { 0, 0, 0, ONES } },
	{ "set top half of last word", 0, { { 0, 0 } }, OP_SET, 480, 32,
	  { 0, 0, 0, 0, 0, 0, 0, UINT64_C(0xffffffff00000000) } },
	{ "set over already set", 0, { { 0, 10 } }, OP_SET, 5, 10, { 0x7fff } },
	{ "set keeps other bits", 0, { { 0, 1 }, { 511, 1 } }, OP_SET, 200, 2,
	  { 1, 0, 0, UINT64_C(0x0000000000000300), 0, 0, 0, UINT64_C(1) << 63 } },
	{ "clear bit 0", 1, { { 0, 0 } }, OP_CLEAR, 0, 1,
	  { UINT64_C(0xfffffffffffffffe), ONES, ONES, ONES, ONES, ONES, ONES, ONES } },
	{ "clear bit 63", 1, { { 0, 0 } }, OP_CLEAR, 63, 1,
	  { UINT64_C(0x7fffffffffffffff), ONES, ONES, ONES, ONES, ONES, ONES, ONES } },
	{ "clear bit 64", 1, { { 0, 0 } }, OP_CLEAR, 64, 1,
	  { ONES, UINT64_C(0xfffffffffffffffe), ONES, ONES, ONES, ONES, ONES, ONES } },
	{ "clear bit 511", 1, { { 0, 0 } }, OP_CLEAR, 511, 1,
	  { ONES, ONES, ONES, ONES, ONES, ONES, ONES, UINT64_C(0x7fffffffffffffff) } },
	{ "clear straddling words 0/1", 1, { { 0, 0 } }, OP_CLEAR, 60, 8,
	  { UINT64_C(0x0fffffffffffffff), UINT64_C(0xfffffffffffffff0), ONES, ONES, ONES, ONES, ONES,
	    ONES } },
	{ "clear across three words", 1, { { 0, 0 } }, OP_CLEAR, 100, 100,
	  { ONES, UINT64_C(0x0000000fffffffff), 0, UINT64_C(0xffffffffffffff00), ONES, ONES, ONES,
	    ONES } },
	{ "clear all", 1, { { 0, 0 } }, OP_CLEAR, 0, 512, { 0 } },
	{ "clear partly clear", 0, { { 0, 10 } }, OP_CLEAR, 5, 10, { 0x1f } },
	{ "clear already clear", 0, { { 0, 0 } }, OP_CLEAR, 3, 200, { 0 } },
	{ "clear keeps other bits", 1, { { 0, 0 } }, OP_CLEAR, 448, 63,
	  { ONES, ONES, ONES, ONES, ONES, ONES, ONES, UINT64_C(0x8000000000000000) } },
};

static void test_set_clear_range(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(range_op_cases); k++) {
		const struct range_op_case *c = &range_op_cases[k];
		hs_page_bits b;
		if (c->start_full)
			bits_free_ranges(&b, c->init);
		else
			bits_alloc_ranges(&b, c->init);
		if (c->op == OP_SET)
			hs_page_bits_set_range(&b, c->i, c->n);
		else
			hs_page_bits_clear_range(&b, c->i, c->n);
		check_words(b.w, c->want, c->name);
	}
}

/* Every (i, n) with a single-word or two-word range, against a bit loop. */
static void test_set_clear_range_exhaustive_small(void **state)
{
	(void)state;
	for (unsigned i = 0; i < 512; i++) {
		for (unsigned n = 1; n <= 130 && i + n <= 512; n++) {
			hs_page_bits b, want;

			memset(&b, 0, sizeof b);
			memset(&want, 0, sizeof want);
			put_bits(want.w, i, n, 1);
			hs_page_bits_set_range(&b, i, n);
			if (memcmp(&b, &want, sizeof b) != 0) {
				print_message("set_range(%u, %u)\n", i, n);
				check_words(b.w, want.w, "set_range");
			}
			memset(&b, 0xff, sizeof b);
			memset(&want, 0xff, sizeof want);
			put_bits(want.w, i, n, 0);
			hs_page_bits_clear_range(&b, i, n);
			if (memcmp(&b, &want, sizeof b) != 0) {
				print_message("clear_range(%u, %u)\n", i, n);
				check_words(b.w, want.w, "clear_range");
			}
		}
	}
}

/* Go's TestPallocBitsFree: all allocated but free_before; clear npages at each index. */
struct free_case {
	const char *name;
	struct range free_before[4];
	unsigned npages;
	unsigned frees[8], nfrees;
	struct range free_after[4];
};

static const struct free_case free_cases[] = {
	{ "SomeFree", { { 0, 32 }, { 64, 32 }, { 100, 1 } }, 1, { 32 }, 1,
	  { { 0, 33 }, { 64, 32 }, { 100, 1 } } },
	{ "NoneFree1", { { 0, 0 } }, 1, { 0, 1, 2, 3, 4, 5 }, 6, { { 0, 6 } } },
	{ "NoneFree2", { { 0, 0 } }, 2, { 0, 2, 4, 6, 8, 10 }, 6, { { 0, 12 } } },
	{ "NoneFree5", { { 0, 0 } }, 5, { 0, 5, 10, 15, 20 }, 5, { { 0, 25 } } },
	{ "NoneFree64", { { 0, 0 } }, 64, { 0, 64, 128 }, 3, { { 0, 192 } } },
	{ "NoneFree65", { { 0, 0 } }, 65, { 0, 65, 130 }, 3, { { 0, 195 } } },
};

static void test_clear_range_go_free(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(free_cases); k++) {
		const struct free_case *c = &free_cases[k];
		hs_palloc_bits b, want;
		bits_free_ranges(&b, c->free_before);
		for (unsigned j = 0; j < c->nfrees; j++)
			hs_page_bits_clear_range(&b, c->frees[j], c->npages);
		bits_free_ranges(&want, c->free_after);
		check_words(b.w, want.w, c->name);
	}
}

/* --- popcnt_range -------------------------------------------------------- */

struct popcnt_query {
	unsigned i, n, want;
};

struct popcnt_case {
	const char *name;
	struct range init[MAX_RANGES]; /* allocated */
	struct popcnt_query q[16];     /* ends at n == 0 */
};

static const struct popcnt_case popcnt_cases[] = {
	/* Go's TestMallocBitsPopcntRange */
	{ "None", { { 0, 0 } },
	  { { 0, 1, 0 }, { 5, 3, 0 }, { 2, 11, 0 }, { 129, 256, 0 }, { 0, 512, 0 } } },
	{ "All", { { 0, 512 } },
	  { { 0, 1, 1 }, { 5, 3, 3 }, { 2, 11, 11 }, { 129, 256, 256 }, { 0, 512, 512 } } },
	{ "Half", { { 256, 256 } },
	  { { 0, 1, 0 },
	    { 5, 3, 0 },
	    { 2, 11, 0 },
	    { 255, 1, 0 },
	    { 256, 1, 1 },
	    { 266, 1, 1 },
	    { 255, 2, 1 },
	    { 128, 128, 0 },
	    { 128, 129, 1 },
	    { 129, 256, 129 },
	    { 0, 512, 256 } } },
	{ "OddBound", { { 0, 111 } },
	  { { 0, 1, 1 },
	    { 5, 3, 3 },
	    { 2, 11, 11 },
	    { 110, 2, 1 },
	    { 99, 50, 12 },
	    { 110, 1, 1 },
	    { 111, 1, 0 },
	    { 99, 1, 1 },
	    { 120, 1, 0 },
	    { 256, 256, 0 },
	    { 0, 512, 111 } } },
	{ "Scattered",
	  { { 1, 3 },   { 5, 1 },   { 7, 1 },   { 10, 2 },  { 13, 1 },   { 15, 4 },
	    { 21, 1 },  { 23, 1 },  { 26, 2 },  { 30, 5 },  { 36, 2 },   { 40, 3 },
	    { 44, 6 },  { 51, 1 },  { 53, 2 },  { 58, 3 },  { 63, 1 },   { 67, 2 },
	    { 71, 10 }, { 84, 1 },  { 89, 7 },  { 99, 2 },  { 103, 1 },  { 107, 2 },
	    { 111, 1 }, { 113, 1 }, { 115, 1 }, { 118, 1 }, { 120, 2 },  { 125, 5 } },
	  { { 0, 11, 6 }, { 0, 64, 39 }, { 13, 64, 40 }, { 64, 64, 34 }, { 0, 128, 73 },
	    { 1, 128, 74 }, { 0, 512, 75 } } },
	/* single pages and word boundaries, all allocated */
	{ "AllBoundaries", { { 0, 512 } },
	  { { 0, 1, 1 }, { 63, 1, 1 }, { 64, 1, 1 }, { 511, 1, 1 }, { 63, 2, 2 },
	    { 60, 8, 8 }, { 100, 100, 100 }, { 448, 64, 64 }, { 1, 511, 511 } } },
	/* pages 0, 63, 64 and 511 only */
	{ "CornerPages", { { 0, 1 }, { 63, 2 }, { 511, 1 } },
	  { { 0, 1, 1 }, { 1, 62, 0 }, { 63, 1, 1 }, { 64, 1, 1 }, { 65, 446, 0 }, { 511, 1, 1 },
	    { 62, 4, 2 }, { 0, 512, 4 }, { 1, 510, 2 }, { 0, 64, 2 } } },
};

static void test_popcnt_range(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(popcnt_cases); k++) {
		const struct popcnt_case *c = &popcnt_cases[k];
		hs_page_bits b;
		bits_alloc_ranges(&b, c->init);
		for (const struct popcnt_query *q = c->q; q->n != 0; q++) {
			unsigned got = hs_page_bits_popcnt_range(&b, q->i, q->n);
			if (got != q->want)
				fail_msg("%s: popcnt_range(%u, %u) = %u, want %u", c->name, q->i, q->n,
					 got, q->want);
		}
	}
}

/* Odd pages allocated in every word (0xaaaa...). */
static void test_popcnt_range_alternating(void **state)
{
	static const struct popcnt_query q[] = {
		{ 0, 512, 256 }, { 0, 1, 0 },	{ 1, 1, 1 },	 { 63, 2, 1 },	  { 1, 511, 256 },
		{ 60, 8, 4 },	 { 100, 100, 50 }, { 0, 3, 1 },	 { 511, 1, 1 },	  { 64, 64, 32 },
	};
	hs_page_bits b;

	(void)state;
	for (unsigned k = 0; k < 8; k++)
		b.w[k] = UINT64_C(0xaaaaaaaaaaaaaaaa);
	for (size_t j = 0; j < ARRAY_LEN(q); j++) {
		unsigned got = hs_page_bits_popcnt_range(&b, q[j].i, q[j].n);
		if (got != q[j].want)
			fail_msg("alternating: popcnt_range(%u, %u) = %u, want %u", q[j].i, q[j].n, got,
				 q[j].want);
	}
}

/* --- summarize ----------------------------------------------------------- */

struct summarize_case {
	const char *name;
	struct range free[8]; /* the rest is allocated */
	struct sum3 want;
};

static const struct summarize_case summarize_cases[] = {
	/* Go's TestPallocBitsSummarize */
	{ "NoneFree", { { 0, 0 } }, { 0, 0, 0 } },
	{ "OnlyStart", { { 0, 10 } }, { 10, 10, 0 } },
	{ "OnlyEnd", { { 472, 40 } }, { 0, 40, 40 } },
	{ "StartAndEnd", { { 0, 11 }, { 489, 23 } }, { 11, 23, 23 } },
	{ "StartMaxEnd", { { 0, 4 }, { 50, 100 }, { 508, 4 } }, { 4, 100, 4 } },
	{ "OnlyMax", { { 1, 20 }, { 35, 241 }, { 462, 30 } }, { 0, 241, 0 } },
	{ "MultiMax", { { 35, 2 }, { 40, 5 }, { 100, 5 } }, { 0, 5, 0 } },
	{ "One", { { 2, 1 } }, { 0, 1, 0 } },
	{ "AllFree", { { 0, 512 } }, { 512, 512, 512 } },
	/* worked out by hand */
	{ "interior run of 62", { { 65, 62 } }, { 0, 62, 0 } },
	{ "interior 61 beats boundary 60", { { 1, 61 }, { 126, 60 } }, { 0, 61, 0 } },
	{ "run of 63 at top of word", { { 1, 63 } }, { 0, 63, 0 } },
	{ "interior run in last word", { { 449, 50 } }, { 0, 50, 0 } },
	{ "run across words", { { 100, 300 } }, { 0, 300, 0 } },
	{ "start across words", { { 0, 100 } }, { 100, 100, 0 } },
	{ "end across words", { { 400, 112 } }, { 0, 112, 112 } },
	{ "start, end, smaller interior", { { 0, 70 }, { 80, 5 }, { 450, 62 } }, { 70, 70, 62 } },
	{ "first and last page only", { { 0, 1 }, { 511, 1 } }, { 1, 1, 1 } },
	{ "all but page 0", { { 1, 511 } }, { 0, 511, 511 } },
	{ "all but page 511", { { 0, 511 } }, { 511, 511, 0 } },
	{ "all but page 256", { { 0, 256 }, { 257, 255 } }, { 256, 256, 255 } },
	{ "second interior run longer", { { 3, 5 }, { 10, 20 } }, { 0, 20, 0 } },
	{ "small interior runs", { { 130, 3 }, { 140, 7 }, { 200, 6 }, { 300, 2 } }, { 0, 7, 0 } },
	{ "pages 63 and 64", { { 63, 2 } }, { 0, 2, 0 } },
};

static void test_summarize_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(summarize_cases); k++) {
		const struct summarize_case *c = &summarize_cases[k];
		hs_palloc_bits b;
		bits_free_ranges(&b, c->free);
		check_sum(hs_palloc_bits_summarize(&b), c->want, c->name);
		/* the oracle agrees with the hand-worked value */
		hs_pam_sum o = oracle_summarize(b.w);
		if (o.start != c->want.start || o.max != c->want.max || o.end != c->want.end)
			fail_msg("%s: oracle disagrees with the table", c->name);
	}
	/* The wholly free summary is exactly HS_FREE_CHUNK_SUM. */
	hs_palloc_bits b;
	memset(&b, 0, sizeof b);
	assert_int_equal(hs_palloc_bits_summarize(&b), HS_FREE_CHUNK_SUM);
	memset(&b, 0xff, sizeof b);
	assert_int_equal(hs_palloc_bits_summarize(&b), 0);
}

/* Go's benchmark patterns, the same word in all eight positions. */
struct pattern_case {
	uint64_t word;
	struct sum3 want;
};

static const struct pattern_case pattern_cases[] = {
	{ 0, { 512, 512, 512 } },
	{ ~UINT64_C(0), { 0, 0, 0 } },
	{ 0xaa, { 1, 57, 56 } },
	{ UINT64_C(0xaaaaaaaaaaaaaaaa), { 1, 1, 0 } },
	{ UINT64_C(0x80000000aaaaaaaa), { 1, 31, 0 } },
	{ UINT64_C(0xaaaaaaaa00000001), { 0, 32, 0 } },
	{ UINT64_C(0xbbbbbbbbbbbbbbbb), { 0, 1, 0 } },
	{ UINT64_C(0x80000000bbbbbbbb), { 0, 31, 0 } },
	{ UINT64_C(0xbbbbbbbb00000001), { 0, 31, 0 } },
	{ UINT64_C(0xcccccccccccccccc), { 2, 2, 0 } },
	{ UINT64_C(0x4444444444444444), { 2, 3, 1 } },
	{ UINT64_C(0x4040404040404040), { 6, 7, 1 } },
	{ UINT64_C(0x4000400040004000), { 14, 15, 1 } },
	{ UINT64_C(0x1000404044ccaaff), { 0, 13, 3 } },
};

static void test_summarize_patterns(void **state)
{
	char what[64];

	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(pattern_cases); k++) {
		hs_palloc_bits b;
		for (unsigned j = 0; j < 8; j++)
			b.w[j] = pattern_cases[k].word;
		snprintf(what, sizeof what, "pattern %#018" PRIx64, pattern_cases[k].word);
		hs_pam_sum o = oracle_summarize(b.w);
		check_sum(hs_palloc_bits_summarize(&b), (struct sum3){ o.start, o.max, o.end }, what);
		check_sum(hs_palloc_bits_summarize(&b), pattern_cases[k].want, what);
		/* and the complement */
		for (unsigned j = 0; j < 8; j++)
			b.w[j] = ~pattern_cases[k].word;
		snprintf(what, sizeof what, "pattern ~%#018" PRIx64, pattern_cases[k].word);
		o = oracle_summarize(b.w);
		check_sum(hs_palloc_bits_summarize(&b), (struct sum3){ o.start, o.max, o.end }, what);
	}
}

/* --- find ---------------------------------------------------------------- */

struct find_case {
	const char *name;
	struct range free[6]; /* the rest is allocated */
	unsigned npages, search_idx;
	unsigned want, want_new;
};

static const struct find_case find_cases[] = {
	{ "all free, 1", { { 0, 512 } }, 1, 0, 0, 0 },
	{ "all free, 2", { { 0, 512 } }, 2, 0, 0, 0 },
	{ "all free, 5", { { 0, 512 } }, 5, 0, 0, 0 },
	{ "all free, 64", { { 0, 512 } }, 64, 0, 0, 0 },
	{ "all free, 65", { { 0, 512 } }, 65, 0, 0, 0 },
	{ "all free, 300", { { 0, 512 } }, 300, 0, 0, 0 },
	{ "all free, 512", { { 0, 512 } }, 512, 0, 0, 0 },
	{ "none free, 1", { { 0, 0 } }, 1, 0, NF, NF },
	{ "none free, 2", { { 0, 0 } }, 2, 0, NF, NF },
	{ "none free, 64", { { 0, 0 } }, 64, 0, NF, NF },
	{ "none free, 65", { { 0, 0 } }, 65, 0, NF, NF },
	{ "none free, 512", { { 0, 0 } }, 512, 0, NF, NF },
	{ "none free, 5, hint 300", { { 0, 0 } }, 5, 300, NF, NF },
	{ "only page 511, 1", { { 511, 1 } }, 1, 0, 511, 511 },
	{ "only page 511, 1, hint 448", { { 511, 1 } }, 1, 448, 511, 511 },
	{ "only page 511, 1, hint 511", { { 511, 1 } }, 1, 511, 511, 511 },
	{ "only page 511, 2", { { 511, 1 } }, 2, 0, NF, 511 },
	{ "only page 511, 65", { { 511, 1 } }, 65, 0, NF, 511 },
	{ "only page 511, 512", { { 511, 1 } }, 512, 0, NF, 511 },
	{ "only page 0, 1", { { 0, 1 } }, 1, 0, 0, 0 },
	{ "only page 0, 2", { { 0, 1 } }, 2, 0, NF, 0 },
	{ "only page 0, 64", { { 0, 1 } }, 64, 0, NF, 0 },
	{ "only page 0, 65", { { 0, 1 } }, 65, 0, NF, 0 },
	{ "only page 63, 1", { { 63, 1 } }, 1, 0, 63, 63 },
	{ "only page 63, 2", { { 63, 1 } }, 2, 0, NF, 63 },
	{ "only page 64, 1", { { 64, 1 } }, 1, 0, 64, 64 },
	{ "only page 64, 1, hint 64", { { 64, 1 } }, 1, 64, 64, 64 },
	{ "pages 63-64, 2", { { 63, 2 } }, 2, 0, 63, 63 },
	{ "pages 63-64, 3", { { 63, 2 } }, 3, 0, NF, 63 },
	{ "straddle 60+8, 5", { { 60, 8 } }, 5, 0, 60, 60 },
	{ "straddle 60+8, 8", { { 60, 8 } }, 8, 0, 60, 60 },
	{ "straddle 60+8, 9", { { 60, 8 } }, 9, 0, NF, 60 },
	{ "straddle 60+8, 8, hint 60", { { 60, 8 } }, 8, 60, 60, 60 },
	{ "straddle 60+8, 8, hint 30", { { 60, 8 } }, 8, 30, 60, 60 },
	{ "64 straddling, 64", { { 100, 64 } }, 64, 0, 100, 100 },
	{ "64 straddling, 2", { { 100, 64 } }, 2, 0, 100, 100 },
	{ "64 straddling, 65", { { 100, 64 } }, 65, 0, NF, 100 },
	{ "64 straddling, 64, hint 100", { { 100, 64 } }, 64, 100, 100, 100 },
	{ "64 aligned, 64", { { 128, 64 } }, 64, 0, 128, 128 },
	{ "64 aligned, 65", { { 128, 64 } }, 65, 0, NF, 128 },
	{ "64 aligned, 64, hint 128", { { 128, 64 } }, 64, 128, 128, 128 },
	{ "66 over three words, 65", { { 127, 66 } }, 65, 0, 127, 127 },
	{ "66 over three words, 66", { { 127, 66 } }, 66, 0, 127, 127 },
	{ "66 over three words, 67", { { 127, 66 } }, 67, 0, NF, 127 },
	{ "65 at 130, 65", { { 130, 65 } }, 65, 0, 130, 130 },
	{ "65 at 130, 64", { { 130, 65 } }, 64, 0, 130, 130 },
	{ "300 in the middle, 300", { { 150, 300 } }, 300, 0, 150, 150 },
	{ "300 in the middle, 301", { { 150, 300 } }, 301, 0, NF, 150 },
	{ "300 in the middle, 300, hint 150", { { 150, 300 } }, 300, 150, 150, 150 },
	{ "300 to the end, 300", { { 212, 300 } }, 300, 0, 212, 212 },
	{ "300 to the end, 301", { { 212, 300 } }, 301, 0, NF, 212 },
	{ "300 to the end, 65", { { 212, 300 } }, 65, 0, 212, 212 },
	{ "300 to the end, 64", { { 212, 300 } }, 64, 0, 212, 212 },
	{ "300 to the end, 300, hint 200", { { 212, 300 } }, 300, 200, 212, 212 },
	{ "last 5, 5", { { 507, 5 } }, 5, 0, 507, 507 },
	{ "last 5, 6", { { 507, 5 } }, 6, 0, NF, 507 },
	{ "last 5, 2", { { 507, 5 } }, 2, 0, 507, 507 },
	{ "last 5, 5, hint 500", { { 507, 5 } }, 5, 500, 507, 507 },
	{ "last word, 64", { { 448, 64 } }, 64, 0, 448, 448 },
	{ "last word, 65", { { 448, 64 } }, 65, 0, NF, 448 },
	{ "last word, 64, hint 448", { { 448, 64 } }, 64, 448, 448, 448 },
	{ "last 65, 65", { { 447, 65 } }, 65, 0, 447, 447 },
	{ "last 65, 64", { { 447, 65 } }, 64, 0, 447, 447 },
	{ "last 65, 66", { { 447, 65 } }, 66, 0, NF, 447 },
	{ "last 66, 64", { { 446, 66 } }, 64, 0, 446, 446 },
	{ "last 66, 66", { { 446, 66 } }, 66, 0, 446, 446 },
	{ "last 66, 67", { { 446, 66 } }, 67, 0, NF, 446 },
	{ "first fit, 1", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 1, 0, 10, 10 },
	{ "first fit, 2", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 2, 0, 10, 10 },
	{ "first fit, 3", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 3, 0, 20, 10 },
	{ "first fit, 5", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 5, 0, 20, 10 },
	{ "first fit, 5, hint 10", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 5, 10, 20, 10 },
	{ "first fit, 6", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 6, 0, 100, 10 },
	{ "first fit, 64", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 64, 0, 100, 10 },
	{ "first fit, 65", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 65, 0, 100, 10 },
	{ "first fit, 100", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 100, 0, 100, 10 },
	{ "first fit, 101", { { 10, 2 }, { 20, 5 }, { 100, 100 } }, 101, 0, NF, 10 },
	{ "hint past prefix, 5", { { 200, 5 }, { 300, 212 } }, 5, 150, 200, 200 },
	{ "hint past prefix, 6", { { 200, 5 }, { 300, 212 } }, 6, 150, 300, 200 },
	{ "hint past prefix, 1", { { 200, 5 }, { 300, 212 } }, 1, 150, 200, 200 },
	{ "hint past prefix, 212", { { 200, 5 }, { 300, 212 } }, 212, 150, 300, 200 },
	{ "hint past prefix, 213", { { 200, 5 }, { 300, 212 } }, 213, 150, NF, 200 },
	{ "hint past prefix, 6, hint 199", { { 200, 5 }, { 300, 212 } }, 6, 199, 300, 200 },
	{ "hint past prefix, 65, hint 200", { { 200, 5 }, { 300, 212 } }, 65, 200, 300, 200 },
	{ "straddle before interior, 4", { { 62, 4 }, { 200, 10 } }, 4, 0, 62, 62 },
	{ "straddle before interior, 5", { { 62, 4 }, { 200, 10 } }, 5, 0, 200, 62 },
	{ "straddle before interior, 10", { { 62, 4 }, { 200, 10 } }, 10, 0, 200, 62 },
	{ "straddle before interior, 11", { { 62, 4 }, { 200, 10 } }, 11, 0, NF, 62 },
	{ "from page 63 to the end, 2", { { 63, 449 } }, 2, 0, 63, 63 },
	{ "from page 63 to the end, 64", { { 63, 449 } }, 64, 0, 63, 63 },
	{ "from page 63 to the end, 65", { { 63, 449 } }, 65, 0, 63, 63 },
	{ "from page 63 to the end, 449", { { 63, 449 } }, 449, 0, 63, 63 },
	{ "from page 63 to the end, 450", { { 63, 449 } }, 450, 0, NF, 63 },
	{ "large, first too short, 65", { { 10, 90 }, { 150, 150 } }, 65, 0, 10, 10 },
	{ "large, first too short, 90", { { 10, 90 }, { 150, 150 } }, 90, 0, 10, 10 },
	{ "large, first too short, 91", { { 10, 90 }, { 150, 150 } }, 91, 0, 150, 10 },
	{ "large, first too short, 100", { { 10, 90 }, { 150, 150 } }, 100, 0, 150, 10 },
	{ "large, first too short, 150", { { 10, 90 }, { 150, 150 } }, 150, 0, 150, 10 },
	{ "large, first too short, 151", { { 10, 90 }, { 150, 150 } }, 151, 0, NF, 10 },
	{ "run not reaching word top, 40", { { 10, 40 }, { 64, 96 } }, 40, 0, 10, 10 },
	{ "run not reaching word top, 41", { { 10, 40 }, { 64, 96 } }, 41, 0, 64, 10 },
	{ "run not reaching word top, 65", { { 10, 40 }, { 64, 96 } }, 65, 0, 64, 10 },
	{ "run not reaching word top, 96", { { 10, 40 }, { 64, 96 } }, 96, 0, 64, 10 },
	{ "run not reaching word top, 97", { { 10, 40 }, { 64, 96 } }, 97, 0, NF, 10 },
	{ "long run from mid-word, 300", { { 70, 330 } }, 300, 0, 70, 70 },
	{ "long run from mid-word, 330", { { 70, 330 } }, 330, 0, 70, 70 },
	{ "long run from mid-word, 331", { { 70, 330 } }, 331, 0, NF, 70 },
	{ "second half, 312, hint 200", { { 200, 312 } }, 312, 200, 200, 200 },
	{ "second half, 313, hint 200", { { 200, 312 } }, 313, 200, NF, 200 },
	{ "second half, 312, hint 130", { { 200, 312 } }, 312, 130, 200, 200 },
	{ "second half, 312", { { 200, 312 } }, 312, 0, 200, 200 },
	{ "from 300, 1, hint 256", { { 300, 212 } }, 1, 256, 300, 300 },
	{ "from 300, 1, hint 299", { { 300, 212 } }, 1, 299, 300, 300 },
	{ "from 300, 1, hint 300", { { 300, 212 } }, 1, 300, 300, 300 },
	{ "from 300, 1", { { 300, 212 } }, 1, 0, 300, 300 },
	{ "all but last page, 512", { { 0, 511 } }, 512, 0, NF, 0 },
	{ "all but last page, 511", { { 0, 511 } }, 511, 0, 0, 0 },
	{ "all but first page, 511", { { 1, 511 } }, 511, 0, 1, 1 },
	{ "all but first page, 512", { { 1, 511 } }, 512, 0, NF, 1 },
	{ "singles then a pair, 2", { { 1, 1 }, { 3, 1 }, { 5, 1 }, { 64, 1 }, { 127, 2 } }, 2, 0, 127, 1 },
	{ "singles then a pair, 1", { { 1, 1 }, { 3, 1 }, { 5, 1 }, { 64, 1 }, { 127, 2 } }, 1, 0, 1, 1 },
	{ "singles then a pair, 2, hint 1", { { 1, 1 }, { 3, 1 }, { 5, 1 }, { 64, 1 }, { 127, 2 } }, 2, 1, 127, 1 },
	/* Go's TestPallocBitsAlloc single finds (before ranges turned into free ranges) */
	{ "SomeFree64", { { 32, 32 }, { 96, 4 } }, 64, 0, NF, 32 },
	{ "SomeFree64, 32", { { 32, 32 }, { 96, 4 } }, 32, 0, 32, 32 },
	{ "SomeFree64, 33", { { 32, 32 }, { 96, 4 } }, 33, 0, NF, 32 },
	{ "ExactFit1", { { 253, 1 } }, 1, 0, 253, 253 },
	{ "ExactFit1, 2", { { 253, 1 } }, 2, 0, NF, 253 },
	{ "ExactFit2", { { 253, 2 } }, 2, 0, 253, 253 },
	{ "ExactFit5", { { 253, 5 } }, 5, 0, 253, 253 },
	{ "ExactFit65", { { 225, 65 } }, 65, 0, 225, 225 },
	{ "ExactFit65, 66", { { 225, 65 } }, 66, 0, NF, 225 },
	{ "SomeFree161", { { 185, 146 }, { 332, 180 } }, 161, 0, 332, 185 },
	{ "SomeFree161, 146", { { 185, 146 }, { 332, 180 } }, 146, 0, 185, 185 },
	{ "SomeFree161, 180", { { 185, 146 }, { 332, 180 } }, 180, 0, 332, 185 },
	{ "SomeFree161, 181", { { 185, 146 }, { 332, 180 } }, 181, 0, NF, 185 },
};

/* The hint contract: every page below search_idx is allocated. */
static int hint_is_valid(const hs_palloc_bits *b, unsigned search_idx)
{
	for (unsigned p = 0; p < search_idx && p < 512; p++)
		if (!oracle_bit(b->w, p))
			return 0;
	return 1;
}

static void test_find_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(find_cases); k++) {
		const struct find_case *c = &find_cases[k];
		hs_palloc_bits b;
		unsigned new_idx = 12345;

		bits_free_ranges(&b, c->free);
		if (!hint_is_valid(&b, c->search_idx))
			fail_msg("%s: bad test case, a page below the hint is free", c->name);
		unsigned got = hs_palloc_bits_find(&b, c->npages, c->search_idx, &new_idx);
		if (got != c->want || new_idx != c->want_new)
			fail_msg("%s: find(npages %u, search_idx %u) = %u, new_search_idx %u; want %u, %u",
				 c->name, c->npages, c->search_idx, got, new_idx, c->want, c->want_new);
		/* the oracle agrees with the table */
		if (oracle_find(b.w, c->npages, c->search_idx) != c->want ||
		    oracle_find(b.w, 1, c->search_idx) != c->want_new)
			fail_msg("%s: oracle disagrees with the table", c->name);
	}
}

/*
 * Go's TestPallocBitsAlloc: find from 0, allocate what was found, repeat; then the
 * bitmap must be `after`. Each case runs twice: with hint 0 every time, and with
 * the new_search_idx of the previous find as the next hint.
 */
struct alloc_seq_case {
	const char *name;
	struct range before[4]; /* allocated */
	unsigned npages;
	unsigned hits[8], nhits;
	struct range after[4]; /* allocated */
};

static const struct alloc_seq_case alloc_seq_cases[] = {
	{ "AllFree1", { { 0, 0 } }, 1, { 0, 1, 2, 3, 4, 5 }, 6, { { 0, 6 } } },
	{ "AllFree2", { { 0, 0 } }, 2, { 0, 2, 4, 6, 8, 10 }, 6, { { 0, 12 } } },
	{ "AllFree5", { { 0, 0 } }, 5, { 0, 5, 10, 15, 20 }, 5, { { 0, 25 } } },
	{ "AllFree64", { { 0, 0 } }, 64, { 0, 64, 128 }, 3, { { 0, 192 } } },
	{ "AllFree65", { { 0, 0 } }, 65, { 0, 65, 130 }, 3, { { 0, 195 } } },
	{ "SomeFree64", { { 0, 32 }, { 64, 32 }, { 100, 412 } }, 64, { NF }, 1,
	  { { 0, 32 }, { 64, 32 }, { 100, 412 } } },
	{ "NoneFree1", { { 0, 512 } }, 1, { NF, NF }, 2, { { 0, 512 } } },
	{ "NoneFree2", { { 0, 512 } }, 2, { NF, NF }, 2, { { 0, 512 } } },
	{ "NoneFree5", { { 0, 512 } }, 5, { NF, NF }, 2, { { 0, 512 } } },
	{ "NoneFree65", { { 0, 512 } }, 65, { NF, NF }, 2, { { 0, 512 } } },
	{ "ExactFit1", { { 0, 253 }, { 254, 258 } }, 1, { 253, NF }, 2, { { 0, 512 } } },
	{ "ExactFit2", { { 0, 253 }, { 255, 257 } }, 2, { 253, NF }, 2, { { 0, 512 } } },
	{ "ExactFit5", { { 0, 253 }, { 258, 254 } }, 5, { 253, NF }, 2, { { 0, 512 } } },
	{ "ExactFit65", { { 0, 225 }, { 290, 222 } }, 65, { 225, NF }, 2, { { 0, 512 } } },
	{ "SomeFree161", { { 0, 185 }, { 331, 1 } }, 161, { 332 }, 1, { { 0, 185 }, { 331, 162 } } },
};

static void test_find_alloc_sequences(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(alloc_seq_cases); k++) {
		const struct alloc_seq_case *c = &alloc_seq_cases[k];
		for (int chain = 0; chain < 2; chain++) {
			hs_palloc_bits b, want;
			unsigned hint = 0;

			bits_alloc_ranges(&b, c->before);
			for (unsigned j = 0; j < c->nhits; j++) {
				unsigned new_idx;
				unsigned got = hs_palloc_bits_find(&b, c->npages, chain ? hint : 0, &new_idx);
				if (got != c->hits[j])
					fail_msg("%s (%s hint): find #%u = %u, want %u", c->name,
						 chain ? "chained" : "zero", j + 1, got, c->hits[j]);
				if (got != NF)
					hs_page_bits_set_range(&b, got, c->npages);
				if (new_idx != NF)
					hint = new_idx;
			}
			bits_alloc_ranges(&want, c->after);
			check_words(b.w, want.w, c->name);
		}
	}
}

/* Benchmark patterns in every word: find vs oracle for many sizes and hints. */
static void test_find_patterns(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(pattern_cases); k++) {
		for (int inv = 0; inv < 2; inv++) {
			hs_palloc_bits b;
			for (unsigned j = 0; j < 8; j++)
				b.w[j] = inv ? ~pattern_cases[k].word : pattern_cases[k].word;
			unsigned first = oracle_find(b.w, 1, 0);
			unsigned hints[] = { 0, first == NF ? 300 : first };
			for (unsigned h = 0; h < ARRAY_LEN(hints); h++) {
				for (unsigned n = 1; n <= 512; n += n < 80 ? 1 : 37) {
					unsigned new_idx;
					unsigned want = oracle_find(b.w, n, hints[h]);
					unsigned want_new = oracle_find(b.w, 1, hints[h]);
					unsigned got = hs_palloc_bits_find(&b, n, hints[h], &new_idx);
					if (got != want || new_idx != want_new) {
						dump_words(b.w);
						fail_msg("find(npages %u, search_idx %u) = %u, new %u; want %u, %u",
							 n, hints[h], got, new_idx, want, want_new);
					}
				}
			}
		}
	}
}

static void random_bitmap(uint64_t w[8], uint64_t *seed);

/* --- summarize_after ----------------------------------------------------- */

struct after_case {
	const char *name;
	struct range free[6]; /* before the change; the rest is allocated */
	int alloc;	      /* 1: [i, i+n) goes from free to allocated; 0: the reverse */
	unsigned i, n;
	struct sum3 want;
};

/* Free runs [0, 10), [100, 400) and [500, 512): (10, 300, 12) before each change. */
#define THREE_RUNS { { 0, 10 }, { 100, 300 }, { 500, 12 } }

static const struct after_case after_cases[] = {
	{ "alloc first page of a free chunk", { { 0, 512 } }, 1, 0, 1, { 0, 511, 511 } },
	{ "alloc last page of a free chunk", { { 0, 512 } }, 1, 511, 1, { 511, 511, 0 } },
	{ "alloc the middle of a free chunk", { { 0, 512 } }, 1, 200, 100, { 200, 212, 212 } },
	{ "alloc all of a free chunk", { { 0, 512 } }, 1, 0, 512, { 0, 0, 0 } },
	{ "alloc inside the start run", THREE_RUNS, 1, 2, 3, { 2, 300, 12 } },
	{ "alloc inside the end run", THREE_RUNS, 1, 505, 2, { 10, 300, 5 } },
	{ "alloc the whole end run", THREE_RUNS, 1, 500, 12, { 10, 300, 0 } },
	{ "alloc splits the longest run", THREE_RUNS, 1, 200, 1, { 10, 199, 12 } },
	{ "alloc trims the longest run", THREE_RUNS, 1, 100, 50, { 10, 250, 12 } },
	{ "free joins start and longest", THREE_RUNS, 0, 10, 90, { 400, 400, 12 } },
	{ "free joins longest and end", THREE_RUNS, 0, 400, 100, { 10, 412, 412 } },
	{ "free a lone page", THREE_RUNS, 0, 450, 1, { 10, 300, 12 } },
	{ "free page 0 of a full chunk", { { 0, 0 } }, 0, 0, 1, { 1, 1, 0 } },
	{ "free page 511 of a full chunk", { { 0, 0 } }, 0, 511, 1, { 0, 1, 1 } },
	{ "free across a word boundary", { { 0, 0 } }, 0, 60, 8, { 0, 8, 0 } },
	{ "free the last gap", { { 0, 100 }, { 101, 411 } }, 0, 100, 1, { 512, 512, 512 } },
};

static void test_summarize_after_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(after_cases); k++) {
		const struct after_case *c = &after_cases[k];
		hs_palloc_bits b;

		bits_free_ranges(&b, c->free);
		hs_pam_sum o = oracle_summarize(b.w);
		hs_palloc_sum old = hs_palloc_sum_pack(o.start, o.max, o.end);
		put_bits(b.w, c->i, c->n, c->alloc);
		check_sum(hs_palloc_bits_summarize_after(&b, old, c->i, c->n, c->alloc), c->want,
			  c->name);
		o = oracle_summarize(b.w);
		if (o.start != c->want.start || o.max != c->want.max || o.end != c->want.end)
			fail_msg("%s: oracle disagrees with the table", c->name);
	}
}

/*
 * Chains of changes to random bitmaps: each allocates part of a free run or
 * frees part of an allocated run, and the summary carried from one change to the
 * next (as the page allocator carries a leaf) must match oracle_summarize.
 */
static void test_summarize_after_random(void **state)
{
	const uint64_t seed0 = RANDOM_SEED ^ 0x5a;
	uint64_t seed = seed0;

	(void)state;
	for (unsigned it = 0; it < 4000; it++) {
		hs_palloc_bits b;
		random_bitmap(b.w, &seed);
		hs_pam_sum o = oracle_summarize(b.w);
		hs_palloc_sum sum = hs_palloc_sum_pack(o.start, o.max, o.end);

		for (unsigned step = 0; step < 8; step++) {
			unsigned p = (unsigned)(oracle_rand(&seed) % 512);
			int alloc = !oracle_bit(b.w, p); /* change p's run to the other state */
			unsigned lo = p, hi = p + 1;
			while (lo > 0 && oracle_bit(b.w, lo - 1) == oracle_bit(b.w, p))
				lo--;
			while (hi < 512 && oracle_bit(b.w, hi) == oracle_bit(b.w, p))
				hi++;
			/* a sub-range of [lo, hi), often touching one or both of its ends */
			unsigned i = lo, n;
			uint64_t r = oracle_rand(&seed);
			if (r % 3 != 0)
				i = lo + (unsigned)((r >> 8) % (hi - lo));
			n = hi - i;
			if ((r >> 4) % 3 != 0)
				n = 1 + (unsigned)((r >> 32) % (hi - i));

			put_bits(b.w, i, n, alloc);
			sum = hs_palloc_bits_summarize_after(&b, sum, i, n, alloc);
			o = oracle_summarize(b.w);
			if (hs_palloc_sum_start(sum) != o.start || hs_palloc_sum_max(sum) != o.max ||
			    hs_palloc_sum_end(sum) != o.end) {
				print_message("seed %#" PRIx64 ", bitmap %u, step %u: %s [%u, %u)\n", seed0,
					      it, step, alloc ? "alloc" : "free", i, i + n);
				dump_words(b.w);
				check_sum(sum, (struct sum3){ o.start, o.max, o.end }, "summarize_after");
			}
		}
	}
}

/* --- pallocData ---------------------------------------------------------- */

static void test_alloc_range_clears_scavenged(void **state)
{
	hs_palloc_data d;

	(void)state;
	memset(&d.alloc, 0, sizeof d.alloc);
	memset(&d.scavenged, 0xff, sizeof d.scavenged);

	hs_palloc_data_alloc_range(&d, 60, 10);
	{
		const uint64_t want_alloc[8] = { UINT64_C(0xf000000000000000), 0x3f };
		const uint64_t want_scav[8] = { UINT64_C(0x0fffffffffffffff), UINT64_C(0xffffffffffffffc0),
						ONES, ONES, ONES, ONES, ONES, ONES };
		check_words(d.alloc.w, want_alloc, "alloc_range(60, 10): alloc");
		check_words(d.scavenged.w, want_scav, "alloc_range(60, 10): scavenged");
	}

	hs_palloc_data_alloc_range(&d, 500, 12);
	{
		const uint64_t want_alloc[8] = { UINT64_C(0xf000000000000000), 0x3f, 0, 0, 0, 0, 0,
						 UINT64_C(0xfff0000000000000) };
		const uint64_t want_scav[8] = { UINT64_C(0x0fffffffffffffff), UINT64_C(0xffffffffffffffc0),
						ONES, ONES, ONES, ONES, ONES,
						UINT64_C(0x000fffffffffffff) };
		check_words(d.alloc.w, want_alloc, "alloc_range(500, 12): alloc");
		check_words(d.scavenged.w, want_scav, "alloc_range(500, 12): scavenged");
	}

	hs_palloc_data_alloc_range(&d, 0, 512);
	{
		const uint64_t all[8] = { ONES, ONES, ONES, ONES, ONES, ONES, ONES, ONES };
		const uint64_t none[8] = { 0 };
		check_words(d.alloc.w, all, "alloc_range(0, 512): alloc");
		check_words(d.scavenged.w, none, "alloc_range(0, 512): scavenged");
	}

	/* Scavenged bits already clear in part of the range stay clear. */
	memset(&d, 0, sizeof d);
	d.scavenged.w[0] = 0xf;
	hs_palloc_data_alloc_range(&d, 2, 4);
	assert_int_equal(d.alloc.w[0], 0x3c);
	assert_int_equal(d.scavenged.w[0], 0x3);

	/* alloc_all */
	memset(&d.alloc, 0, sizeof d.alloc);
	memset(&d.scavenged, 0xff, sizeof d.scavenged);
	hs_palloc_data_alloc_all(&d);
	for (unsigned k = 0; k < 8; k++) {
		assert_int_equal(d.alloc.w[k], ONES);
		assert_int_equal(d.scavenged.w[k], 0);
	}
}

/* --- randomized ---------------------------------------------------------- */

/* A chunk from oracle_random_chunk, in any of its styles, then touched up. */
static void random_bitmap(uint64_t w[8], uint64_t *seed)
{
	oracle_random_chunk(w, (unsigned)(oracle_rand(seed) % ORACLE_CHUNK_MODES), seed);
	/* Whole words free or full now and then. */
	uint64_t r = oracle_rand(seed);
	for (unsigned k = 0; k < 8; k++, r >>= 4) {
		if ((r & 0xf) == 0)
			w[k] = 0;
		else if ((r & 0xf) == 1)
			w[k] = ONES;
	}
	/* A wholly allocated prefix sometimes, so that hints reach far in. */
	if (oracle_rand(seed) % 4 == 0)
		put_bits(w, 0, (unsigned)(oracle_rand(seed) % 512), 1);
}

static void test_random(void **state)
{
	const uint64_t seed0 = RANDOM_SEED;
	uint64_t seed = seed0;

	(void)state;
	for (unsigned it = 0; it < RANDOM_BITMAPS; it++) {
		hs_palloc_bits b;
		random_bitmap(b.w, &seed);

		hs_pam_sum o = oracle_summarize(b.w);
		hs_palloc_sum s = hs_palloc_bits_summarize(&b);
		if (hs_palloc_sum_start(s) != o.start || hs_palloc_sum_max(s) != o.max ||
		    hs_palloc_sum_end(s) != o.end) {
			print_message("seed %#" PRIx64 ", bitmap %u\n", seed0, it);
			dump_words(b.w);
			check_sum(s, (struct sum3){ o.start, o.max, o.end }, "summarize");
		}

		unsigned first = oracle_find(b.w, 1, 0);
		unsigned limit = first == NF ? 511 : first; /* any hint up to here is valid */
		unsigned sizes[9];
		sizes[0] = 1;
		sizes[1] = 2;
		sizes[2] = 1 + (unsigned)(oracle_rand(&seed) % 64);
		sizes[3] = 64;
		sizes[4] = 65;
		sizes[5] = 65 + (unsigned)(oracle_rand(&seed) % 448);
		sizes[6] = o.max == 0 ? 1 : o.max;
		sizes[7] = o.max < 512 ? o.max + 1 : 512;
		sizes[8] = 2 + (unsigned)(oracle_rand(&seed) % 7);
		for (unsigned j = 0; j < ARRAY_LEN(sizes); j++) {
			unsigned hint = (unsigned)(oracle_rand(&seed) % (limit + 1));
			if (j == 0)
				hint = 0;
			else if (j == 1)
				hint = limit;
			unsigned new_idx;
			unsigned want = oracle_find(b.w, sizes[j], hint);
			unsigned want_new = oracle_find(b.w, 1, hint);
			unsigned got = hs_palloc_bits_find(&b, sizes[j], hint, &new_idx);
			if (got != want || new_idx != want_new) {
				print_message("seed %#" PRIx64 ", bitmap %u\n", seed0, it);
				dump_words(b.w);
				fail_msg("find(npages %u, search_idx %u) = %u, new_search_idx %u; want %u, %u",
					 sizes[j], hint, got, new_idx, want, want_new);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_clear_range),
		cmocka_unit_test(test_set_clear_range_exhaustive_small),
		cmocka_unit_test(test_clear_range_go_free),
		cmocka_unit_test(test_popcnt_range),
		cmocka_unit_test(test_popcnt_range_alternating),
		cmocka_unit_test(test_summarize_table),
		cmocka_unit_test(test_summarize_patterns),
		cmocka_unit_test(test_find_table),
		cmocka_unit_test(test_find_alloc_sequences),
		cmocka_unit_test(test_find_patterns),
		cmocka_unit_test(test_summarize_after_table),
		cmocka_unit_test(test_summarize_after_random),
		cmocka_unit_test(test_alloc_range_clears_scavenged),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
