/*
 * tests/unit/test_sizeclasses.c — Go's small-object size classes
 * (core/sizeclasses.h): the per-class tables, the size-to-class lookup, and the
 * object index computed by multiplying with divmagic.
 *
 * Where the expectations come from: go_classes below is the comment table at the
 * top of Go 1.19's runtime/sizeclasses.go, transcribed row by row (bytes/obj,
 * bytes/span, objects, tail waste, max waste, min align), and go_align_rows is
 * the alignment table under it. Those two tables are the spec; nothing here reads
 * hs_* data to decide what the answer should be. The other checks are
 * properties: hs_size_to_class against a linear scan of go_classes for every size
 * 1..32768, and hs_obj_index against real division for every class and every
 * offset in a span of that class (the invariant stated in sizeclasses.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sizeclasses.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GO_PAGE_SIZE 8192u

/* One row of Go's comment table. max_waste is the percentage exactly as printed. */
struct go_class {
	unsigned cls;
	unsigned size;       /* bytes/obj */
	unsigned span;       /* bytes/span */
	unsigned objects;    /* objects */
	unsigned tail_waste; /* tail waste */
	const char *max_waste;
	unsigned min_align;  /* min align */
};

static const struct go_class go_classes[] = {
	{  1,     8,  8192, 1024,   0,  "87.50",    8 },
	{  2,    16,  8192,  512,   0,  "43.75",   16 },
	{  3,    24,  8192,  341,   8,  "29.24",    8 },
	{  4,    32,  8192,  256,   0,  "21.88",   32 },
	{  5,    48,  8192,  170,  32,  "31.52",   16 },
	{  6,    64,  8192,  128,   0,  "23.44",   64 },
	{  7,    80,  8192,  102,  32,  "19.07",   16 },
	{  8,    96,  8192,   85,  32,  "15.95",   32 },
	{  9,   112,  8192,   73,  16,  "13.56",   16 },
	{ 10,   128,  8192,   64,   0,  "11.72",  128 },
	{ 11,   144,  8192,   56, 128,  "11.82",   16 },
	{ 12,   160,  8192,   51,  32,   "9.73",   32 },
	{ 13,   176,  8192,   46,  96,   "9.59",   16 },
	{ 14,   192,  8192,   42, 128,   "9.25",   64 },
	{ 15,   208,  8192,   39,  80,   "8.12",   16 },
	{ 16,   224,  8192,   36, 128,   "8.15",   32 },
	{ 17,   240,  8192,   34,  32,   "6.62",   16 },
	{ 18,   256,  8192,   32,   0,   "5.86",  256 },
	{ 19,   288,  8192,   28, 128,  "12.16",   32 },
	{ 20,   320,  8192,   25, 192,  "11.80",   64 },
	{ 21,   352,  8192,   23,  96,   "9.88",   32 },
	{ 22,   384,  8192,   21, 128,   "9.51",  128 },
	{ 23,   416,  8192,   19, 288,  "10.71",   32 },
	{ 24,   448,  8192,   18, 128,   "8.37",   64 },
	{ 25,   480,  8192,   17,  32,   "6.82",   32 },
	{ 26,   512,  8192,   16,   0,   "6.05",  512 },
	{ 27,   576,  8192,   14, 128,  "12.33",   64 },
	{ 28,   640,  8192,   12, 512,  "15.48",  128 },
	{ 29,   704,  8192,   11, 448,  "13.93",   64 },
	{ 30,   768,  8192,   10, 512,  "13.94",  256 },
	{ 31,   896,  8192,    9, 128,  "15.52",  128 },
	{ 32,  1024,  8192,    8,   0,  "12.40", 1024 },
	{ 33,  1152,  8192,    7, 128,  "12.41",  128 },
	{ 34,  1280,  8192,    6, 512,  "15.55",  256 },
	{ 35,  1408, 16384,   11, 896,  "14.00",  128 },
	{ 36,  1536,  8192,    5, 512,  "14.00",  512 },
	{ 37,  1792, 16384,    9, 256,  "15.57",  256 },
	{ 38,  2048,  8192,    4,   0,  "12.45", 2048 },
	{ 39,  2304, 16384,    7, 256,  "12.46",  256 },
	{ 40,  2688,  8192,    3, 128,  "15.59",  128 },
	{ 41,  3072, 24576,    8,   0,  "12.47", 1024 },
	{ 42,  3200, 16384,    5, 384,   "6.22",  128 },
	{ 43,  3456, 24576,    7, 384,   "8.83",  128 },
	{ 44,  4096,  8192,    2,   0,  "15.60", 4096 },
	{ 45,  4864, 24576,    5, 256,  "16.65",  256 },
	{ 46,  5376, 16384,    3, 256,  "10.92",  256 },
	{ 47,  6144, 24576,    4,   0,  "12.48", 2048 },
	{ 48,  6528, 32768,    5, 128,   "6.23",  128 },
	{ 49,  6784, 40960,    6, 256,   "4.36",  128 },
	{ 50,  6912, 49152,    7, 768,   "3.37",  256 },
	{ 51,  8192,  8192,    1,   0,  "15.61", 8192 },
	{ 52,  9472, 57344,    6, 512,  "14.28",  256 },
	{ 53,  9728, 49152,    5, 512,   "3.64",  512 },
	{ 54, 10240, 40960,    4,   0,   "4.99", 2048 },
	{ 55, 10880, 32768,    3, 128,   "6.24",  128 },
	{ 56, 12288, 24576,    2,   0,  "11.45", 4096 },
	{ 57, 13568, 40960,    3, 256,   "9.99",  256 },
	{ 58, 14336, 57344,    4,   0,   "5.35", 2048 },
	{ 59, 16384, 16384,    1,   0,  "12.49", 8192 },
	{ 60, 18432, 73728,    4,   0,  "11.11", 2048 },
	{ 61, 19072, 57344,    3, 128,   "3.57",  128 },
	{ 62, 20480, 40960,    2,   0,   "6.87", 4096 },
	{ 63, 21760, 65536,    3, 256,   "6.25",  256 },
	{ 64, 24576, 24576,    1,   0,  "11.45", 8192 },
	{ 65, 27264, 81920,    3, 128,  "10.00",  128 },
	{ 66, 28672, 57344,    2,   0,   "4.91", 4096 },
	{ 67, 32768, 32768,    1,   0,  "12.50", 8192 },
};

/*
 * Go's alignment table: from min_size upward every class size is a multiple of
 * align. Go prints a row only where the next alignment starts at a larger size;
 * the rows it omits (256 .. 2048) start at 28672 like 4096, and are listed here
 * so that every power of two from 8 to the page size is covered.
 */
static const struct {
	unsigned align, bits, min_size;
} go_align_rows[] = {
	{ 8, 3, 8 },
	{ 16, 4, 32 },
	{ 32, 5, 256 },
	{ 64, 6, 512 },
	{ 128, 7, 768 },
	{ 256, 8, 28672 },
	{ 512, 9, 28672 },
	{ 1024, 10, 28672 },
	{ 2048, 11, 28672 },
	{ 4096, 12, 28672 },
	{ 8192, 13, 32768 },
};

/* The smallest class whose size (per Go's table) is >= size; 0 if none. */
static unsigned oracle_size_to_class(size_t size)
{
	for (size_t i = 0; i < ARRAY_LEN(go_classes); i++)
		if (go_classes[i].size >= size)
			return go_classes[i].cls;
	return 0;
}

static uint64_t span_bytes(unsigned c)
{
	return (uint64_t)hs_class_to_allocnpages[c] * GO_PAGE_SIZE;
}

/* --- constants --------------------------------------------------------- */

static void test_constants(void **state)
{
	(void)state;
	assert_int_equal(HS_NUM_SIZE_CLASSES, 68);
	assert_int_equal(HS_MAX_SMALL_SIZE, 32768);
	assert_int_equal(HS_SMALL_SIZE_DIV, 8);
	assert_int_equal(HS_SMALL_SIZE_MAX, 1024);
	assert_int_equal(HS_LARGE_SIZE_DIV, 128);
	assert_int_equal(HS_PAGE_SHIFT, 13);
	assert_int_equal(ARRAY_LEN(hs_class_to_size), 68);
	assert_int_equal(ARRAY_LEN(hs_class_to_allocnpages), 68);
	assert_int_equal(ARRAY_LEN(hs_class_to_divmagic), 68);
	assert_int_equal(ARRAY_LEN(hs_size_to_class8), 1024 / 8 + 1);
	assert_int_equal(ARRAY_LEN(hs_size_to_class128), (32768 - 1024) / 128 + 1);
	assert_int_equal(ARRAY_LEN(go_classes), HS_NUM_SIZE_CLASSES - 1);

	/* Class 0 is "large object": no size, no pages, no divisor. */
	assert_int_equal(hs_class_to_size[0], 0);
	assert_int_equal(hs_class_to_allocnpages[0], 0);
	assert_int_equal(hs_class_to_divmagic[0], 0);
	assert_int_equal(hs_size_to_class8[0], 0);
}

/* --- (a) class by class against Go's comment table ---------------------- */

static void test_classes_match_go(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(go_classes); i++) {
		const struct go_class *g = &go_classes[i];
		unsigned c = g->cls;

		assert_int_equal(c, i + 1);
		if (hs_class_to_size[c] != g->size)
			fail_msg("class %u: size %u, Go has %u", c, hs_class_to_size[c], g->size);
		if (span_bytes(c) != g->span)
			fail_msg("class %u: span %" PRIu64 " bytes (%u pages), Go has %u", c,
				 span_bytes(c), hs_class_to_allocnpages[c], g->span);
		if (hs_class_nelems(c) != g->objects)
			fail_msg("class %u: %u objects per span, Go has %u", c, hs_class_nelems(c),
				 g->objects);
	}
}

/* The derived columns: tail waste, max waste and min align, computed as Go's generator does. */
static void test_derived_columns_match_go(void **state)
{
	(void)state;
	unsigned prev_size = 0;
	for (size_t i = 0; i < ARRAY_LEN(go_classes); i++) {
		const struct go_class *g = &go_classes[i];
		unsigned c = g->cls;
		unsigned size = hs_class_to_size[c];
		unsigned span = (unsigned)span_bytes(c);
		unsigned objects = hs_class_nelems(c);
		unsigned tail = span - objects * size;
		char buf[32];

		if (tail != g->tail_waste)
			fail_msg("class %u: tail waste %u, Go has %u", c, tail, g->tail_waste);

		/* Worst case: every object is one byte larger than the class below. */
		double max_waste = (double)((size - prev_size - 1) * objects + tail) / (double)span;
		snprintf(buf, sizeof(buf), "%.2f", 100 * max_waste);
		if (strcmp(buf, g->max_waste) != 0)
			fail_msg("class %u: max waste %s%%, Go has %s%%", c, buf, g->max_waste);

		unsigned align = size & -size;
		if (align > GO_PAGE_SIZE)
			align = GO_PAGE_SIZE;
		if (align != g->min_align)
			fail_msg("class %u: min align %u, Go has %u", c, align, g->min_align);

		prev_size = size;
	}
}

/* divmagic is Go's ^uint32(0)/size + 1, i.e. ceil(2^32/size) (exact for powers of two). */
static void test_divmagic_formula(void **state)
{
	(void)state;
	for (unsigned c = 1; c < HS_NUM_SIZE_CLASSES; c++) {
		uint32_t size = hs_class_to_size[c];
		uint32_t want = UINT32_MAX / size + 1;
		uint64_t ceil = ((UINT64_C(1) << 32) + size - 1) / size;

		if (hs_class_to_divmagic[c] != want)
			fail_msg("class %u (size %" PRIu32 "): divmagic %#" PRIx32 ", want %#" PRIx32, c,
				 size, hs_class_to_divmagic[c], want);
		assert_int_equal(hs_class_to_divmagic[c], ceil);
	}
}

/* --- (b) size to class -------------------------------------------------- */

static void test_size_to_class_every_size(void **state)
{
	(void)state;
	for (size_t size = 1; size <= HS_MAX_SMALL_SIZE; size++) {
		unsigned got = hs_size_to_class(size);
		unsigned want = oracle_size_to_class(size);

		if (got == 0 || got >= HS_NUM_SIZE_CLASSES)
			fail_msg("size %zu: class %u", size, got);
		if (got != want)
			fail_msg("size %zu: class %u (%u bytes), want class %u (%u bytes)", size, got,
				 hs_class_to_size[got], want, hs_class_to_size[want]);
	}
}

struct size_case {
	size_t size;
	unsigned cls;
};

static void test_size_to_class_edges(void **state)
{
	(void)state;
	static const struct size_case cases[] = {
		{ 1, 1 },     { 8, 1 },     { 9, 2 },      { 24, 3 },     { 25, 4 },
		{ 33, 5 },    { 48, 5 },    { 49, 6 },     { 897, 32 },   { 1016, 32 },
		{ 1017, 32 }, { 1024, 32 }, { 1025, 33 },  { 1152, 33 },  { 1153, 34 },
		{ 8192, 51 }, { 8193, 52 }, { 27265, 66 }, { 28673, 67 }, { 32767, 67 },
		{ 32768, 67 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (hs_size_to_class(cases[i].size) != cases[i].cls)
			fail_msg("size %zu: class %u, want %u", cases[i].size,
				 hs_size_to_class(cases[i].size), cases[i].cls);
}

/*
 * Each entry of the lookup tables is the class of the largest size it covers;
 * the two tables overlap at 1024 and must agree there.
 */
static void test_lookup_table_entries(void **state)
{
	(void)state;
	for (unsigned i = 1; i < ARRAY_LEN(hs_size_to_class8); i++)
		if (hs_size_to_class8[i] != oracle_size_to_class((size_t)i * 8))
			fail_msg("size_to_class8[%u] = %u, want %u", i, hs_size_to_class8[i],
				 oracle_size_to_class((size_t)i * 8));
	for (unsigned i = 0; i < ARRAY_LEN(hs_size_to_class128); i++)
		if (hs_size_to_class128[i] != oracle_size_to_class(1024 + (size_t)i * 128))
			fail_msg("size_to_class128[%u] = %u, want %u", i, hs_size_to_class128[i],
				 oracle_size_to_class(1024 + (size_t)i * 128));
	assert_int_equal(hs_size_to_class8[ARRAY_LEN(hs_size_to_class8) - 1], hs_size_to_class128[0]);
}

/* --- (c) object index by multiplication --------------------------------- */

static void test_obj_index_every_offset(void **state)
{
	(void)state;
	uint64_t checked = 0;
	for (unsigned c = 1; c < HS_NUM_SIZE_CLASSES; c++) {
		uintptr_t size = hs_class_to_size[c];
		uint32_t magic = hs_class_to_divmagic[c];
		uintptr_t span = (uintptr_t)span_bytes(c);

		/* Every offset in the span, and the span's end (the bound Go's generator checks). */
		for (uintptr_t off = 0; off <= span; off++) {
			uintptr_t got = hs_obj_index(off, magic);
			if (got != off / size)
				fail_msg("class %u (size %ju): offset %ju gives index %ju, want %ju", c,
					 (uintmax_t)size, (uintmax_t)off, (uintmax_t)got,
					 (uintmax_t)(off / size));
			checked++;
		}
	}
	/* 67 classes, 168 pages of spans in all, plus one end offset each. */
	assert_int_equal(checked, UINT64_C(168) * GO_PAGE_SIZE + 67);
}

/*
 * Why the shortcut is exact in a span: offset * size < 2^32 for every offset up to
 * the span's end (see sizeclasses.h). It is not exact in general: past the span it
 * fails, first for class 63 (21760 bytes, 8 pages) at offset 217599, about 3.3
 * spans in, where it answers 10 instead of 9.
 */
static void test_obj_index_bound(void **state)
{
	(void)state;
	for (unsigned c = 1; c < HS_NUM_SIZE_CLASSES; c++)
		if (span_bytes(c) * hs_class_to_size[c] >= (UINT64_C(1) << 32))
			fail_msg("class %u: span * size = %" PRIu64 " reaches 2^32", c,
				 span_bytes(c) * hs_class_to_size[c]);

	assert_int_equal(hs_class_to_size[63], 21760);
	assert_int_equal(hs_obj_index(217598, hs_class_to_divmagic[63]), 9);
	assert_int_equal(hs_obj_index(217599, hs_class_to_divmagic[63]), 10);
	assert_int_equal(217599 / 21760, 9);
}

/* --- (d) shape of the table --------------------------------------------- */

static void test_size_properties(void **state)
{
	(void)state;
	assert_int_equal(hs_class_to_size[1], 8);
	assert_int_equal(hs_class_to_size[HS_NUM_SIZE_CLASSES - 1], HS_MAX_SMALL_SIZE);

	for (unsigned c = 1; c < HS_NUM_SIZE_CLASSES; c++) {
		unsigned size = hs_class_to_size[c];
		unsigned span = (unsigned)span_bytes(c);
		unsigned tail = span - hs_class_nelems(c) * size;

		if (c > 1 && size <= hs_class_to_size[c - 1])
			fail_msg("class %u: size %u not above class %u's %u", c, size, c - 1,
				 hs_class_to_size[c - 1]);
		/* Every size is a multiple of 8; of 16 from 32 bytes (24 is the exception). */
		if (size % 8 != 0 || (size >= 32 && size % 16 != 0))
			fail_msg("class %u: size %u misaligned", c, size);
		/* From 1024 on classes are multiples of 128, which size_to_class128 relies on. */
		if (size >= HS_SMALL_SIZE_MAX && size % HS_LARGE_SIZE_DIV != 0)
			fail_msg("class %u: size %u not a multiple of %u", c, size, HS_LARGE_SIZE_DIV);
		if (hs_class_to_allocnpages[c] < 1 || hs_class_nelems(c) < 1)
			fail_msg("class %u: %u pages, %u objects", c, hs_class_to_allocnpages[c],
				 hs_class_nelems(c));
		/* Tail waste is less than one object, and at most an eighth of the span. */
		if (tail >= size || tail * 8 > span)
			fail_msg("class %u: tail waste %u, size %u, span %u", c, tail, size, span);
	}
}

/* Go's alignment table: every class from min_size up is a multiple of align, and
 * min_size is the smallest size for which that holds. */
static void test_alignment_table(void **state)
{
	(void)state;
	for (size_t r = 0; r < ARRAY_LEN(go_align_rows); r++) {
		unsigned align = go_align_rows[r].align;
		unsigned first = 0; /* first class of the all-aligned suffix */

		assert_int_equal(align, 1u << go_align_rows[r].bits);
		for (unsigned c = HS_NUM_SIZE_CLASSES - 1; c >= 1; c--) {
			if (hs_class_to_size[c] % align != 0)
				break;
			first = c;
		}
		if (first == 0 || hs_class_to_size[first] != go_align_rows[r].min_size)
			fail_msg("align %u: aligned from %u bytes, Go says %u", align,
				 first ? hs_class_to_size[first] : 0, go_align_rows[r].min_size);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constants),
		cmocka_unit_test(test_classes_match_go),
		cmocka_unit_test(test_derived_columns_match_go),
		cmocka_unit_test(test_divmagic_formula),
		cmocka_unit_test(test_size_to_class_every_size),
		cmocka_unit_test(test_size_to_class_edges),
		cmocka_unit_test(test_lookup_table_entries),
		cmocka_unit_test(test_obj_index_every_offset),
		cmocka_unit_test(test_obj_index_bound),
		cmocka_unit_test(test_size_properties),
		cmocka_unit_test(test_alignment_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
