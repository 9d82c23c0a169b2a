/*
 * tests/unit/test_differential.c — the page allocator against a naive model.
 *
 * A long seeded sequence of random operations (alloc of 1 to 2000 pages, free of
 * whole or partial allocations, grow, allocToCache, allocation from the cache,
 * flush, scavenge) runs on a metadata-only allocator and on a model that keeps one byte per
 * page and answers every alloc by scanning for the lowest-address first fit. Every
 * result must match the model (address, scavenged bytes, exhaustion), the
 * invariant checker runs after every operation, and the bitmaps are compared with
 * the model's periodically and at the end.
 *
 * The simulated heap has two regions far apart (more than a root summary entry
 * and a chunk-map block apart on 64-bit; in the other root entry on 32-bit), so
 * runs must never be found across the gap, and chunks are grown in random groups
 * so in-use ranges merge and stay discontiguous. Every EPOCH_OPS operations the
 * run starts over on a fresh allocator.
 *
 * The run is made twice: as the heap runs by default, and with searchAddr
 * ignored (hs_pam_set_search_addr off, HEAPSCOPE_SEARCH_ADDR=off in the heap),
 * where every search walks from the root. The model knows nothing of
 * searchAddr, so matching it both ways shows the setting changes no result.
 *
 * HS_TEST_SEED and HS_TEST_OPS override the seed and the number of operations;
 * a failure prints both with the operation number, so it can be replayed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"

#define REGION_A 24 /* chunks in the low region */
#define NCHUNKS 40  /* chunks in both regions */
#define NPAGES (NCHUNKS * 512)
#define MAX_LIVE 8192
#define EPOCH_OPS 25000 /* operations per fresh allocator */

typedef struct live {
	unsigned page, n;
} live;

typedef struct model {
	uint8_t grown[NCHUNKS];
	uint8_t alloc[NPAGES]; /* 1 = allocated (including pages held by the cache) */
	uint8_t scav[NPAGES];  /* 1 = scavenged */
	live lives[MAX_LIVE];
	unsigned nlive;
	int has_cache;
	unsigned cache_page; /* first page of the cache's block */
	uint64_t cache, cache_scav;
} model;

/* What the run exercised, so that it cannot pass by doing nothing. */
typedef struct tally {
	uint64_t alloc_ok, alloc_fail, alloc_large, alloc_scav, alloc_cross_chunk;
	uint64_t frees, partial_frees, grows, caches, cache_allocs, flushes;
	uint64_t scavenges, scavenged_pages;
} tally;

typedef struct run {
	uint64_t seed, op, ops;
	int search_addr; /* 0: every search from the root */
	tally t;
	hs_pam *p;
	model m;
	uint64_t rng;
	uint64_t base_ci, far_ci;
} run;

static uintptr_t chunk_addr(const run *r, unsigned c)
{
	return hs_pam_chunk_base(c < REGION_A ? r->base_ci + c : r->far_ci + (c - REGION_A));
}

static uintptr_t page_addr(const run *r, unsigned page)
{
	return chunk_addr(r, page / 512) + (uintptr_t)(page % 512) * hs_pam_page_size();
}

#define FAILF(r, ...)                                                                       \
	do {                                                                               \
		char why_[512];                                                            \
		snprintf(why_, sizeof why_, __VA_ARGS__);                                  \
		fail_msg("seed %llu, op %llu of %llu (%s): %s", (unsigned long long)(r)->seed, \
			 (unsigned long long)(r)->op, (unsigned long long)(r)->ops, hs_pam_arch(), why_); \
	} while (0)

/* The model's first fit: the lowest page starting npages free, grown pages in a row. */
static unsigned model_first_fit(const model *m, unsigned npages)
{
	unsigned run_len = 0;
	for (unsigned i = 0; i < NPAGES; i++) {
		unsigned c = i / 512;
		if (i % 512 == 0 && (c == REGION_A || !m->grown[c]))
			run_len = 0;
		if (!m->grown[c]) {
			i += 511;
			continue;
		}
		run_len = m->alloc[i] ? 0 : run_len + 1;
		if (run_len == npages)
			return i + 1 - npages;
	}
	return ~0u;
}

static void add_live(model *m, unsigned page, unsigned n)
{
	if (m->nlive < MAX_LIVE)
		m->lives[m->nlive++] = (live){ page, n };
	/* Past MAX_LIVE the pages simply stay allocated; the model still knows them. */
}

static void do_alloc(run *r, unsigned npages)
{
	model *m = &r->m;
	unsigned want = model_first_fit(m, npages);
	uintptr_t scav = 0;
	uintptr_t got = hs_pam_alloc(r->p, npages, &scav);
	if (want == ~0u) {
		if (got != 0)
			FAILF(r, "alloc(%u) returned %#lx, the model has no fit", npages, (unsigned long)got);
		r->t.alloc_fail++;
		return;
	}
	r->t.alloc_ok++;
	r->t.alloc_large += npages > 64;
	r->t.alloc_cross_chunk += want / 512 != (want + npages - 1) / 512;
	if (got != page_addr(r, want))
		FAILF(r, "alloc(%u) returned %#lx, first fit is %#lx", npages, (unsigned long)got,
		      (unsigned long)page_addr(r, want));
	unsigned s = 0;
	for (unsigned i = want; i < want + npages; i++) {
		s += m->scav[i];
		m->alloc[i] = 1;
		m->scav[i] = 0;
	}
	if (scav != (uintptr_t)s * hs_pam_page_size())
		FAILF(r, "alloc(%u) reported %lu scavenged bytes, the model %u pages", npages,
		      (unsigned long)scav, s);
	r->t.alloc_scav += s != 0;
	add_live(m, want, npages);
}

/* Frees a live allocation, whole or a prefix or suffix of it. */
static void do_free(run *r)
{
	model *m = &r->m;
	if (m->nlive == 0)
		return;
	unsigned k = (unsigned)(oracle_rand(&r->rng) % m->nlive);
	live *l = &m->lives[k];
	unsigned page = l->page, n = l->n;
	uint64_t how = oracle_rand(&r->rng) % 8;
	r->t.frees++;
	r->t.partial_frees += how < 2 && l->n > 1;
	if (how == 0 && l->n > 1) {
		n = 1 + (unsigned)(oracle_rand(&r->rng) % (l->n - 1));
		l->page += n;
		l->n -= n;
	} else if (how == 1 && l->n > 1) {
		n = 1 + (unsigned)(oracle_rand(&r->rng) % (l->n - 1));
		l->n -= n;
		page = l->page + l->n;
	} else {
		*l = m->lives[--m->nlive];
	}
	hs_pam_free(r->p, page_addr(r, page), n);
	for (unsigned i = page; i < page + n; i++)
		m->alloc[i] = 0;
}

/* Grows a random group of 1-3 ungrown chunks inside one region. */
static void do_grow(run *r)
{
	model *m = &r->m;
	unsigned c = (unsigned)(oracle_rand(&r->rng) % NCHUNKS);
	unsigned n = 1 + (unsigned)(oracle_rand(&r->rng) % 3);
	unsigned lim = c < REGION_A ? REGION_A : NCHUNKS;
	if (c + n > lim)
		n = lim - c;
	for (unsigned k = c; k < c + n; k++) {
		if (m->grown[k])
			return;
	}
	if (hs_pam_grow(r->p, chunk_addr(r, c), (uintptr_t)n * hs_pam_chunk_bytes()) != 0)
		FAILF(r, "grow of chunks %u..%u failed", c, c + n);
	r->t.grows++;
	for (unsigned k = c; k < c + n; k++) {
		m->grown[k] = 1;
		memset(&m->scav[k * 512], 1, 512);
	}
}

static void do_alloc_to_cache(run *r, hs_pam_page_cache *pc)
{
	model *m = &r->m;
	unsigned first = model_first_fit(m, 1);
	*pc = hs_pam_alloc_to_cache(r->p);
	if (first == ~0u) {
		if (pc->base != 0)
			FAILF(r, "allocToCache returned %#lx on a full heap", (unsigned long)pc->base);
		return;
	}
	unsigned block = first / 64 * 64;
	uint64_t cache = 0, scav = 0;
	for (unsigned i = 0; i < 64; i++) {
		if (!m->alloc[block + i]) {
			cache |= UINT64_C(1) << i;
			scav |= (uint64_t)m->scav[block + i] << i;
			m->alloc[block + i] = 1;
			m->scav[block + i] = 0;
		}
	}
	if (pc->base != page_addr(r, block) || pc->cache != cache || pc->scav != scav)
		FAILF(r, "allocToCache gave (%#lx, %#llx, %#llx), the model (%#lx, %#llx, %#llx)",
		      (unsigned long)pc->base, (unsigned long long)pc->cache, (unsigned long long)pc->scav,
		      (unsigned long)page_addr(r, block), (unsigned long long)cache, (unsigned long long)scav);
	r->t.caches++;
	m->has_cache = 1;
	m->cache_page = block;
	m->cache = cache;
	m->cache_scav = scav;
}

static void do_cache_alloc(run *r, hs_pam_page_cache *pc)
{
	model *m = &r->m;
	unsigned npages = 1 + (unsigned)(oracle_rand(&r->rng) % 8);
	unsigned i = oracle_find_bit_range64(m->cache, npages);
	uintptr_t scav;
	uintptr_t got = hs_pam_cache_alloc(pc, npages, &scav);
	if (i == 64) {
		if (got != 0)
			FAILF(r, "cache alloc(%u) returned %#lx, the model has no fit", npages, (unsigned long)got);
		return;
	}
	uint64_t mask = ((npages == 64 ? 0 : UINT64_C(1) << npages) - 1) << i;
	unsigned s = (unsigned)__builtin_popcountll(m->cache_scav & mask);
	if (got != page_addr(r, m->cache_page + i) || scav != (uintptr_t)s * hs_pam_page_size())
		FAILF(r, "cache alloc(%u) returned (%#lx, %lu), the model (%#lx, %u pages)", npages,
		      (unsigned long)got, (unsigned long)scav, (unsigned long)page_addr(r, m->cache_page + i), s);
	r->t.cache_allocs++;
	m->cache &= ~mask;
	m->cache_scav &= ~mask;
	add_live(m, m->cache_page + i, npages);
}

static void do_flush(run *r, hs_pam_page_cache *pc)
{
	model *m = &r->m;
	hs_pam_cache_flush(r->p, pc);
	for (unsigned i = 0; i < 64; i++) {
		if (m->cache >> i & 1) {
			m->alloc[m->cache_page + i] = 0;
			m->scav[m->cache_page + i] = (uint8_t)(m->cache_scav >> i & 1);
		}
	}
	m->has_cache = 0;
	r->t.flushes++;
}

static void compare_bitmaps(run *r)
{
	for (unsigned c = 0; c < NCHUNKS; c++) {
		if (!r->m.grown[c])
			continue;
		uint64_t a[8], s[8];
		uint64_t ci = hs_pam_chunk_index(chunk_addr(r, c));
		if (hs_pam_chunk_bitmaps(r->p, ci, a, s) != 0)
			FAILF(r, "chunk %u is grown but has no bitmaps", c);
		for (unsigned i = 0; i < 512; i++) {
			unsigned ab = (unsigned)(a[i / 64] >> (i % 64)) & 1, sb = (unsigned)(s[i / 64] >> (i % 64)) & 1;
			if (ab != r->m.alloc[c * 512 + i] || sb != r->m.scav[c * 512 + i])
				FAILF(r, "chunk %u page %u: alloc %u scav %u, the model %u %u", c, i, ab, sb,
				      r->m.alloc[c * 512 + i], r->m.scav[c * 512 + i]);
		}
	}
}

/*
 * Starts over on a fresh allocator, so that growth from nothing, allocation of
 * never-used (scavenged) pages and exhaustion recur all through the run.
 */
static void new_epoch(run *r, hs_pam_page_cache *pc)
{
	if (r->m.has_cache)
		do_flush(r, pc);
	compare_bitmaps(r);
	hs_pam_destroy(r->p);
	memset(&r->m, 0, sizeof r->m);
	if (hs_pam_new(NULL, 0, &r->p) != 0)
		FAILF(r, "hs_pam_new failed");
	hs_pam_set_search_addr(r->p, r->search_addr);
}

/*
 * Scavenging chooses its pages by Go's index order and huge-page rule, which the
 * model does not reproduce; it is checked by its properties instead: only free
 * pages become scavenged, exactly as many as the bytes it reports, nothing else
 * changes, and asking for more than there is leaves no free unscavenged page.
 */
static void do_scavenge(run *r)
{
	model *m = &r->m;
	uint64_t x = oracle_rand(&r->rng);
	int all = x % 8 == 0;
	uintptr_t want = all ? UINTPTR_MAX / 2 : (uintptr_t)(1 + x % 600) * hs_pam_page_size();
	uintptr_t got = hs_pam_scavenge(r->p, want);
	unsigned changed = 0, left = 0;
	for (unsigned c = 0; c < NCHUNKS; c++) {
		if (!m->grown[c])
			continue;
		uint64_t a[8], sc[8];
		hs_pam_chunk_bitmaps(r->p, hs_pam_chunk_index(chunk_addr(r, c)), a, sc);
		for (unsigned i = 0; i < 512; i++) {
			unsigned page = c * 512 + i;
			unsigned ab = (unsigned)(a[i / 64] >> (i % 64)) & 1, sb = (unsigned)(sc[i / 64] >> (i % 64)) & 1;
			if (ab != m->alloc[page])
				FAILF(r, "scavenge changed the allocation of chunk %u page %u", c, i);
			if (sb && !m->scav[page]) {
				if (m->alloc[page])
					FAILF(r, "scavenge released allocated chunk %u page %u", c, i);
				m->scav[page] = 1;
				changed++;
			} else if (!sb && m->scav[page]) {
				FAILF(r, "scavenge unscavenged chunk %u page %u", c, i);
			}
			left += !m->alloc[page] && !m->scav[page];
		}
	}
	if (got != (uintptr_t)changed * hs_pam_page_size())
		FAILF(r, "scavenge(%lu) reported %lu bytes, %u pages changed", (unsigned long)want, (unsigned long)got,
		      changed);
	if (all && left != 0)
		FAILF(r, "an unbounded scavenge left %u free unscavenged pages", left);
	r->t.scavenges++;
	r->t.scavenged_pages += changed;
}

static unsigned random_npages(run *r)
{
	uint64_t x = oracle_rand(&r->rng);
	switch (x % 16) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: return 1;
	case 8: case 9: case 10: return 2 + (unsigned)((x >> 8) % 15);
	case 11: case 12: return 17 + (unsigned)((x >> 8) % 48);
	case 13: case 14: return 65 + (unsigned)((x >> 8) % 500);
	default: return 500 + (unsigned)((x >> 8) % 1500);
	}
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	return v != NULL && *v != '\0' ? strtoull(v, NULL, 0) : def;
}

static void differential(uint64_t default_ops, int search_addr)
{
	static run r; /* large: keep it off the stack */
	memset(&r, 0, sizeof r);
	r.seed = env_u64("HS_TEST_SEED", 0x5eed2026);
	r.ops = env_u64("HS_TEST_OPS", default_ops);
	r.search_addr = search_addr;
	r.rng = r.seed;
	int is32 = hs_pam_heap_addr_bits() == 32;
	r.base_ci = hs_pam_chunk_index((uintptr_t)(is32 ? 0x100 : 0xc000) * hs_pam_chunk_bytes());
	/* 64-bit: 0x2000 chunks = 32 GiB on, past a root entry and an L1 chunk-map block.
	 * 32-bit: the other 2 GiB root entry. */
	r.far_ci = r.base_ci + (is32 ? 0x200 : 0x2000);
	assert_int_equal(hs_pam_new(NULL, 0, &r.p), 0);
	hs_pam_set_search_addr(r.p, search_addr);

	hs_pam_page_cache pc = { 0, 0, 0 };
	for (r.op = 0; r.op < r.ops; r.op++) {
		if (r.op % EPOCH_OPS == 0 && r.op != 0)
			new_epoch(&r, &pc);
		uint64_t x = oracle_rand(&r.rng) % 1000;
		unsigned used = 0, grown = 0;
		for (unsigned c = 0; c < NCHUNKS; c++)
			grown += r.m.grown[c];
		for (unsigned k = 0; k < r.m.nlive; k++)
			used += r.m.lives[k].n;
		int pressure = used * 10 > grown * 512 * 7;
		if (grown == 0 || x < 3)
			do_grow(&r);
		else if (x < 20)
			r.m.has_cache ? do_flush(&r, &pc) : do_alloc_to_cache(&r, &pc);
		else if (x < 24)
			do_scavenge(&r);
		else if (x < 80 && r.m.has_cache)
			do_cache_alloc(&r, &pc);
		else if (x < (pressure ? 700u : 450u))
			do_free(&r);
		else
			do_alloc(&r, random_npages(&r));

		char msg[256];
		if (hs_pam_check(r.p, msg, sizeof msg) != 0)
			FAILF(&r, "invariant violated: %s", msg);
		if (r.op % 4096 == 0)
			compare_bitmaps(&r);
	}
	if (r.m.has_cache)
		do_flush(&r, &pc);
	compare_bitmaps(&r);
	print_message("differential: %llu operations, seed %#llx, %s, searchAddr %s\n", (unsigned long long)r.ops,
		      (unsigned long long)r.seed, hs_pam_arch(), search_addr ? "on" : "off");
	print_message("  allocs %llu ok (%llu > 64 pages, %llu across chunks, %llu with scavenged pages), "
		      "%llu failed; frees %llu (%llu partial); grows %llu; caches %llu, cache allocs %llu, "
		      "flushes %llu; scavenges %llu (%llu pages)\n",
		      (unsigned long long)r.t.alloc_ok, (unsigned long long)r.t.alloc_large,
		      (unsigned long long)r.t.alloc_cross_chunk, (unsigned long long)r.t.alloc_scav,
		      (unsigned long long)r.t.alloc_fail, (unsigned long long)r.t.frees,
		      (unsigned long long)r.t.partial_frees, (unsigned long long)r.t.grows,
		      (unsigned long long)r.t.caches, (unsigned long long)r.t.cache_allocs,
		      (unsigned long long)r.t.flushes, (unsigned long long)r.t.scavenges,
		      (unsigned long long)r.t.scavenged_pages);
	/* Each kind of operation must have happened often (a full-length run gives
	 * thousands of each); a change that starved one would otherwise go unseen. */
	uint64_t least = r.ops / 2000;
	assert_true(r.t.alloc_ok > least && r.t.alloc_fail > least && r.t.alloc_large > least);
	assert_true(r.t.alloc_cross_chunk > least && r.t.alloc_scav > least);
	assert_true(r.t.frees > least && r.t.partial_frees > least && r.t.grows > 4);
	assert_true(r.t.caches > least && r.t.cache_allocs > least && r.t.flushes > least);
	assert_true(r.t.scavenges > least && r.t.scavenged_pages > least);
	hs_pam_destroy(r.p);
}

static void test_differential(void **state)
{
	(void)state;
	differential(1000000, 1);
}

/* Searches from the root cost more; a fifth of the run covers every kind of
 * operation thousands of times still. */
static void test_differential_search_addr_off(void **state)
{
	(void)state;
	differential(200000, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_differential),
		cmocka_unit_test(test_differential_search_addr_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
