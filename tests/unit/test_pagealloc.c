/*
 * tests/unit/test_pagealloc.c — the page allocator as a whole, through the
 * metadata-only API of heapscope/pagealloc.h: grow, alloc (within a chunk,
 * across chunk boundaries, between chunks far apart, on an exhausted heap),
 * free (including bad frees, which must abort), and sequences of both.
 *
 * Each scenario gives a before-state (chunks as offsets from Go's BaseChunkIdx,
 * with their allocated and scavenged page ranges), operations with the results
 * they must produce, and an after-state compared chunk by chunk, both bitmaps.
 * The cases and their expected values are Go 1.19's TestPageAllocGrow,
 * TestPageAllocAlloc, TestPageAllocExhaust, TestPageAllocFree and
 * TestPageAllocAllocAndFree (runtime/mpagealloc_test.go). The searchAddr and
 * summary checks added to them, and the scenarios marked "hand", were worked out
 * by hand from Go's mpagealloc.go and mpallocbits.go; none was taken from a run
 * of the code. The invariant checker runs after every operation.
 *
 * Every address is derived from hs_pam_chunk_base(BaseChunkIdx + k), so the same
 * tables run in all three arch configurations; a case whose chunks lie beyond a
 * 32-bit address space is skipped there, as Go skips it. The fixtures, the chunk
 * tables and the chunk checks are scenario.c's, shared with test_pagecache.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "heapscope/pagealloc.h"
#include "oracle.h"
#include "scenario.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define MAX_OPS 32

/* --- checks ---------------------------------------------------------------------- */

struct chunk_range {
	int64_t lo, hi; /* chunk offsets [lo, hi) */
};

static void expect_in_use(hs_pam *p, const struct chunk_range *want, size_t nwant, const char *ctx)
{
	hs_pam_addr_range got[64];
	size_t n = hs_pam_in_use(p, got, ARRAY_LEN(got));
	if (n != nwant)
		fail_msg("%s: %zu in-use ranges, want %zu", ctx, n, nwant);
	for (size_t k = 0; k < n; k++) {
		uintptr_t b = scenario_addr_at(want[k].lo, 0), l = scenario_addr_at(want[k].hi, 0);
		if (got[k].base != b || got[k].limit != l)
			fail_msg("%s: in-use range #%zu is [%#" PRIxPTR ", %#" PRIxPTR "), want [%#" PRIxPTR
				 ", %#" PRIxPTR ")",
				 ctx, k, got[k].base, got[k].limit, b, l);
	}
}

/* The in-use ranges a set of single chunks makes: sorted, adjacent ones merged. */
static size_t merged_ranges(const int64_t *offs, size_t n, struct chunk_range *out)
{
	int64_t s[64];
	size_t nr = 0;
	memcpy(s, offs, n * sizeof *s);
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0 && s[j - 1] > s[j]; j--) {
			int64_t t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (nr > 0 && out[nr - 1].hi == s[i])
			out[nr - 1].hi = s[i] + 1;
		else
			out[nr++] = (struct chunk_range){ s[i], s[i] + 1 };
	}
	return nr;
}

/*
 * The after-state: each chunk's bitmaps, and the in-use ranges (unchanged by
 * alloc and free). The scavenged pages required are the listed ones (the before
 * list when keep_scav) minus the allocated ones, as Go's NewPageAlloc builds its
 * `want`.
 */
static void expect_after(hs_pam *p, const struct chunk_spec *cs, int keep_scav, const char *ctx)
{
	size_t n = scenario_nchunks(cs);
	int64_t offs[SCENARIO_MAX_CHUNKS];
	struct chunk_range r[SCENARIO_MAX_CHUNKS];
	scenario_expect_after_chunks(p, cs, keep_scav, ctx);
	for (size_t k = 0; k < n; k++)
		offs[k] = cs[k].off;
	size_t nr = merged_ranges(offs, n, r);
	expect_in_use(p, r, nr, ctx);
}

/* What a failed allocation must leave alone. */
struct snapshot {
	uint64_t a[SCENARIO_MAX_CHUNKS][8], s[SCENARIO_MAX_CHUNKS][8];
	hs_pam_sum leaf[SCENARIO_MAX_CHUNKS];
	size_t in_use;
};

static void take_snapshot(hs_pam *p, const struct chunk_spec *cs, struct snapshot *sn)
{
	size_t n = scenario_nchunks(cs);
	memset(sn, 0, sizeof *sn);
	for (size_t k = 0; k < n; k++) {
		uint64_t idx = scenario_chunk_idx(cs[k].off);
		assert_int_equal(hs_pam_chunk_bitmaps(p, idx, sn->a[k], sn->s[k]), 0);
		assert_int_equal(hs_pam_summary(p, hs_pam_levels() - 1, idx, &sn->leaf[k]), 0);
	}
	hs_pam_addr_range dummy;
	sn->in_use = hs_pam_in_use(p, &dummy, 0);
}

static void expect_snapshot(hs_pam *p, const struct chunk_spec *cs, const struct snapshot *before,
			    const char *ctx)
{
	struct snapshot now;
	take_snapshot(p, cs, &now);
	if (memcmp(now.a, before->a, sizeof now.a) != 0 || memcmp(now.s, before->s, sizeof now.s) != 0)
		fail_msg("%s: a failed allocation changed the bitmaps", ctx);
	if (memcmp(now.leaf, before->leaf, sizeof now.leaf) != 0)
		fail_msg("%s: a failed allocation changed a leaf summary", ctx);
	if (now.in_use != before->in_use)
		fail_msg("%s: a failed allocation changed the in-use ranges", ctx);
}

static void expect_sum(hs_pam *p, unsigned level, uintptr_t addr, hs_pam_sum want, const char *ctx)
{
	hs_pam_sum got;
	uint64_t idx = hs_pam_level_index(level, addr);
	int err = hs_pam_summary(p, level, idx, &got);
	if (err != 0)
		fail_msg("%s: hs_pam_summary(level %u, %#" PRIx64 ") returned %d", ctx, level, idx, err);
	if (got.start != want.start || got.max != want.max || got.end != want.end)
		fail_msg("%s: summary at level %u over %#" PRIxPTR " is (%u,%u,%u), want (%u,%u,%u)", ctx, level,
			 addr, got.start, got.max, got.end, want.start, want.max, want.end);
}

/* --- operations ---------------------------------------------------------------------- */

enum op_kind {
	OP_END,
	OP_ALLOC,	/* alloc(npages) returns page `page` of chunk `off`, with `scav` pages scavenged */
	OP_ALLOC_FAIL,	/* alloc(npages) returns 0 and changes nothing */
	OP_FREE,	/* free(page `page` of chunk `off`, npages) */
	OP_SEARCH,	/* searchAddr is page `page` of chunk `off` */
	OP_EXHAUSTED,	/* searchAddr says nothing is free */
	OP_SUM,		/* summary `up` levels above the leaf over chunk `off` (to the root if to_root) */
};

struct op {
	enum op_kind kind;
	unsigned long npages;
	int64_t off;
	unsigned page;
	unsigned scav;
	unsigned up;
	int to_root;
	hs_pam_sum sum;
};

#define ALLOC(n, o, pg, sc) { .kind = OP_ALLOC, .npages = (n), .off = (o), .page = (pg), .scav = (sc) }
#define FAIL(n) { .kind = OP_ALLOC_FAIL, .npages = (n) }
#define FREE(n, o, pg) { .kind = OP_FREE, .npages = (n), .off = (o), .page = (pg) }
#define SEARCH(o, pg) { .kind = OP_SEARCH, .off = (o), .page = (pg) }
#define EXHAUSTED { .kind = OP_EXHAUSTED }
#define SUM_(u, root, o, s, m, e) \
	{ .kind = OP_SUM, .up = (u), .to_root = (root), .off = (o), .sum = { (s), (m), (e) } }
/* The chunk's leaf; the entry over its block of 8 chunks; every level above that. */
#define LEAF(o, s, m, e) SUM_(0, 0, o, s, m, e)
#define BLOCK(o, s, m, e) SUM_(1, 0, o, s, m, e)
#define UP2(o, s, m, e) SUM_(2, 0, o, s, m, e)
#define ABOVE(o, s, m, e) SUM_(2, 1, o, s, m, e)

static void run_op(hs_pam *p, const struct chunk_spec *cs, const struct op *o, const char *ctx)
{
	uintptr_t got, sc = 1;
	switch (o->kind) {
	case OP_ALLOC: {
		uintptr_t want = scenario_addr_at(o->off, o->page);
		got = hs_pam_alloc(p, o->npages, &sc);
		if (got != want)
			fail_msg("%s: alloc(%lu) = %#" PRIxPTR ", want %#" PRIxPTR " (chunk base+%#llx page %u)", ctx,
				 o->npages, got, want, (long long)o->off, o->page);
		if (sc != (uintptr_t)o->scav * hs_pam_page_size())
			fail_msg("%s: alloc(%lu) reported %lu scavenged bytes, want %u pages", ctx, o->npages,
				 (unsigned long)sc, o->scav);
		break;
	}
	case OP_ALLOC_FAIL: {
		struct snapshot before;
		take_snapshot(p, cs, &before);
		got = hs_pam_alloc(p, o->npages, &sc);
		if (got != 0 || sc != 0)
			fail_msg("%s: alloc(%lu) = %#" PRIxPTR " (scav %lu), want 0", ctx, o->npages, got,
				 (unsigned long)sc);
		expect_snapshot(p, cs, &before, ctx);
		break;
	}
	case OP_FREE:
		hs_pam_free(p, scenario_addr_at(o->off, o->page), o->npages);
		break;
	case OP_SEARCH:
		if (hs_pam_exhausted(p))
			fail_msg("%s: heap exhausted, want searchAddr at chunk base+%#llx page %u", ctx,
				 (long long)o->off, o->page);
		got = hs_pam_search_addr(p);
		if (got != scenario_addr_at(o->off, o->page))
			fail_msg("%s: searchAddr %#" PRIxPTR ", want %#" PRIxPTR " (chunk base+%#llx page %u)", ctx,
				 got, scenario_addr_at(o->off, o->page), (long long)o->off, o->page);
		break;
	case OP_EXHAUSTED:
		if (!hs_pam_exhausted(p))
			fail_msg("%s: heap not exhausted, searchAddr %#" PRIxPTR, ctx, hs_pam_search_addr(p));
		break;
	case OP_SUM: {
		unsigned leaf = hs_pam_levels() - 1;
		unsigned top = o->to_root ? 0 : leaf - o->up;
		for (int l = (int)(leaf - o->up); l >= (int)top; l--)
			expect_sum(p, (unsigned)l, scenario_addr_at(o->off, 0), o->sum, ctx);
		break;
	}
	case OP_END:
		break;
	}
}

/* --- scenarios: alloc, free, alloc-and-free ------------------------------------------------ */

struct scenario {
	const char *name;
	int keep_scav;	    /* the after-state's scavenged ranges are the before-state's */
	unsigned align;	    /* offsets count from BaseChunkIdx rounded down to this (0: none) */
	struct chunk_spec chunks[SCENARIO_MAX_CHUNKS];
	struct op ops[MAX_OPS];
};

static const struct scenario alloc_scenarios[] = {
	{
		.name = "alloc/AllFree1",
		.keep_scav = 1,
		.chunks = { { C(0), .scav = { { 0, 1 }, { 2, 2 } }, .after = { { 0, 5 } } } },
		.ops = {
			SEARCH(0, 0),
			ALLOC(1, 0, 0, 1),
			SEARCH(0, 0),
			ALLOC(1, 0, 1, 0),
			SEARCH(0, 1),
			ALLOC(1, 0, 2, 1),
			ALLOC(1, 0, 3, 1),
			ALLOC(1, 0, 4, 0),
			SEARCH(0, 4),
			LEAF(0, 0, 507, 507),
			ABOVE(0, 0, 507, 0),
		},
	},
	{
		.name = "alloc/ManyArena1",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = FULL, .scav = FULL, .after = FULL },
			{ C(1), .alloc = FULL, .scav = FULL, .after = FULL },
			{ C(2), .alloc = { { 0, CP - 1 } }, .scav = FULL, .after = FULL },
		},
		.ops = {
			ALLOC(1, 2, CP - 1, 1),
			SEARCH(2, CP - 1),
			FAIL(1),
			EXHAUSTED,
		},
	},
	{
		.name = "alloc/NotContiguous1",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = FULL, .scav = FULL, .after = FULL },
			{ C(0xff), .scav = FULL, .after = { { 0, 1 } } },
		},
		.ops = {
			ALLOC(1, 0xff, 0, 1),
			SEARCH(0xff, 0),
			LEAF(0xff, 0, CP - 1, CP - 1),
		},
	},
	{
		.name = "alloc/AllFree2",
		.keep_scav = 1,
		.chunks = { { C(0), .scav = { { 0, 3 }, { 7, 1 } }, .after = { { 0, 10 } } } },
		.ops = {
			ALLOC(2, 0, 0, 2),
			ALLOC(2, 0, 2, 1),
			ALLOC(2, 0, 4, 0),
			ALLOC(2, 0, 6, 1),
			ALLOC(2, 0, 8, 0),
			SEARCH(0, 8),
		},
	},
	{
		.name = "alloc/Straddle2",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = { { 0, CP - 1 } }, .scav = { { CP - 1, 1 } }, .after = FULL },
			{ C(1), .alloc = { { 1, CP - 1 } }, .after = FULL },
		},
		.ops = {
			LEAF(0, 0, 1, 1),
			LEAF(1, 1, 1, 0),
			BLOCK(0, 0, 2, 0),
			ALLOC(2, 0, CP - 1, 1),
			SEARCH(0, 0),
			LEAF(0, 0, 0, 0),
			LEAF(1, 0, 0, 0),
			ABOVE(0, 0, 0, 0),
			FAIL(1),
			EXHAUSTED,
		},
	},
	{
		.name = "alloc/AllFree5",
		.keep_scav = 1,
		.chunks = { { C(0), .scav = { { 0, 8 }, { 9, 1 }, { 17, 5 } }, .after = { { 0, 25 } } } },
		.ops = {
			ALLOC(5, 0, 0, 5),
			ALLOC(5, 0, 5, 4),
			ALLOC(5, 0, 10, 0),
			ALLOC(5, 0, 15, 3),
			ALLOC(5, 0, 20, 2),
			SEARCH(0, 20),
		},
	},
	{
		.name = "alloc/AllFree64",
		.keep_scav = 1,
		.chunks = { { C(0), .scav = { { 21, 1 }, { 63, 65 } }, .after = { { 0, 192 } } } },
		.ops = {
			ALLOC(64, 0, 0, 2),
			ALLOC(64, 0, 64, 64),
			ALLOC(64, 0, 128, 0),
			SEARCH(0, 128),
		},
	},
	{
		.name = "alloc/AllFree65",
		.keep_scav = 1,
		.chunks = { { C(0), .scav = { { 129, 1 } }, .after = { { 0, 195 } } } },
		.ops = {
			ALLOC(65, 0, 0, 0),
			ALLOC(65, 0, 65, 1),
			ALLOC(65, 0, 130, 0),
			SEARCH(0, 130),
		},
	},
	{
		.name = "alloc/ExhaustPallocChunkPages-3",
		.keep_scav = 1,
		.chunks = { { C(0), .scav = { { 10, 1 } }, .after = FULL } },
		.ops = {
			ALLOC(CP - 3, 0, 0, 1),
			FAIL(CP - 3),
			SEARCH(0, 0),
			ALLOC(1, 0, CP - 3, 0),
			SEARCH(0, CP - 3),
			ALLOC(2, 0, CP - 2, 0),
			SEARCH(0, CP - 2),
			FAIL(1),
			EXHAUSTED,
			FAIL(CP - 3),
			EXHAUSTED,
		},
	},
	{
		.name = "alloc/AllFreePallocChunkPages",
		.keep_scav = 1,
		.chunks = { { C(0), .scav = { { 0, 1 }, { CP - 1, 1 } }, .after = FULL } },
		.ops = {
			ALLOC(CP, 0, 0, 2),
			SEARCH(0, 0),
			FAIL(CP),
			FAIL(1),
			EXHAUSTED,
		},
	},
	{
		.name = "alloc/StraddlePallocChunkPages",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = { { 0, CP / 2 } }, .after = FULL },
			{ C(1), .alloc = { { CP / 2, CP / 2 } }, .scav = { { 3, 100 } }, .after = FULL },
		},
		.ops = {
			LEAF(0, 0, CP / 2, CP / 2),
			LEAF(1, CP / 2, CP / 2, 0),
			ABOVE(0, 0, CP, 0),
			ALLOC(CP, 0, CP / 2, 100),
			SEARCH(0, 0),
			FAIL(CP),
			FAIL(1),
			EXHAUSTED,
		},
	},
	{
		.name = "alloc/StraddlePallocChunkPages+1",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = { { 0, CP / 2 } }, .scav = FULL, .after = FULL },
			{ C(1), .scav = FULL, .after = { { 0, CP / 2 + 2 } } },
		},
		.ops = {
			LEAF(0, 0, CP / 2, CP / 2),
			LEAF(1, CP, CP, CP),
			BLOCK(0, 0, CP + CP / 2, 0),
			ABOVE(0, 0, CP + CP / 2, 0),
			ALLOC(CP + 1, 0, CP / 2, CP + 1),
			SEARCH(0, 0),
			LEAF(0, 0, 0, 0),
			LEAF(1, 0, CP / 2 - 1, CP / 2 - 1),
			ABOVE(0, 0, CP / 2 - 1, 0),
			FAIL(CP),
			ALLOC(1, 1, CP / 2 + 1, 1),
			SEARCH(1, CP / 2 + 1),
		},
	},
	{
		.name = "alloc/AllFreePallocChunkPages*2",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .after = FULL },
			{ C(1), .after = FULL },
		},
		.ops = {
			ALLOC(CP * 2, 0, 0, 0),
			SEARCH(0, 0),
			FAIL(CP * 2),
			FAIL(1),
			EXHAUSTED,
		},
	},
	{
		.name = "alloc/NotContiguousPallocChunkPages*2",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .scav = FULL, .after = { { 0, 22 } } },
			{ C(0x40), .after = FULL },
			{ C(0x41), .after = FULL },
		},
		.ops = {
			ALLOC(CP * 2, 0x40, 0, 0),
			SEARCH(0, 0),
			ALLOC(21, 0, 0, 21),
			SEARCH(0, 0),
			ALLOC(1, 0, 21, 1),
			SEARCH(0, 21),
			LEAF(0x40, 0, 0, 0),
			LEAF(0x41, 0, 0, 0),
		},
	},
	{
		.name = "alloc/StraddlePallocChunkPages*2",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = { { 0, CP / 2 } }, .scav = { { 0, 7 } }, .after = FULL },
			{ C(1), .scav = { { 3, 5 }, { 121, 10 } }, .after = FULL },
			{ C(2), .alloc = { { CP / 2, CP / 2 } }, .scav = { { CP / 2 + 12, 2 } }, .after = FULL },
		},
		.ops = {
			ALLOC(CP * 2, 0, CP / 2, 15),
			SEARCH(0, 0),
			FAIL(CP * 2),
			FAIL(1),
			EXHAUSTED,
		},
	},
	{
		.name = "alloc/StraddlePallocChunkPages*5/4",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = FULL, .scav = FULL, .after = FULL },
			{ C(1), .alloc = { { 0, CP * 3 / 4 } }, .scav = { { CP / 2, CP / 4 + 1 } },
			  .after = { { 0, CP * 3 / 4 + 1 } } },
			{ C(2), .alloc = { { 0, CP * 3 / 4 } }, .scav = { { CP / 3, 1 } }, .after = FULL },
			{ C(3), .scav = { { CP * 2 / 3, 1 } }, .after = FULL },
		},
		.ops = {
			ALLOC(CP * 5 / 4, 2, CP * 3 / 4, 1),
			SEARCH(1, 0),
			FAIL(CP * 5 / 4),
			ALLOC(1, 1, CP * 3 / 4, 1),
			SEARCH(1, CP * 3 / 4),
		},
	},
	{
		.name = "alloc/AllFreePallocChunkPages*7+5",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .scav = { { 50, 1 } }, .after = FULL },
			{ C(1), .scav = { { 31, 1 } }, .after = FULL },
			{ C(2), .scav = { { 7, 1 } }, .after = FULL },
			{ C(3), .scav = { { 200, 1 } }, .after = FULL },
			{ C(4), .scav = { { 3, 1 } }, .after = FULL },
			{ C(5), .scav = { { 51, 1 } }, .after = FULL },
			{ C(6), .scav = { { 20, 1 } }, .after = FULL },
			{ C(7), .scav = { { 1, 1 } }, .after = { { 0, 6 } } },
		},
		.ops = {
			BLOCK(0, 8 * CP, 8 * CP, 8 * CP),
			UP2(0, 8 * CP, 8 * CP, 0),
			ALLOC(CP * 7 + 5, 0, 0, 8),
			SEARCH(0, 0),
			LEAF(6, 0, 0, 0),
			LEAF(7, 0, CP - 5, CP - 5),
			BLOCK(0, 0, CP - 5, CP - 5),
			ABOVE(0, 0, CP - 5, 0),
			FAIL(CP * 7 + 5),
			ALLOC(1, 7, 5, 0),
			SEARCH(7, 5),
		},
	},
	{
		/* 64-bit only in Go: the second chunk is O(TiB) away. */
		.name = "alloc/DiscontiguousMappedSumBoundary",
		.keep_scav = 1,
		.align = SUMS_PER_PHYS_PAGE,
		.chunks = {
			{ C(SUMS_PER_PHYS_PAGE - 1), .after = FULL },
			{ C(0x100000), .after = FULL },
		},
		.ops = {
			ALLOC(CP - 1, SUMS_PER_PHYS_PAGE - 1, 0, 0),
			SEARCH(SUMS_PER_PHYS_PAGE - 1, 0),
			ALLOC(1, SUMS_PER_PHYS_PAGE - 1, CP - 1, 0),
			SEARCH(SUMS_PER_PHYS_PAGE - 1, CP - 1),
			ALLOC(1, 0x100000, 0, 0),
			SEARCH(0x100000, 0),
			ALLOC(CP - 1, 0x100000, 1, 0),
			SEARCH(0x100000, 1),
			FAIL(1),
			EXHAUSTED,
		},
	},
	{
		/* 64-bit only in Go (issue 40191): find's candidate searchAddr lies in
		 * unmapped space below the middle chunk and must be moved up to it. */
		.name = "alloc/DiscontiguousBadSearchAddr",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = { { 0, CP - 1 } }, .after = FULL },
			{ C(0x100000 + 0x503), .alloc = { { 0, CP - 10 }, { CP - 1, 1 } }, .after = FULL },
			{ C(0x200000), .after = { { 0, 100 } } },
		},
		.ops = {
			ALLOC(1, 0, CP - 1, 0),
			SEARCH(0, CP - 1),
			ALLOC(100, 0x200000, 0, 0),
			SEARCH(0x100503, 0),
			ALLOC(9, 0x100503, CP - 10, 0),
			SEARCH(0x100503, CP - 10),
		},
	},
	{
		/* hand: summaries at every level around a run that crosses a chunk
		 * boundary, allocated, freed, and the whole block taken. */
		.name = "alloc/hand/SummariesAcrossChunks",
		.keep_scav = 1,
		.chunks = {
			{ C(0), .alloc = { { 0, 400 } }, .after = FULL },
			{ C(1), .scav = { { 0, 100 } }, .after = FULL },
			{ C(2), .after = FULL },
			{ C(3), .after = FULL },
			{ C(4), .after = FULL },
			{ C(5), .after = FULL },
			{ C(6), .after = FULL },
			{ C(7), .after = FULL },
		},
		.ops = {
			LEAF(0, 0, 112, 112),
			LEAF(1, CP, CP, CP),
			LEAF(7, CP, CP, CP),
			BLOCK(0, 0, 7 * CP + 112, 7 * CP + 112),
			ABOVE(0, 0, 7 * CP + 112, 0),
			ALLOC(200, 0, 400, 88),
			SEARCH(0, 0),
			LEAF(0, 0, 0, 0),
			LEAF(1, 0, 424, 424),
			LEAF(2, CP, CP, CP),
			BLOCK(0, 0, 6 * CP + 424, 6 * CP + 424),
			ABOVE(0, 0, 6 * CP + 424, 0),
			FREE(200, 0, 400),
			SEARCH(0, 0),
			LEAF(0, 0, 112, 112),
			LEAF(1, CP, CP, CP),
			BLOCK(0, 0, 7 * CP + 112, 7 * CP + 112),
			ABOVE(0, 0, 7 * CP + 112, 0),
			ALLOC(7 * CP + 112, 0, 400, 12),
			SEARCH(0, 0),
			LEAF(0, 0, 0, 0),
			LEAF(7, 0, 0, 0),
			ABOVE(0, 0, 0, 0),
			FAIL(1),
			EXHAUSTED,
		},
	},
};

static const struct scenario free_scenarios[] = {
	{
		.name = "free/Free1",
		.chunks = { { C(0), .alloc = FULL, .after = { { 5, CP - 5 } } } },
		.ops = {
			FREE(1, 0, 0),
			FREE(1, 0, 1),
			FREE(1, 0, 2),
			FREE(1, 0, 3),
			FREE(1, 0, 4),
			SEARCH(0, 0),
			LEAF(0, 5, 5, 0),
		},
	},
	{
		.name = "free/ManyArena1",
		.chunks = {
			{ C(0), .alloc = FULL, .after = { { 0, CP / 2 }, { CP / 2 + 1, CP / 2 - 1 } } },
			{ C(1), .alloc = FULL, .after = { { 1, CP - 1 } } },
			{ C(2), .alloc = FULL, .after = { { 0, CP - 1 } } },
		},
		.ops = {
			FREE(1, 0, CP / 2),
			FREE(1, 1, 0),
			FREE(1, 2, CP - 1),
			LEAF(0, 0, 1, 0),
			LEAF(1, 1, 1, 0),
			LEAF(2, 0, 1, 1),
			ABOVE(0, 0, 1, 0),
		},
	},
	{
		.name = "free/Free2",
		.chunks = { { C(0), .alloc = FULL, .after = { { 10, CP - 10 } } } },
		.ops = {
			FREE(2, 0, 0),
			FREE(2, 0, 2),
			FREE(2, 0, 4),
			FREE(2, 0, 6),
			FREE(2, 0, 8),
		},
	},
	{
		.name = "free/Straddle2",
		.chunks = {
			{ C(0), .alloc = { { CP - 1, 1 } } },
			{ C(1), .alloc = { { 0, 1 } } },
		},
		.ops = {
			BLOCK(0, CP - 1, CP - 1, 0),
			FREE(2, 0, CP - 1),
			LEAF(0, CP, CP, CP),
			LEAF(1, CP, CP, CP),
			BLOCK(0, 2 * CP, 2 * CP, 0),
		},
	},
	{
		.name = "free/Free5",
		.chunks = { { C(0), .alloc = FULL, .after = { { 25, CP - 25 } } } },
		.ops = {
			FREE(5, 0, 0),
			FREE(5, 0, 5),
			FREE(5, 0, 10),
			FREE(5, 0, 15),
			FREE(5, 0, 20),
		},
	},
	{
		.name = "free/Free64",
		.chunks = { { C(0), .alloc = FULL, .after = { { 192, CP - 192 } } } },
		.ops = {
			FREE(64, 0, 0),
			FREE(64, 0, 64),
			FREE(64, 0, 128),
		},
	},
	{
		.name = "free/Free65",
		.chunks = { { C(0), .alloc = FULL, .after = { { 195, CP - 195 } } } },
		.ops = {
			FREE(65, 0, 0),
			FREE(65, 0, 65),
			FREE(65, 0, 130),
		},
	},
	{
		.name = "free/FreePallocChunkPages",
		.chunks = { { C(0), .alloc = FULL } },
		.ops = {
			FREE(CP, 0, 0),
			LEAF(0, CP, CP, CP),
		},
	},
	{
		.name = "free/StraddlePallocChunkPages",
		.chunks = {
			{ C(0), .alloc = { { CP / 2, CP / 2 } } },
			{ C(1), .alloc = { { 0, CP / 2 } } },
		},
		.ops = {
			FREE(CP, 0, CP / 2),
		},
	},
	{
		.name = "free/StraddlePallocChunkPages+1",
		.chunks = {
			{ C(0), .alloc = FULL, .after = { { 0, CP / 2 } } },
			{ C(1), .alloc = FULL, .after = { { CP / 2 + 1, CP / 2 - 1 } } },
		},
		.ops = {
			FREE(CP + 1, 0, CP / 2),
			LEAF(0, 0, CP / 2, CP / 2),
			LEAF(1, CP / 2 + 1, CP / 2 + 1, 0),
			ABOVE(0, 0, CP + 1, 0),
		},
	},
	{
		.name = "free/FreePallocChunkPages*2",
		.chunks = {
			{ C(0), .alloc = FULL },
			{ C(1), .alloc = FULL },
		},
		.ops = {
			FREE(CP * 2, 0, 0),
		},
	},
	{
		.name = "free/StraddlePallocChunkPages*2",
		.chunks = {
			{ C(0), .alloc = FULL, .after = { { 0, CP / 2 } } },
			{ C(1), .alloc = FULL },
			{ C(2), .alloc = FULL, .after = { { CP / 2, CP / 2 } } },
		},
		.ops = {
			FREE(CP * 2, 0, CP / 2),
		},
	},
	{
		.name = "free/AllFreePallocChunkPages*7+5",
		.chunks = {
			{ C(0), .alloc = FULL },
			{ C(1), .alloc = FULL },
			{ C(2), .alloc = FULL },
			{ C(3), .alloc = FULL },
			{ C(4), .alloc = FULL },
			{ C(5), .alloc = FULL },
			{ C(6), .alloc = FULL },
			{ C(7), .alloc = FULL, .after = { { 5, CP - 5 } } },
		},
		.ops = {
			FREE(CP * 7 + 5, 0, 0),
			BLOCK(0, 7 * CP + 5, 7 * CP + 5, 0),
		},
	},
	{
		/* hand: free lowers searchAddr (from "exhausted" too), never raises it,
		 * and alloc then moves it up again as Go's fast and slow paths do. */
		.name = "free/hand/FreeLowersSearchAddr",
		.chunks = {
			{ C(0), .alloc = FULL, .after = FULL },
			{ C(1), .alloc = FULL, .after = { { 1, 11 }, { 15, 85 }, { 101, CP - 101 } } },
		},
		.ops = {
			FAIL(1),
			EXHAUSTED,
			FREE(1, 1, 100),
			SEARCH(1, 100),
			FREE(1, 0, 300),
			SEARCH(0, 300),
			FREE(5, 1, 10),
			SEARCH(0, 300),
			FREE(2, 0, CP - 1),
			SEARCH(0, 300),
			ALLOC(1, 0, 300, 0),
			SEARCH(0, 300),
			ALLOC(1, 0, CP - 1, 0),
			SEARCH(0, CP - 1),
			ALLOC(2, 1, 10, 0),
			SEARCH(1, 0),
		},
	},
};

static const struct scenario alloc_free_scenarios[] = {
	{
		.name = "allocfree/Chunks8",
		.chunks = {
			{ C(0), .after = FULL },
			{ C(1), .after = FULL },
			{ C(2), .after = FULL },
			{ C(3), .after = FULL },
			{ C(4), .after = FULL },
			{ C(5), .after = FULL },
			{ C(6), .after = FULL },
			{ C(7), .after = FULL },
		},
		.ops = {
			ALLOC(CP * 8, 0, 0, 0),
			SEARCH(0, 0),
			FREE(CP * 8, 0, 0),
			ALLOC(CP * 8, 0, 0, 0),
			FREE(CP * 8, 0, 0),
			ALLOC(CP * 8, 0, 0, 0),
			FREE(CP * 8, 0, 0),
			BLOCK(0, 8 * CP, 8 * CP, 8 * CP),
			ALLOC(1, 0, 0, 0),
			FREE(1, 0, 0),
			ALLOC(CP * 8, 0, 0, 0),
			BLOCK(0, 0, 0, 0),
			FAIL(1),
			EXHAUSTED,
		},
	},
	{
		/* hand: freed pages are reused first fit, searchAddr following Go's
		 * findSmallN (the first free page seen before the allocation). */
		.name = "allocfree/hand/FreeThenReuse",
		.chunks = { { C(0), .after = { { 0, 27 } } } },
		.ops = {
			ALLOC(10, 0, 0, 0),
			SEARCH(0, 0),
			ALLOC(10, 0, 10, 0),
			SEARCH(0, 10),
			FREE(10, 0, 0),
			SEARCH(0, 0),
			ALLOC(5, 0, 0, 0),
			SEARCH(0, 0),
			ALLOC(6, 0, 20, 0),
			SEARCH(0, 5),
			ALLOC(5, 0, 5, 0),
			SEARCH(0, 5),
			ALLOC(1, 0, 26, 0),
			SEARCH(0, 26),
			LEAF(0, 0, CP - 27, CP - 27),
		},
	},
};

static void run_scenario(void **state)
{
	const struct scenario *s = *state;
	char ctx[160];

	scenario_set_align(s->align);
	for (size_t k = 0; k < scenario_nchunks(s->chunks); k++)
		scenario_skip_unless_fits(s->name, s->chunks[k].off);
	for (size_t k = 0; k < MAX_OPS && s->ops[k].kind != OP_END; k++)
		scenario_skip_unless_fits(s->name, s->ops[k].off);

	hs_pam *p = scenario_build(s->chunks);
	for (size_t k = 0; k < MAX_OPS && s->ops[k].kind != OP_END; k++) {
		snprintf(ctx, sizeof ctx, "%s, op #%zu", s->name, k + 1);
		run_op(p, s->chunks, &s->ops[k], ctx);
		CHECK_INVARIANTS(p);
	}
	snprintf(ctx, sizeof ctx, "%s, after-state", s->name);
	expect_after(p, s->chunks, s->keep_scav, ctx);
}

/* --- TestPageAllocExhaust ------------------------------------------------------------------- */

static const unsigned long exhaust_sizes[] = { 1, 2, 3, 4, 5, 8, 16, 64, 1024, 1025, 2048, 2049 };
static const char *const exhaust_names[] = {
	"exhaust/1",  "exhaust/2",  "exhaust/3",    "exhaust/4",	"exhaust/5",	"exhaust/8",
	"exhaust/16", "exhaust/64", "exhaust/1024", "exhaust/1025", "exhaust/2048", "exhaust/2049",
};

static void test_exhaust(void **state)
{
	const unsigned long npages = *(const unsigned long *)*state;
	struct chunk_spec cs[SCENARIO_MAX_CHUNKS] = {
		{ C(0) }, { C(1) }, { C(2) }, { C(3) },
	};
	char ctx[96];

	hs_pam *p = scenario_build(cs);
	unsigned long nalloc = 4 * CP / npages;
	for (unsigned long i = 0; i < nalloc; i++) {
		uintptr_t sc = 1, want = scenario_addr_at(0, i * npages);
		uintptr_t got = hs_pam_alloc(p, npages, &sc);
		if (got != want)
			fail_msg("exhaust/%lu: alloc #%lu = %#" PRIxPTR ", want %#" PRIxPTR, npages, i + 1, got, want);
		if (sc != 0)
			fail_msg("exhaust/%lu: alloc #%lu reported %lu scavenged bytes, want 0", npages, i + 1,
				 (unsigned long)sc);
		CHECK_INVARIANTS(p);
	}

	struct op fail = FAIL(npages);
	snprintf(ctx, sizeof ctx, "exhaust/%lu, final alloc", npages);
	run_op(p, cs, &fail, ctx);
	CHECK_INVARIANTS(p);
	if (npages == 1) {
		/* A failed one-page allocation proves the heap exhausted. */
		struct op ex = EXHAUSTED;
		run_op(p, cs, &ex, ctx);
	}

	unsigned long left = nalloc * npages;
	for (size_t k = 0; k < 4; k++) {
		unsigned long n = left >= CP ? CP : left;
		cs[k].after[0] = (hs_pam_bit_range){ 0, (unsigned)n };
		left -= n;
	}
	snprintf(ctx, sizeof ctx, "exhaust/%lu, after-state", npages);
	expect_after(p, cs, 0, ctx);
}

/* --- TestPageAllocGrow -------------------------------------------------------------------------- */

#define GROW_END INT64_MIN
#define MAX_GROW 40

struct grow_case {
	const char *name;
	int64_t chunks[MAX_GROW];	      /* ended by GROW_END */
	struct chunk_range in_use[MAX_GROW]; /* ended by an empty range */
};

static const struct grow_case grow_cases[] = {
	{
		.name = "grow/One",
		.chunks = { 0, GROW_END },
		.in_use = { { 0, 1 } },
	},
	{
		.name = "grow/Contiguous2",
		.chunks = { 0, 1, GROW_END },
		.in_use = { { 0, 2 } },
	},
	{
		.name = "grow/Contiguous5",
		.chunks = { 0, 1, 2, 3, 4, GROW_END },
		.in_use = { { 0, 5 } },
	},
	{
		.name = "grow/Discontiguous",
		.chunks = { 0, 2, 4, GROW_END },
		.in_use = { { 0, 1 }, { 2, 3 }, { 4, 5 } },
	},
	{
		.name = "grow/Mixed",
		.chunks = { 0, 1, 2, 4, GROW_END },
		.in_use = { { 0, 3 }, { 4, 5 } },
	},
	{
		.name = "grow/WildlyDiscontiguous",
		.chunks = { 0, 1, 0x10, 0x21, GROW_END },
		.in_use = { { 0, 2 }, { 0x10, 0x11 }, { 0x21, 0x22 } },
	},
	{
		.name = "grow/ManyDiscontiguous",
		.chunks = { 0,	2,  4,	6,  8,	10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32,
			    34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62, 64, GROW_END },
		.in_use = { { 0, 1 },	{ 2, 3 },   { 4, 5 },	{ 6, 7 },   { 8, 9 },	{ 10, 11 }, { 12, 13 },
			    { 14, 15 }, { 16, 17 }, { 18, 19 }, { 20, 21 }, { 22, 23 }, { 24, 25 }, { 26, 27 },
			    { 28, 29 }, { 30, 31 }, { 32, 33 }, { 34, 35 }, { 36, 37 }, { 38, 39 }, { 40, 41 },
			    { 42, 43 }, { 44, 45 }, { 46, 47 }, { 48, 49 }, { 50, 51 }, { 52, 53 }, { 54, 55 },
			    { 56, 57 }, { 58, 59 }, { 60, 61 }, { 62, 63 }, { 64, 65 } },
	},
	{
		/* 64-bit only in Go. */
		.name = "grow/ExtremelyDiscontiguous",
		.chunks = { 0, 0x100000, GROW_END },
		.in_use = { { 0, 1 }, { 0x100000, 0x100001 } },
	},
};

static size_t grow_nchunks(const struct grow_case *g)
{
	size_t n = 0;
	while (n < MAX_GROW && g->chunks[n] != GROW_END)
		n++;
	return n;
}

static size_t grow_nranges(const struct grow_case *g)
{
	size_t n = 0;
	while (n < MAX_GROW && g->in_use[n].lo != g->in_use[n].hi)
		n++;
	return n;
}

static hs_pam *new_empty(void)
{
	hs_pam *p = NULL;
	assert_int_equal(hs_pam_new(NULL, 0, &p), 0);
	scenario_set_pam(p);
	CHECK_INVARIANTS(p);
	assert_true(hs_pam_exhausted(p));
	return p;
}

/* Freshly grown memory is free and, as in Go's grow, all scavenged. */
static void expect_fresh_chunk(hs_pam *p, int64_t off, const char *ctx)
{
	uint64_t a[8] = { 0 }, s[8];
	memset(s, 0xff, sizeof s);
	scenario_expect_chunk(p, off, a, s, ctx);
	expect_sum(p, hs_pam_levels() - 1, scenario_addr_at(off, 0), (hs_pam_sum){ CP, CP, CP }, ctx);
}

static void test_grow_case(void **state)
{
	const struct grow_case *g = *state;
	size_t n = grow_nchunks(g), nr = grow_nranges(g);
	char ctx[128];
	int64_t lowest = g->chunks[0];

	for (size_t k = 0; k < n; k++) {
		scenario_skip_unless_fits(g->name, g->chunks[k]);
		if (g->chunks[k] < lowest)
			lowest = g->chunks[k];
	}

	/* As Go's test does it: NewPageAlloc grows each chunk, then clears the
	 * scavenged bits. */
	struct chunk_spec cs[SCENARIO_MAX_CHUNKS];
	hs_pam_chunk_init init[MAX_GROW];
	hs_pam *p = NULL;
	memset(cs, 0, sizeof cs);
	for (size_t k = 0; k < n; k++)
		init[k] = (hs_pam_chunk_init){ .base = scenario_addr_at(g->chunks[k], 0) };
	assert_int_equal(hs_pam_new(init, n, &p), 0);
	scenario_set_pam(p);
	CHECK_INVARIANTS(p);
	snprintf(ctx, sizeof ctx, "%s (hs_pam_new)", g->name);
	expect_in_use(p, g->in_use, nr, ctx);
	for (size_t k = 0; k < n; k++) {
		uint64_t zero[8] = { 0 };
		scenario_expect_chunk(p, g->chunks[k], zero, zero, ctx);
	}
	scenario_drop_pam(NULL);

	/* hs_pam_grow one chunk at a time, in the listed order and reversed. */
	for (int rev = 0; rev < 2; rev++) {
		p = new_empty();
		snprintf(ctx, sizeof ctx, "%s (grow, %s order)", g->name, rev ? "descending" : "ascending");
		for (size_t k = 0; k < n; k++) {
			int64_t off = g->chunks[rev ? n - 1 - k : k];
			int err = hs_pam_grow(p, scenario_addr_at(off, 0), hs_pam_chunk_bytes());
			if (err != 0)
				fail_msg("%s: grow of chunk base+%#llx returned %d", ctx, (long long)off, err);
			CHECK_INVARIANTS(p);
			if (rev) {
				/* Each chunk grown is the lowest so far: searchAddr follows it down. */
				struct op o = SEARCH(off, 0);
				run_op(p, cs, &o, ctx);
			}
		}
		expect_in_use(p, g->in_use, nr, ctx);
		struct op o = SEARCH(lowest, 0);
		run_op(p, cs, &o, ctx);
		for (size_t k = 0; k < n; k++)
			expect_fresh_chunk(p, g->chunks[k], ctx);
		scenario_drop_pam(NULL);
	}
}

/* hand: ranges of several chunks, unaligned ranges, and overlaps. */
struct grow_op {
	int64_t off;
	unsigned page;
	unsigned long npages; /* 0 ends the list */
	int err;
};

struct hand_grow_case {
	const char *name;
	struct grow_op ops[10];
	struct chunk_range in_use[10]; /* ended by an empty range */
};

static const struct hand_grow_case hand_grow_cases[] = {
	{
		.name = "grow/hand/AdjacentAbove",
		.ops = { { 0, 0, 2 * CP, 0 }, { 2, 0, 3 * CP, 0 } },
		.in_use = { { 0, 5 } },
	},
	{
		.name = "grow/hand/AdjacentBelow",
		.ops = { { 3, 0, CP, 0 }, { 1, 0, 2 * CP, 0 } },
		.in_use = { { 1, 4 } },
	},
	{
		.name = "grow/hand/FillGap",
		.ops = { { 0, 0, 5 * CP, 0 }, { 7, 0, CP, 0 }, { 5, 0, 2 * CP, 0 } },
		.in_use = { { 0, 8 } },
	},
	{
		/* Ranges are rounded out to whole chunks. */
		.name = "grow/hand/Unaligned",
		.ops = { { 4, 10, 1, 0 }, { 5, CP - 1, 2, 0 } },
		.in_use = { { 4, 7 } },
	},
	{
		.name = "grow/hand/Overlap",
		.ops = {
			{ 0, 0, 2 * CP, 0 },
			{ 1, 0, CP, EINVAL },
			{ 1, 100, 1, EINVAL },
			{ -1, 0, 2 * CP, EINVAL },
			{ 1, CP - 1, 2, EINVAL },
			{ -3, 0, 5 * CP, EINVAL },
			{ -1, 0, CP, 0 },
			{ 2, 0, CP, 0 },
		},
		.in_use = { { -1, 3 } },
	},
};

static void test_hand_grow(void **state)
{
	const struct hand_grow_case *g = *state;
	hs_pam *p = new_empty();
	char ctx[128];
	size_t nr = 0;

	for (size_t k = 0; k < ARRAY_LEN(g->ops) && g->ops[k].npages != 0; k++) {
		const struct grow_op *o = &g->ops[k];
		hs_pam_addr_range before[8], after[8];
		size_t nb = hs_pam_in_use(p, before, ARRAY_LEN(before));
		uintptr_t sa = hs_pam_search_addr(p);

		snprintf(ctx, sizeof ctx, "%s, grow #%zu", g->name, k + 1);
		int err = hs_pam_grow(p, scenario_addr_at(o->off, o->page), o->npages * hs_pam_page_size());
		if (err != o->err)
			fail_msg("%s: returned %d, want %d", ctx, err, o->err);
		CHECK_INVARIANTS(p);
		if (err != 0) {
			size_t na = hs_pam_in_use(p, after, ARRAY_LEN(after));
			if (na != nb || memcmp(before, after, nb * sizeof before[0]) != 0 ||
			    hs_pam_search_addr(p) != sa)
				fail_msg("%s: a rejected grow changed the allocator", ctx);
		}
	}
	while (nr < ARRAY_LEN(g->in_use) && g->in_use[nr].lo != g->in_use[nr].hi)
		nr++;
	snprintf(ctx, sizeof ctx, "%s, after-state", g->name);
	expect_in_use(p, g->in_use, nr, ctx);
	struct op o = SEARCH(g->in_use[0].lo, 0);
	run_op(p, NULL, &o, ctx);
	for (size_t r = 0; r < nr; r++) {
		for (int64_t c = g->in_use[r].lo; c < g->in_use[r].hi; c++)
			expect_fresh_chunk(p, c, ctx);
	}
}

/* The last chunk of the address space can be grown into and used. */
static void test_grow_top(void **state)
{
	(void)state;
	const uint64_t top = scenario_space_chunks() - 1;
	const uintptr_t cb = hs_pam_chunk_bytes(), ps = hs_pam_page_size();
	const uintptr_t topb = hs_pam_chunk_base(top);
	hs_pam_addr_range r[4];
	uintptr_t sc = 0;

	hs_pam *p = new_empty();
	/* Leaving the address space: two chunks from the top, or one page past it. */
	assert_int_equal(hs_pam_grow(p, topb, 2 * cb), EINVAL);
	assert_int_equal(hs_pam_grow(p, topb + ps, cb), EINVAL);
	assert_int_equal(hs_pam_in_use(p, r, 4), 0);
	CHECK_INVARIANTS(p);

	assert_int_equal(hs_pam_grow(p, topb, cb), 0);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_in_use(p, r, 4), 1);
	assert_int_equal(r[0].base, topb);
	assert_int_equal(r[0].limit, topb + cb);
	assert_int_equal(hs_pam_search_addr(p), topb);

	/* Everything newly grown is scavenged. */
	assert_int_equal(hs_pam_alloc(p, CP, &sc), topb);
	assert_int_equal(sc, CP * ps);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_alloc(p, 1, &sc), 0);
	CHECK_INVARIANTS(p);
	assert_true(hs_pam_exhausted(p));

	hs_pam_free(p, topb, CP);
	CHECK_INVARIANTS(p);
	assert_false(hs_pam_exhausted(p));
	assert_int_equal(hs_pam_search_addr(p), topb);
	assert_int_equal(hs_pam_alloc(p, 1, &sc), topb);
	assert_int_equal(sc, 0);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_alloc(p, CP - 1, &sc), topb + ps);
	CHECK_INVARIANTS(p);

	/* Overlapping the top chunk is refused; the chunk just below merges. */
	assert_int_equal(hs_pam_grow(p, hs_pam_chunk_base(top - 1), 2 * cb), EINVAL);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_grow(p, hs_pam_chunk_base(top - 1), cb), 0);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_in_use(p, r, 4), 1);
	assert_int_equal(r[0].base, hs_pam_chunk_base(top - 1));
	assert_int_equal(r[0].limit, topb + cb);
	assert_int_equal(hs_pam_search_addr(p), hs_pam_chunk_base(top - 1));
	assert_int_equal(hs_pam_alloc(p, CP + 1, &sc), 0);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_alloc(p, CP, &sc), hs_pam_chunk_base(top - 1));
	assert_int_equal(sc, CP * ps);
	CHECK_INVARIANTS(p);
}

/* A range holding address 0 is refused: 0 is alloc's failure value. */
static void test_grow_address_zero(void **state)
{
	(void)state;
	const uintptr_t cb = hs_pam_chunk_bytes(), ps = hs_pam_page_size();
	const uint64_t z = hs_pam_chunk_index(0);
	hs_pam_addr_range r[4];
	uintptr_t sc;

	hs_pam *p = new_empty();
	assert_int_equal(hs_pam_chunk_base(z), 0);
	assert_int_equal(hs_pam_grow(p, 0, ps), EINVAL);
	assert_int_equal(hs_pam_grow(p, hs_pam_chunk_base(z), cb), EINVAL);
	assert_int_equal(hs_pam_grow(p, ps * 7, cb), EINVAL);
	/* From one chunk below 0 to one above: across 0 on amd64, out of the
	 * address space elsewhere. */
	assert_int_equal(hs_pam_grow(p, (uintptr_t)0 - cb, 2 * cb), EINVAL);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_in_use(p, r, 4), 0);
	assert_true(hs_pam_exhausted(p));
	assert_int_equal(hs_pam_alloc(p, 1, &sc), 0);
	CHECK_INVARIANTS(p);

	/* The chunk right above address 0 is fine. */
	assert_int_equal(hs_pam_grow(p, cb, cb), 0);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_grow(p, 0, 2 * cb), EINVAL);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_in_use(p, r, 4), 1);
	assert_int_equal(r[0].base, cb);
	assert_int_equal(r[0].limit, 2 * cb);
	assert_int_equal(hs_pam_alloc(p, 1, &sc), cb);
	CHECK_INVARIANTS(p);
	scenario_drop_pam(NULL);

	/* The bottom chunk of the offset address space holds address 0 unless the
	 * configuration has an arena base offset (amd64). */
	p = new_empty();
	int want = hs_pam_arena_base_offset() == 0 ? EINVAL : 0;
	assert_int_equal(hs_pam_grow(p, hs_pam_chunk_base(0), cb), want);
	CHECK_INVARIANTS(p);
	if (want == 0) {
		assert_int_equal(hs_pam_alloc(p, 2, &sc), hs_pam_chunk_base(0));
		CHECK_INVARIANTS(p);
	}
}

/* The inspection calls refuse what was never grown into. */
static void test_inspect_ungrown(void **state)
{
	(void)state;
	struct chunk_spec cs[SCENARIO_MAX_CHUNKS] = { { C(0) } };
	uint64_t a[8], s[8];
	hs_pam_sum sum;

	hs_pam *p = scenario_build(cs);
	assert_int_equal(hs_pam_chunk_bitmaps(p, scenario_chunk_idx(0), a, s), 0);
	assert_int_equal(hs_pam_chunk_bitmaps(p, scenario_chunk_idx(3), a, s), EINVAL);
	assert_int_equal(hs_pam_summary(p, hs_pam_levels() - 1, scenario_chunk_idx(3), &sum), EINVAL);
	assert_int_equal(hs_pam_summary(p, hs_pam_levels(), 0, &sum), EINVAL);
	/* The root entry over the chunk is grown into. */
	assert_int_equal(hs_pam_summary(p, 0, hs_pam_level_index(0, scenario_addr_at(0, 0)), &sum), 0);
	CHECK_INVARIANTS(p);
}

/* An allocator never grown into has nothing to give. */
static void test_no_chunks(void **state)
{
	(void)state;
	hs_pam_addr_range r;
	hs_pam_page_cache c;
	uintptr_t sc = 1;

	hs_pam *p = new_empty();
	assert_int_equal(hs_pam_alloc(p, 1, &sc), 0);
	assert_int_equal(sc, 0);
	CHECK_INVARIANTS(p);
	assert_int_equal(hs_pam_alloc(p, CP, &sc), 0);
	CHECK_INVARIANTS(p);
	c = hs_pam_alloc_to_cache(p);
	assert_int_equal(c.base, 0);
	assert_int_equal(c.cache, 0);
	CHECK_INVARIANTS(p);
	assert_true(hs_pam_exhausted(p));
	assert_int_equal(hs_pam_in_use(p, &r, 1), 0);
	/* Searching from the root (the heap's HEAPSCOPE_SEARCH_ADDR=off, and its
	 * aligned allocation, which calls find directly) finds nothing either,
	 * rather than reading summaries never committed. */
	hs_pam_set_search_addr(p, 0);
	assert_int_equal(hs_pam_alloc(p, 1, &sc), 0);
	c = hs_pam_alloc_to_cache(p);
	assert_int_equal(c.base, 0);
	CHECK_INVARIANTS(p);
}

/* --- bad frees ----------------------------------------------------------------------------------- */

struct bad_free_case {
	const char *name;
	struct chunk_spec chunks[SCENARIO_MAX_CHUNKS];
	unsigned long first_free; /* pages freed successfully at (off, page) first; 0: none */
	int64_t off;
	unsigned page;
	unsigned long npages;
};

static const struct bad_free_case bad_free_cases[] = {
	{
		.name = "badfree/FreePage",
		.chunks = { { C(0), .alloc = { { 0, 5 } } } },
		.off = 0,
		.page = 5,
		.npages = 1,
	},
	{
		.name = "badfree/RunPartlyFree",
		.chunks = { { C(0), .alloc = { { 0, 10 } } } },
		.off = 0,
		.page = 5,
		.npages = 10,
	},
	{
		.name = "badfree/AcrossChunksSecondFree",
		.chunks = {
			{ C(0), .alloc = { { CP - 12, 12 } } },
			{ C(1) },
		},
		.off = 0,
		.page = CP - 12,
		.npages = 20,
	},
	{
		.name = "badfree/DoubleFree",
		.chunks = { { C(0), .alloc = FULL } },
		.first_free = 1,
		.off = 0,
		.page = 7,
		.npages = 1,
	},
	{
		.name = "badfree/DoubleFreeRun",
		.chunks = { { C(0), .alloc = FULL } },
		.first_free = 64,
		.off = 0,
		.page = 64,
		.npages = 64,
	},
	{
		.name = "badfree/UngrownChunk",
		.chunks = { { C(0), .alloc = FULL } },
		.off = 3,
		.page = 0,
		.npages = 1,
	},
	{
		.name = "badfree/UngrownChunkRun",
		.chunks = { { C(0), .alloc = FULL } },
		.off = 3,
		.page = 8,
		.npages = 4,
	},
};

struct free_call {
	hs_pam *p;
	uintptr_t base, npages;
};

static void do_free(void *arg)
{
	const struct free_call *fc = arg;
	hs_pam_free(fc->p, fc->base, fc->npages);
}

static void test_bad_free(void **state)
{
	const struct bad_free_case *b = *state;
	char out[4096], hex[32], ctx[128];

	hs_pam *p = scenario_build(b->chunks);
	if (b->first_free != 0) {
		hs_pam_free(p, scenario_addr_at(b->off, b->page), b->first_free);
		CHECK_INVARIANTS(p);
	}
	struct free_call fc = { p, scenario_addr_at(b->off, b->page), b->npages };
	snprintf(hex, sizeof hex, "0x%" PRIxPTR, fc.base);
	int ok = oracle_expect_abort(do_free, &fc, "not allocated", out, sizeof out);
	if (!ok)
		fail_msg("%s: free(%s, %lu) did not abort with \"not allocated\"; stderr: %s", b->name, hex,
			 b->npages, out);
	if (strstr(out, hex) == NULL)
		fail_msg("%s: the report does not name %s; stderr: %s", b->name, hex, out);
	/* The parent's allocator is untouched by the child's failure. */
	CHECK_INVARIANTS(p);
	snprintf(ctx, sizeof ctx, "%s, parent", b->name);
	for (size_t k = 0; k < scenario_nchunks(b->chunks); k++) {
		uint64_t a[8] = { 0 }, s[8] = { 0 };
		scenario_set_ranges(a, b->chunks[k].alloc);
		if (b->first_free != 0 && b->chunks[k].off == b->off) {
			for (unsigned long i = b->page; i < b->page + b->first_free; i++)
				a[i / 64] &= ~(UINT64_C(1) << (i % 64));
		}
		scenario_expect_chunk(p, b->chunks[k].off, a, s, ctx);
	}
}

/* --- main ---------------------------------------------------------------------------------------- */

#define N_FIXED 4

static struct CMUnitTest tests[ARRAY_LEN(alloc_scenarios) + ARRAY_LEN(free_scenarios) +
			       ARRAY_LEN(alloc_free_scenarios) + ARRAY_LEN(exhaust_sizes) +
			       ARRAY_LEN(grow_cases) + ARRAY_LEN(hand_grow_cases) + ARRAY_LEN(bad_free_cases) +
			       N_FIXED];

static size_t add_test(size_t k, const char *name, CMUnitTestFunction fn, const void *arg)
{
	tests[k] = (struct CMUnitTest){ name, fn, NULL, scenario_drop_pam, (void *)arg };
	return k + 1;
}

int main(void)
{
	size_t k = 0;
	_Static_assert(ARRAY_LEN(exhaust_sizes) == ARRAY_LEN(exhaust_names), "one name per size");

	for (size_t i = 0; i < ARRAY_LEN(alloc_scenarios); i++)
		k = add_test(k, alloc_scenarios[i].name, run_scenario, &alloc_scenarios[i]);
	for (size_t i = 0; i < ARRAY_LEN(free_scenarios); i++)
		k = add_test(k, free_scenarios[i].name, run_scenario, &free_scenarios[i]);
	for (size_t i = 0; i < ARRAY_LEN(alloc_free_scenarios); i++)
		k = add_test(k, alloc_free_scenarios[i].name, run_scenario, &alloc_free_scenarios[i]);
	for (size_t i = 0; i < ARRAY_LEN(exhaust_sizes); i++)
		k = add_test(k, exhaust_names[i], test_exhaust, &exhaust_sizes[i]);
	for (size_t i = 0; i < ARRAY_LEN(grow_cases); i++)
		k = add_test(k, grow_cases[i].name, test_grow_case, &grow_cases[i]);
	for (size_t i = 0; i < ARRAY_LEN(hand_grow_cases); i++)
		k = add_test(k, hand_grow_cases[i].name, test_hand_grow, &hand_grow_cases[i]);
	for (size_t i = 0; i < ARRAY_LEN(bad_free_cases); i++)
		k = add_test(k, bad_free_cases[i].name, test_bad_free, &bad_free_cases[i]);
	k = add_test(k, "grow/hand/TopOfAddressSpace", test_grow_top, NULL);
	k = add_test(k, "grow/hand/AddressZero", test_grow_address_zero, NULL);
	k = add_test(k, "inspect/Ungrown", test_inspect_ungrown, NULL);
	k = add_test(k, "alloc/hand/NoChunks", test_no_chunks, NULL);
	if (k != ARRAY_LEN(tests)) {
		fprintf(stderr, "test table has %zu entries, filled %zu\n", ARRAY_LEN(tests), k);
		return 1;
	}
	return cmocka_run_group_tests(tests, scenario_group_setup, NULL);
}
