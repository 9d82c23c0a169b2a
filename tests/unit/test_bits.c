/*
 * tests/unit/test_bits.c — the word intrinsics of arch/bits.h: hs_ctz64,
 * hs_clz64, hs_popcount64 (against their portable forms, a bit-at-a-time
 * reference and hand-worked values), hs_find_bit_range64 and hs_max_run64
 * (against oracle_find_bit_range64 / oracle_max_run64 in oracle.c).
 *
 * Expected values are either worked out by hand from the definitions in
 * bits.h (Go's math/bits conventions), taken from the cases of Go 1.19's
 * TestFindBitRange64 and its benchmark patterns, or computed by the slow
 * oracles. Random inputs come from oracle_rand with a fixed seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>

#include "../arch/bits.h" /* found through -Icore */
#include "oracle.h"

#define RANDOM_SEED UINT64_C(0x6865617073636f70) /* "heapscop" */
#define RANDOM_ITERS 100000

/* Patterns from Go's BenchmarkPallocBitsSummarize / BenchmarkFindBitRange64. */
static const uint64_t bench_patterns[] = {
	0,
	~UINT64_C(0),
	0xaa,
	UINT64_C(0xaaaaaaaaaaaaaaaa),
	UINT64_C(0x80000000aaaaaaaa),
	UINT64_C(0xaaaaaaaa00000001),
	UINT64_C(0xbbbbbbbbbbbbbbbb),
	UINT64_C(0x80000000bbbbbbbb),
	UINT64_C(0xbbbbbbbb00000001),
	UINT64_C(0xcccccccccccccccc),
	UINT64_C(0x4444444444444444),
	UINT64_C(0x4040404040404040),
	UINT64_C(0x4000400040004000),
	UINT64_C(0x1000404044ccaaff),
};

/* Words used in Go's TestFindBitRange64, plus a few more hand-picked ones. */
static const uint64_t extra_patterns[] = {
	UINT64_C(0x8000000000000000),
	UINT64_C(0xc000010001010000),
	UINT64_C(0xc000010001030000),
	UINT64_C(0xe000030001030000),
	UINT64_C(0xe000030001070000),
	UINT64_C(0xffff03ff01070000),
	UINT64_C(0xffff03ff0107ffff),
	UINT64_C(0x0fff03ff01079fff),
	UINT64_C(0x5555555555555555),
	UINT64_C(0x7fffffffffffffff),
	UINT64_C(0xfffffffffffffffe),
	UINT64_C(0x7ffffffffffffffe),
	UINT64_C(0x00000000ffffffff),
	UINT64_C(0xffffffff00000000),
	UINT64_C(0x0000ffff0000ffff),
	UINT64_C(0x00ff00ff00ff00ff),
	UINT64_C(0x0fff0fff0fff0fff),
	UINT64_C(0x8000000000000001),
	UINT64_C(0x7ffffffeffffffff),
	UINT64_C(0xfffffffeffffffff),
	UINT64_C(0xffffffff7fffffff),
	UINT64_C(0x000000000000ffff),
	UINT64_C(0x3fffffffffffffc0),
	1,
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- bit-at-a-time references for the three intrinsics ------------------ */

static unsigned naive_ctz64(uint64_t x)
{
	unsigned n = 0;
	while (n < 64 && !((x >> n) & 1))
		n++;
	return n;
}

static unsigned naive_clz64(uint64_t x)
{
	unsigned n = 0;
	while (n < 64 && !((x >> (63 - n)) & 1))
		n++;
	return n;
}

static unsigned naive_popcount64(uint64_t x)
{
	unsigned n = 0;
	for (unsigned i = 0; i < 64; i++)
		n += (unsigned)(x >> i) & 1;
	return n;
}

/* Bits [0, len) set; len in [0, 64]. */
static uint64_t low_mask(unsigned len)
{
	return len >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << len) - 1;
}

/* A random word whose density of set bits varies with the draw. */
static uint64_t random_word(uint64_t *state)
{
	uint64_t r = oracle_rand(state);
	uint64_t x = oracle_rand(state);

	switch (r % 8) {
	case 0: /* about 1/2 set */
		return x;
	case 1: /* about 1/4 */
		return x & oracle_rand(state);
	case 2: /* about 1/16 */
		return x & oracle_rand(state) & oracle_rand(state) & oracle_rand(state);
	case 3: /* about 3/4 */
		return x | oracle_rand(state);
	case 4: /* about 15/16 */
		return x | oracle_rand(state) | oracle_rand(state) | oracle_rand(state);
	case 5: { /* one run of ones at a random place */
		unsigned len = (unsigned)((r >> 8) % 65);
		unsigned shift = (unsigned)((r >> 16) % 64);
		return low_mask(len) << shift;
	}
	case 6: { /* a few runs of ones */
		uint64_t w = 0;
		for (unsigned k = 0; k < 3; k++) {
			uint64_t q = oracle_rand(state);
			w |= low_mask((unsigned)(q % 40)) << ((q >> 8) % 64);
		}
		return w;
	}
	default: /* a random word shifted so that ctz/clz take every value */
		return (x | 1) << ((r >> 8) % 64) >> ((r >> 16) % 64);
	}
}

/* --- ctz / clz / popcount ------------------------------------------------ */

struct intrinsic_case {
	uint64_t x;
	unsigned ctz, clz, popcount;
};

static const struct intrinsic_case intrinsic_cases[] = {
	{ 0, 64, 64, 0 },
	{ 1, 0, 63, 1 },
	{ UINT64_C(1) << 63, 63, 0, 1 },
	{ ~UINT64_C(0), 0, 0, 64 },
	{ UINT64_C(0xaaaaaaaaaaaaaaaa), 1, 0, 32 },
	{ UINT64_C(0x5555555555555555), 0, 1, 32 },
	{ UINT64_C(0x8000000000000001), 0, 0, 2 },
	{ UINT64_C(0x00000000ffffffff), 0, 32, 32 },
	{ UINT64_C(0xffffffff00000000), 32, 0, 32 },
	{ UINT64_C(0x0f0f0f0f0f0f0f0f), 0, 4, 32 },
	{ UINT64_C(0xf0f0f0f0f0f0f0f0), 4, 0, 32 },
	{ 0x100, 8, 55, 1 },
	{ 0xfff0, 4, 48, 12 },
	{ 0xff, 0, 56, 8 },
	{ UINT64_C(0x1000404044ccaaff), 0, 3, 21 },
	{ UINT64_C(0x4000400040004000), 14, 1, 4 },
	{ UINT64_C(0x7fffffffffffffff), 0, 1, 63 },
	{ UINT64_C(0xfffffffffffffffe), 1, 0, 63 },
};

static void check_intrinsics(uint64_t x, unsigned ctz, unsigned clz, unsigned pop)
{
	if (hs_ctz64(x) != ctz || hs_ctz64_portable(x) != ctz)
		fail_msg("ctz(%#018" PRIx64 "): fast %u portable %u, want %u", x, hs_ctz64(x),
			 hs_ctz64_portable(x), ctz);
	if (hs_clz64(x) != clz || hs_clz64_portable(x) != clz)
		fail_msg("clz(%#018" PRIx64 "): fast %u portable %u, want %u", x, hs_clz64(x),
			 hs_clz64_portable(x), clz);
	if (hs_popcount64(x) != pop || hs_popcount64_portable(x) != pop)
		fail_msg("popcount(%#018" PRIx64 "): fast %u portable %u, want %u", x,
			 hs_popcount64(x), hs_popcount64_portable(x), pop);
}

static void test_intrinsics_hand_worked(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(intrinsic_cases); k++) {
		const struct intrinsic_case *c = &intrinsic_cases[k];
		check_intrinsics(c->x, c->ctz, c->clz, c->popcount);
	}
}

/* Every single bit, and every low mask and high mask. */
static void test_intrinsics_single_bits_and_masks(void **state)
{
	(void)state;
	for (unsigned i = 0; i < 64; i++) {
		check_intrinsics(UINT64_C(1) << i, i, 63 - i, 1);
		/* bits [0, i+1) */
		check_intrinsics(low_mask(i + 1), 0, 63 - i, i + 1);
		/* bits [i, 64) */
		check_intrinsics(~UINT64_C(0) << i, i, 0, 64 - i);
		/* every bit but i */
		check_intrinsics(~(UINT64_C(1) << i), i == 0 ? 1 : 0, i == 63 ? 1 : 0, 63);
	}
}

static void test_intrinsics_random(void **state)
{
	uint64_t seed = RANDOM_SEED;

	(void)state;
	for (unsigned it = 0; it < RANDOM_ITERS; it++) {
		uint64_t x = random_word(&seed);
		unsigned ctz = naive_ctz64(x), clz = naive_clz64(x), pop = naive_popcount64(x);
		if (hs_ctz64(x) != ctz || hs_ctz64_portable(x) != ctz ||
		    hs_clz64(x) != clz || hs_clz64_portable(x) != clz ||
		    hs_popcount64(x) != pop || hs_popcount64_portable(x) != pop) {
			print_message("seed %#" PRIx64 ", iteration %u\n", (uint64_t)RANDOM_SEED, it);
			check_intrinsics(x, ctz, clz, pop);
		}
	}
}

/* --- hs_find_bit_range64 ------------------------------------------------- */

static void check_find_range(uint64_t x, unsigned n, unsigned want)
{
	unsigned got = hs_find_bit_range64(x, n);
	if (got != want)
		fail_msg("hs_find_bit_range64(%#018" PRIx64 ", %u) = %u, want %u", x, n, got, want);
}

static void check_find_range_oracle(uint64_t x)
{
	for (unsigned n = 1; n <= 64; n++)
		check_find_range(x, n, oracle_find_bit_range64(x, n));
}

struct find_range_case {
	uint64_t x;
	unsigned n, want; /* want 64: no run of n ones */
};

/* Go's TestFindBitRange64 cases, then hand-worked ones. */
static const struct find_range_case find_range_cases[] = {
	{ UINT64_C(0x8000000000000000), 1, 63 },
	{ UINT64_C(0xc000010001010000), 2, 62 },
	{ UINT64_C(0xc000010001030000), 2, 16 },
	{ UINT64_C(0xe000030001030000), 3, 61 },
	{ UINT64_C(0xe000030001070000), 3, 16 },
	{ UINT64_C(0xffff03ff01070000), 16, 48 },
	{ UINT64_C(0xffff03ff0107ffff), 16, 0 },
	{ UINT64_C(0x0fff03ff01079fff), 16, 64 },
	{ UINT64_C(0x8000000000000000), 2, 64 },
	{ UINT64_C(0xaaaaaaaaaaaaaaaa), 1, 1 },
	{ UINT64_C(0xaaaaaaaaaaaaaaaa), 2, 64 },
	{ 0xaa, 1, 1 },
	{ 0xaa, 2, 64 },
	{ 0xff, 8, 0 },
	{ 0xff, 9, 64 },
	{ 0xff00, 8, 8 },
	{ 0xff00, 1, 8 },
	{ UINT64_C(0x7fffffffffffffff), 63, 0 },
	{ UINT64_C(0x7fffffffffffffff), 64, 64 },
	{ UINT64_C(0xfffffffffffffffe), 63, 1 },
	{ UINT64_C(0xfffffffffffffffe), 64, 64 },
	{ UINT64_C(0xbbbbbbbbbbbbbbbb), 2, 0 },
	{ UINT64_C(0xbbbbbbbbbbbbbbbb), 3, 3 },
	{ UINT64_C(0xbbbbbbbbbbbbbbbb), 4, 64 },
	{ UINT64_C(0xcccccccccccccccc), 2, 2 },
	{ UINT64_C(0xcccccccccccccccc), 3, 64 },
	{ UINT64_C(0x80000000aaaaaaaa), 1, 1 },
	{ UINT64_C(0x80000000aaaaaaaa), 2, 64 },
	{ UINT64_C(0x80000000bbbbbbbb), 3, 3 },
	{ UINT64_C(0xbbbbbbbb00000001), 3, 35 },
	{ UINT64_C(0x4000400040004000), 1, 14 },
	{ UINT64_C(0x4000400040004000), 2, 64 },
	{ UINT64_C(0x1000404044ccaaff), 8, 0 },
	{ UINT64_C(0x1000404044ccaaff), 9, 64 },
	{ UINT64_C(0x1000404044ccaaff), 2, 0 },
	{ UINT64_C(0x0000ffff0000ffff), 16, 0 },
	{ UINT64_C(0x0000fffff000ffff), 17, 28 },
	{ UINT64_C(0xffffffff7fffffff), 32, 32 },
	{ UINT64_C(0xffffffff7fffffff), 31, 0 },
	{ UINT64_C(0xffffffff7fffffff), 33, 64 },
};

static void test_find_bit_range64_go_cases(void **state)
{
	(void)state;
	for (unsigned n = 1; n <= 64; n++) {
		check_find_range(~UINT64_C(0), n, 0);
		check_find_range(0, n, 64);
	}
	for (size_t k = 0; k < ARRAY_LEN(find_range_cases); k++)
		check_find_range(find_range_cases[k].x, find_range_cases[k].n, find_range_cases[k].want);
}

/* A single run of len ones at bit s: found at s for n <= len, never for n > len. */
static void test_find_bit_range64_single_runs(void **state)
{
	(void)state;
	for (unsigned len = 1; len <= 64; len++) {
		for (unsigned s = 0; s + len <= 64; s++) {
			uint64_t x = low_mask(len) << s;
			for (unsigned n = 1; n <= 64; n++)
				check_find_range(x, n, n <= len ? s : 64);
		}
	}
}

static void test_find_bit_range64_patterns(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(bench_patterns); k++) {
		check_find_range_oracle(bench_patterns[k]);
		check_find_range_oracle(~bench_patterns[k]);
	}
	for (size_t k = 0; k < ARRAY_LEN(extra_patterns); k++) {
		check_find_range_oracle(extra_patterns[k]);
		check_find_range_oracle(~extra_patterns[k]);
	}
}

static void test_find_bit_range64_random(void **state)
{
	uint64_t seed = RANDOM_SEED ^ 1;

	(void)state;
	for (unsigned it = 0; it < 20000; it++) {
		uint64_t x = random_word(&seed);
		for (unsigned n = 1; n <= 64; n++) {
			unsigned want = oracle_find_bit_range64(x, n);
			unsigned got = hs_find_bit_range64(x, n);
			if (got != want) {
				print_message("seed %#" PRIx64 ", iteration %u\n",
					      (uint64_t)(RANDOM_SEED ^ 1), it);
				check_find_range(x, n, want);
			}
		}
	}
}

/* --- hs_max_run64 -------------------------------------------------------- */

static void check_max_run(uint64_t x, unsigned want)
{
	unsigned got = hs_max_run64(x);
	if (got != want)
		fail_msg("hs_max_run64(%#018" PRIx64 ") = %u, want %u", x, got, want);
}

struct max_run_case {
	uint64_t x;
	unsigned want;
};

static const struct max_run_case max_run_cases[] = {
	{ 0, 0 },
	{ ~UINT64_C(0), 64 },
	{ 1, 1 },
	{ UINT64_C(1) << 63, 1 },
	{ UINT64_C(0x8000000000000001), 1 },
	{ UINT64_C(0xaaaaaaaaaaaaaaaa), 1 },
	{ UINT64_C(0x5555555555555555), 1 },
	{ 0xaa, 1 },
	{ UINT64_C(0xbbbbbbbbbbbbbbbb), 3 },
	{ UINT64_C(0xcccccccccccccccc), 2 },
	{ UINT64_C(0x4444444444444444), 1 },
	{ UINT64_C(0x80000000aaaaaaaa), 1 },
	{ UINT64_C(0x80000000bbbbbbbb), 3 },
	{ UINT64_C(0x1000404044ccaaff), 8 },
	{ UINT64_C(0x7fffffffffffffff), 63 },
	{ UINT64_C(0xfffffffffffffffe), 63 },
	{ UINT64_C(0x7ffffffffffffffe), 62 },
	{ UINT64_C(0x00000000ffffffff), 32 },
	{ UINT64_C(0xffffffff7fffffff), 32 },
	{ UINT64_C(0xfffffffeffffffff), 32 },
	{ UINT64_C(0x7ffffffeffffffff), 32 },
	{ UINT64_C(0xffffffffbfffffff), 33 },
	{ UINT64_C(0x0000ffff0000ffff), 16 },
	{ UINT64_C(0x0fff0fff0fff0fff), 12 },
	{ UINT64_C(0x0000fffff000ffff), 20 },
	{ UINT64_C(0xffff03ff0107ffff), 19 },
	{ UINT64_C(0x0fff03ff01079fff), 13 },
};

static void test_max_run64_hand_worked(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(max_run_cases); k++)
		check_max_run(max_run_cases[k].x, max_run_cases[k].want);
	/* 33 ones at [0, 33), a zero at 33, 30 ones at [34, 64) */
	check_max_run(low_mask(33) | (low_mask(30) << 34), 33);
	/* 31 ones at [1, 32), a zero at 32, 31 ones at [33, 64) */
	check_max_run(~UINT64_C(0) & ~UINT64_C(1) & ~(UINT64_C(1) << 32), 31);
	/* 63 = 32 + 16 + 8 + 4 + 2 + 1 needs every refinement step */
	check_max_run(low_mask(63) << 1, 63);
	check_max_run(low_mask(47), 47);
	check_max_run(low_mask(47) << 17, 47);
}

/* A single run of len ones anywhere, and two runs separated by one zero bit. */
static void test_max_run64_runs(void **state)
{
	(void)state;
	for (unsigned len = 1; len <= 64; len++)
		for (unsigned s = 0; s + len <= 64; s++)
			check_max_run(low_mask(len) << s, len);
	for (unsigned a = 1; a < 64; a++) {
		for (unsigned b = 1; a + 1 + b <= 64; b++) {
			uint64_t x = low_mask(a) | (low_mask(b) << (a + 1));
			check_max_run(x, a > b ? a : b);
		}
	}
}

static void test_max_run64_patterns(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(bench_patterns); k++) {
		check_max_run(bench_patterns[k], oracle_max_run64(bench_patterns[k]));
		check_max_run(~bench_patterns[k], oracle_max_run64(~bench_patterns[k]));
	}
	for (size_t k = 0; k < ARRAY_LEN(extra_patterns); k++) {
		check_max_run(extra_patterns[k], oracle_max_run64(extra_patterns[k]));
		check_max_run(~extra_patterns[k], oracle_max_run64(~extra_patterns[k]));
	}
}

static void test_max_run64_random(void **state)
{
	uint64_t seed = RANDOM_SEED ^ 2;

	(void)state;
	for (unsigned it = 0; it < RANDOM_ITERS; it++) {
		uint64_t x = random_word(&seed);
		unsigned want = oracle_max_run64(x);
		if (hs_max_run64(x) != want) {
			print_message("seed %#" PRIx64 ", iteration %u\n", (uint64_t)(RANDOM_SEED ^ 2), it);
			check_max_run(x, want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intrinsics_hand_worked),
		cmocka_unit_test(test_intrinsics_single_bits_and_masks),
		cmocka_unit_test(test_intrinsics_random),
		cmocka_unit_test(test_find_bit_range64_go_cases),
		cmocka_unit_test(test_find_bit_range64_single_runs),
		cmocka_unit_test(test_find_bit_range64_patterns),
		cmocka_unit_test(test_find_bit_range64_random),
		cmocka_unit_test(test_max_run64_hand_worked),
		cmocka_unit_test(test_max_run64_runs),
		cmocka_unit_test(test_max_run64_patterns),
		cmocka_unit_test(test_max_run64_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
