/*
 * tests/unit/test_scavenge.c — the scavenger: hs_fill_aligned and
 * hs_palloc_data_find_scavenge_candidate (core/pallocbits.c), the scavenger
 * index (core/scavindex.c), and scavenging through the metadata-only API
 * (hs_pam_scavenge, core/pagescav.c).
 *
 * Where expectations come from, part by part:
 *   1. fillAligned: the inputs of Go 1.19's TestFillAligned
 *      (runtime/mgcscavenge_test.go) and a few words worked out by hand, each
 *      checked against a group-at-a-time oracle written here, plus 100k seeded
 *      random words.
 *   2. findScavengeCandidate: Go's TestPallocDataFindScavengeCandidate table.
 *      Go runs it with the machine's huge page size; here the huge page size is
 *      a parameter, so every general case runs with 0, with this
 *      configuration's HS_PAGES_PER_HUGE_PAGE and with both sizes the
 *      configurations use (256, 512); the results for those were worked out by
 *      hand from Go's findScavengeCandidate and are Go's values unchanged. The
 *      huge page cases are generated for a huge page of `bits` pages exactly as
 *      Go generates them, for the configuration's size and for other sizes;
 *      their huge_pages = 0 results were worked out by hand. A page-at-a-time
 *      oracle checks random chunks.
 *   3. The index: Go's TestScavengeIndex sequences, with the page offsets Go's
 *      test forgets to compare (it compares the chunk twice) filled in from
 *      heapscope's contract in core/scavindex.h, and sequences worked out by
 *      hand for the lock-protected search address.
 *   4. hs_pam_scavenge: Go's TestPageAllocScavenge (with minPages =
 *      HS_MIN_SCAV_PAGES, which is 1 in every configuration), plus scenarios
 *      worked out by hand, including the effect of huge pages on what a small
 *      request releases. The invariant checker runs after every call.
 * No expected value was printed from the code under test.
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
#include "pallocbits.h"
#include "scavindex.h"
#include "pagealloc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ONES (~UINT64_C(0))
#define PB ((uintptr_t)HS_PAGE_SIZE)	     /* bytes per page */
#define MP ((unsigned)HS_MIN_SCAV_PAGES)     /* Go's minPages */
#define HP ((unsigned)HS_PAGES_PER_HUGE_PAGE) /* pages per huge page, this configuration */
#define ALL UINTPTR_MAX			     /* Go's ^uintptr(0) request */

/* ============================================================================
 * 1. hs_fill_aligned
 * ========================================================================== */

/* Every m-bit aligned group of x with a set bit becomes all ones, one group at a time. */
static uint64_t fill_aligned_slow(uint64_t x, unsigned m)
{
	uint64_t out = 0;
	uint64_t group = m == 64 ? ONES : (UINT64_C(1) << m) - 1;
	for (unsigned g = 0; g < 64; g += m) {
		if (x & (group << g))
			out |= group << g;
	}
	return out;
}

static void check_fill(uint64_t x, unsigned m)
{
	uint64_t want = fill_aligned_slow(x, m), got = hs_fill_aligned(x, m);
	if (got != want)
		fail_msg("fill_aligned(%016" PRIx64 ", %u) = %016" PRIx64 ", want %016" PRIx64, x, m, got, want);
}

/* The fixed inputs of Go's TestFillAligned, for every m. */
static void test_fill_aligned_go(void **state)
{
	(void)state;
	for (unsigned m = 1; m <= 64; m *= 2) {
		const uint64_t xs[] = {
			UINT64_C(0x0000000000000000), UINT64_C(0x00000000ffffffff), UINT64_C(0xffffffff00000000),
			UINT64_C(0x8000000000000001), UINT64_C(0xf00000000000000f), UINT64_C(0xf00000010050000f),
			UINT64_C(0xffffffffffffffff), UINT64_C(0x0000000000000001), UINT64_C(0x0000000000000002),
			UINT64_C(0x0000000000000008), UINT64_C(1) << (m - 1),
			m == 64 ? 0 : UINT64_C(1) << m, /* Go's 1<<64 is 0 */
			UINT64_C(0xb02b9effcf137016), UINT64_C(0x3975a076a9fbff18), UINT64_C(0x0f8c88ec3b81506e),
			UINT64_C(0x60f14d80ef2fa0e6),
		};
		for (size_t k = 0; k < ARRAY_LEN(xs); k++)
			check_fill(xs[k], m);
	}
}

/* Values worked out by hand (the first is the example in Go's doc comment). */
static void test_fill_aligned_hand(void **state)
{
	(void)state;
	static const struct {
		uint64_t x;
		unsigned m;
		uint64_t want;
	} cases[] = {
		{ UINT64_C(0x00000000000100a3), 8, UINT64_C(0x0000000000ff00ff) },
		{ UINT64_C(0xf00000010050000f), 8, UINT64_C(0xff0000ff00ff00ff) },
		{ UINT64_C(0xf00000010050000f), 4, UINT64_C(0xf000000f00f0000f) },
		{ UINT64_C(0xf00000010050000f), 16, ONES },
		{ UINT64_C(0x8000000000000001), 2, UINT64_C(0xc000000000000003) },
		{ UINT64_C(0x8000000000000001), 32, ONES },
		{ UINT64_C(0x8000000000000001), 1, UINT64_C(0x8000000000000001) },
		{ UINT64_C(0x0000000000000002), 1, UINT64_C(0x0000000000000002) },
		{ UINT64_C(0x0000000000000002), 2, UINT64_C(0x0000000000000003) },
		{ UINT64_C(0x0000000000000008), 4, UINT64_C(0x000000000000000f) },
		{ UINT64_C(0x0000000000000008), 16, UINT64_C(0x000000000000ffff) },
		{ UINT64_C(0x0000000000000008), 64, ONES },
		{ UINT64_C(0xffffffff00000000), 32, UINT64_C(0xffffffff00000000) },
		{ UINT64_C(0xffffffff00000000), 64, ONES },
		{ UINT64_C(0x0000000000010000), 16, UINT64_C(0x00000000ffff0000) },
		{ 0, 64, 0 },
	};
	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		uint64_t got = hs_fill_aligned(cases[k].x, cases[k].m);
		if (got != cases[k].want)
			fail_msg("fill_aligned(%016" PRIx64 ", %u) = %016" PRIx64 ", want %016" PRIx64, cases[k].x,
				 cases[k].m, got, cases[k].want);
		assert_int_equal(fill_aligned_slow(cases[k].x, cases[k].m), cases[k].want);
	}
}

/* 100k seeded random words, each for every m; and, as Go does, words whose
 * m-bit groups are each either empty or random. */
static void test_fill_aligned_random(void **state)
{
	(void)state;
	uint64_t seed = UINT64_C(0x66696c6c616c6967); /* "fillalig" */
	for (unsigned it = 0; it < 100000; it++) {
		uint64_t x = oracle_rand(&seed);
		for (unsigned m = 1; m <= 64; m *= 2) {
			check_fill(x, m);
			if (m == 1)
				continue;
			uint64_t group = m == 64 ? ONES : (UINT64_C(1) << m) - 1, sparse = 0;
			uint64_t coins = oracle_rand(&seed);
			for (unsigned g = 0; g < 64; g += m) {
				if ((coins >> (g / m)) & 1)
					sparse |= (oracle_rand(&seed) & group) << g;
			}
			check_fill(sparse, m);
		}
	}
}

/* ============================================================================
 * 2. hs_palloc_data_find_scavenge_candidate
 * ========================================================================== */

struct fsc_case {
	char name[64];
	hs_pam_bit_range alloc[SCENARIO_MAX_RANGES], scav[SCENARIO_MAX_RANGES];
	unsigned search, min, max, huge;
	unsigned start, n; /* the expected candidate; n == 0: none (start not compared, as in Go) */
};

#define FSC_MAX 1024
static struct fsc_case fsc_cases[FSC_MAX];
static size_t fsc_count;

/* As Go's makePallocData: the alloc ranges, then the scavenged ranges (set even
 * on allocated pages; the search treats either bit as busy). */
static void fsc_build(hs_palloc_data *d, const hs_pam_bit_range *alloc, const hs_pam_bit_range *scav)
{
	memset(d, 0, sizeof *d);
	for (size_t k = 0; k < SCENARIO_MAX_RANGES; k++) {
		if (alloc[k].n != 0)
			hs_page_bits_set_range(&d->alloc, alloc[k].i, alloc[k].n);
	}
	for (size_t k = 0; k < SCENARIO_MAX_RANGES; k++) {
		if (scav[k].n != 0)
			hs_page_bits_set_range(&d->scavenged, scav[k].i, scav[k].n);
	}
}

static struct fsc_case *fsc_add(const char *name, unsigned m, unsigned huge)
{
	if (fsc_count == FSC_MAX)
		fail_msg("too many find_scavenge_candidate cases");
	struct fsc_case *c = &fsc_cases[fsc_count++];
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s/min%u/huge%u", name, m, huge);
	c->search = CP - 1;
	c->min = m;
	c->huge = huge;
	return c;
}

static void fsc_run(const struct fsc_case *c)
{
	hs_palloc_data d;
	unsigned start = 0xdead;
	fsc_build(&d, c->alloc, c->scav);
	unsigned n = hs_palloc_data_find_scavenge_candidate(&d, c->search, c->min, c->max, c->huge, &start);
	if (n != c->n || (n != 0 && start != c->start))
		fail_msg("%s (search %u, max %u): got {%u, %u}, want {%u, %u}", c->name, c->search, c->max,
			 n == 0 ? 0 : start, n, c->n == 0 ? 0 : c->start, c->n);
}

#define R(i_, n_) ((hs_pam_bit_range){ (i_), (n_) })

/*
 * Go's general cases for min-page groups of m. Each holds for every huge page
 * size used here: the huge page rule only extends a candidate whose huge page
 * boundary above its start lies at or below its end and whose free run reaches
 * down to the huge page below its start; worked through case by case, that
 * happens here only for candidates that already start at page 0 or at a huge
 * page boundary (AllFree, StartFree, Straddle64 with m = 64), where it adds
 * nothing.
 */
static void fsc_add_general(unsigned m, unsigned huge)
{
	struct fsc_case *c;

	c = fsc_add("AllFree", m, huge);
	c->max = CP;
	c->start = 0, c->n = CP;

	c = fsc_add("AllScavenged", m, huge);
	c->scav[0] = R(0, CP);
	c->max = CP;
	c->n = 0;

	c = fsc_add("NoneFree", m, huge);
	c->alloc[0] = R(0, CP);
	c->scav[0] = R(CP / 2, CP / 2);
	c->max = CP;
	c->n = 0;

	c = fsc_add("StartFree", m, huge);
	c->alloc[0] = R(m, CP - m);
	c->max = CP;
	c->start = 0, c->n = m;

	c = fsc_add("EndFree", m, huge);
	c->alloc[0] = R(0, CP - m);
	c->max = CP;
	c->start = CP - m, c->n = m;

	c = fsc_add("Straddle64", m, huge);
	c->alloc[0] = R(0, 64 - m);
	c->alloc[1] = R(64 + m, CP - (64 + m));
	c->max = 2 * m;
	c->start = 64 - m, c->n = 2 * m;

	c = fsc_add("BottomEdge64WithFull", m, huge);
	c->alloc[0] = R(64, 64);
	c->alloc[1] = R(128 + 3 * m, CP - (128 + 3 * m));
	c->scav[0] = R(1, 10);
	c->max = 3 * m;
	c->start = 128, c->n = 3 * m;

	c = fsc_add("BottomEdge64WithPocket", m, huge);
	c->alloc[0] = R(64, 62);
	c->alloc[1] = R(127, 1);
	c->alloc[2] = R(128 + 3 * m, CP - (128 + 3 * m));
	c->scav[0] = R(1, 10);
	c->max = 3 * m;
	c->start = 128, c->n = 3 * m;

	c = fsc_add("Max0", m, huge);
	c->scav[0] = R(0, CP - m);
	c->max = 0;
	c->start = CP - m, c->n = m;

	/* Go keys these two without the min suffix, so its map keeps only m = 8;
	 * the smaller m follow the same description. */
	if (m <= 8) {
		c = fsc_add("OneFree", m, huge);
		c->alloc[0] = R(0, 40);
		c->alloc[1] = R(40 + m, CP - (40 + m));
		c->max = CP;
		c->start = 40, c->n = m;

		c = fsc_add("OneScavenged", m, huge);
		c->alloc[0] = R(0, 40);
		c->alloc[1] = R(40 + m, CP - (40 + m));
		c->scav[0] = R(40, 1);
		c->max = CP;
		c->n = 0;
	}
	if (m > 1) {
		c = fsc_add("MaxUnaligned", m, huge);
		c->scav[0] = R(0, CP - (m * 2 - 1));
		c->max = m - 2;
		c->start = CP - m, c->n = m;

		c = fsc_add("SkipSmall", m, huge);
		c->alloc[0] = R(0, 64 - m);
		c->alloc[1] = R(64, 5);
		c->alloc[2] = R(70, 11);
		c->alloc[3] = R(82, CP - 82);
		c->max = m;
		c->start = 64 - m, c->n = m;

		c = fsc_add("SkipMisaligned", m, huge);
		c->alloc[0] = R(0, 64 - m);
		c->alloc[1] = R(64, 63);
		c->alloc[2] = R(127 + m, CP - (127 + m));
		c->max = m;
		c->start = 64 - m, c->n = m;

		c = fsc_add("MaxLessThan", m, huge);
		c->scav[0] = R(0, CP - m);
		c->max = 1;
		c->start = CP - m, c->n = m;
	}
	if (m == 1) {
		c = fsc_add("MixedMin1", m, huge);
		c->alloc[0] = R(0, 40);
		c->alloc[1] = R(42, CP - 42);
		c->scav[0] = R(0, 41);
		c->scav[1] = R(42, CP - 42);
		c->max = CP;
		c->start = 41, c->n = 1;

		c = fsc_add("MultiMin1", m, huge);
		c->alloc[0] = R(0, 63);
		c->alloc[1] = R(65, 20);
		c->alloc[2] = R(87, CP - 87);
		c->scav[0] = R(86, 1);
		c->max = CP;
		c->start = 85, c->n = 1;
	}
}

/*
 * Go's huge page cases for a huge page of `bits` pages, generated under the same
 * conditions as Go's (Middle needs three huge pages in a chunk, All a huge page
 * of exactly a chunk, None one larger than a chunk). Each runs with huge_pages =
 * bits (Go's expectation) and with huge_pages = 0, whose results were worked out
 * by hand: the candidate is then the top max pages of the highest free run.
 */
static void fsc_add_huge(const char *tag, unsigned bits)
{
	struct fsc_case *c;
	char name[48];

	if (bits < CP) {
		/* Free [0, bits+2): max 3 would take [bits-1, bits+2), breaking the first huge page. */
		snprintf(name, sizeof name, "%s/PreserveHugePageBottom", tag);
		c = fsc_add(name, 1, bits);
		c->alloc[0] = R(bits + 2, CP - (bits + 2));
		c->max = 3;
		c->start = 0, c->n = bits + 2;
		c = fsc_add(name, 1, 0);
		c->alloc[0] = R(bits + 2, CP - (bits + 2));
		c->max = 3;
		c->start = bits - 1, c->n = 3;

		if (3 * bits < CP) {
			/* Free [bits-10, 2*bits+10). */
			snprintf(name, sizeof name, "%s/PreserveHugePageMiddle", tag);
			c = fsc_add(name, 1, bits);
			c->alloc[0] = R(0, bits - 10);
			c->alloc[1] = R(2 * bits + 10, CP - (2 * bits + 10));
			c->max = 12;
			c->start = bits, c->n = bits + 10;
			c = fsc_add(name, 1, 0);
			c->alloc[0] = R(0, bits - 10);
			c->alloc[1] = R(2 * bits + 10, CP - (2 * bits + 10));
			c->max = 12;
			c->start = 2 * bits - 2, c->n = 12;
		}

		/* Free [CP-bits, CP): one page from the top already breaks the huge page. */
		snprintf(name, sizeof name, "%s/PreserveHugePageTop", tag);
		c = fsc_add(name, 1, bits);
		c->alloc[0] = R(0, CP - bits);
		c->max = 1;
		c->start = CP - bits, c->n = bits;
		c = fsc_add(name, 1, 0);
		c->alloc[0] = R(0, CP - bits);
		c->max = 1;
		c->start = CP - 1, c->n = 1;
	} else if (bits == CP) {
		snprintf(name, sizeof name, "%s/PreserveHugePageAll", tag);
		c = fsc_add(name, 1, bits);
		c->max = 1;
		c->start = 0, c->n = CP;
		c = fsc_add(name, 1, 0);
		c->max = 1;
		c->start = CP - 1, c->n = 1;
	} else {
		snprintf(name, sizeof name, "%s/PreserveHugePageNone", tag);
		c = fsc_add(name, 1, bits);
		c->max = 1;
		c->start = CP - 1, c->n = 1;
		c = fsc_add(name, 1, 0);
		c->max = 1;
		c->start = CP - 1, c->n = 1;
	}
}

static void test_fsc_go_table(void **state)
{
	(void)state;
	const unsigned huges[] = { 0, HP, 256, 512 };
	fsc_count = 0;
	for (unsigned m = 1; m <= 64; m *= 2) {
		for (size_t h = 0; h < ARRAY_LEN(huges); h++)
			fsc_add_general(m, huges[h]);
	}
	for (size_t k = 0; k < fsc_count; k++)
		fsc_run(&fsc_cases[k]);
	print_message("%zu cases\n", fsc_count);
}

static void test_fsc_huge_pages(void **state)
{
	(void)state;
	fsc_count = 0;
	/* As Go does, with this configuration's huge page (256 pages on amd64 and
	 * arm64: Bottom and Top; 512 on 32-bit: All). */
	fsc_add_huge("config", HP);
	/* The same generator with huge_pages as a parameter (Middle needs <= 170). */
	const unsigned bits[] = { 64, 128, 256, 512, 1024 };
	for (size_t k = 0; k < ARRAY_LEN(bits); k++) {
		char tag[16];
		snprintf(tag, sizeof tag, "bits%u", bits[k]);
		fsc_add_huge(tag, bits[k]);
	}
	for (size_t k = 0; k < fsc_count; k++)
		fsc_run(&fsc_cases[k]);
	print_message("%zu cases (configuration: %u pages per huge page)\n", fsc_count, HP);
}

/*
 * search_idx below the top, worked out by hand. As in Go (i := searchIdx / 64),
 * the search starts with the whole 64-page word holding search_idx.
 */
static void test_fsc_search_idx(void **state)
{
	(void)state;
	struct fsc_case *c;
	fsc_count = 0;

	/* All free: the run ends at the top of search_idx's word. */
	c = fsc_add("AllFree/search255", 1, 0);
	c->search = 255, c->max = CP;
	c->start = 0, c->n = 256;
	c = fsc_add("AllFree/search255", 1, 256);
	c->search = 255, c->max = CP;
	c->start = 0, c->n = 256;
	c = fsc_add("AllFree/search0", 1, 0);
	c->search = 0, c->max = CP;
	c->start = 0, c->n = 64;
	c = fsc_add("AllFree/search100", 1, 0); /* word 1: pages 64..127 */
	c->search = 100, c->max = CP;
	c->start = 0, c->n = 128;
	c = fsc_add("AllFree/search100max10", 4, 0);
	c->search = 100, c->max = 10; /* rounded up to 12 */
	c->start = 116, c->n = 12;

	/* Free [100, 150) and [300, 400); searching from word 3 sees only the lower run. */
	for (unsigned h = 0; h <= 512; h += 256) {
		c = fsc_add("TwoRuns/search255", 1, h);
		c->alloc[0] = R(0, 100);
		c->alloc[1] = R(150, 150);
		c->alloc[2] = R(400, CP - 400);
		c->search = 255, c->max = CP;
		c->start = 100, c->n = 50;
		c = fsc_add("TwoRuns/search255max10", 1, h);
		memcpy(c->alloc, fsc_cases[fsc_count - 2].alloc, sizeof c->alloc);
		c->search = 255, c->max = 10;
		c->start = 140, c->n = 10;
		c = fsc_add("TwoRuns/search511max10", 1, h);
		memcpy(c->alloc, fsc_cases[fsc_count - 2].alloc, sizeof c->alloc);
		c->search = 511, c->max = 10;
		c->start = 390, c->n = 10;
		c = fsc_add("TwoRuns/search63", 1, h);
		memcpy(c->alloc, fsc_cases[fsc_count - 2].alloc, sizeof c->alloc);
		c->search = 63, c->max = CP;
		c->n = 0;
	}
	for (size_t k = 0; k < fsc_count; k++)
		fsc_run(&fsc_cases[k]);
}

/*
 * The oracle, for huge_pages = 0: a page is busy when it is allocated or
 * scavenged, or another page of its min-page aligned group is; the candidate is
 * the top max pages (max rounded up to min, 0 meaning min) of the highest run of
 * non-busy pages at or below the end of search_idx's word.
 */
static unsigned fsc_oracle(const hs_palloc_data *d, unsigned search, unsigned min, unsigned max,
			   unsigned *start)
{
	unsigned char busy[CP];
	for (unsigned g = 0; g < CP; g += min) {
		unsigned any = 0;
		for (unsigned i = g; i < g + min; i++)
			any |= oracle_bit(d->alloc.w, i) | oracle_bit(d->scavenged.w, i);
		for (unsigned i = g; i < g + min; i++)
			busy[i] = (unsigned char)any;
	}
	unsigned limit = (search | 63) + 1; /* pages [0, limit) are searched */
	unsigned top = limit;
	while (top > 0 && busy[top - 1])
		top--;
	if (top == 0)
		return 0;
	unsigned lo = top - 1;
	while (lo > 0 && !busy[lo - 1])
		lo--;
	unsigned cap = max == 0 ? min : (max + min - 1) / min * min;
	unsigned size = top - lo < cap ? top - lo : cap;
	*start = top - size;
	return size;
}

static void test_fsc_oracle(void **state)
{
	(void)state;
	uint64_t seed = UINT64_C(0x7363617663616e64); /* "scavcand" */
	const unsigned maxes[] = { 0, 1, 2, 3, 5, 7, 8, 63, 64, 65, 100, 256, 511, CP };
	unsigned found = 0, none = 0;
	for (unsigned it = 0; it < 30000; it++) {
		hs_palloc_data d;
		oracle_random_chunk(d.alloc.w, it, &seed);
		oracle_random_chunk(d.scavenged.w, (unsigned)(oracle_rand(&seed) % ORACLE_CHUNK_MODES), &seed);
		if (it % 4 != 0) {
			/* Usually a valid pallocData: only free pages are scavenged. */
			for (unsigned w = 0; w < 8; w++)
				d.scavenged.w[w] &= ~d.alloc.w[w];
		}
		/* min = 1 every time, and another power of two every other time. */
		unsigned mins[2] = { 1, 1u << (1 + (it / 2) % 6) };
		for (unsigned k = 0; k < (it % 2 ? 2u : 1u); k++) {
			unsigned min = mins[k];
			unsigned search = (unsigned)(oracle_rand(&seed) % CP);
			unsigned max = it % 3 == 0 ? (unsigned)(oracle_rand(&seed) % 600)
						   : maxes[oracle_rand(&seed) % ARRAY_LEN(maxes)];
			unsigned ws = 0, gs = 0xdead;
			unsigned wn = fsc_oracle(&d, search, min, max, &ws);
			unsigned gn = hs_palloc_data_find_scavenge_candidate(&d, search, min, max, 0, &gs);
			if (gn != wn || (gn != 0 && gs != ws))
				fail_msg("iteration %u: search %u min %u max %u: got {%u, %u}, want {%u, %u}\n"
					 "alloc %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64
					 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 "\n"
					 "scav  %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64
					 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
					 it, search, min, max, gn ? gs : 0, gn, wn ? ws : 0, wn, d.alloc.w[0],
					 d.alloc.w[1], d.alloc.w[2], d.alloc.w[3], d.alloc.w[4], d.alloc.w[5],
					 d.alloc.w[6], d.alloc.w[7], d.scavenged.w[0], d.scavenged.w[1],
					 d.scavenged.w[2], d.scavenged.w[3], d.scavenged.w[4], d.scavenged.w[5],
					 d.scavenged.w[6], d.scavenged.w[7]);
			if (wn)
				found++;
			else
				none++;
		}
	}
	print_message("%u candidates found, %u searches with none\n", found, none);
	assert_true(found > 1000 && none > 1000);
}

/* ============================================================================
 * 3. The scavenger index
 * ========================================================================== */

enum idx_kind {
	I_END,
	I_MARK,	       /* mark [page p0 of chunk c0, page p1 of chunk c1) */
	I_FIND,	       /* find returns (c0, p0); nothing is cleared */
	I_FINDC,       /* find returns (c0, p0), then that chunk is cleared (Go's helper) */
	I_FINDC_DOWN,  /* I_FINDC for c0, c0-1, ..., c1, each with page p0 */
	I_NONE,	       /* find returns 0, and the search address is forgotten */
	I_CLEAR,       /* clear chunk c0 */
	I_GET,	       /* get(c0) == p0 */
	I_SEARCH,      /* the search address is page p0 of chunk c0 */
	I_NO_SEARCH,   /* no search address */
};

struct idx_op {
	enum idx_kind k;
	int64_t c0;
	unsigned p0;
	int64_t c1;
	unsigned p1;
};

#define MARK(c0, p0, c1, p1) { I_MARK, (c0), (p0), (c1), (p1) }
#define FIND(c, p) { I_FIND, (c), (p), 0, 0 }
#define FINDC(c, p) { I_FINDC, (c), (p), 0, 0 }
#define FINDC_DOWN(hi, lo, p) { I_FINDC_DOWN, (hi), (p), (lo), 0 }
#define NONE { I_NONE, 0, 0, 0, 0 }
#define CLEAR(c) { I_CLEAR, (c), 0, 0, 0 }
#define GET(c, v) { I_GET, (c), (v), 0, 0 }
#define SEARCH(c, p) { I_SEARCH, (c), (p), 0, 0 }
#define NO_SEARCH { I_NO_SEARCH, 0, 0, 0, 0 }

#define IDX_MAX_OPS 40
#define IDX_CHUNKS 64 /* Go's NewScavengeIndex(BaseChunkIdx, BaseChunkIdx+64) */

struct idx_case {
	const char *name;
	struct idx_op ops[IDX_MAX_OPS];
};

/* Go's TestScavengeIndex. */
static const struct idx_case idx_go_cases[] = {
	{ "index/Uninitialized", { NO_SEARCH, NONE } },
	{ "index/OnePage", { MARK(0, 3, 0, 4), FINDC(0, 3), NONE } },
	{ "index/FirstPage", { MARK(0, 0, 0, 1), FINDC(0, 0), NONE } },
	{ "index/SeveralPages", { MARK(0, 9, 0, 14), FINDC(0, 13), NONE } },
	{ "index/WholeChunk", { MARK(0, 0, 1, 0), FINDC(0, CP - 1), NONE } },
	{ "index/LastPage", { MARK(0, CP - 1, 1, 0), FINDC(0, CP - 1), NONE } },
	{ "index/TwoChunks", { MARK(0, 128, 1, 128), FINDC(1, 127), FINDC(0, CP - 1), NONE } },
	{ "index/TwoChunksOffset", { MARK(7, 128, 8, 129), FINDC(8, 128), FINDC(7, CP - 1), NONE } },
	{ "index/SevenChunksOffset", { MARK(6, 11, 13, 15), FINDC(13, 14), FINDC_DOWN(12, 6, CP - 1), NONE } },
	{ "index/ThirtyTwoChunks", { MARK(0, 0, 32, 0), FINDC_DOWN(31, 0, CP - 1), NONE } },
	{ "index/ThirtyTwoChunksOffset", { MARK(3, 0, 35, 0), FINDC_DOWN(34, 3, CP - 1), NONE } },
	{ "index/Mark",
	  { MARK(0, 0, 1, 0), MARK(1, 0, 2, 0), MARK(2, 0, 3, 0), MARK(3, 0, 4, 0), MARK(4, 0, 5, 0),
	    MARK(5, 0, 6, 0), MARK(6, 0, 7, 0), MARK(7, 0, 8, 0), MARK(8, 0, 9, 0), MARK(9, 0, 10, 0),
	    MARK(10, 0, 11, 0), MARK(11, 0, 12, 0), MARK(12, 0, 13, 0), MARK(13, 0, 14, 0), MARK(14, 0, 15, 0),
	    MARK(15, 0, 16, 0), MARK(16, 0, 17, 0), MARK(17, 0, 18, 0), MARK(18, 0, 19, 0), MARK(19, 0, 20, 0),
	    MARK(20, 0, 21, 0), MARK(21, 0, 22, 0), MARK(22, 0, 23, 0), MARK(23, 0, 24, 0), MARK(24, 0, 25, 0),
	    MARK(25, 0, 26, 0), MARK(26, 0, 27, 0), MARK(27, 0, 28, 0), MARK(28, 0, 29, 0), MARK(29, 0, 30, 0),
	    MARK(30, 0, 31, 0), MARK(31, 0, 32, 0), FINDC_DOWN(31, 0, CP - 1), NONE } },
	/* MarkInterleaved is generated in test_index_mark_interleaved (64 ops). */
	{ "index/MarkIdempotentOneChunk", { MARK(0, 0, 1, 0), MARK(0, 0, 1, 0), FINDC(0, CP - 1), NONE } },
	{ "index/MarkIdempotentThirtyTwoChunks",
	  { MARK(0, 0, 32, 0), MARK(0, 0, 32, 0), FINDC_DOWN(31, 0, CP - 1), NONE } },
	{ "index/MarkIdempotentThirtyTwoChunksOffset",
	  { MARK(4, 0, 31, 0), MARK(5, 0, 36, 0), FINDC_DOWN(35, 4, CP - 1), NONE } },
};

/*
 * Worked out by hand from core/scavindex.h: mark raises the search address to
 * the last page marked and never lowers it; find returns the highest marked
 * chunk at or below the search address's chunk, with the search address's page
 * if it is that chunk and page 511 otherwise, lowering the search address to
 * the top page of the chunk found; find changes nothing else, so without a
 * clear it returns the same answer again; with nothing marked it returns 0 and
 * the search address is forgotten, and the next mark sets it afresh.
 */
static const struct idx_case idx_hand_cases[] = {
	{ "index/hand/SearchAddress",
	  {
		  NO_SEARCH,
		  MARK(0, 5, 3, 11), SEARCH(3, 10),
		  GET(0, 1), GET(1, 1), GET(2, 1), GET(3, 1), GET(4, 0),
		  FIND(3, 10), FIND(3, 10), SEARCH(3, 10),
		  CLEAR(3), GET(3, 0),
		  FIND(2, CP - 1), SEARCH(2, CP - 1),
		  MARK(1, 0, 1, 1), SEARCH(2, CP - 1), /* below: the search address stays */
		  FIND(2, CP - 1), CLEAR(2),
		  FIND(1, CP - 1), SEARCH(1, CP - 1), /* page 511 although only page 0 was marked */
		  MARK(20, 7, 20, 8), SEARCH(20, 7), /* above: raised */
		  FINDC(20, 7),
		  FIND(1, CP - 1), SEARCH(1, CP - 1), /* skips 19..2 */
		  CLEAR(1), FINDC(0, CP - 1),
		  NONE, NONE,
		  MARK(4, 0, 4, 1), SEARCH(4, 0), GET(4, 1),
		  FINDC(4, 0), NONE,
	  } },
	{ "index/hand/ByteBoundaries",
	  {
		  /* Chunks 7, 8, 15, 16 and 40: three bytes of the bitmap, gaps between. */
		  MARK(7, 500, 8, 3), MARK(15, 0, 17, 0), MARK(40, 100, 40, 101), SEARCH(40, 100),
		  GET(6, 0), GET(7, 1), GET(8, 1), GET(9, 0), GET(14, 0), GET(15, 1), GET(16, 1),
		  GET(17, 0), GET(39, 0), GET(40, 1), GET(41, 0),
		  FINDC(40, 100), FIND(16, CP - 1), SEARCH(16, CP - 1),
		  FINDC_DOWN(16, 15, CP - 1), FIND(8, CP - 1), SEARCH(8, CP - 1),
		  FINDC_DOWN(8, 7, CP - 1), NONE, NO_SEARCH,
	  } },
	{ "index/hand/MarkWithinSearchChunk",
	  {
		  /* A mark in the search address's chunk but below it leaves it; above raises it. */
		  MARK(2, 50, 2, 60), SEARCH(2, 59), MARK(2, 10, 2, 11), SEARCH(2, 59),
		  MARK(2, 300, 2, 301), SEARCH(2, 300), FIND(2, 300), MARK(0, 0, 1, 0), FIND(2, 300),
		  CLEAR(2), FINDC(0, CP - 1), NONE,
	  } },
};

static struct {
	hs_scav_index s;
	int live;
	uint64_t base; /* chunk index of offset 0 */
} gi;

static int idx_setup(void **state)
{
	(void)state;
	gi.base = scenario_chunk_idx(0);
	if (hs_scav_index_init(&gi.s, hs_sys_phys_page_size()) != 0)
		return -1;
	gi.live = 1;
	hs_sys_stat stat = { 0 };
	uintptr_t lo = (uintptr_t)gi.base << HS_LOG_PALLOC_CHUNK_BYTES;
	uintptr_t committed = hs_scav_index_grow(&gi.s, lo, lo + ((uintptr_t)IDX_CHUNKS << HS_LOG_PALLOC_CHUNK_BYTES), &stat);
	if (committed == 0 || committed % hs_sys_phys_page_size() != 0 || stat.bytes != committed)
		return -1;
	return 0;
}

static int idx_teardown(void **state)
{
	(void)state;
	if (gi.live)
		hs_scav_index_destroy(&gi.s);
	gi.live = 0;
	return 0;
}

/* Offset address of page p of chunk base+c. */
static uintptr_t idx_off(int64_t c, unsigned p)
{
	return ((uintptr_t)(gi.base + (uint64_t)c) << HS_LOG_PALLOC_CHUNK_BYTES) + (uintptr_t)p * PB;
}

static void idx_expect_find(int64_t c, unsigned p, const char *name, size_t k)
{
	uintptr_t ci = 0;
	unsigned page = 0;
	if (!hs_scav_index_find(&gi.s, &ci, &page))
		fail_msg("%s op %zu: find returned nothing, want chunk base+%lld page %u", name, k, (long long)c, p);
	if (ci != gi.base + (uint64_t)c || page != p)
		fail_msg("%s op %zu: find returned chunk base+%lld page %u, want base+%lld page %u", name, k,
			 (long long)(ci - gi.base), page, (long long)c, p);
}

static void idx_run_ops(const char *name, const struct idx_op *ops, size_t nops)
{
	for (size_t k = 0; k < nops && ops[k].k != I_END; k++) {
		const struct idx_op *o = &ops[k];
		uintptr_t ci;
		unsigned page;
		switch (o->k) {
		case I_MARK:
			hs_scav_index_mark(&gi.s, idx_off(o->c0, o->p0), idx_off(o->c1, o->p1));
			break;
		case I_FIND:
			idx_expect_find(o->c0, o->p0, name, k);
			break;
		case I_FINDC:
			idx_expect_find(o->c0, o->p0, name, k);
			hs_scav_index_clear(&gi.s, (uintptr_t)(gi.base + (uint64_t)o->c0));
			break;
		case I_FINDC_DOWN:
			for (int64_t c = o->c0; c >= o->c1; c--) {
				idx_expect_find(c, o->p0, name, k);
				hs_scav_index_clear(&gi.s, (uintptr_t)(gi.base + (uint64_t)c));
			}
			break;
		case I_NONE:
			if (hs_scav_index_find(&gi.s, &ci, &page))
				fail_msg("%s op %zu: find returned chunk base+%lld page %u, want nothing", name, k,
					 (long long)(ci - gi.base), page);
			if (gi.s.has_search)
				fail_msg("%s op %zu: find found nothing but kept a search address", name, k);
			break;
		case I_CLEAR:
			hs_scav_index_clear(&gi.s, (uintptr_t)(gi.base + (uint64_t)o->c0));
			break;
		case I_GET: {
			int got = hs_scav_index_get(&gi.s, (uintptr_t)(gi.base + (uint64_t)o->c0));
			if (got != (int)o->p0)
				fail_msg("%s op %zu: get(base+%lld) = %d, want %u", name, k, (long long)o->c0, got, o->p0);
			break;
		}
		case I_SEARCH:
			if (!gi.s.has_search)
				fail_msg("%s op %zu: no search address, want chunk base+%lld page %u", name, k,
					 (long long)o->c0, o->p0);
			if (gi.s.search_off != idx_off(o->c0, o->p0))
				fail_msg("%s op %zu: search address %#" PRIxPTR ", want %#" PRIxPTR
					 " (chunk base+%lld page %u)",
					 name, k, gi.s.search_off, idx_off(o->c0, o->p0), (long long)o->c0, o->p0);
			break;
		case I_NO_SEARCH:
			if (gi.s.has_search)
				fail_msg("%s op %zu: search address %#" PRIxPTR ", want none", name, k, gi.s.search_off);
			break;
		case I_END:
			break;
		}
	}
}

static void test_index_case(void **state)
{
	const struct idx_case *c = *state;
	idx_run_ops(c->name, c->ops, IDX_MAX_OPS);
}

/* Go's MarkInterleaved: mark chunk i, find it, for i = 0..31. */
static void test_index_mark_interleaved(void **state)
{
	(void)state;
	for (int64_t i = 0; i < 32; i++) {
		const struct idx_op ops[] = { MARK(i, 0, i + 1, 0), SEARCH(i, CP - 1), FINDC(i, CP - 1) };
		idx_run_ops("index/MarkInterleaved", ops, ARRAY_LEN(ops));
	}
	const struct idx_op end[] = { NONE };
	idx_run_ops("index/MarkInterleaved", end, ARRAY_LEN(end));
}

/* get reads 0 outside the committed part of the bitmap. */
static void test_index_get_uncommitted(void **state)
{
	(void)state;
	hs_scav_index_mark(&gi.s, idx_off(0, 0), idx_off(IDX_CHUNKS, 0));
	assert_int_equal(hs_scav_index_get(&gi.s, (uintptr_t)gi.base), 1);
	assert_int_equal(hs_scav_index_get(&gi.s, (uintptr_t)gi.base + IDX_CHUNKS - 1), 1);
	assert_int_equal(hs_scav_index_get(&gi.s, (uintptr_t)gi.base + IDX_CHUNKS), 0);
	assert_int_equal(hs_scav_index_get(&gi.s, gi.s.max * 8), 0);
	assert_int_equal(hs_scav_index_get(&gi.s, gi.s.max * 8 + 12345), 0);
	hs_scav_index s2;
	assert_int_equal(hs_scav_index_init(&s2, hs_sys_phys_page_size()), 0);
	assert_int_equal(hs_scav_index_get(&s2, (uintptr_t)gi.base), 0); /* nothing committed */
	uintptr_t ci;
	unsigned page;
	assert_int_equal(hs_scav_index_find(&s2, &ci, &page), 0);
	hs_scav_index_destroy(&s2);
}

/* ============================================================================
 * 4. Scavenging through hs_pam_scavenge
 * ========================================================================== */

#define MAX_STEPS 8

struct scav_step {
	uintptr_t request, expect; /* bytes asked for, bytes released */
};

struct scav_case {
	const char *name;
	struct chunk_spec chunks[SCENARIO_MAX_CHUNKS]; /* .after = .alloc; .after_scav: scavenged after */
	struct scav_step steps[MAX_STEPS]; /* ends at the first request of 0 */
};

/* Go's TestPageAllocScavenge, with minPages = MP. */
static const struct scav_case scav_go_cases[] = {
	{
		.name = "scavenge/AllFreeUnscavExhaust",
		.chunks = {
			{ C(0), .after_scav = FULL },
			{ C(1), .after_scav = FULL },
			{ C(2), .after_scav = FULL },
		},
		.steps = { { ALL, 3 * CP * PB } },
	},
	{
		.name = "scavenge/NoneFreeUnscavExhaust",
		.chunks = {
			{ C(0), .alloc = FULL, .after = FULL },
			{ C(1), .scav = FULL, .after_scav = FULL },
			{ C(2), .alloc = FULL, .after = FULL },
		},
		.steps = { { ALL, 0 } },
	},
	{
		.name = "scavenge/ScavHighestPageFirst",
		.chunks = { { C(0), .scav = { { MP, CP - 2 * MP } }, .after_scav = { { MP, CP - MP } } } },
		.steps = { { 1, MP * PB } },
	},
	{
		.name = "scavenge/ScavMultiple",
		.chunks = { { C(0), .scav = { { MP, CP - 2 * MP } }, .after_scav = FULL } },
		.steps = { { MP * PB, MP * PB }, { MP * PB, MP * PB } },
	},
	{
		.name = "scavenge/ScavMultiple2",
		.chunks = {
			{ C(0), .scav = { { MP, CP - 2 * MP } }, .after_scav = FULL },
			{ C(1), .scav = { { 0, CP - 2 * MP } }, .after_scav = FULL },
		},
		.steps = { { 2 * MP * PB, 2 * MP * PB }, { MP * PB, MP * PB }, { MP * PB, MP * PB } },
	},
	{
		.name = "scavenge/ScavDiscontiguous",
		.chunks = {
			{ C(0), .scav = { { MP, CP - 2 * MP } }, .after_scav = FULL },
			{ C(0xe), .scav = { { 2 * MP, CP - 2 * MP } }, .after_scav = FULL },
		},
		.steps = { { 2 * MP * PB, 2 * MP * PB }, { ALL, 2 * MP * PB }, { ALL, 0 } },
	},
	{
		/* 64-bit only in Go; beyond a 32-bit address space. */
		.name = "scavenge/ScavAllVeryDiscontiguous",
		.chunks = {
			{ C(0), .after_scav = FULL },
			{ C(0x1000), .after_scav = FULL },
		},
		.steps = { { ALL, 2 * CP * PB }, { ALL, 0 } },
	},
};

/*
 * Worked out by hand from pageAlloc.scavenge, scavengeOne and
 * findScavengeCandidate (HP = pages per huge page, MP = 1 page):
 */
static const struct scav_case scav_hand_cases[] = {
	{
		/* Request 1 byte: the top page of the highest chunk, extended down to
		 * its huge page's start (the whole free huge page). Then a chunk's
		 * worth: the rest of chunk 2 and the top huge page(s) of chunk 1,
		 * highest first; chunk 0 is never reached. */
		.name = "scavenge/hand/HighestFirst",
		.chunks = {
			{ C(0) },
			{ C(1), .after_scav = { { CP - HP, HP } } },
			{ C(2), .after_scav = FULL },
		},
		.steps = { { 1, HP * PB }, { CP * PB, CP * PB } },
	},
	{
		/* Free, unscavenged: chunk 0 [150, 300) and [312, 512) (350 pages),
		 * chunk 5 [0, 10) and [30, 512) (492); chunk 1 is full, chunk 3 all
		 * scavenged. Asking for 100 pages more than the 842 releases 842 and
		 * scavenges every free page; asking again releases nothing. */
		.name = "scavenge/hand/LargerThanFree",
		.chunks = {
			{ C(0), .alloc = { { 0, 100 }, { 300, 12 } }, .scav = { { 100, 50 } },
			  .after = { { 0, 100 }, { 300, 12 } }, .after_scav = { { 100, 200 }, { 312, 200 } } },
			{ C(1), .alloc = FULL, .after = FULL },
			{ C(3), .scav = FULL, .after_scav = FULL },
			{ C(5), .alloc = { { 10, 20 } }, .after = { { 10, 20 } },
			  .after_scav = { { 0, 10 }, { 30, 482 } } },
		},
		.steps = { { (842 + 100) * PB, 842 * PB }, { ALL, 0 }, { 1, 0 } },
	},
	{
		/* A request that is not a whole number of pages rounds up: 1 page and
		 * 1 byte releases 2 pages, the top of the free run [500, 512). */
		.name = "scavenge/hand/RequestRoundsUp",
		.chunks = { { C(0), .alloc = { { 0, 500 } }, .after = { { 0, 500 } }, .after_scav = { { 510, 2 } } } },
		.steps = { { PB + 1, 2 * PB } },
	},
	{
		/* Stops once enough is released: 4 pages come from chunk 1's
		 * [508, 512) alone; the next 6 from the top of chunk 0's [500, 512). */
		.name = "scavenge/hand/StopsWhenEnough",
		.chunks = {
			{ C(0), .alloc = { { 0, 500 } }, .after = { { 0, 500 } }, .after_scav = { { 506, 6 } } },
			{ C(1), .alloc = { { 0, 508 } }, .after = { { 0, 508 } }, .after_scav = { { 508, 4 } } },
		},
		.steps = { { 4 * PB, 4 * PB }, { 6 * PB, 6 * PB } },
	},
	{
		/* A free run too short to reach a huge page boundary is not extended:
		 * chunk 0 [100, 120) free; 1 page from its top. */
		.name = "scavenge/hand/NoHugeExtension",
		.chunks = { { C(0), .alloc = { { 0, 100 }, { 120, CP - 120 } }, .after = { { 0, 100 }, { 120, CP - 120 } },
			      .after_scav = { { 119, 1 } } } },
		.steps = { { 1, PB } },
	},
};

static void test_scav_case(void **state)
{
	const struct scav_case *c = *state;
	size_t n = scenario_nchunks(c->chunks);
	for (size_t k = 0; k < n; k++)
		scenario_skip_unless_fits(c->name, c->chunks[k].off);
	hs_pam *p = scenario_build(c->chunks);
	for (size_t s = 0; s < MAX_STEPS && c->steps[s].request != 0; s++) {
		uintptr_t got = hs_pam_scavenge(p, c->steps[s].request);
		CHECK_INVARIANTS(p);
		if (got != c->steps[s].expect)
			fail_msg("%s: scavenge #%zu (%#" PRIxPTR " bytes) released %" PRIuPTR " bytes (%" PRIuPTR
				 " pages), want %" PRIuPTR " (%" PRIuPTR " pages)",
				 c->name, s + 1, c->steps[s].request, got, got / PB, c->steps[s].expect,
				 c->steps[s].expect / PB);
	}
	scenario_expect_after_chunks(p, c->chunks, 0, c->name);
}

static void expect_marked(hs_pam *p, int64_t off, int want, const char *ctx)
{
	int got = hs_pam_scav_marked(p, scenario_chunk_idx(off));
	if (got != want)
		fail_msg("%s: chunk base+%#llx marked %d, want %d", ctx, (long long)off, got, want);
}

static void expect_bitmaps(hs_pam *p, int64_t off, const hs_pam_bit_range *alloc, const hs_pam_bit_range *scav,
			   const char *ctx)
{
	uint64_t a[8] = { 0 }, s[8] = { 0 };
	scenario_set_ranges(a, alloc);
	scenario_set_ranges(s, scav);
	scenario_expect_chunk(p, off, a, s, ctx);
}

/* Nothing to do: a request of 0 bytes, and an allocator with no chunks. */
static void test_scav_nothing(void **state)
{
	(void)state;
	static const struct chunk_spec cs[SCENARIO_MAX_CHUNKS] = { { C(0) } };
	static const hs_pam_bit_range none[SCENARIO_MAX_RANGES] = { { 0, 0 } };
	hs_pam *p = scenario_build(cs);
	expect_marked(p, 0, 1, "all free, before");
	assert_int_equal(hs_pam_scavenge(p, 0), 0);
	CHECK_INVARIANTS(p);
	expect_bitmaps(p, 0, none, none, "scavenge(0)");
	expect_marked(p, 0, 1, "scavenge(0)");

	hs_pam *empty = NULL;
	assert_int_equal(hs_pam_new(NULL, 0, &empty), 0);
	assert_int_equal(hs_pam_scavenge(empty, ALL), 0);
	assert_int_equal(hs_pam_scavenge(empty, 1), 0);
	char msg[256];
	int bad = hs_pam_check(empty, msg, sizeof msg);
	hs_pam_destroy(empty);
	if (bad)
		fail_msg("empty allocator: %s", msg);
}

/*
 * Freeing after everything was scavenged marks the chunk again, and the next
 * scavenge releases the freed pages, highest first (hand-worked):
 *   chunk 0: alloc [0, 100) and [300, 312), scavenged [100, 150); chunk 1 full.
 *   scavenge(ALL) releases chunk 0's 350 free unscavenged pages; both chunks
 *   are unmarked afterwards and another call releases nothing.
 *   free chunk 0 [0, 50) and chunk 1 [200, 264): both marked again.
 *   scavenge(1 byte): the highest freed page, chunk 1 page 263 (its free run
 *   [200, 264) does not reach a huge page boundary, so no extension).
 *   scavenge(ALL): the other 63 of chunk 1 and the 50 of chunk 0.
 */
static void test_scav_free_remarks(void **state)
{
	(void)state;
	static const struct chunk_spec cs[SCENARIO_MAX_CHUNKS] = {
		{ C(0), .alloc = { { 0, 100 }, { 300, 12 } }, .scav = { { 100, 50 } } },
		{ C(1), .alloc = FULL },
	};
	hs_pam *p = scenario_build(cs);
	expect_marked(p, 0, 1, "before");
	expect_marked(p, 1, 0, "before");

	assert_int_equal(hs_pam_scavenge(p, ALL), 350 * PB);
	CHECK_INVARIANTS(p);
	{
		const hs_pam_bit_range a0[SCENARIO_MAX_RANGES] = { { 0, 100 }, { 300, 12 } };
		const hs_pam_bit_range s0[SCENARIO_MAX_RANGES] = { { 100, 200 }, { 312, 200 } };
		expect_bitmaps(p, 0, a0, s0, "after the first scavenge");
	}
	expect_marked(p, 0, 0, "after the first scavenge");
	expect_marked(p, 1, 0, "after the first scavenge");
	assert_int_equal(hs_pam_scavenge(p, ALL), 0);
	CHECK_INVARIANTS(p);

	hs_pam_free(p, scenario_addr_at(0, 0), 50);
	CHECK_INVARIANTS(p);
	expect_marked(p, 0, 1, "after freeing chunk 0 [0, 50)");
	expect_marked(p, 1, 0, "after freeing chunk 0 [0, 50)");
	hs_pam_free(p, scenario_addr_at(1, 200), 64);
	CHECK_INVARIANTS(p);
	expect_marked(p, 1, 1, "after freeing chunk 1 [200, 264)");

	assert_int_equal(hs_pam_scavenge(p, 1), PB);
	CHECK_INVARIANTS(p);
	{
		const hs_pam_bit_range a1[SCENARIO_MAX_RANGES] = { { 0, 200 }, { 264, CP - 264 } };
		const hs_pam_bit_range s1[SCENARIO_MAX_RANGES] = { { 263, 1 } };
		expect_bitmaps(p, 1, a1, s1, "after scavenge(1)");
		const hs_pam_bit_range a0[SCENARIO_MAX_RANGES] = { { 50, 50 }, { 300, 12 } };
		const hs_pam_bit_range s0[SCENARIO_MAX_RANGES] = { { 100, 200 }, { 312, 200 } };
		expect_bitmaps(p, 0, a0, s0, "after scavenge(1)");
	}

	assert_int_equal(hs_pam_scavenge(p, ALL), (63 + 50) * PB);
	CHECK_INVARIANTS(p);
	{
		const hs_pam_bit_range a1[SCENARIO_MAX_RANGES] = { { 0, 200 }, { 264, CP - 264 } };
		const hs_pam_bit_range s1[SCENARIO_MAX_RANGES] = { { 200, 64 } };
		expect_bitmaps(p, 1, a1, s1, "after the last scavenge");
		const hs_pam_bit_range a0[SCENARIO_MAX_RANGES] = { { 50, 50 }, { 300, 12 } };
		const hs_pam_bit_range s0[SCENARIO_MAX_RANGES] = { { 0, 50 }, { 100, 200 }, { 312, 200 } };
		expect_bitmaps(p, 0, a0, s0, "after the last scavenge");
	}
	expect_marked(p, 0, 0, "after the last scavenge");
	expect_marked(p, 1, 0, "after the last scavenge");
	assert_int_equal(hs_pam_scavenge(p, ALL), 0);
	CHECK_INVARIANTS(p);

	/* Allocating the scavenged pages reports them as scavenged. */
	uintptr_t sc = 0;
	assert_int_equal(hs_pam_alloc(p, 50, &sc), scenario_addr_at(0, 0));
	assert_int_equal(sc, 50 * PB);
	CHECK_INVARIANTS(p);
}

/*
 * scavengeOne's max in bytes may be ^uintptr(0) (pageAlloc.scavenge passes
 * nbytes - released, and Go's callers pass ^uintptr(0) to release everything);
 * Go computes the page count without overflow. Through the internal interface,
 * one call with such a max on a chunk whose free, unscavenged pages are
 * [300, 512) must release the whole run: 212 pages (Go's maxPages is then about
 * 2^51, above any run; no huge page boundary lies in [300, 512) that the run
 * reaches below, so nothing is added).
 */
static struct {
	hs_pagealloc pa;
	hs_mutex lock;
	hs_sys_stat stat;
	int live;
} gp;

static int pa_teardown(void **state)
{
	(void)state;
	if (gp.live) {
		hs_unlock(&gp.lock);
		hs_pagealloc_destroy(&gp.pa);
	}
	gp.live = 0;
	return 0;
}

static void test_scavenge_one_max(void **state)
{
	(void)state;
	const uintptr_t maxes[] = { 212 * PB, 300 * PB, 211 * PB + 1, ALL - 2 * PB + 2, ALL - PB, ALL - 1, ALL };
	char bad[512] = "";
	size_t used = 0;
	for (size_t k = 0; k < ARRAY_LEN(maxes); k++) {
		hs_mutex_init(&gp.lock);
		gp.stat.bytes = 0;
		assert_int_equal(hs_pagealloc_init(&gp.pa, &gp.lock, &gp.stat, 1), 0);
		hs_lock(&gp.lock);
		gp.live = 1;
		uintptr_t base = scenario_addr_at(0, 0);
		hs_pagealloc_grow(&gp.pa, base, HS_PALLOC_CHUNK_BYTES);
		hs_pagealloc_alloc_range(&gp.pa, base, CP);
		hs_pagealloc_free(&gp.pa, base + 300 * PB, CP - 300, 0);

		uintptr_t got = hs_pagealloc_scavenge_one(&gp.pa, hs_chunk_index(base), CP - 1, maxes[k]);
		char msg[256];
		if (hs_pagealloc_check(&gp.pa, msg, sizeof msg) != 0)
			fail_msg("invariant violated: %s", msg);
		if (got != 212 * PB && used < sizeof bad)
			used += (size_t)snprintf(bad + used, sizeof bad - used, " max %#" PRIxPTR ": %" PRIuPTR " pages;",
						 maxes[k], got / PB);
		pa_teardown(NULL);
	}
	if (bad[0] != '\0')
		fail_msg("scavenge_one released less than the free run of 212 pages:%s", bad);
}

/* ============================================================================ */

static struct CMUnitTest tests[64];

static size_t add_test(size_t k, const char *name, CMUnitTestFunction fn, CMFixtureFunction setup,
		       CMFixtureFunction teardown, const void *arg)
{
	if (k == ARRAY_LEN(tests)) {
		fprintf(stderr, "test table full\n");
		return k;
	}
	tests[k] = (struct CMUnitTest){ name, fn, setup, teardown, (void *)arg };
	return k + 1;
}

int main(void)
{
	size_t k = 0;
	k = add_test(k, "fill_aligned/Go", test_fill_aligned_go, NULL, NULL, NULL);
	k = add_test(k, "fill_aligned/hand", test_fill_aligned_hand, NULL, NULL, NULL);
	k = add_test(k, "fill_aligned/random", test_fill_aligned_random, NULL, NULL, NULL);
	k = add_test(k, "find_scavenge_candidate/Go", test_fsc_go_table, NULL, NULL, NULL);
	k = add_test(k, "find_scavenge_candidate/HugePages", test_fsc_huge_pages, NULL, NULL, NULL);
	k = add_test(k, "find_scavenge_candidate/hand/SearchIdx", test_fsc_search_idx, NULL, NULL, NULL);
	k = add_test(k, "find_scavenge_candidate/oracle", test_fsc_oracle, NULL, NULL, NULL);
	for (size_t i = 0; i < ARRAY_LEN(idx_go_cases); i++)
		k = add_test(k, idx_go_cases[i].name, test_index_case, idx_setup, idx_teardown, &idx_go_cases[i]);
	k = add_test(k, "index/MarkInterleaved", test_index_mark_interleaved, idx_setup, idx_teardown, NULL);
	for (size_t i = 0; i < ARRAY_LEN(idx_hand_cases); i++)
		k = add_test(k, idx_hand_cases[i].name, test_index_case, idx_setup, idx_teardown, &idx_hand_cases[i]);
	k = add_test(k, "index/hand/GetUncommitted", test_index_get_uncommitted, idx_setup, idx_teardown, NULL);
	for (size_t i = 0; i < ARRAY_LEN(scav_go_cases); i++)
		k = add_test(k, scav_go_cases[i].name, test_scav_case, NULL, scenario_drop_pam, &scav_go_cases[i]);
	for (size_t i = 0; i < ARRAY_LEN(scav_hand_cases); i++)
		k = add_test(k, scav_hand_cases[i].name, test_scav_case, NULL, scenario_drop_pam, &scav_hand_cases[i]);
	k = add_test(k, "scavenge/hand/Nothing", test_scav_nothing, NULL, scenario_drop_pam, NULL);
	k = add_test(k, "scavenge/hand/FreeRemarks", test_scav_free_remarks, NULL, scenario_drop_pam, NULL);
	k = add_test(k, "scavenge_one/hand/MaxNoOverflow", test_scavenge_one_max, NULL, pa_teardown, NULL);
	return _cmocka_run_group_tests("test_scavenge", tests, k, scenario_group_setup, NULL);
}
