/*
 * tests/unit/test_tui.c — unit tests of the TUI's pure functions (tui/layout.c):
 * named cases, each a whole input and what it must give, as the page
 * allocator's scenario tables are. Every case runs; a failing one prints its
 * name and the group fails. Needs no terminal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define HS_TUI_INTERNAL
#include "tui.h"

typedef struct ctx {
	FILE *f;
	int failures;
} ctx;

static void check(ctx *c, int ok, const char *name)
{
	if (!ok) {
		fprintf(c->f, "  FAIL %s\n", name);
		c->failures++;
	}
}

static void test_layout(ctx *c)
{
	static const struct {
		const char *name;
		int rows, cols, too_small, side, main_h, main_w;
	} cases[] = {
		{ "layout/80x24", 24, 80, 0, 0, 21, 80 },
		{ "layout/min-60x20", 20, 60, 0, 0, 17, 60 },
		{ "layout/59x20-too-small", 20, 59, 1, 0, 0, 0 },
		{ "layout/60x19-too-small", 19, 60, 1, 0, 0, 0 },
		{ "layout/40x10-too-small", 10, 40, 1, 0, 0, 0 },
		{ "layout/149-no-side", 40, 149, 0, 0, 37, 149 },
		{ "layout/150-side", 40, 150, 0, 1, 37, 150 - HS_TUI_SIDE_COLS - 1 },
		{ "layout/200x60-side", 60, 200, 0, 1, 57, 200 - HS_TUI_SIDE_COLS - 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		hs_tui_layout l;
		hs_tui_layout_compute(cases[i].rows, cases[i].cols, &l);
		int ok = l.too_small == cases[i].too_small;
		if (ok && !l.too_small)
			ok = l.has_side == cases[i].side && l.main.h == cases[i].main_h && l.main.w == cases[i].main_w &&
			     l.status.y == cases[i].rows - 1 && l.main.y == 2 &&
			     (!l.has_side || l.side.x + l.side.w == cases[i].cols);
		check(c, ok, cases[i].name);
	}
}

static void test_shade(ctx *c)
{
	static const struct {
		const char *name;
		uint64_t max, cover;
		int want;
	} cases[] = {
		{ "shade/none-free", 0, 512, HS_G_SH_FULL },
		{ "shade/one-page", 1, 512, HS_G_SH_Q1 },
		{ "shade/just-under-quarter", 127, 512, HS_G_SH_Q1 },
		{ "shade/quarter", 128, 512, HS_G_SH_Q2 },
		{ "shade/just-under-half", 255, 512, HS_G_SH_Q2 },
		{ "shade/half", 256, 512, HS_G_SH_Q3 },
		{ "shade/all-but-one", 511, 512, HS_G_SH_Q3 },
		{ "shade/all", 512, 512, HS_G_SH_FREE },
		{ "shade/root-flag-value", (uint64_t)1 << 21, (uint64_t)1 << 21, HS_G_SH_FREE },
		{ "shade/level0-partial", 4096, (uint64_t)1 << 21, HS_G_SH_Q1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check(c, hs_tui_shade(cases[i].max, cases[i].cover) == cases[i].want, cases[i].name);
}

/* Cells must tile [0, width) left to right without overlap, cover each
 * segment's chunks exactly once in order, and never mix segments. */
static int cells_ok(const hs_tui_seg *segs, size_t nsegs, int width, const hs_tui_cell *cells, int n)
{
	int x = -1;
	size_t s = 0;
	uintptr_t next = nsegs > 0 ? segs[0].lo : 0;
	for (int i = 0; i < n; i++) {
		if (cells[i].x <= x || cells[i].x + cells[i].w > width || cells[i].w < 1)
			return 0;
		x = cells[i].x + cells[i].w - 1;
		if (cells[i].c0 == cells[i].c1)
			continue; /* separator */
		while (s < nsegs && next == segs[s].hi) {
			s++;
			next = s < nsegs ? segs[s].lo : 0;
		}
		if (s == nsegs || cells[i].c0 != next || cells[i].c1 > segs[s].hi)
			return 0;
		next = cells[i].c1;
	}
	return 1;
}

static void test_colmap(ctx *c)
{
	hs_tui_cell cells[512];
	{
		hs_tui_seg segs[] = { { 100, 108 } };
		int n = hs_tui_colmap(segs, 1, 70, cells, 512);
		check(c, n == 8 && cells[0].w == 8 && cells[7].x == 56 && cells_ok(segs, 1, 70, cells, n),
		      "colmap/8-children-wide");
	}
	{
		hs_tui_seg segs[] = { { 0, 1000 } };
		int n = hs_tui_colmap(segs, 1, 72, cells, 512);
		int k = (int)(cells[0].c1 - cells[0].c0);
		check(c, n <= 72 && k == 14 && cells[n - 1].c1 == 1000 && cells_ok(segs, 1, 72, cells, n),
		      "colmap/1000-chunks-in-72");
	}
	{
		hs_tui_seg segs[] = { { 10, 20 }, { 5000, 5030 } };
		int n = hs_tui_colmap(segs, 2, 41, cells, 512);
		int sep = -1;
		for (int i = 0; i < n; i++)
			if (cells[i].c0 == cells[i].c1)
				sep = i;
		check(c, sep == 10 && n == 41 && cells_ok(segs, 2, 41, cells, n), "colmap/two-ranges-separator");
	}
	{
		hs_tui_seg segs[] = { { 0, 100 }, { 200, 201 }, { 300, 399 } };
		int n = hs_tui_colmap(segs, 3, 30, cells, 512);
		check(c, n > 0 && n <= 30 && cells_ok(segs, 3, 30, cells, n), "colmap/uneven-ranges-fit");
	}
	{
		hs_tui_seg segs[64];
		for (int i = 0; i < 64; i++)
			segs[i] = (hs_tui_seg){ (uintptr_t)i * 10, (uintptr_t)i * 10 + 1 };
		int n = hs_tui_colmap(segs, 64, 40, cells, 512);
		check(c, n == 40 && cells_ok(segs, 64, 40, cells, n), "colmap/more-ranges-than-columns");
	}
	{
		hs_tui_seg segs[] = { { 7, 8 } };
		int n = hs_tui_colmap(segs, 1, 72, cells, 512);
		check(c, n == 1 && cells[0].w == 72, "colmap/one-chunk-fills-row");
		check(c, hs_tui_colmap(segs, 0, 72, cells, 512) == 0, "colmap/no-segments");
	}
}

static void test_bar(ctx *c)
{
	int w[5];
	uint64_t p1[] = { 50, 25, 25 };
	hs_tui_bar_split(p1, 3, 100, 40, w);
	check(c, w[0] == 20 && w[1] == 10 && w[2] == 10, "bar/exact");
	uint64_t p2[] = { 1, 1, 1 };
	hs_tui_bar_split(p2, 3, 3, 10, w);
	check(c, w[0] + w[1] + w[2] == 10 && w[0] >= 3 && w[1] >= 3 && w[2] >= 3, "bar/thirds-add-up");
	uint64_t p3[] = { 10, 0, 10 };
	hs_tui_bar_split(p3, 3, 40, 20, w);
	check(c, w[0] == 5 && w[1] == 0 && w[2] == 5, "bar/under-total");
	uint64_t p4[] = { 30, 30 };
	hs_tui_bar_split(p4, 2, 40, 20, w);
	check(c, w[0] + w[1] == 20, "bar/sum-over-total-scales");
	uint64_t p5[] = { 1, 999999 };
	hs_tui_bar_split(p5, 2, 1000000, 10, w);
	check(c, w[0] + w[1] == 10, "bar/tiny-part");
}

static void test_spark(ctx *c)
{
	check(c, hs_tui_spark_level(0, 100, 9) == 0, "spark/zero-empty");
	check(c, hs_tui_spark_level(1, 1000, 9) == 1, "spark/tiny-visible");
	check(c, hs_tui_spark_level(100, 100, 9) == 8, "spark/max-full");
	check(c, hs_tui_spark_level(50, 100, 9) == 4, "spark/half");
	check(c, hs_tui_spark_level(5, 0, 9) == 0, "spark/no-max");
}

static void test_format(ctx *c)
{
	char b[32];
	check(c, strcmp(hs_tui_bytes(0, b, sizeof b), "0 B") == 0, "bytes/zero");
	check(c, strcmp(hs_tui_bytes(1023, b, sizeof b), "1023 B") == 0, "bytes/1023");
	check(c, strcmp(hs_tui_bytes(4u << 20, b, sizeof b), "4.00 MiB") == 0, "bytes/4MiB");
	check(c, strcmp(hs_tui_bytes((uint64_t)64 << 30, b, sizeof b), "64.0 GiB") == 0, "bytes/64GiB");
	check(c, strcmp(hs_tui_count(1234567, b, sizeof b), "1.23M") == 0, "count/M");
	uint64_t v;
	int is_time;
	check(c, hs_tui_parse_u64("0xc000400000", &v) == 0 && v == 0xc000400000, "parse/hex");
	check(c, hs_tui_parse_u64("12x", &v) != 0 && hs_tui_parse_u64("", &v) != 0 && hs_tui_parse_u64("-1", &v) != 0,
	      "parse/rejects");
	check(c, hs_tui_parse_seek("12345", &v, &is_time) == 0 && v == 12345 && !is_time, "seek/seq");
	check(c, hs_tui_parse_seek("2.5s", &v, &is_time) == 0 && v == 2500000000u && is_time, "seek/seconds");
	check(c, hs_tui_parse_seek(" 300ms ", &v, &is_time) == 0 && v == 300000000u && is_time, "seek/ms");
	check(c, hs_tui_parse_seek("1m", &v, &is_time) == 0 && v == 60000000000u && is_time, "seek/minutes");
	check(c, hs_tui_parse_seek("abc", &v, &is_time) != 0 && hs_tui_parse_seek("s", &v, &is_time) != 0 &&
		     hs_tui_parse_seek("-2s", &v, &is_time) != 0,
	      "seek/rejects");
}

/* One cmocka test per group of cases. */
#define GROUP_(fn)                                                                                 \
	static void fn##_group(void **state)                                                       \
	{                                                                                          \
		(void)state;                                                                       \
		ctx c = { stderr, 0 };                                                             \
		fn(&c);                                                                            \
		assert_int_equal(c.failures, 0);                                                   \
	}
GROUP_(test_layout)
GROUP_(test_shade)
GROUP_(test_colmap)
GROUP_(test_bar)
GROUP_(test_spark)
GROUP_(test_format)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_group), cmocka_unit_test(test_shade_group),
		cmocka_unit_test(test_colmap_group), cmocka_unit_test(test_bar_group),
		cmocka_unit_test(test_spark_group),  cmocka_unit_test(test_format_group),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
