/*
 * tests/unit/scenario.c — the scenario harness shared by test_pagealloc.c and
 * test_pagecache.c (see scenario.h): fixtures, chunk offsets and addresses,
 * building an allocator from a chunk_spec table, and checking chunk bitmaps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>

#include "oracle.h"
#include "scenario.h"

static struct {
	uint64_t base_chunk;   /* Go's BaseChunkIdx for this configuration */
	uint64_t space_chunks; /* chunks in the whole address space */
	uint64_t sbase;	       /* chunk that offset 0 of the running case names */
	hs_pam *pam;	       /* the allocator under test; destroyed after each test */
} g;

/* --- fixtures ------------------------------------------------------------------- */

int scenario_group_setup(void **state)
{
	(void)state;
	uintptr_t prefix = hs_pam_heap_addr_bits() == 32 ? 0x100 : 0xc000;
	g.base_chunk = hs_pam_chunk_index(prefix * hs_pam_chunk_bytes());
	g.space_chunks = (uint64_t)hs_pam_level_entries(hs_pam_levels() - 1);
	g.sbase = g.base_chunk;
	if (hs_pam_chunk_pages() != CP || hs_pam_page_size() != 8192) {
		print_error("unexpected geometry: %u pages per chunk, page size %lu\n", hs_pam_chunk_pages(),
			    (unsigned long)hs_pam_page_size());
		return -1;
	}
	print_message("configuration %s: BaseChunkIdx %#" PRIx64 " of %#" PRIx64 " chunks, %u levels\n",
		      hs_pam_arch(), g.base_chunk, g.space_chunks, hs_pam_levels());
	return 0;
}

int scenario_drop_pam(void **state)
{
	(void)state;
	hs_pam_destroy(g.pam);
	g.pam = NULL;
	g.sbase = g.base_chunk;
	return 0;
}

void scenario_set_align(unsigned align)
{
	g.sbase = align ? g.base_chunk & ~(uint64_t)(align - 1) : g.base_chunk;
}

void scenario_set_pam(hs_pam *p)
{
	g.pam = p;
}

uint64_t scenario_space_chunks(void)
{
	return g.space_chunks;
}

/* --- addresses ----------------------------------------------------------------- */

uint64_t scenario_chunk_idx(int64_t off)
{
	return g.sbase + (uint64_t)off;
}

uintptr_t scenario_addr_at(int64_t off, unsigned long page)
{
	return hs_pam_chunk_base(scenario_chunk_idx(off)) + (uintptr_t)page * hs_pam_page_size();
}

void scenario_skip_unless_fits(const char *name, int64_t off)
{
	int64_t c = (int64_t)g.sbase + off;
	if (c >= 0 && (uint64_t)c < g.space_chunks)
		return;
	print_message("[  SKIP    ] %s: chunk %#" PRIx64 "+%#llx lies beyond the %#" PRIx64
		      " chunks of this %u-bit address space (Go runs this case on 64-bit only)\n",
		      name, g.sbase, (long long)off, g.space_chunks, hs_pam_heap_addr_bits());
	skip();
}

/* --- chunk states ----------------------------------------------------------------- */

void scenario_set_ranges(uint64_t w[8], const hs_pam_bit_range *r)
{
	for (size_t k = 0; k < SCENARIO_MAX_RANGES; k++) {
		for (unsigned i = r[k].i; i < r[k].i + r[k].n; i++)
			w[i / 64] |= UINT64_C(1) << (i % 64);
	}
}

size_t scenario_nchunks(const struct chunk_spec *cs)
{
	size_t n = 0;
	while (n < SCENARIO_MAX_CHUNKS && cs[n].present)
		n++;
	return n;
}

hs_pam *scenario_build(const struct chunk_spec *cs)
{
	hs_pam_chunk_init init[SCENARIO_MAX_CHUNKS];
	size_t n = scenario_nchunks(cs);
	for (size_t k = 0; k < n; k++) {
		init[k] = (hs_pam_chunk_init){
			.base = scenario_addr_at(cs[k].off, 0),
			.alloc = cs[k].alloc,
			.nalloc = SCENARIO_MAX_RANGES,
			.scav = cs[k].scav,
			.nscav = SCENARIO_MAX_RANGES,
		};
	}
	hs_pam *p = NULL;
	int err = hs_pam_new(init, n, &p);
	if (err != 0)
		fail_msg("hs_pam_new of %zu chunks: error %d", n, err);
	g.pam = p;
	CHECK_INVARIANTS(p);
	return p;
}

void scenario_expect_chunk(hs_pam *p, int64_t off, const uint64_t want_a[8], const uint64_t want_s[8],
			   const char *ctx)
{
	uint64_t a[8], s[8];
	int err = hs_pam_chunk_bitmaps(p, scenario_chunk_idx(off), a, s);
	if (err != 0)
		fail_msg("%s: chunk base+%#llx: hs_pam_chunk_bitmaps returned %d", ctx, (long long)off, err);
	for (unsigned w = 0; w < 8; w++) {
		if (a[w] != want_a[w])
			fail_msg("%s: chunk base+%#llx pages %u-%u allocated: got %016" PRIx64 ", want %016" PRIx64,
				 ctx, (long long)off, 64 * w, 64 * w + 63, a[w], want_a[w]);
		if (s[w] != want_s[w])
			fail_msg("%s: chunk base+%#llx pages %u-%u scavenged: got %016" PRIx64 ", want %016" PRIx64,
				 ctx, (long long)off, 64 * w, 64 * w + 63, s[w], want_s[w]);
	}
}

void scenario_expect_after_chunks(hs_pam *p, const struct chunk_spec *cs, int keep_scav, const char *ctx)
{
	size_t n = scenario_nchunks(cs);
	for (size_t k = 0; k < n; k++) {
		uint64_t a[8] = { 0 }, s[8] = { 0 };
		scenario_set_ranges(a, cs[k].after);
		scenario_set_ranges(s, keep_scav ? cs[k].scav : cs[k].after_scav);
		for (unsigned w = 0; w < 8; w++)
			s[w] &= ~a[w];
		scenario_expect_chunk(p, cs[k].off, a, s, ctx);
	}
}
