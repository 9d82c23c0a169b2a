/*
 * tests/unit/scenario.h — the harness that test_pagealloc.c and test_pagecache.c
 * share for their table-driven scenarios: the cmocka fixtures that find Go's
 * BaseChunkIdx for the arch configuration and destroy the allocator under test
 * after each test, chunk offsets turned into chunk indices and addresses, the
 * chunk_spec tables (the C() and FULL initialisers), building an allocator from
 * such a table, and comparing a chunk's bitmaps with what a case expects.
 *
 * Offsets name chunks relative to a base chunk: BaseChunkIdx, or BaseChunkIdx
 * rounded down to a case's alignment (scenario_set_align). The base and the
 * allocator under test are kept here, reset by scenario_drop_pam.
 */
#ifndef HS_TEST_SCENARIO_H
#define HS_TEST_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "heapscope/pagealloc.h"

#define CP 512u /* pages per chunk, Go's PallocChunkPages */
#define SCENARIO_MAX_RANGES 4
#define SCENARIO_MAX_CHUNKS 8
/* Go's sumsPerPhysPage for a 4 KiB page: the alignment of DiscontiguousMappedSumBoundary. */
#define SUMS_PER_PHYS_PAGE 512u

/* One chunk of a scenario: its state before, and the state required after. */
struct chunk_spec {
	int present;
	int64_t off;
	hs_pam_bit_range alloc[SCENARIO_MAX_RANGES], scav[SCENARIO_MAX_RANGES];
	hs_pam_bit_range after[SCENARIO_MAX_RANGES], after_scav[SCENARIO_MAX_RANGES];
};

/* A chunk_spec table holds SCENARIO_MAX_CHUNKS entries; the first one not
 * present ends it. */
#define C(o) .present = 1, .off = (o)
#define FULL { { 0, CP } }

/* --- fixtures (cmocka) ------------------------------------------------------------ */

/* Group setup: BaseChunkIdx and the size of the address space; checks the geometry. */
int scenario_group_setup(void **state);
/* Teardown of each test: destroys the allocator under test, resets the base chunk. */
int scenario_drop_pam(void **state);

/* Offsets count from BaseChunkIdx rounded down to align (0: from BaseChunkIdx). */
void scenario_set_align(unsigned align);
/* Makes p the allocator under test, which scenario_drop_pam destroys. */
void scenario_set_pam(hs_pam *p);
/* Chunks in the whole address space of this configuration. */
uint64_t scenario_space_chunks(void);

/* --- addresses --------------------------------------------------------------------- */

uint64_t scenario_chunk_idx(int64_t off);
uintptr_t scenario_addr_at(int64_t off, unsigned long page);
/* Skips the running test, saying why, if chunk `off` lies beyond this
 * configuration's address space (Go runs such cases on 64-bit only). */
void scenario_skip_unless_fits(const char *name, int64_t off);

/* --- chunk states -------------------------------------------------------------------- */

/* Sets the pages of the ranges r[0..SCENARIO_MAX_RANGES) in w. */
void scenario_set_ranges(uint64_t w[8], const hs_pam_bit_range *r);
/* The chunks of a chunk_spec table: those before the first not present. */
size_t scenario_nchunks(const struct chunk_spec *cs);
/* An allocator holding the chunks' before-states, made the allocator under test. */
hs_pam *scenario_build(const struct chunk_spec *cs);
/* Fails the test unless chunk `off` has exactly these allocated and scavenged bitmaps. */
void scenario_expect_chunk(hs_pam *p, int64_t off, const uint64_t want_a[8], const uint64_t want_s[8],
			   const char *ctx);
/*
 * Each chunk's after-state: the `after` pages allocated, and scavenged the
 * listed ones (`scav` when keep_scav, else `after_scav`) minus the allocated
 * ones, as Go's NewPageAlloc builds its `want`.
 */
void scenario_expect_after_chunks(hs_pam *p, const struct chunk_spec *cs, int keep_scav, const char *ctx);

#endif /* HS_TEST_SCENARIO_H */
