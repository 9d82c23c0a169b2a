/*
 * tests/unit/test_pagecache.c — the per-mcache page cache through the
 * metadata-only API of heapscope/pagealloc.h: hs_pam_alloc_to_cache (which
 * 64-page block is taken, its free and scavenged bits, the allocator's state
 * afterwards, searchAddr), hs_pam_cache_alloc, and hs_pam_cache_flush.
 *
 * The cases and their expected values are Go 1.19's TestPageAllocAllocToCache,
 * TestPageCacheAlloc and TestPageCacheFlush (runtime/mpagecache_test.go). The
 * searchAddr checks, the flushes added after TestPageCacheAlloc's cases and the
 * scenarios marked "hand" were worked out by hand from Go's mpagecache.go and
 * mpagealloc.go; none was taken from a run of the code. The invariant checker
 * runs after every operation on an allocator.
 *
 * Addresses are derived from hs_pam_chunk_base(BaseChunkIdx + k), so the same
 * tables run in all three arch configurations; a case whose chunks lie beyond a
 * 32-bit address space is skipped there, as Go skips it. The fixtures, the chunk
 * tables and the chunk checks are scenario.c's, shared with test_pagealloc.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "heapscope/pagealloc.h"
#include "oracle.h"
#include "scenario.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define CACHE_PAGES 64u
#define MAX_OPS 16
#define MAX_HITS 24
#define ALL UINT64_MAX
#define LOW(n) ((UINT64_C(1) << (n)) - 1) /* n < 64 */
#define RANDOM_SEED UINT64_C(0x70616765636163) /* "pagecac" */
#define RANDOM_FLUSHES 100

/* --- checks ---------------------------------------------------------------------------- */

static uint64_t low_bits(unsigned n)
{
	return n >= 64 ? ALL : (UINT64_C(1) << n) - 1;
}

static void expect_search(hs_pam *p, uintptr_t want, const char *ctx)
{
	if (hs_pam_exhausted(p))
		fail_msg("%s: heap exhausted, want searchAddr %#" PRIxPTR, ctx, want);
	if (hs_pam_search_addr(p) != want)
		fail_msg("%s: searchAddr %#" PRIxPTR ", want %#" PRIxPTR, ctx, hs_pam_search_addr(p), want);
}

static void expect_cache(hs_pam_page_cache got, uintptr_t base, uint64_t cache, uint64_t scav, const char *ctx)
{
	if (got.base != base)
		fail_msg("%s: cache base %#" PRIxPTR ", want %#" PRIxPTR, ctx, got.base, base);
	if (got.cache != cache)
		fail_msg("%s: cache bits %016" PRIx64 ", want %016" PRIx64, ctx, got.cache, cache);
	if (got.scav != scav)
		fail_msg("%s: cache scav %016" PRIx64 ", want %016" PRIx64, ctx, got.scav, scav);
}

/* --- scenarios: allocToCache, with allocations and flushes around it ------------------------- */

enum op_kind {
	OP_END,
	OP_TO_CACHE,	 /* allocToCache returns block `page` of chunk `off` (or nothing, if none) */
	OP_CACHE_ALLOC,	 /* the current cache's alloc(npages) returns page `page` of chunk `off`, or 0 if none */
	OP_FLUSH,	 /* the current cache is flushed back */
	OP_ALLOC,	 /* the allocator's alloc(npages) returns page `page` of chunk `off` */
	OP_ALLOC_FAIL,	 /* the allocator's alloc(npages) returns 0 */
	OP_SEARCH,	 /* searchAddr is page `page` of chunk `off` */
	OP_EXHAUSTED,	 /* searchAddr says nothing is free */
};

struct op {
	enum op_kind kind;
	int none;
	int64_t off;
	unsigned page;
	uint64_t cache, scav; /* OP_TO_CACHE */
	unsigned long npages;
	unsigned scav_pages;
};

#define TO_CACHE(o, pg, c, s) { .kind = OP_TO_CACHE, .off = (o), .page = (pg), .cache = (c), .scav = (s) }
#define TO_CACHE_NONE { .kind = OP_TO_CACHE, .none = 1 }
#define CACHE_ALLOC(n, o, pg, sc) \
	{ .kind = OP_CACHE_ALLOC, .npages = (n), .off = (o), .page = (pg), .scav_pages = (sc) }
#define CACHE_ALLOC_NONE(n) { .kind = OP_CACHE_ALLOC, .npages = (n), .none = 1 }
#define FLUSH { .kind = OP_FLUSH }
#define ALLOC(n, o, pg, sc) { .kind = OP_ALLOC, .npages = (n), .off = (o), .page = (pg), .scav_pages = (sc) }
#define FAIL(n) { .kind = OP_ALLOC_FAIL, .npages = (n) }
#define SEARCH(o, pg) { .kind = OP_SEARCH, .off = (o), .page = (pg) }
#define EXHAUSTED { .kind = OP_EXHAUSTED }

struct scenario {
	const char *name;
	unsigned align; /* offsets count from BaseChunkIdx rounded down to this (0: none) */
	struct chunk_spec chunks[SCENARIO_MAX_CHUNKS];
	struct op ops[MAX_OPS];
};

static const struct scenario scenarios[] = {
	{
		.name = "allocToCache/AllFree",
		.chunks = { { C(0), .scav = { { 1, 1 }, { 64, 64 } }, .after = { { 0, 256 } } } },
		.ops = {
			TO_CACHE(0, 0, ALL, 0x2),
			TO_CACHE(0, 64, ALL, ALL),
			TO_CACHE(0, 128, ALL, 0),
			TO_CACHE(0, 192, ALL, 0),
		},
	},
	{
		.name = "allocToCache/ManyArena",
		.chunks = {
			{ C(0), .alloc = FULL, .scav = FULL, .after = FULL },
			{ C(1), .alloc = FULL, .scav = FULL, .after = FULL },
			{ C(2), .alloc = { { 0, CP - 64 } }, .after = FULL },
		},
		.ops = {
			TO_CACHE(2, CP - 64, ALL, 0),
		},
	},
	{
		.name = "allocToCache/NotContiguous",
		.chunks = {
			{ C(0), .alloc = FULL, .scav = FULL, .after = FULL, .after_scav = FULL },
			{ C(0xff), .scav = { { 31, 67 } }, .after = { { 0, 64 } }, .after_scav = { { 64, 34 } } },
		},
		.ops = {
			TO_CACHE(0xff, 0, ALL, LOW(33) << 31),
		},
	},
	{
		.name = "allocToCache/First",
		.chunks = {
			{ C(0), .alloc = { { 0, 32 }, { 33, 31 }, { 96, 32 } },
			  .scav = { { 1, 4 }, { 31, 5 }, { 66, 2 } },
			  .after = { { 0, 128 } } },
		},
		.ops = {
			TO_CACHE(0, 0, UINT64_C(1) << 32, UINT64_C(1) << 32),
			TO_CACHE(0, 64, LOW(32), UINT64_C(0x3) << 2),
		},
	},
	{
		.name = "allocToCache/Fail",
		.chunks = { { C(0), .alloc = FULL, .after = FULL } },
		.ops = {
			TO_CACHE_NONE,
			TO_CACHE_NONE,
			TO_CACHE_NONE,
		},
	},
	{
		.name = "allocToCache/RetainScavBits",
		.chunks = {
			{ C(0), .alloc = { { 0, 1 }, { 10, 2 } }, .scav = { { 0, 4 }, { 11, 1 } },
			  .after = { { 0, 64 } }, .after_scav = { { 0, 1 }, { 11, 1 } } },
		},
		.ops = {
			TO_CACHE(0, 0, ~(UINT64_C(0x1) | UINT64_C(0x3) << 10), UINT64_C(0x7) << 1),
		},
	},
	{
		/* 64-bit only in Go: the second chunk is O(TiB) away. */
		.name = "allocToCache/DiscontiguousMappedSumBoundary",
		.align = SUMS_PER_PHYS_PAGE,
		.chunks = {
			{ C(SUMS_PER_PHYS_PAGE - 1), .alloc = { { 0, CP - 1 } }, .after = FULL },
			{ C(0x100000), .alloc = { { 1, CP - 1 } }, .after = FULL },
		},
		.ops = {
			TO_CACHE(SUMS_PER_PHYS_PAGE - 1, CP - 64, UINT64_C(1) << 63, 0),
			TO_CACHE(0x100000, 0, 1, 0),
			TO_CACHE_NONE,
		},
	},
	{
		/* hand: the heap exhausted by ordinary allocation first. */
		.name = "allocToCache/hand/ExhaustedHeap",
		.chunks = {
			{ C(0), .alloc = FULL, .after = FULL },
			{ C(1), .alloc = { { 0, CP - 1 } }, .after = FULL },
		},
		.ops = {
			ALLOC(1, 1, CP - 1, 0),
			SEARCH(1, CP - 1),
			FAIL(1),
			EXHAUSTED,
			TO_CACHE_NONE,
			TO_CACHE_NONE,
		},
	},
	{
		/* hand: flushing gives the block back and lowers searchAddr to its
		 * base; what the cache handed out stays allocated. */
		.name = "allocToCache/hand/FlushLowersSearchAddr",
		.chunks = {
			{ C(0), .scav = { { 0, 8 } }, .after = { { 0, 3 }, { 64, 1 } }, .after_scav = { { 3, 5 } } },
		},
		.ops = {
			SEARCH(0, 0),
			TO_CACHE(0, 0, ALL, 0xff),
			CACHE_ALLOC(3, 0, 0, 3),
			SEARCH(0, 63),
			FLUSH,
			SEARCH(0, 0),
			TO_CACHE(0, 0, ~UINT64_C(0x7), 0xf8),
			ALLOC(1, 0, 64, 0),
			SEARCH(0, 64),
			FLUSH,
			SEARCH(0, 0),
		},
	},
	{
		/* hand: the lowest free page is not at the start of its block; the
		 * cache is used up, so the flush changes nothing, searchAddr included. */
		.name = "allocToCache/hand/MidBlock",
		.chunks = { { C(0), .alloc = { { 0, 100 } }, .scav = { { 120, 10 } }, .after = { { 0, 129 } },
			      .after_scav = { { 129, 1 } } } },
		.ops = {
			TO_CACHE(0, 64, ~LOW(36), LOW(8) << 56),
			CACHE_ALLOC_NONE(64),
			CACHE_ALLOC(8, 0, 100, 0),
			CACHE_ALLOC_NONE(21),
			CACHE_ALLOC(20, 0, 108, 8),
			CACHE_ALLOC_NONE(1),
			ALLOC(1, 0, 128, 1),
			SEARCH(0, 128),
			FLUSH,
			SEARCH(0, 128),
		},
	},
};

static void run_op(hs_pam *p, hs_pam_page_cache *c, const struct op *o, const char *ctx)
{
	uintptr_t got, sc = 1;
	uintptr_t want = o->none ? 0 : scenario_addr_at(o->off, o->page);
	switch (o->kind) {
	case OP_TO_CACHE:
		*c = hs_pam_alloc_to_cache(p);
		if (o->none) {
			expect_cache(*c, 0, 0, 0, ctx);
			if (!hs_pam_exhausted(p))
				fail_msg("%s: no cache, yet searchAddr %#" PRIxPTR, ctx, hs_pam_search_addr(p));
		} else {
			expect_cache(*c, want, o->cache, o->scav, ctx);
			/* Everything below the block's last page is now allocated. */
			expect_search(p, want + (CACHE_PAGES - 1) * hs_pam_page_size(), ctx);
		}
		break;
	case OP_CACHE_ALLOC:
	case OP_ALLOC:
		got = o->kind == OP_ALLOC ? hs_pam_alloc(p, o->npages, &sc) : hs_pam_cache_alloc(c, o->npages, &sc);
		if (got != want)
			fail_msg("%s: alloc(%lu) = %#" PRIxPTR ", want %#" PRIxPTR, ctx, o->npages, got, want);
		if (sc != (uintptr_t)o->scav_pages * hs_pam_page_size())
			fail_msg("%s: alloc(%lu) reported %lu scavenged bytes, want %u pages", ctx, o->npages,
				 (unsigned long)sc, o->scav_pages);
		break;
	case OP_ALLOC_FAIL:
		got = hs_pam_alloc(p, o->npages, &sc);
		if (got != 0 || sc != 0)
			fail_msg("%s: alloc(%lu) = %#" PRIxPTR ", want 0", ctx, o->npages, got);
		break;
	case OP_FLUSH:
		hs_pam_cache_flush(p, c);
		if (c->cache != 0)
			fail_msg("%s: the flushed cache is not empty", ctx);
		break;
	case OP_SEARCH:
		expect_search(p, want, ctx);
		break;
	case OP_EXHAUSTED:
		if (!hs_pam_exhausted(p))
			fail_msg("%s: heap not exhausted, searchAddr %#" PRIxPTR, ctx, hs_pam_search_addr(p));
		break;
	case OP_END:
		break;
	}
}

static void run_scenario(void **state)
{
	const struct scenario *s = *state;
	hs_pam_page_cache c = { 0, 0, 0 };
	char ctx[160];

	scenario_set_align(s->align);
	for (size_t k = 0; k < scenario_nchunks(s->chunks); k++)
		scenario_skip_unless_fits(s->name, s->chunks[k].off);
	for (size_t k = 0; k < MAX_OPS && s->ops[k].kind != OP_END; k++)
		scenario_skip_unless_fits(s->name, s->ops[k].off);

	hs_pam *p = scenario_build(s->chunks);
	for (size_t k = 0; k < MAX_OPS && s->ops[k].kind != OP_END; k++) {
		snprintf(ctx, sizeof ctx, "%s, op #%zu", s->name, k + 1);
		run_op(p, &c, &s->ops[k], ctx);
		CHECK_INVARIANTS(p);
	}
	snprintf(ctx, sizeof ctx, "%s, after-state", s->name);
	scenario_expect_after_chunks(p, s->chunks, 0, ctx);
}

/* --- TestPageCacheAlloc ----------------------------------------------------------------------- */

struct hit {
	unsigned long npages; /* 0 ends the list */
	int none;	      /* alloc returns 0 */
	unsigned page;	      /* else: page of the block it returns */
	unsigned scav;	      /* scavenged pages reported */
};

struct cache_case {
	const char *name;
	uint64_t cache, scav;
	struct hit hits[MAX_HITS];
};

#define HIT(n, pg, sc) { (n), 0, (pg), (sc) }
#define MISS(n) { (n), 1, 0, 0 }

static const struct cache_case cache_cases[] = {
	{
		.name = "cacheAlloc/Empty",
		.cache = 0,
		.scav = 0,
		.hits = { MISS(1), MISS(2), MISS(3), MISS(4), MISS(5), MISS(11), MISS(12), MISS(16), MISS(27),
			  MISS(32), MISS(43), MISS(57), MISS(64), MISS(121) },
	},
	{
		.name = "cacheAlloc/Lo1",
		.cache = 0x1,
		.scav = 0x1,
		.hits = { HIT(1, 0, 1), MISS(1), MISS(10) },
	},
	{
		.name = "cacheAlloc/Hi1",
		.cache = UINT64_C(1) << 63,
		.scav = 0x1,
		.hits = { HIT(1, 63, 0), MISS(1), MISS(10) },
	},
	{
		.name = "cacheAlloc/Swiss1",
		.cache = 0x20005555,
		.scav = 0x5505,
		.hits = { MISS(2), HIT(1, 0, 1), HIT(1, 2, 1), HIT(1, 4, 0), HIT(1, 6, 0), HIT(1, 8, 1),
			  HIT(1, 10, 1), HIT(1, 12, 1), HIT(1, 14, 1), HIT(1, 29, 0), MISS(1), MISS(10) },
	},
	{
		.name = "cacheAlloc/Lo2",
		.cache = 0x3,
		.scav = UINT64_C(0x2) << 62,
		.hits = { HIT(2, 0, 0), MISS(2), MISS(1) },
	},
	{
		.name = "cacheAlloc/Hi2",
		.cache = UINT64_C(0x3) << 62,
		.scav = UINT64_C(0x3) << 62,
		.hits = { HIT(2, 62, 2), MISS(2), MISS(1) },
	},
	{
		.name = "cacheAlloc/Swiss2",
		.cache = UINT64_C(0x3333) << 31,
		.scav = UINT64_C(0x3030) << 31,
		.hits = { HIT(2, 31, 0), HIT(2, 35, 2), HIT(2, 39, 0), HIT(2, 43, 2), MISS(2) },
	},
	{
		.name = "cacheAlloc/Hi53",
		.cache = LOW(53) << 10,
		.scav = LOW(16) << 10,
		.hits = { HIT(53, 10, 16), MISS(53), MISS(1) },
	},
	{
		.name = "cacheAlloc/Full53",
		.cache = ALL,
		.scav = LOW(16) << 10,
		.hits = { HIT(53, 0, 16), MISS(53), HIT(1, 53, 0) },
	},
	{
		.name = "cacheAlloc/Full64",
		.cache = ALL,
		.scav = ALL,
		.hits = { HIT(64, 0, 64), MISS(64), MISS(1) },
	},
	{
		.name = "cacheAlloc/FullMixed",
		.cache = ALL,
		.scav = ALL,
		.hits = { HIT(5, 0, 5), HIT(7, 5, 7), HIT(1, 12, 1), HIT(23, 13, 23), MISS(63), HIT(3, 36, 3),
			  HIT(3, 39, 3), HIT(3, 42, 3), HIT(12, 45, 12), MISS(11), HIT(4, 57, 4), MISS(4), MISS(6),
			  MISS(36), HIT(2, 61, 2), MISS(3), HIT(1, 63, 1), MISS(4), MISS(2), MISS(62), MISS(1) },
	},
};

/*
 * Go's cases, run on a cache standing for block 0 of BaseChunkIdx: the block is
 * allocated in an allocator (it belongs to the cache), the hits are taken, and
 * the rest is flushed back. What the flush must leave follows Go's flush: if
 * the cache is empty nothing changes; otherwise its free bits become free
 * pages and its scavenged bits scavenged pages.
 */
static void test_cache_alloc(void **state)
{
	const struct cache_case *t = *state;
	const struct chunk_spec cs[SCENARIO_MAX_CHUNKS] = { { C(0), .alloc = { { 0, CACHE_PAGES } } } };
	hs_pam_page_cache c = { scenario_addr_at(0, 0), t->cache, t->scav };
	uint64_t handed = 0;
	char ctx[128];

	hs_pam *p = scenario_build(cs);
	for (size_t k = 0; k < MAX_HITS && t->hits[k].npages != 0; k++) {
		const struct hit *h = &t->hits[k];
		uintptr_t sc = 1, want = h->none ? 0 : scenario_addr_at(0, h->page);
		uintptr_t got = hs_pam_cache_alloc(&c, h->npages, &sc);
		snprintf(ctx, sizeof ctx, "%s, hit #%zu", t->name, k + 1);
		if (got != want)
			fail_msg("%s: alloc(%lu) = %#" PRIxPTR ", want %#" PRIxPTR, ctx, h->npages, got, want);
		if (sc != (uintptr_t)h->scav * hs_pam_page_size())
			fail_msg("%s: alloc(%lu) reported %lu scavenged bytes, want %u pages", ctx, h->npages,
				 (unsigned long)sc, h->scav);
		if (!h->none)
			handed |= low_bits((unsigned)h->npages) << h->page;
		CHECK_INVARIANTS(p);
	}

	/* Pages handed out leave both of the cache's bitmaps. */
	snprintf(ctx, sizeof ctx, "%s, remaining cache", t->name);
	if (c.base != scenario_addr_at(0, 0))
		fail_msg("%s: base moved to %#" PRIxPTR, ctx, c.base);
	if (c.cache != (t->cache & ~handed) || c.scav != (t->scav & ~handed))
		fail_msg("%s: cache %016" PRIx64 " scav %016" PRIx64 ", want %016" PRIx64 " %016" PRIx64, ctx,
			 c.cache, c.scav, t->cache & ~handed, t->scav & ~handed);

	uint64_t want_a[8] = { ALL }, want_s[8] = { 0 };
	if (c.cache != 0) {
		want_a[0] = ~c.cache;
		want_s[0] = c.scav;
	}
	hs_pam_cache_flush(p, &c);
	CHECK_INVARIANTS(p);
	snprintf(ctx, sizeof ctx, "%s, after flush", t->name);
	if (c.cache != 0)
		fail_msg("%s: the flushed cache is not empty", ctx);
	scenario_expect_chunk(p, 0, want_a, want_s, ctx);
	expect_search(p, scenario_addr_at(0, 0), ctx);
}

/* --- TestPageCacheFlush ----------------------------------------------------------------------- */

struct flush_case {
	unsigned page; /* block of the chunk, a multiple of 64 */
	uint64_t cache, scav;
};

static void run_flush(const struct flush_case *f, const char *ctx)
{
	struct chunk_spec cs[SCENARIO_MAX_CHUNKS] = { { C(0) } };
	cs[0].alloc[0] = (hs_pam_bit_range){ f->page, CACHE_PAGES };

	hs_pam *p = scenario_build(cs);
	hs_pam_page_cache c = { scenario_addr_at(0, f->page), f->cache, f->scav };
	hs_pam_cache_flush(p, &c);
	CHECK_INVARIANTS(p);
	if (c.cache != 0)
		fail_msg("%s: the flushed cache is not empty", ctx);

	/* Go's expectation: the block's allocated pages are ^cache, its scavenged
	 * pages scav; the rest of the chunk stays free and unscavenged. */
	uint64_t want_a[8] = { 0 }, want_s[8] = { 0 };
	want_a[f->page / 64] = ~f->cache;
	want_s[f->page / 64] = f->scav;
	scenario_expect_chunk(p, 0, want_a, want_s, ctx);
	expect_search(p, scenario_addr_at(0, 0), ctx);
	scenario_drop_pam(NULL);
}

static void test_flush(void **state)
{
	(void)state;
	static const struct flush_case fixed[] = {
		{ 0, 0, 0 },	 /* empty */
		{ 0, ALL, ALL }, /* full */
	};
	char ctx[128];
	uint64_t rng = RANDOM_SEED;

	for (size_t k = 0; k < ARRAY_LEN(fixed); k++) {
		snprintf(ctx, sizeof ctx, "cacheFlush/%s", k == 0 ? "Empty" : "Full");
		run_flush(&fixed[k], ctx);
	}
	for (int i = 0; i < RANDOM_FLUSHES; i++) {
		struct flush_case f;
		f.page = (unsigned)(oracle_rand(&rng) % (CP / CACHE_PAGES)) * CACHE_PAGES;
		f.cache = oracle_rand(&rng);
		f.scav = oracle_rand(&rng) & f.cache;
		snprintf(ctx, sizeof ctx, "cacheFlush/Random #%d (block %u, cache %016" PRIx64 ", scav %016" PRIx64 ")",
			 i, f.page, f.cache, f.scav);
		run_flush(&f, ctx);
	}
}

/* --- main ------------------------------------------------------------------------------------- */

static struct CMUnitTest tests[ARRAY_LEN(scenarios) + ARRAY_LEN(cache_cases) + 1];

static size_t add_test(size_t k, const char *name, CMUnitTestFunction fn, const void *arg)
{
	tests[k] = (struct CMUnitTest){ name, fn, NULL, scenario_drop_pam, (void *)arg };
	return k + 1;
}

int main(void)
{
	size_t k = 0;
	for (size_t i = 0; i < ARRAY_LEN(scenarios); i++)
		k = add_test(k, scenarios[i].name, run_scenario, &scenarios[i]);
	for (size_t i = 0; i < ARRAY_LEN(cache_cases); i++)
		k = add_test(k, cache_cases[i].name, test_cache_alloc, &cache_cases[i]);
	k = add_test(k, "cacheFlush/EmptyFullRandom", test_flush, NULL);
	if (k != ARRAY_LEN(tests)) {
		fprintf(stderr, "test table has %zu entries, filled %zu\n", ARRAY_LEN(tests), k);
		return 1;
	}
	return cmocka_run_group_tests(tests, scenario_group_setup, NULL);
}
