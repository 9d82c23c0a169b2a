/*
 * tests/unit/test_addrrange.c — sorted sets of address ranges
 * (core/addrrange.h): add with merging, total_bytes, find_succ,
 * find_addr_ge, contains, hs_addr_range_subtract, and the throws on an
 * overlapping or empty add and on a subtraction that would split a range.
 *
 * Expectations come from Go 1.19's mranges_test.go (TestAddrRangesAdd,
 * TestAddrRangesFindSucc), from mranges.go's definition of subtract, and from
 * cases worked out by hand from the header's contract.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "addrrange.h"
#include "oracle.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_CASE_RANGES 8

/* --- helpers ---------------------------------------------------------- */

static hs_addr_range mk(uintptr_t base, uintptr_t limit)
{
	return (hs_addr_range){ base, limit };
}

/*
 * Checks a against want: same ranges in the same order, sorted, never empty,
 * never touching, and total_bytes equal to the sum of the sizes.
 */
static void check_ranges(const hs_addr_ranges *a, const hs_addr_range *want, size_t nwant,
			 const char *what)
{
	uintptr_t total = 0;

	if (a->len != nwant) {
		for (size_t i = 0; i < a->len; i++)
			print_message("  got [%#lx, %#lx)\n", (unsigned long)a->ranges[i].base,
				      (unsigned long)a->ranges[i].limit);
		fail_msg("%s: %zu ranges, want %zu", what, a->len, nwant);
	}
	for (size_t i = 0; i < nwant; i++) {
		const hs_addr_range *r = &a->ranges[i];
		if (r->base != want[i].base || r->limit != want[i].limit)
			fail_msg("%s: range %zu is [%#lx, %#lx), want [%#lx, %#lx)", what, i,
				 (unsigned long)r->base, (unsigned long)r->limit,
				 (unsigned long)want[i].base, (unsigned long)want[i].limit);
		if (r->base >= r->limit)
			fail_msg("%s: range %zu is empty", what, i);
		if (i > 0 && a->ranges[i - 1].limit >= r->base)
			fail_msg("%s: ranges %zu and %zu overlap, touch or are out of order", what,
				 i - 1, i);
		total += want[i].limit - want[i].base;
	}
	if (a->total_bytes != total)
		fail_msg("%s: total_bytes %lu, want %lu", what, (unsigned long)a->total_bytes,
			 (unsigned long)total);
}

/* --- add ---------------------------------------------------------------- */

/* Go's TestAddrRangesAdd, step by step. */
static void test_add_go_sequence(void **state)
{
	static hs_addr_range want[1 + 64 + 63];
	hs_addr_ranges a;

	(void)state;
	hs_addr_ranges_init(&a, NULL);
	check_ranges(&a, NULL, 0, "empty");

	hs_addr_ranges_add(&a, mk(512, 1024));
	check_ranges(&a, (hs_addr_range[]){ mk(512, 1024) }, 1, "first range");

	hs_addr_ranges_add(&a, mk(1024, 2048));
	check_ranges(&a, (hs_addr_range[]){ mk(512, 2048) }, 1, "coalesce up");

	hs_addr_ranges_add(&a, mk(4096, 8192));
	check_ranges(&a, (hs_addr_range[]){ mk(512, 2048), mk(4096, 8192) }, 2, "independent range");

	hs_addr_ranges_add(&a, mk(3776, 4096));
	check_ranges(&a, (hs_addr_range[]){ mk(512, 2048), mk(3776, 8192) }, 2, "coalesce down");

	hs_addr_ranges_add(&a, mk(2048, 3776));
	check_ranges(&a, (hs_addr_range[]){ mk(512, 8192) }, 1, "coalesce up and down");

	/* 64 independent ranges pushed at the end */
	size_t n = 0;
	want[n++] = mk(512, 8192);
	for (uintptr_t i = 0; i < 64; i++) {
		hs_addr_range r = mk(8192 + (i + 1) * 2048, 8192 + (i + 1) * 2048 + 10);
		hs_addr_ranges_add(&a, r);
		want[n++] = r;
		check_ranges(&a, want, n, "pushed at the end");
	}

	/* 63 independent ranges pushed at the beginning, in increasing order */
	for (uintptr_t i = 0; i < 63; i++) {
		hs_addr_range r = mk(8 + i * 8, 8 + i * 8 + 4);
		hs_addr_ranges_add(&a, r);
		memmove(&want[i + 1], &want[i], (n - i) * sizeof want[0]);
		want[i] = r;
		n++;
		check_ranges(&a, want, n, "pushed at the beginning");
	}
	hs_addr_ranges_destroy(&a);
	assert_int_equal(a.len, 0);
	assert_null(a.ranges);
	assert_int_equal(a.total_bytes, 0);
}

struct add_case {
	const char *name;
	hs_addr_range init[MAX_CASE_RANGES]; /* added in this order; ends at limit == 0 */
	hs_addr_range add;
	hs_addr_range want[MAX_CASE_RANGES]; /* ends at limit == 0 */
};

#define TOP ((uintptr_t)UINTPTR_MAX)

static const struct add_case add_cases[] = {
	{ "into empty", { { 0, 0 } }, { 100, 200 }, { { 100, 200 } } },
	{ "neither, before all", { { 100, 200 }, { 300, 400 } }, { 10, 20 },
	  { { 10, 20 }, { 100, 200 }, { 300, 400 } } },
	{ "neither, between", { { 100, 200 }, { 300, 400 } }, { 250, 260 },
	  { { 100, 200 }, { 250, 260 }, { 300, 400 } } },
	{ "neither, after all", { { 100, 200 }, { 300, 400 } }, { 500, 600 },
	  { { 100, 200 }, { 300, 400 }, { 500, 600 } } },
	{ "neither, one byte gap each side", { { 100, 200 }, { 300, 400 } }, { 201, 299 },
	  { { 100, 200 }, { 201, 299 }, { 300, 400 } } },
	{ "predecessor", { { 100, 200 }, { 300, 400 } }, { 200, 250 }, { { 100, 250 }, { 300, 400 } } },
	{ "predecessor, one byte", { { 100, 200 }, { 300, 400 } }, { 200, 201 },
	  { { 100, 201 }, { 300, 400 } } },
	{ "predecessor, last range", { { 0, 10 }, { 20, 30 } }, { 30, 35 }, { { 0, 10 }, { 20, 35 } } },
	{ "successor", { { 100, 200 }, { 300, 400 } }, { 250, 300 }, { { 100, 200 }, { 250, 400 } } },
	{ "successor, first range", { { 20, 30 }, { 40, 50 } }, { 10, 20 }, { { 10, 30 }, { 40, 50 } } },
	{ "successor, from address 0", { { 20, 30 } }, { 0, 20 }, { { 0, 30 } } },
	{ "both", { { 100, 200 }, { 300, 400 } }, { 200, 300 }, { { 100, 400 } } },
	{ "both, among many", { { 0, 10 }, { 20, 30 }, { 40, 50 }, { 60, 70 } }, { 30, 40 },
	  { { 0, 10 }, { 20, 50 }, { 60, 70 } } },
	{ "both, one byte", { { 0, 10 }, { 11, 20 } }, { 10, 11 }, { { 0, 20 } } },
	{ "initial ranges out of order", { { 300, 400 }, { 100, 200 }, { 500, 600 } }, { 700, 800 },
	  { { 100, 200 }, { 300, 400 }, { 500, 600 }, { 700, 800 } } },
	{ "merges while building", { { 300, 400 }, { 100, 200 }, { 200, 300 } }, { 400, 500 },
	  { { 100, 500 } } },
	{ "top of the address space", { { TOP - 10, TOP } }, { TOP - 20, TOP - 10 },
	  { { TOP - 20, TOP } } },
};

static void test_add_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(add_cases); k++) {
		const struct add_case *c = &add_cases[k];
		hs_addr_ranges a;
		size_t nwant = 0;

		hs_addr_ranges_init(&a, NULL);
		for (const hs_addr_range *r = c->init; r->limit != 0; r++)
			hs_addr_ranges_add(&a, *r);
		hs_addr_ranges_add(&a, c->add);
		while (nwant < MAX_CASE_RANGES && c->want[nwant].limit != 0)
			nwant++;
		check_ranges(&a, c->want, nwant, c->name);
		hs_addr_ranges_destroy(&a);
	}
}

/*
 * Enough disjoint ranges to grow the array several times, added in an order
 * that inserts at the front, the back and the middle; then fill every gap so
 * that everything merges into one range.
 */
static void test_add_growth(void **state)
{
	enum { N = 1500 };
	static hs_addr_range want[N];
	hs_addr_ranges a;

	(void)state;
	hs_addr_ranges_init(&a, NULL);
	/* range i is [100 i + 1000, 100 i + 1050) */
	for (size_t i = 0; i < N; i++)
		want[i] = mk(100 * i + 1000, 100 * i + 1050);
	/* evens descending from the middle, then odds ascending */
	for (size_t i = N / 2; i-- > 0;)
		hs_addr_ranges_add(&a, want[2 * i]);
	for (size_t i = 0; i < N / 2; i++)
		hs_addr_ranges_add(&a, want[2 * i + 1]);
	check_ranges(&a, want, N, "after growth");
	assert_true(a.cap >= N);

	/* fill every gap: each add merges with both neighbours */
	for (size_t i = 0; i + 1 < N; i++)
		hs_addr_ranges_add(&a, mk(100 * i + 1050, 100 * i + 1100));
	hs_addr_range whole = mk(1000, 100 * (N - 1) + 1050);
	check_ranges(&a, &whole, 1, "after filling the gaps");
	hs_addr_ranges_destroy(&a);
}

/* --- lookups ------------------------------------------------------------- */

struct succ_case {
	const char *name;
	uintptr_t addr;
	size_t want;
	int large; /* use the 100 ranges [5+5i, 8+5i) instead of `ranges` */
	hs_addr_range ranges[4]; /* ends at limit == 0 */
};

/* Go's TestAddrRangesFindSucc */
static const struct succ_case succ_cases[] = {
	{ "Empty", 12, 0, 0, { { 0, 0 } } },
	{ "OneBefore", 12, 0, 0, { { 14, 16 } } },
	{ "OneWithin", 14, 1, 0, { { 14, 16 } } },
	{ "OneAfterLimit", 16, 1, 0, { { 14, 16 } } },
	{ "OneAfter", 17, 1, 0, { { 14, 16 } } },
	{ "ThreeBefore", 3, 0, 0, { { 6, 10 }, { 12, 16 }, { 19, 22 } } },
	{ "ThreeAfter", 24, 3, 0, { { 6, 10 }, { 12, 16 }, { 19, 22 } } },
	{ "ThreeBetween", 11, 1, 0, { { 6, 10 }, { 12, 16 }, { 19, 22 } } },
	{ "ThreeWithin", 9, 1, 0, { { 6, 10 }, { 12, 16 }, { 19, 22 } } },
	{ "Zero", 0, 1, 0, { { 0, 10 } } },
	{ "Max", TOP, 1, 0, { { TOP - 5, TOP } } },
	{ "LargeBefore", 2, 0, 1, { { 0, 0 } } },
	{ "LargeAfter", 5 + 100 * 5 + 30, 100, 1, { { 0, 0 } } },
	{ "LargeBetweenLow", 14, 2, 1, { { 0, 0 } } },
	{ "LargeBetweenHigh", 249, 49, 1, { { 0, 0 } } },
	{ "LargeWithinLow", 25, 5, 1, { { 0, 0 } } },
	{ "LargeWithinHigh", 396, 79, 1, { { 0, 0 } } },
	{ "LargeWithinMiddle", 250, 50, 1, { { 0, 0 } } },
};

static void build(hs_addr_ranges *a, const hs_addr_range *r, int large)
{
	hs_addr_ranges_init(a, NULL);
	if (large) {
		for (uintptr_t i = 0; i < 100; i++)
			hs_addr_ranges_add(a, mk(5 + i * 5, 5 + i * 5 + 3));
		return;
	}
	for (; r->limit != 0; r++)
		hs_addr_ranges_add(a, *r);
}

static void test_find_succ(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(succ_cases); k++) {
		const struct succ_case *c = &succ_cases[k];
		hs_addr_ranges a;
		build(&a, c->ranges, c->large);
		size_t got = hs_addr_ranges_find_succ(&a, c->addr);
		if (got != c->want)
			fail_msg("%s: find_succ(%#lx) = %zu, want %zu", c->name, (unsigned long)c->addr,
				 got, c->want);
		hs_addr_ranges_destroy(&a);
	}
}

struct lookup_case {
	uintptr_t addr;
	int found;	  /* find_addr_ge's result */
	uintptr_t ge;	  /* ... and its address when found */
	int contains;
};

/* Ranges [10, 20) and [30, 40). */
static const struct lookup_case lookup_cases[] = {
	{ 0, 1, 10, 0 },  { 9, 1, 10, 0 },   { 10, 1, 10, 1 },	{ 15, 1, 15, 1 },
	{ 19, 1, 19, 1 }, { 20, 1, 30, 0 },  { 25, 1, 30, 0 },	{ 29, 1, 30, 0 },
	{ 30, 1, 30, 1 }, { 39, 1, 39, 1 },  { 40, 0, 0, 0 },	{ 100, 0, 0, 0 },
	{ TOP, 0, 0, 0 },
};

static void test_find_addr_ge_and_contains(void **state)
{
	hs_addr_ranges a;

	(void)state;
	hs_addr_ranges_init(&a, NULL);
	hs_addr_ranges_add(&a, mk(30, 40));
	hs_addr_ranges_add(&a, mk(10, 20));
	for (size_t k = 0; k < ARRAY_LEN(lookup_cases); k++) {
		const struct lookup_case *c = &lookup_cases[k];
		uintptr_t out = 0xdead;
		int found = hs_addr_ranges_find_addr_ge(&a, c->addr, &out);
		if (found != c->found || (found && out != c->ge))
			fail_msg("find_addr_ge(%#lx) = %d, %#lx; want %d, %#lx", (unsigned long)c->addr,
				 found, (unsigned long)out, c->found, (unsigned long)c->ge);
		int in = hs_addr_ranges_contains(&a, c->addr);
		if (!!in != c->contains)
			fail_msg("contains(%#lx) = %d, want %d", (unsigned long)c->addr, in, c->contains);
	}
	hs_addr_ranges_destroy(&a);

	/* an empty set has nothing */
	uintptr_t out;
	hs_addr_ranges_init(&a, NULL);
	assert_int_equal(hs_addr_ranges_find_addr_ge(&a, 0, &out), 0);
	assert_int_equal(hs_addr_ranges_find_addr_ge(&a, 12345, &out), 0);
	assert_false(hs_addr_ranges_contains(&a, 0));
	assert_false(hs_addr_ranges_contains(&a, 12345));
	hs_addr_ranges_destroy(&a);

	/* a range at the top of the address space */
	hs_addr_ranges_init(&a, NULL);
	hs_addr_ranges_add(&a, mk(TOP - 5, TOP));
	assert_true(hs_addr_ranges_contains(&a, TOP - 5));
	assert_true(hs_addr_ranges_contains(&a, TOP - 1));
	assert_false(hs_addr_ranges_contains(&a, TOP));
	assert_false(hs_addr_ranges_contains(&a, TOP - 6));
	assert_int_equal(hs_addr_ranges_find_addr_ge(&a, 0, &out), 1);
	assert_int_equal(out, TOP - 5);
	assert_int_equal(hs_addr_ranges_find_addr_ge(&a, TOP, &out), 0);
	hs_addr_ranges_destroy(&a);
}

/* --- subtract ------------------------------------------------------------ */

struct subtract_case {
	const char *name;
	hs_addr_range a, b;
	int empty;	    /* the result has size 0 */
	hs_addr_range want; /* when not empty */
};

static const struct subtract_case subtract_cases[] = {
	{ "b covers a", { 10, 20 }, { 0, 30 }, 1, { 0, 0 } },
	{ "b equals a", { 10, 20 }, { 10, 20 }, 1, { 0, 0 } },
	{ "b covers a, same base", { 10, 20 }, { 10, 25 }, 1, { 0, 0 } },
	{ "b covers a, same limit", { 10, 20 }, { 5, 20 }, 1, { 0, 0 } },
	{ "b overlaps the low end", { 10, 20 }, { 5, 15 }, 0, { 15, 20 } },
	{ "b shares the base", { 10, 20 }, { 10, 15 }, 0, { 15, 20 } },
	{ "b overlaps one low byte", { 10, 20 }, { 0, 11 }, 0, { 11, 20 } },
	{ "b overlaps the high end", { 10, 20 }, { 15, 25 }, 0, { 10, 15 } },
	{ "b shares the limit", { 10, 20 }, { 15, 20 }, 0, { 10, 15 } },
	{ "b overlaps one high byte", { 10, 20 }, { 19, 30 }, 0, { 10, 19 } },
	{ "b below", { 10, 20 }, { 0, 5 }, 0, { 10, 20 } },
	{ "b touches from below", { 10, 20 }, { 0, 10 }, 0, { 10, 20 } },
	{ "b touches from above", { 10, 20 }, { 20, 30 }, 0, { 10, 20 } },
	{ "b above", { 10, 20 }, { 25, 30 }, 0, { 10, 20 } },
};

static void test_subtract(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(subtract_cases); k++) {
		const struct subtract_case *c = &subtract_cases[k];
		hs_addr_range got = hs_addr_range_subtract(c->a, c->b);
		if (c->empty) {
			if (got.base != got.limit)
				fail_msg("%s: got [%#lx, %#lx), want an empty range", c->name,
					 (unsigned long)got.base, (unsigned long)got.limit);
		} else if (got.base != c->want.base || got.limit != c->want.limit) {
			fail_msg("%s: got [%#lx, %#lx), want [%#lx, %#lx)", c->name,
				 (unsigned long)got.base, (unsigned long)got.limit,
				 (unsigned long)c->want.base, (unsigned long)c->want.limit);
		}
	}
}

/* --- throws --------------------------------------------------------------- */

struct add_arg {
	hs_addr_ranges *a;
	hs_addr_range r;
};

static void do_add(void *p)
{
	struct add_arg *arg = p;
	hs_addr_ranges_add(arg->a, arg->r);
}

struct subtract_arg {
	hs_addr_range a, b;
};

static void do_subtract(void *p)
{
	struct subtract_arg *arg = p;
	(void)hs_addr_range_subtract(arg->a, arg->b);
}

/* Existing ranges [100, 200) and [300, 400). */
static const struct {
	const char *name;
	hs_addr_range r;
} overlap_cases[] = {
	{ "identical", { 100, 200 } },
	{ "same base, shorter", { 100, 150 } },
	{ "same limit, later base", { 150, 200 } },
	{ "inside", { 120, 130 } },
	{ "covers one", { 50, 250 } },
	{ "covers both", { 0, 500 } },
	{ "low end", { 50, 101 } },
	{ "high end", { 199, 250 } },
	{ "spans the gap", { 150, 350 } },
	{ "into the second", { 250, 301 } },
	{ "one byte inside", { 399, 400 } },
};

static void test_add_overlap_aborts(void **state)
{
	char out[1024];
	hs_addr_ranges a;

	(void)state;
	hs_addr_ranges_init(&a, NULL);
	hs_addr_ranges_add(&a, mk(100, 200));
	hs_addr_ranges_add(&a, mk(300, 400));
	for (size_t k = 0; k < ARRAY_LEN(overlap_cases); k++) {
		struct add_arg arg = { &a, overlap_cases[k].r };
		if (!oracle_expect_abort(do_add, &arg, "overlaps", out, sizeof out))
			fail_msg("%s: adding [%#lx, %#lx) did not abort with \"overlaps\"; stderr: %s",
				 overlap_cases[k].name, (unsigned long)arg.r.base,
				 (unsigned long)arg.r.limit, out);
	}
	/* the parent's copy is untouched, and touching ranges still merge */
	check_ranges(&a, (hs_addr_range[]){ mk(100, 200), mk(300, 400) }, 2, "after the aborts");
	hs_addr_ranges_add(&a, mk(200, 300));
	check_ranges(&a, (hs_addr_range[]){ mk(100, 400) }, 1, "merge after the aborts");

	/* A non-overlapping add in the child does not abort. */
	struct add_arg ok = { &a, mk(500, 600) };
	assert_false(oracle_expect_abort(do_add, &ok, "overlaps", out, sizeof out));
	hs_addr_ranges_destroy(&a);
}

static void test_add_empty_aborts(void **state)
{
	char out[1024];
	hs_addr_ranges a;

	(void)state;
	hs_addr_ranges_init(&a, NULL);
	struct add_arg empty = { &a, mk(100, 100) };
	if (!oracle_expect_abort(do_add, &empty, "empty range", out, sizeof out))
		fail_msg("adding [100, 100) did not abort; stderr: %s", out);
	struct add_arg backwards = { &a, mk(200, 100) };
	if (!oracle_expect_abort(do_add, &backwards, "empty range", out, sizeof out))
		fail_msg("adding [200, 100) did not abort; stderr: %s", out);
	hs_addr_ranges_destroy(&a);
}

static void test_subtract_inside_aborts(void **state)
{
	char out[1024];
	struct subtract_arg arg = { mk(10, 20), mk(12, 18) };

	(void)state;
	if (!oracle_expect_abort(do_subtract, &arg, "strictly inside", out, sizeof out))
		fail_msg("subtracting [12, 18) from [10, 20) did not abort; stderr: %s", out);
	struct subtract_arg edge = { mk(10, 20), mk(11, 19) };
	if (!oracle_expect_abort(do_subtract, &edge, "strictly inside", out, sizeof out))
		fail_msg("subtracting [11, 19) from [10, 20) did not abort; stderr: %s", out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_go_sequence),
		cmocka_unit_test(test_add_table),
		cmocka_unit_test(test_add_growth),
		cmocka_unit_test(test_find_succ),
		cmocka_unit_test(test_find_addr_ge_and_contains),
		cmocka_unit_test(test_subtract),
		cmocka_unit_test(test_add_overlap_aborts),
		cmocka_unit_test(test_add_empty_aborts),
		cmocka_unit_test(test_subtract_inside_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
