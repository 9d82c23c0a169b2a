/*
 * tests/unit/test_pallocsum.c — packed summaries (core/pallocsum.h): packing
 * and unpacking, HS_FREE_CHUNK_SUM, and hs_palloc_sum_merge.
 *
 * Expectations: the bit layout and the "wholly free root" flag are those of
 * Go 1.19's packPallocSum / pallocSum.unpack (mpagealloc.go); merge results
 * in the tables were worked out by hand from what a summary means (free pages
 * at the start, longest free run, free pages at the end). The randomized tests
 * build bitmaps, summarize the parts and compare the merge with
 * oracle_summarize_n over the whole bitmap. Constants differ per arch config,
 * so every expectation is written in terms of HS_LOG_MAX_PACKED_VALUE and
 * HS_MAX_PACKED_VALUE.
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
#include "pallocsum.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define W HS_LOG_MAX_PACKED_VALUE
#define MAXV ((unsigned)HS_MAX_PACKED_VALUE)
#define RANDOM_SEED UINT64_C(0x70616c6c6f63) /* "palloc" */

struct sum3 {
	unsigned start, max, end;
};

static void check_unpacked(hs_palloc_sum s, struct sum3 want, const char *what)
{
	unsigned st = hs_palloc_sum_start(s), mx = hs_palloc_sum_max(s), en = hs_palloc_sum_end(s);
	if (st != want.start || mx != want.max || en != want.end)
		fail_msg("%s: got (start %u, max %u, end %u), want (%u, %u, %u) [raw %#018" PRIx64 "]",
			 what, st, mx, en, want.start, want.max, want.end, s);
}

/* --- pack / unpack ----------------------------------------------------- */

struct pack_case {
	const char *name;
	struct sum3 in;
	uint64_t raw; /* the packed word, from the layout in pallocsum.h */
};

#define RAW(s, m, e) ((uint64_t)(s) | ((uint64_t)(m) << W) | ((uint64_t)(e) << (2 * W)))

static const struct pack_case pack_cases[] = {
	{ "zero", { 0, 0, 0 }, 0 },
	{ "small", { 1, 2, 3 }, RAW(1, 2, 3) },
	{ "start only", { 7, 7, 0 }, RAW(7, 7, 0) },
	{ "end only", { 0, 9, 9 }, RAW(0, 9, 9) },
	{ "free chunk", { 512, 512, 512 }, RAW(512, 512, 512) },
	{ "start at field max", { MAXV - 1, MAXV - 1, 0 }, RAW(MAXV - 1, MAXV - 1, 0) },
	{ "max at field max", { 0, MAXV - 1, 0 }, RAW(0, MAXV - 1, 0) },
	{ "end at field max", { 0, MAXV - 1, MAXV - 1 }, RAW(0, MAXV - 1, MAXV - 1) },
	{ "all fields at field max", { MAXV - 1, MAXV - 1, MAXV - 1 },
	  RAW(MAXV - 1, MAXV - 1, MAXV - 1) },
	{ "mixed", { 5, MAXV / 2, 11 }, RAW(5, MAXV / 2, 11) },
	{ "all free root", { MAXV, MAXV, MAXV }, UINT64_C(1) << 63 },
};

static void test_pack_unpack_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(pack_cases); k++) {
		const struct pack_case *c = &pack_cases[k];
		hs_palloc_sum s = hs_palloc_sum_pack(c->in.start, c->in.max, c->in.end);
		if (s != c->raw)
			fail_msg("%s: pack(%u, %u, %u) = %#018" PRIx64 ", want %#018" PRIx64, c->name,
				 c->in.start, c->in.max, c->in.end, s, c->raw);
		check_unpacked(s, c->in, c->name);
	}
}

/* The same layout written out as literals for each field width. */
static void test_pack_literals(void **state)
{
	(void)state;
	assert_int_equal(HS_PALLOC_SUM_FLAG, UINT64_C(0x8000000000000000));
	assert_int_equal(hs_palloc_sum_pack(MAXV, MAXV, MAXV), UINT64_C(0x8000000000000000));
#if HS_LOG_MAX_PACKED_VALUE == 21
	assert_int_equal(HS_MAX_PACKED_VALUE, UINT64_C(2097152));
	assert_int_equal(hs_palloc_sum_pack(MAXV - 1, MAXV - 1, MAXV - 1), UINT64_C(0x7fffffffffffffff));
	assert_int_equal(hs_palloc_sum_pack(1, 2, 3), UINT64_C(0x00000c0000400001));
	assert_int_equal(HS_FREE_CHUNK_SUM, UINT64_C(0x0008000040000200));
#elif HS_LOG_MAX_PACKED_VALUE == 18
	assert_int_equal(HS_MAX_PACKED_VALUE, UINT64_C(262144));
	assert_int_equal(hs_palloc_sum_pack(MAXV - 1, MAXV - 1, MAXV - 1), UINT64_C(0x003fffffffffffff));
	assert_int_equal(hs_palloc_sum_pack(1, 2, 3), UINT64_C(0x0000003000080001));
	assert_int_equal(HS_FREE_CHUNK_SUM, UINT64_C(0x0000200008000200));
#else
#error "test_pallocsum: no literal expectations for this HS_LOG_MAX_PACKED_VALUE"
#endif
}

/* Each field lands in its own bits and leaves the others and the flag alone. */
static void test_pack_fields_independent(void **state)
{
	(void)state;
	for (unsigned b = 0; b < W; b++) {
		unsigned v = 1u << b;
		hs_palloc_sum s;

		s = hs_palloc_sum_pack(v, 0, 0);
		assert_int_equal(s, (uint64_t)v);
		check_unpacked(s, (struct sum3){ v, 0, 0 }, "start bit");
		s = hs_palloc_sum_pack(0, v, 0);
		assert_int_equal(s, (uint64_t)v << W);
		check_unpacked(s, (struct sum3){ 0, v, 0 }, "max bit");
		s = hs_palloc_sum_pack(0, 0, v);
		assert_int_equal(s, (uint64_t)v << (2 * W));
		check_unpacked(s, (struct sum3){ 0, 0, v }, "end bit");
		assert_int_equal(s & HS_PALLOC_SUM_FLAG, 0);
	}
}

static void test_round_trip_random(void **state)
{
	uint64_t seed = RANDOM_SEED;

	(void)state;
	for (unsigned it = 0; it < 100000; it++) {
		unsigned st = (unsigned)(oracle_rand(&seed) % MAXV);
		unsigned mx = (unsigned)(oracle_rand(&seed) % MAXV);
		unsigned en = (unsigned)(oracle_rand(&seed) % MAXV);
		hs_palloc_sum s = hs_palloc_sum_pack(st, mx, en);
		if (s != RAW(st, mx, en) || hs_palloc_sum_start(s) != st ||
		    hs_palloc_sum_max(s) != mx || hs_palloc_sum_end(s) != en) {
			print_message("seed %#" PRIx64 ", iteration %u\n", (uint64_t)RANDOM_SEED, it);
			check_unpacked(s, (struct sum3){ st, mx, en }, "random round trip");
			fail_msg("raw %#018" PRIx64 ", want %#018" PRIx64, s, RAW(st, mx, en));
		}
	}
}

static void test_free_chunk_sum(void **state)
{
	(void)state;
	check_unpacked(HS_FREE_CHUNK_SUM, (struct sum3){ 512, 512, 512 }, "HS_FREE_CHUNK_SUM");
	assert_int_equal(HS_FREE_CHUNK_SUM, hs_palloc_sum_pack(512, 512, 512));
	assert_int_equal(HS_FREE_CHUNK_SUM & HS_PALLOC_SUM_FLAG, 0);
	check_unpacked(0, (struct sum3){ 0, 0, 0 }, "zero summary");
	check_unpacked(HS_PALLOC_SUM_FLAG, (struct sum3){ MAXV, MAXV, MAXV }, "flag");
}

/* --- merge: hand-worked tables ----------------------------------------- */

#define FREE9 { 512, 512, 512 }
#define FULL { 0, 0, 0 }

struct merge_case {
	const char *name;
	unsigned log_pages, n;
	struct sum3 in[8];
	struct sum3 want;
};

static const struct merge_case merge_cases[] = {
	{ "all free", 9, 8, { FREE9, FREE9, FREE9, FREE9, FREE9, FREE9, FREE9, FREE9 },
	  { 4096, 4096, 4096 } },
	{ "all full", 9, 8, { FULL, FULL, FULL, FULL, FULL, FULL, FULL, FULL }, { 0, 0, 0 } },
	{ "one summary", 9, 1, { { 3, 100, 7 } }, { 3, 100, 7 } },
	{ "one free summary", 9, 1, { FREE9 }, { 512, 512, 512 } },
	{ "straddle two", 9, 2, { { 5, 20, 30 }, { 40, 50, 6 } }, { 5, 70, 6 } },
	{ "inner max beats straddle", 9, 2, { { 0, 2, 2 }, { 3, 300, 1 } }, { 0, 300, 1 } },
	{ "prefix max beats straddle", 9, 2, { { 0, 400, 2 }, { 3, 30, 1 } }, { 0, 400, 1 } },
	{ "straddle through a free middle", 9, 3, { { 0, 100, 100 }, FREE9, { 200, 200, 0 } },
	  { 0, 812, 0 } },
	{ "run crossing all 8", 9, 8,
	  { { 0, 10, 10 }, FREE9, FREE9, FREE9, FREE9, FREE9, FREE9, { 20, 20, 0 } },
	  { 0, 3102, 0 } },
	{ "start extends while prefix free", 9, 8,
	  { FREE9, FREE9, { 30, 40, 5 }, FREE9, FULL, FULL, FULL, FULL }, { 1054, 1054, 0 } },
	{ "start stops at first non-free child", 9, 2, { { 10, 10, 0 }, FREE9 },
	  { 10, 512, 512 } },
	{ "start stops even if later children are free", 9, 4,
	  { FREE9, { 0, 0, 0 }, FREE9, FREE9 }, { 512, 1024, 1024 } },
	{ "end extends over free tail", 9, 8,
	  { FULL, FULL, FULL, FULL, FULL, FULL, { 0, 3, 3 }, FREE9 }, { 0, 515, 515 } },
	{ "end resets on a non-free child", 9, 2, { FREE9, { 1, 1, 1 } }, { 513, 513, 1 } },
	{ "full child breaks the run", 9, 3, { { 0, 50, 50 }, FULL, { 60, 60, 0 } },
	  { 0, 60, 0 } },
	{ "free child between partial runs", 9, 5,
	  { { 0, 7, 7 }, FREE9, { 9, 9, 0 }, { 1, 8, 8 }, { 4, 4, 2 } }, { 0, 528, 2 } },
	{ "four children of 4096 pages", 12, 4,
	  { { 4096, 4096, 4096 }, { 100, 2000, 50 }, FULL, { 4096, 4096, 4096 } },
	  { 4196, 4196, 4096 } },
	{ "eight children of 4096, straddle wins", 12, 8,
	  { FULL, { 0, 3000, 3000 }, { 2500, 2500, 0 }, FULL, FULL, FULL, FULL, { 1, 1, 0 } },
	  { 0, 5500, 0 } },
};

static void check_merge(const struct sum3 *in, unsigned n, unsigned log_pages, struct sum3 want,
			const char *what)
{
	hs_palloc_sum sums[8];

	for (unsigned k = 0; k < n; k++)
		sums[k] = hs_palloc_sum_pack(in[k].start, in[k].max, in[k].end);
	check_unpacked(hs_palloc_sum_merge(sums, n, log_pages), want, what);
}

static void test_merge_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(merge_cases); k++) {
		const struct merge_case *c = &merge_cases[k];
		check_merge(c->in, c->n, c->log_pages, c->want, c->name);
	}
}

static unsigned max3(unsigned a, unsigned b, unsigned c)
{
	unsigned m = a > b ? a : b;
	return m > c ? m : c;
}

/*
 * A run that begins with the last 37 pages of child a, crosses k-2 wholly free
 * children, and ends with the first 23 pages of child a+k-1: its length is
 * 37 + 512*(k-2) + 23. The children outside it are either all full or all free.
 */
static void test_merge_straddles(void **state)
{
	char what[96];

	(void)state;
	for (unsigned k = 2; k <= 8; k++) {
		for (unsigned a = 0; a + k <= 8; a++) {
			unsigned last = a + k - 1, run = 37 + 512 * (k - 2) + 23;
			struct sum3 in[8];

			for (unsigned outside_free = 0; outside_free < 2; outside_free++) {
				for (unsigned c = 0; c < 8; c++) {
					if (c == a)
						in[c] = (struct sum3){ 0, 37, 37 };
					else if (c == last)
						in[c] = (struct sum3){ 23, 23, 0 };
					else if (c > a && c < last)
						in[c] = (struct sum3){ 512, 512, 512 };
					else
						in[c] = outside_free ? (struct sum3){ 512, 512, 512 }
								     : (struct sum3){ 0, 0, 0 };
				}
				struct sum3 want;
				if (outside_free) {
					unsigned head = 512 * a, tail = 512 * (7 - last);
					want = (struct sum3){ head, max3(head, run, tail), tail };
				} else {
					want = (struct sum3){ 0, run, 0 };
				}
				snprintf(what, sizeof what, "straddle of %u children from %u (outside %s)",
					 k, a, outside_free ? "free" : "full");
				check_merge(in, 8, 9, want, what);
			}
		}
	}
}

/*
 * Eight wholly free children that together cover 2^W pages: the result does not
 * fit in the fields and must be the flag bit alone.
 */
static void test_merge_to_flag(void **state)
{
	const unsigned log = W - 3, per = 1u << log;
	hs_palloc_sum sums[8];

	(void)state;
	for (unsigned k = 0; k < 8; k++)
		sums[k] = hs_palloc_sum_pack(per, per, per);
	assert_int_equal(hs_palloc_sum_merge(sums, 8, log), HS_PALLOC_SUM_FLAG);

	/* One page allocated at the very end: no flag, (8*per - 1, same, 0). */
	sums[7] = hs_palloc_sum_pack(per - 1, per - 1, 0);
	hs_palloc_sum s = hs_palloc_sum_merge(sums, 8, log);
	assert_int_equal(s & HS_PALLOC_SUM_FLAG, 0);
	check_unpacked(s, (struct sum3){ MAXV - 1, MAXV - 1, 0 }, "root less one page");

	/* One page allocated at the very start. */
	sums[7] = hs_palloc_sum_pack(per, per, per);
	sums[0] = hs_palloc_sum_pack(0, per - 1, per - 1);
	check_unpacked(hs_palloc_sum_merge(sums, 8, log), (struct sum3){ 0, MAXV - 1, MAXV - 1 },
		       "root less first page");
}

/* --- merge: randomized against the page-at-a-time oracle --------------- */

static void set_bits(uint64_t *w, unsigned long i, unsigned long n)
{
	for (unsigned long p = i; p < i + n; p++)
		w[p / 64] |= UINT64_C(1) << (p % 64);
}

static void clear_bits(uint64_t *w, unsigned long i, unsigned long n)
{
	for (unsigned long p = i; p < i + n; p++)
		w[p / 64] &= ~(UINT64_C(1) << (p % 64));
}

/*
 * nchunks random chunks, then a few long free and allocated runs laid over
 * them at random places so that runs cross chunk boundaries.
 */
static void random_bitmap(uint64_t *w, unsigned nchunks, uint64_t *seed)
{
	unsigned long npages = 512ul * nchunks;

	for (unsigned c = 0; c < nchunks; c++)
		oracle_random_chunk(&w[8 * c], (unsigned)(oracle_rand(seed) % ORACLE_CHUNK_MODES), seed);
	unsigned overlays = (unsigned)(oracle_rand(seed) % 4);
	for (unsigned k = 0; k < overlays; k++) {
		unsigned long at = oracle_rand(seed) % npages;
		unsigned long len = 1 + oracle_rand(seed) % 2000;
		if (len > npages - at)
			len = npages - at;
		if (oracle_rand(seed) % 3 == 0)
			set_bits(w, at, len);
		else
			clear_bits(w, at, len);
	}
}

static hs_palloc_sum pack_oracle(hs_pam_sum s)
{
	return hs_palloc_sum_pack(s.start, s.max, s.end);
}

static int same(hs_palloc_sum s, hs_pam_sum want)
{
	return hs_palloc_sum_start(s) == want.start && hs_palloc_sum_max(s) == want.max &&
	       hs_palloc_sum_end(s) == want.end;
}

static void report_failure(const char *what, uint64_t seed0, unsigned it, hs_palloc_sum got,
			   hs_pam_sum want)
{
	print_message("seed %#" PRIx64 ", iteration %u\n", seed0, it);
	check_unpacked(got, (struct sum3){ want.start, want.max, want.end }, what);
}

static void test_merge_random_one_level(void **state)
{
	const uint64_t seed0 = RANDOM_SEED ^ 0x1;
	uint64_t seed = seed0;
	uint64_t w[64];

	(void)state;
	for (unsigned it = 0; it < 5000; it++) {
		hs_palloc_sum fast[8], slow[8];

		memset(w, 0, sizeof w);
		random_bitmap(w, 8, &seed);
		for (unsigned c = 0; c < 8; c++) {
			hs_palloc_bits b;
			memcpy(b.w, &w[8 * c], sizeof b.w);
			fast[c] = hs_palloc_bits_summarize(&b);
			slow[c] = pack_oracle(oracle_summarize(&w[8 * c]));
		}
		hs_pam_sum want = oracle_summarize_n(w, 4096);
		hs_palloc_sum got = hs_palloc_sum_merge(slow, 8, 9);
		if (!same(got, want))
			report_failure("merge of oracle chunk sums, 4096 pages", seed0, it, got, want);
		got = hs_palloc_sum_merge(fast, 8, 9);
		if (!same(got, want))
			report_failure("merge of summarized chunks, 4096 pages", seed0, it, got, want);
	}
}

static void test_merge_random_two_levels(void **state)
{
	const uint64_t seed0 = RANDOM_SEED ^ 0x2;
	uint64_t seed = seed0;
	static uint64_t w[512];

	(void)state;
	for (unsigned it = 0; it < 300; it++) {
		hs_palloc_sum l1[8];

		memset(w, 0, sizeof w);
		random_bitmap(w, 64, &seed);
		/* Sometimes make a whole level-1 group free or full. */
		if (it % 5 == 0) {
			unsigned g = (unsigned)(oracle_rand(&seed) % 8);
			memset(&w[64 * g], it % 10 == 0 ? 0 : 0xff, 64 * sizeof w[0]);
		}
		for (unsigned g = 0; g < 8; g++) {
			hs_palloc_sum l2[8];
			for (unsigned c = 0; c < 8; c++) {
				hs_palloc_bits b;
				memcpy(b.w, &w[64 * g + 8 * c], sizeof b.w);
				l2[c] = hs_palloc_bits_summarize(&b);
			}
			l1[g] = hs_palloc_sum_merge(l2, 8, 9);
			hs_pam_sum want1 = oracle_summarize_n(&w[64 * g], 4096);
			if (!same(l1[g], want1))
				report_failure("level-1 merge", seed0, it, l1[g], want1);
		}
		hs_pam_sum want = oracle_summarize_n(w, 32768);
		hs_palloc_sum got = hs_palloc_sum_merge(l1, 8, 12);
		if (!same(got, want))
			report_failure("level-0 merge, 32768 pages", seed0, it, got, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_unpack_table),
		cmocka_unit_test(test_pack_literals),
		cmocka_unit_test(test_pack_fields_independent),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_free_chunk_sum),
		cmocka_unit_test(test_merge_table),
		cmocka_unit_test(test_merge_straddles),
		cmocka_unit_test(test_merge_to_flag),
		cmocka_unit_test(test_merge_random_one_level),
		cmocka_unit_test(test_merge_random_two_levels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
