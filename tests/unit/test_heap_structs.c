/*
 * tests/unit/test_heap_structs.c — the heap's structures one at a time, through
 * the internal header (core/heap.h) rather than the malloc API:
 *   fixalloc  zeroed, 16-aligned, distinct objects; LIFO reuse; inuse; 64 KiB blocks;
 *   mspan     nextFreeIndex and the allocCache, and sweeping, on spans taken
 *             straight from the heap (a table of classes, allocations and frees);
 *   mcentral  which set a span lands in, sweepgen across a cycle, release of
 *             emptied spans, and the "cached but stale" test;
 *   mcache    one per thread, refill (and its one-eighth rule), reuse of the
 *             owner's freed slots, owned spans and their retirement, the
 *             large-span cache, idle spans handed back, and release at thread
 *             exit.
 * hs_heap_check runs at the end of every test.
 *
 * Expected values are worked out by hand from the comments that specify each
 * structure: core/fixalloc.h, core/heap.h (the mspan invariants and sweepgen
 * states), core/mspan.c (the sweep formula), core/mcentral.c, core/mcache.c
 * (refill, owned spans, the large cache) and Go's size classes
 * (core/sizeclasses.c): class 1 = 8 B x 1024, 2 = 16 B x 512, 5 = 48 B x 170,
 * 6 = 64 B x 128, 9 = 112 B x 73, 10 = 128 B x 64, 22 = 384 B x 21, 24 = 448 B x 18,
 * 26 = 512 B x 16, 30 = 768 B x 10, 31 = 896 B x 9 (one page each),
 * 35 = 1408 B x 11 (2 pages), 40 = 2688 B x 3 (1 page), 67 = 32 KiB x 1 (4 pages).
 * The tests that go through mcentrals and mcaches each use classes no other
 * test here allocates from, so each starts from empty sets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "heapscope/heapscope.h"
#include "oracle.h"

#define KIB ((uint64_t)1 << 10)
#define PAGE ((uintptr_t)8192)

/* ---------------------------------------------------------------------------------- */
/* fixalloc                                                                           */
/* ---------------------------------------------------------------------------------- */

static int cmp_addr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != v)
			return 0;
	}
	return 1;
}

static void test_fixalloc_sizes(void **state)
{
	(void)state;
	hs_sys_stat st = { 0 };
	hs_fixalloc f;
	/* "object size, a multiple of 16": rounded up. */
	static const size_t in[] = { 1, 16, 17, 40, 48, 384 }, out[] = { 16, 16, 32, 48, 48, 384 };
	for (unsigned k = 0; k < sizeof in / sizeof in[0]; k++) {
		hs_fixalloc_init(&f, in[k], &st);
		assert_int_equal(f.size, out[k]);
		assert_null(f.list);
		assert_int_equal(f.inuse, 0);
		assert_int_equal(f.nchunk, 0);
		assert_ptr_equal(f.stat, &st);
	}
	/* Initializing allocates nothing. */
	assert_int_equal(atomic_load(&st.bytes), 0);
	HEAP_CHECK();
}

static void test_fixalloc_blocks_and_reuse(void **state)
{
	(void)state;
	/* 48-byte objects: 65536 / 48 = 1365 per block (the last 16 bytes wasted).
	 * 4000 objects: blocks of 1365, 1365 and 1270, so 3 blocks, and 95 more fit
	 * in the third block's tail (65536 - 1270 * 48 = 4576 = 95 * 48 + 16). */
	enum { N = 4000, SZ = 48, PER_BLOCK = 1365, TAIL = 95 };
	static unsigned char *p[N];
	static uintptr_t sorted[N];
	hs_sys_stat st = { 0 };
	hs_fixalloc f;
	hs_fixalloc_init(&f, 40, &st);

	for (unsigned i = 0; i < N; i++) {
		p[i] = hs_fixalloc_alloc(&f);
		assert_non_null(p[i]);
		if ((uintptr_t)p[i] % 16 != 0)
			fail_msg("object %u at %p is not 16-aligned", i, (void *)p[i]);
		if (!all_bytes(p[i], SZ, 0))
			fail_msg("object %u is not zeroed", i);
		memset(p[i], 0xa5, SZ);
		assert_int_equal(f.inuse, (uint64_t)(i + 1) * SZ);
		/* Block b serves objects b*1365 .. b*1365+1364. */
		assert_int_equal(atomic_load(&st.bytes), 64 * KIB * (i / PER_BLOCK + 1));
	}
	assert_int_equal(atomic_load(&st.bytes), 3 * 64 * KIB);

	/* Distinct and disjoint: sorted, each starts at least SZ after the previous;
	 * and every object still holds its own bytes. */
	for (unsigned i = 0; i < N; i++)
		sorted[i] = (uintptr_t)p[i];
	qsort(sorted, N, sizeof sorted[0], cmp_addr);
	for (unsigned i = 1; i < N; i++) {
		if (sorted[i] - sorted[i - 1] < SZ)
			fail_msg("objects %#lx and %#lx overlap", (unsigned long)sorted[i - 1],
				 (unsigned long)sorted[i]);
	}
	for (unsigned i = 0; i < N; i++)
		assert_true(all_bytes(p[i], SZ, 0xa5));

	/* Freed objects are reused last-in first-out, zeroed again, with no new block. */
	hs_fixalloc_free(&f, p[10]);
	hs_fixalloc_free(&f, p[20]);
	hs_fixalloc_free(&f, p[30]);
	assert_int_equal(f.inuse, (uint64_t)(N - 3) * SZ);
	assert_ptr_equal(hs_fixalloc_alloc(&f), p[30]);
	assert_ptr_equal(hs_fixalloc_alloc(&f), p[20]);
	assert_ptr_equal(hs_fixalloc_alloc(&f), p[10]);
	assert_true(all_bytes(p[30], SZ, 0));
	assert_true(all_bytes(p[20], SZ, 0));
	assert_true(all_bytes(p[10], SZ, 0));
	assert_int_equal(f.inuse, (uint64_t)N * SZ);
	assert_int_equal(atomic_load(&st.bytes), 3 * 64 * KIB);

	/* Free everything; N allocations come back from the free list, newest first. */
	for (unsigned i = 0; i < N; i++)
		memset(p[i], 0x5a, SZ), hs_fixalloc_free(&f, p[i]);
	assert_int_equal(f.inuse, 0);
	for (unsigned i = 0; i < N; i++) {
		unsigned char *q = hs_fixalloc_alloc(&f);
		assert_ptr_equal(q, p[N - 1 - i]);
		if (!all_bytes(q, SZ, 0))
			fail_msg("reused object %u is not zeroed", i);
	}
	assert_int_equal(atomic_load(&st.bytes), 3 * 64 * KIB);

	/* The free list is empty: the third block's tail serves 95 more, then a
	 * fourth block is taken. */
	for (unsigned i = 0; i < TAIL; i++) {
		assert_non_null(hs_fixalloc_alloc(&f));
		assert_int_equal(atomic_load(&st.bytes), 3 * 64 * KIB);
	}
	assert_non_null(hs_fixalloc_alloc(&f));
	assert_int_equal(atomic_load(&st.bytes), 4 * 64 * KIB);
	assert_int_equal(f.inuse, (uint64_t)(N + TAIL + 1) * SZ);
	/* (Blocks are never returned to the OS, by design: these few stay mapped.) */
	HEAP_CHECK();
}

/* ---------------------------------------------------------------------------------- */
/* mspan                                                                              */
/* ---------------------------------------------------------------------------------- */

#define END (-1)
#define MAXL 12

/*
 * One span scenario. A fresh span of the class is filled with nalloc objects;
 * `remote` are then freed as another thread would (free_bits, atomic or) and
 * `local` as the owner would (local_free, local_nfree); the span is swept.
 * count: allocCount after that sweep; next: what nextFreeIndex returns after it
 * (nelems = full); next2: what it returns after a second sweep with no frees.
 */
/* bits_order of a case whose bitmaps are inline (HS_INLINE_BITS_WORDS words each, in the span). */
#define INLINE 0xff

typedef struct span_case {
	unsigned sizeclass, nelems, bits_order, nalloc;
	int remote[MAXL], local[MAXL];
	unsigned count;
	int next[MAXL];
	unsigned next2;
} span_case;

static const span_case span_cases[] = {
	/* One bitmap word, inline; frees mid-word with freeindex at 40. */
	{ 10, 64, INLINE, 40, { 3, 17, END }, { 0, 39, END }, 36, { 0, 3, 17, 39, 40, 41, END }, 42 },
	/* Two words inline, 73 objects: a full span; the second word is partial. */
	{ 9, 73, INLINE, 73, { 64, 72, END }, { 1, 63, END }, 69, { 1, 63, 64, 72, 73, END }, 73 },
	/* Exactly 128 objects: the largest inline case. */
	{ 6, 128, INLINE, 128, { 0, 127, END }, { 64, END }, 125, { 0, 64, 127, 128, END }, 128 },
	/* 16 out-of-line words; nextFreeIndex skips whole words (512..639 allocated). */
	{ 1, 1024, 4, 700, { 5, 64, 128, 699, END }, { 63, 200, 511, END }, 693,
	  { 5, 63, 64, 128, 200, 511, 699, 700, 701, END }, 702 },
	/* 8 words: the two free objects are 255 objects apart. */
	{ 2, 512, 3, 512, { 511, END }, { 256, END }, 510, { 256, 511, 512, END }, 512 },
	/* 3 words in a block of 4; full, nothing freed: the last word's bits past
	 * nelems (170..191) read as free, and must not be handed out. */
	{ 5, 170, 2, 170, { END }, { END }, 170, { 170, END }, 170 },
	/* Same class, frees on both sides of a word boundary (127 | 128). */
	{ 5, 170, 2, 150, { 128, 149, END }, { 127, END }, 147, { 127, 128, 149, 150, 151, END }, 152 },
	/* Two pages, 11 objects. */
	{ 35, 11, INLINE, 11, { 10, END }, { 0, 5, END }, 8, { 0, 5, 10, 11, END }, 11 },
	/* One object in four pages. */
	{ 67, 1, INLINE, 1, { END }, { 0, END }, 0, { 0, 1, END }, 1 },
};

/* Whether s is on list l (a span records only that it is on some list). */
static int on_list(const hs_span_list *l, const hs_mspan *s)
{
	for (const hs_mspan *x = l->first; x != NULL; x = x->next) {
		if (x == s)
			return s->listed;
	}
	return 0;
}

static uint64_t bit_of(unsigned i)
{
	return UINT64_C(1) << (i % 64);
}

/* Objects [0, fi) that fall in word w, one bit at a time. */
static uint64_t below_word(unsigned fi, unsigned w)
{
	uint64_t m = 0;
	for (unsigned b = 0; b < 64; b++) {
		if (w * 64 + b < fi)
			m |= UINT64_C(1) << b;
	}
	return m;
}

/* The allocCache invariant of core/heap.h: ~alloc_bits of freeindex's word,
 * shifted so that bit 0 is object freeindex (while freeindex < nelems). */
static void check_alloc_cache(const hs_mspan *s)
{
	unsigned fi = atomic_load(&s->freeindex);
	if (fi >= s->nelems)
		return;
	uint64_t want = ~atomic_load(&s->alloc_bits[fi / 64]) >> (fi % 64);
	if (s->alloc_cache != want)
		fail_msg("allocCache %#llx at freeindex %u, expected %#llx", (unsigned long long)s->alloc_cache, fi,
			 (unsigned long long)want);
}

/* nextFreeIndex, counted as malloc counts it (core/malloc.c next_free). */
static unsigned take(hs_mspan *s)
{
	unsigned i = hs_span_next_free_index(s);
	if (i < s->nelems)
		s->alloc_count++;
	check_alloc_cache(s);
	return i;
}

static void free_remote(hs_mspan *s, unsigned i)
{
	atomic_fetch_or(&hs_span_free_bits(s)[i / 64], bit_of(i));
}

static void free_local(hs_mspan *s, unsigned i)
{
	hs_span_local_free(s)[i / 64] |= bit_of(i);
	s->local_nfree++;
}

/*
 * Sweeps s and checks the result against core/mspan.c's formula, computed from
 * the state before:  alloc_bits := (alloc_bits | [0, freeindex)) & ~frees;
 * freeindex 0, allocCount = popcount, no pending frees, allocCache = ~word 0,
 * needzero set iff something was freed. Returns allocCount.
 */
static unsigned sweep_and_check(hs_mspan *s)
{
	enum { W = 16 };
	uint64_t want[W], freed = 0;
	unsigned words = hs_span_bitmap_words(s), fi = atomic_load(&s->freeindex), live = 0;
	assert_true(words <= W);
	for (unsigned w = 0; w < words; w++) {
		uint64_t f = atomic_load(&hs_span_free_bits(s)[w]) | hs_span_local_free(s)[w];
		want[w] = (atomic_load(&s->alloc_bits[w]) | below_word(fi, w)) & ~f;
		freed |= f;
		live += (unsigned)__builtin_popcountll(want[w]);
	}
	s->needzero = 0;
	hs_span_sweep(s);
	for (unsigned w = 0; w < words; w++) {
		if (atomic_load(&s->alloc_bits[w]) != want[w])
			fail_msg("span %#lx word %u: alloc bits %#llx, expected %#llx", (unsigned long)s->start_addr, w,
				 (unsigned long long)atomic_load(&s->alloc_bits[w]), (unsigned long long)want[w]);
		assert_int_equal(atomic_load(&hs_span_free_bits(s)[w]), 0);
		assert_int_equal(hs_span_local_free(s)[w], 0);
	}
	assert_int_equal(atomic_load(&s->freeindex), 0);
	assert_int_equal(s->alloc_count, live);
	assert_int_equal(s->local_nfree, 0);
	assert_int_equal(s->needzero, freed != 0);
	assert_int_equal(s->alloc_cache, ~atomic_load(&s->alloc_bits[0]));
	return live;
}

static unsigned list_len(const int *l)
{
	unsigned n = 0;
	while (n < MAXL && l[n] != END)
		n++;
	return n;
}

/* The span a scenario holds, returned by the teardown if the scenario fails, so
 * that one failure does not make every later heap check fail too. */
static hs_mspan *span_under_test;

static int free_span_under_test(void **state)
{
	(void)state;
	if (span_under_test != NULL)
		hs_mheap_free_span(span_under_test);
	span_under_test = NULL;
	return 0;
}

static void run_span_case(const span_case *tc)
{
	hs_span_class sc = hs_make_span_class(tc->sizeclass);
	uintptr_t npages = hs_class_to_allocnpages[tc->sizeclass], elemsize = hs_class_to_size[tc->sizeclass];
	hs_mspan *s = hs_mheap_alloc_span(NULL, npages, sc);
	assert_non_null(s);
	span_under_test = s;

	/* A fresh span: core/heap.h's fields, as hs_span_init_objects sets them. */
	uintptr_t base = s->start_addr;
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_IN_USE);
	assert_int_equal(s->spanclass, sc);
	assert_int_equal(hs_span_npages(s), npages);
	assert_int_equal(s->elemsize, elemsize);
	assert_int_equal(s->nelems, tc->nelems);
	assert_int_equal(hs_span_limit(s), base + elemsize * tc->nelems);
	assert_true(hs_span_limit(s) <= base + npages * PAGE);
	assert_int_equal(s->div_mul, hs_class_to_divmagic[tc->sizeclass]);
	assert_int_equal(atomic_load(&s->freeindex), 0);
	assert_int_equal(s->alloc_count, 0);
	assert_int_equal(s->local_nfree, 0);
	assert_int_equal(s->alloc_cache, ~UINT64_C(0));
	assert_null(atomic_load(&s->owner));
	assert_false(s->listed);
	assert_int_equal(atomic_load(&s->sweepgen), atomic_load(&hs_heap.sweepgen));
	assert_ptr_equal(hs_span_of(base), s);
	assert_ptr_equal(hs_span_of(base + npages * PAGE - 1), s);
	if (tc->bits_order == INLINE) {
		assert_int_equal(s->bits_stride, 8 * HS_INLINE_BITS_WORDS);
		assert_true(hs_span_bits_inline(s));
		assert_ptr_equal(s->alloc_bits, &s->inline_bits[0]);
		assert_ptr_equal(hs_span_free_bits(s), &s->inline_bits[HS_INLINE_BITS_WORDS]);
		assert_ptr_equal(hs_span_local_free(s), (uint64_t *)&s->inline_bits[2 * HS_INLINE_BITS_WORDS]);
	} else {
		/* Three bitmaps of 1 << order words, one after the other, out of line. */
		uintptr_t bits = (uintptr_t)s->alloc_bits;
		assert_int_equal(s->bits_stride, 8u << tc->bits_order);
		assert_false(hs_span_bits_inline(s));
		assert_true(bits >= (uintptr_t)(s + 1) || bits + 3 * 8 * (1u << tc->bits_order) <= (uintptr_t)s);
		assert_ptr_equal(hs_span_free_bits(s), s->alloc_bits + (1u << tc->bits_order));
		assert_ptr_equal(hs_span_local_free(s), (uint64_t *)(s->alloc_bits + (2u << tc->bits_order)));
		assert_true((1u << tc->bits_order) >= hs_span_bitmap_words(s));
	}
	for (unsigned w = 0; w < hs_span_bitmap_words(s); w++) {
		assert_int_equal(atomic_load(&s->alloc_bits[w]), 0);
		assert_int_equal(atomic_load(&hs_span_free_bits(s)[w]), 0);
		assert_int_equal(hs_span_local_free(s)[w], 0);
	}

	/* Objects come out in address order, 0, 1, 2, ... */
	for (unsigned i = 0; i < tc->nalloc; i++) {
		unsigned idx = take(s);
		if (idx != i)
			fail_msg("class %u: allocation %u got object %u", tc->sizeclass, i, idx);
		assert_int_equal(atomic_load(&s->freeindex), i + 1);
		assert_true(base + idx * elemsize + elemsize <= hs_span_limit(s));
	}
	if (tc->nalloc == tc->nelems) {
		/* Full: nelems, and again nelems. */
		assert_int_equal(take(s), tc->nelems);
		assert_int_equal(take(s), tc->nelems);
		assert_int_equal(atomic_load(&s->freeindex), tc->nelems);
	}
	assert_int_equal(s->alloc_count, tc->nalloc);

	for (unsigned k = 0; k < list_len(tc->remote); k++)
		free_remote(s, (unsigned)tc->remote[k]);
	for (unsigned k = 0; k < list_len(tc->local); k++)
		free_local(s, (unsigned)tc->local[k]);
	assert_int_equal(s->local_nfree, list_len(tc->local));
	assert_int_equal(sweep_and_check(s), tc->count);

	/* The lowest freed object first, then up through the span. */
	unsigned nnext = list_len(tc->next), handed = 0;
	for (unsigned k = 0; k < nnext; k++) {
		unsigned idx = take(s);
		if (idx != (unsigned)tc->next[k])
			fail_msg("class %u: after the sweep, allocation %u got object %u, expected %d",
				 tc->sizeclass, k, idx, tc->next[k]);
		handed += idx < tc->nelems;
	}

	/* A sweep with nothing freed: everything handed out is now in alloc_bits. */
	assert_int_equal(sweep_and_check(s), tc->count + handed);
	assert_int_equal(s->needzero, 0);
	unsigned idx = take(s);
	if (idx != tc->next2)
		fail_msg("class %u: after the second sweep got object %u, expected %u", tc->sizeclass, idx, tc->next2);

	/* Free every allocated object (allocated = alloc_bits or below freeindex)
	 * and sweep: the span is empty, and hands out object 0 again. */
	unsigned fi = atomic_load(&s->freeindex);
	for (unsigned i = 0; i < tc->nelems; i++) {
		if (i < fi || (atomic_load(&s->alloc_bits[i / 64]) & bit_of(i)))
			(i % 2 ? free_remote : free_local)(s, i);
	}
	assert_int_equal(sweep_and_check(s), 0);
	assert_int_equal(s->needzero, 1);
	for (unsigned w = 0; w < hs_span_bitmap_words(s); w++)
		assert_int_equal(atomic_load(&s->alloc_bits[w]), 0);
	assert_int_equal(s->alloc_cache, ~UINT64_C(0));
	assert_int_equal(take(s), 0);

	/* Back to the heap: dead, its pages map to no span, its bitmaps released. */
	span_under_test = NULL;
	hs_mheap_free_span(s);
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_DEAD);
	assert_null(hs_span_of(base));
	assert_null(s->alloc_bits);
}

static void test_span_objects_and_sweep(void **state)
{
	(void)state;
	hs_mallocinit();
	hs_heap_stats_t before, after;
	hs_heap_stats(&before);
	for (unsigned k = 0; k < sizeof span_cases / sizeof span_cases[0]; k++)
		run_span_case(&span_cases[k]);
	hs_heap_stats(&after);
	assert_int_equal(after.in_use, before.in_use);
	assert_int_equal(after.pages_in_use, before.pages_in_use);
	HEAP_CHECK();
}

/* Run in a child: the sweep must report these and abort (core/mspan.c). */
static void sweep_two_thread_free(void *arg)
{
	(void)arg;
	hs_mallocinit();
	hs_mspan *s = hs_mheap_alloc_span(NULL, 1, hs_make_span_class(10));
	hs_span_next_free_index(s); /* no cmocka assertions in the child */
	hs_span_next_free_index(s);
	s->alloc_count = 2;
	free_remote(s, 1);
	free_local(s, 1);
	hs_span_sweep(s);
}

static void sweep_unallocated_free(void *arg)
{
	(void)arg;
	hs_mallocinit();
	hs_mspan *s = hs_mheap_alloc_span(NULL, 1, hs_make_span_class(1));
	hs_span_next_free_index(s);
	hs_span_next_free_index(s);
	s->alloc_count = 2;
	free_remote(s, 100); /* word 1; freeindex is 2 */
	hs_span_sweep(s);
}

static void test_span_sweep_reports(void **state)
{
	(void)state;
	char out[2048];
	if (!oracle_expect_abort(sweep_two_thread_free, NULL, "freed by two threads", out, sizeof out))
		fail_msg("expected a report of an object freed by two threads; stderr:\n%s", out);
	assert_non_null(strstr(out, "double free"));
	if (!oracle_expect_abort(sweep_unallocated_free, NULL, "a freed object was not allocated", out, sizeof out))
		fail_msg("expected a report of a free of an unallocated object; stderr:\n%s", out);
	assert_non_null(strstr(out, "word 1"));
	HEAP_CHECK();
}

/* ---------------------------------------------------------------------------------- */
/* mcentral and sweepgen                                                              */
/* ---------------------------------------------------------------------------------- */

static void test_span_cached_stale(void **state)
{
	(void)state;
	/* core/heap.h: h+3 swept then cached; any odd value below h+3 (h+1, h-1,
	 * h-3, ...) cached and not swept this cycle. Including around wrap-around. */
	const uint32_t hs[] = { 0, 2, 4, 1000, 0x7ffffffe, 0x80000000u, 0xfffffffcu, 0xfffffffeu,
				atomic_load(&hs_heap.sweepgen) };
	for (unsigned k = 0; k < sizeof hs / sizeof hs[0]; k++) {
		uint32_t h = hs[k];
		if (h % 2 != 0)
			fail_msg("heap sweepgen %u is odd", h);
		if (hs_span_cached_stale(h + 3, h))
			fail_msg("h=%#x: h+3 reported stale", h);
		if (!hs_span_cached_stale(h + 1, h))
			fail_msg("h=%#x: h+1 not reported stale", h);
		if (!hs_span_cached_stale(h - 1, h))
			fail_msg("h=%#x: h-1 not reported stale", h);
		if (!hs_span_cached_stale(h - 3, h))
			fail_msg("h=%#x: h-3 not reported stale", h);
	}
	HEAP_CHECK();
}

static void assert_central_empty(const hs_mcentral *c)
{
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(c->partial[k].n, 0);
		assert_int_equal(c->full[k].n, 0);
	}
}

static hs_mspan *central_take(hs_mcentral *c, unsigned nelems, uint32_t h)
{
	hs_mspan *s = hs_mcentral_cache_span(c, NULL);
	assert_non_null(s);
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_IN_USE);
	assert_int_equal(s->spanclass, hs_mcentral_class(c));
	assert_int_equal(s->nelems, nelems);
	assert_false(s->listed);
	/* Swept and now cached: h+3, which is not stale. */
	assert_int_equal(atomic_load(&s->sweepgen), h + 3);
	assert_false(hs_span_cached_stale(atomic_load(&s->sweepgen), h));
	return s;
}

static void fill(hs_mspan *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(take(s), i);
}

static void *obj(const hs_mspan *s, unsigned i)
{
	return (void *)(s->start_addr + i * s->elemsize);
}

static void test_mcentral_sets_and_sweepgen(void **state)
{
	(void)state;
	hs_mallocinit();
	/* Class 30: 768 B, 10 objects; class 31: 896 B, 9 objects. */
	hs_mcentral *c = &hs_heap.central[hs_make_span_class(30)], *cd = &hs_heap.central[hs_make_span_class(31)];
	assert_central_empty(c);
	assert_central_empty(cd);
	uint32_t h = atomic_load(&hs_heap.sweepgen);
	assert_int_equal(h % 2, 0);
	unsigned sw = h / 2 % 2; /* the swept sets this cycle */

	/* Empty sets: each cacheSpan is a new span from the heap. */
	hs_mspan *a = central_take(c, 10, h), *b = central_take(c, 10, h), *e = central_take(c, 10, h);
	assert_ptr_not_equal(a, b);
	assert_ptr_not_equal(a, e);
	assert_ptr_not_equal(b, e);
	fill(a, 4);
	fill(b, 10);
	assert_int_equal(take(b), 10);
	fill(e, 3);

	/* A remote free pending on a span cached this cycle (h+3): uncaching files
	 * it as swept without sweeping it, the free stays pending. */
	free_remote(a, 0);
	hs_mcentral_uncache_span(c, a);
	assert_true(on_list(&c->partial[sw], a));
	assert_int_equal(atomic_load(&a->sweepgen), h);
	assert_int_equal(a->alloc_count, 4);
	assert_int_equal(atomic_load(&hs_span_free_bits(a)[0]), 1);
	assert_int_equal(atomic_load(&a->freeindex), 4);
	hs_mcentral_uncache_span(c, b);
	assert_true(on_list(&c->full[sw], b));
	assert_int_equal(atomic_load(&b->sweepgen), h);
	hs_mcentral_uncache_span(c, e);
	assert_true(on_list(&c->partial[sw], e));
	assert_int_equal(c->partial[sw].n, 2);
	assert_int_equal(c->full[sw].n, 1);
	assert_int_equal(c->partial[1 - sw].n, 0);
	assert_int_equal(c->full[1 - sw].n, 0);

	/* hs_free of an object in a span no mcache holds: a remote free bit. */
	uintptr_t e_base = e->start_addr;
	for (unsigned i = 0; i < 3; i++)
		hs_free(obj(e, i));
	assert_int_equal(atomic_load(&hs_span_free_bits(e)[0]), 0x7);
	assert_int_equal(hs_span_local_free(e)[0], 0);
	assert_int_equal(e->alloc_count, 3);
	HEAP_CHECK();

	/* cacheSpan takes a partial swept span first: a, at the front. Back it goes,
	 * behind e. */
	assert_ptr_equal(hs_mcentral_cache_span(c, NULL), a);
	assert_false(a->listed);
	assert_int_equal(atomic_load(&a->sweepgen), h + 3);
	assert_int_equal(c->partial[sw].n, 1);
	hs_mcentral_uncache_span(c, a);
	assert_ptr_equal(c->partial[sw].last, a);

	/* d is held across the cycle boundary (cached at h+3, i.e. at h'+1 after it). */
	hs_mspan *d = central_take(cd, 9, h);
	fill(d, 5);

	uint64_t released = atomic_load(&hs_heap.spans_released);
	hs_sweep_full_cycle();
	uint32_t h2 = atomic_load(&hs_heap.sweepgen);
	assert_int_equal(h2, h + 2);
	unsigned sw2 = h2 / 2 % 2;
	assert_int_not_equal(sw2, sw);

	/* a: swept in by the cycle (object 0 freed): objects 1..3, partial, swept at h'. */
	assert_true(on_list(&c->partial[sw2], a));
	assert_int_equal(atomic_load(&a->sweepgen), h2);
	assert_int_equal(a->alloc_count, 3);
	assert_int_equal(atomic_load(&a->alloc_bits[0]), 0xe);
	assert_int_equal(atomic_load(&hs_span_free_bits(a)[0]), 0);
	assert_int_equal(atomic_load(&a->freeindex), 0);
	/* b: still full. */
	assert_true(on_list(&c->full[sw2], b));
	assert_int_equal(atomic_load(&b->sweepgen), h2);
	assert_int_equal(b->alloc_count, 10);
	assert_int_equal(atomic_load(&b->alloc_bits[0]), 0x3ff);
	/* e: every object freed, so released to the heap. */
	assert_int_equal(atomic_load(&e->state), HS_MSPAN_DEAD);
	assert_null(hs_span_of(e_base));
	assert_true(atomic_load(&hs_heap.spans_released) >= released + 1);
	/* The cycle is finished: nothing left in this cycle's unswept sets. */
	assert_int_equal(c->partial[sw].n, 0);
	assert_int_equal(c->full[sw].n, 0);
	assert_int_equal(c->partial[sw2].n, 1);
	assert_int_equal(c->full[sw2].n, 1);

	/* d, cached before the cycle: h'+1, stale; uncaching sweeps it first. */
	assert_int_equal(atomic_load(&d->sweepgen), h2 + 1);
	assert_true(hs_span_cached_stale(atomic_load(&d->sweepgen), h2));
	assert_false(d->listed);
	assert_int_equal(d->alloc_count, 5);
	free_remote(d, 2);
	free_remote(d, 4);
	hs_mcentral_uncache_span(cd, d);
	assert_int_equal(atomic_load(&d->sweepgen), h2);
	assert_true(on_list(&cd->partial[sw2], d));
	assert_int_equal(d->alloc_count, 3);
	assert_int_equal(atomic_load(&d->alloc_bits[0]), 0xb); /* objects 0, 1, 3 */
	assert_int_equal(atomic_load(&hs_span_free_bits(d)[0]), 0);
	assert_int_equal(atomic_load(&d->freeindex), 0);
	HEAP_CHECK();

	/* Free what is left, as a thread that caches none of them: the next cycle
	 * releases all three spans. */
	for (unsigned i = 1; i < 4; i++)
		hs_free(obj(a, i));
	for (unsigned i = 0; i < 10; i++)
		hs_free(obj(b, i));
	hs_free(obj(d, 0));
	hs_free(obj(d, 1));
	hs_free(obj(d, 3));
	released = atomic_load(&hs_heap.spans_released);
	hs_sweep_full_cycle();
	assert_int_equal(atomic_load(&hs_heap.sweepgen), h2 + 2);
	assert_int_equal(atomic_load(&a->state), HS_MSPAN_DEAD);
	assert_int_equal(atomic_load(&b->state), HS_MSPAN_DEAD);
	assert_int_equal(atomic_load(&d->state), HS_MSPAN_DEAD);
	assert_true(atomic_load(&hs_heap.spans_released) >= released + 3);
	assert_central_empty(c);
	assert_central_empty(cd);
	HEAP_CHECK();
}

/* ---------------------------------------------------------------------------------- */
/* mcache                                                                             */
/* ---------------------------------------------------------------------------------- */

static int mcache_listed(const hs_mcache *m)
{
	int found = 0;
	hs_lock(&hs_heap.lock);
	for (const hs_mcache *c = hs_heap.mcaches; c != NULL; c = c->next)
		found |= c == m;
	hs_unlock(&hs_heap.lock);
	return found;
}

typedef struct mcache_probe {
	hs_mcache *main_mc, *mc, *mc_again;
	int tls_was_null, tls_ok, listed_self, listed_main;
} mcache_probe;

static void *probe_thread(void *arg)
{
	mcache_probe *p = arg;
	p->tls_was_null = hs_tls_mcache == NULL;
	p->mc = hs_mcache_get();
	p->mc_again = hs_mcache_get();
	p->tls_ok = hs_tls_mcache == p->mc;
	p->listed_self = mcache_listed(p->mc);
	p->listed_main = mcache_listed(p->main_mc);
	return NULL;
}

static void test_mcache_per_thread(void **state)
{
	(void)state;
	mcache_probe p;
	memset(&p, 0, sizeof p);
	p.main_mc = hs_mcache_get();
	assert_non_null(p.main_mc);
	assert_ptr_equal(hs_mcache_get(), p.main_mc);
	assert_ptr_equal(hs_tls_mcache, p.main_mc);
	assert_true(mcache_listed(p.main_mc));

	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, probe_thread, &p), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(p.tls_was_null);
	assert_non_null(p.mc);
	assert_ptr_not_equal(p.mc, p.main_mc);
	assert_ptr_equal(p.mc_again, p.mc);
	assert_true(p.tls_ok);
	assert_true(p.listed_self);
	assert_true(p.listed_main);
	/* The exited thread's mcache is off the list; ours is not. */
	assert_false(mcache_listed(p.mc));
	assert_true(mcache_listed(p.main_mc));
	assert_ptr_equal(hs_mcache_get(), p.main_mc);
	HEAP_CHECK();
}

static void test_mcache_refill(void **state)
{
	(void)state;
	enum { CLS = 40 }; /* 2688 B, 3 objects */
	hs_mcache *c = hs_mcache_get();
	hs_span_class sc = hs_make_span_class(CLS);
	size_t size = hs_class_to_size[CLS];
	assert_int_equal(hs_size_to_class(size), CLS);
	assert_true(hs_mcache_span_is_empty(c->alloc[sc]));
	assert_int_equal(c->owned[sc].n, 0);
	assert_central_empty(&hs_heap.central[sc]);
	uint32_t h = atomic_load(&hs_heap.sweepgen);

	/* Refill of an empty class: a span owned by c, cached (h+3), in no set. */
	hs_mspan *s = hs_mcache_refill(c, sc);
	assert_non_null(s);
	assert_ptr_equal(c->alloc[sc], s);
	assert_false(hs_mcache_span_is_empty(s));
	assert_ptr_equal(atomic_load(&s->owner), c);
	assert_int_equal(atomic_load(&s->sweepgen), h + 3);
	assert_false(s->listed);
	assert_int_equal(s->spanclass, sc);
	assert_int_equal(s->nelems, 3);
	assert_int_equal(s->alloc_count, 0);
	HEAP_CHECK();

	/* hs_malloc now takes from s, in address order. */
	void *p[3];
	for (unsigned i = 0; i < 3; i++) {
		p[i] = hs_malloc(size);
		assert_ptr_equal(p[i], obj(s, i));
	}
	assert_int_equal(s->alloc_count, 3);
	assert_int_equal(atomic_load(&s->freeindex), 3);

	/* The owner's free is local. */
	hs_free(p[0]);
	assert_int_equal(hs_span_local_free(s)[0], 1);
	assert_int_equal(s->local_nfree, 1);
	assert_int_equal(atomic_load(&hs_span_free_bits(s)[0]), 0);

	/* Refill on the full span with a pending free: swept by the owner, and kept
	 * (1 of 3 free is at least an eighth). */
	hs_heap_stats_t st0, st1;
	hs_heap_stats(&st0);
	assert_ptr_equal(hs_mcache_refill(c, sc), s);
	hs_heap_stats(&st1);
	assert_int_equal(st1.spans_swept, st0.spans_swept + 1);
	assert_ptr_equal(c->alloc[sc], s);
	assert_int_equal(c->owned[sc].n, 0);
	assert_int_equal(s->alloc_count, 2);
	assert_int_equal(s->local_nfree, 0);
	assert_int_equal(hs_span_local_free(s)[0], 0);
	assert_int_equal(atomic_load(&s->alloc_bits[0]), 0x6);
	assert_int_equal(atomic_load(&s->freeindex), 0);
	assert_int_equal(atomic_load(&s->sweepgen), h + 3);
	assert_ptr_equal(hs_malloc(size), p[0]);
	HEAP_CHECK();

	/* Everything freed and handed back: the empty span goes to the heap. */
	hs_free(p[0]);
	hs_free(p[1]);
	hs_free(p[2]);
	hs_heap_sweep();
	assert_true(hs_mcache_span_is_empty(c->alloc[sc]));
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_DEAD);
	HEAP_CHECK();
}

/* A malloc/free loop stays in one span: the owner sweeps its own frees in. */
static void test_mcache_reuses_freed_slots(void **state)
{
	(void)state;
	enum { CLS = 26, N = 16 }; /* 512 B, 16 objects */
	hs_mcache *c = hs_mcache_get();
	hs_span_class sc = hs_make_span_class(CLS);
	assert_int_equal(hs_size_to_class(512), CLS);
	assert_true(hs_mcache_span_is_empty(c->alloc[sc]));
	assert_central_empty(&hs_heap.central[sc]);

	void *p[N], *q[N];
	p[0] = hs_malloc(512);
	hs_mspan *s = hs_span_of((uintptr_t)p[0]);
	assert_ptr_equal(c->alloc[sc], s);
	assert_ptr_equal(atomic_load(&s->owner), c);
	assert_int_equal(s->nelems, N);
	assert_ptr_equal(p[0], obj(s, 0));
	for (unsigned i = 1; i < N; i++) {
		p[i] = hs_malloc(512);
		assert_ptr_equal(p[i], obj(s, i));
	}
	assert_int_equal(s->alloc_count, N);

	hs_heap_stats_t before, after;
	hs_heap_stats(&before);
	for (unsigned i = 0; i < N; i++)
		hs_free(p[i]);
	assert_int_equal(s->local_nfree, N);
	assert_int_equal(hs_span_local_free(s)[0], 0xffff);
	assert_int_equal(atomic_load(&hs_span_free_bits(s)[0]), 0);
	HEAP_CHECK();

	/* The same 16 addresses come back, from s, and no span is added. */
	unsigned seen = 0;
	for (unsigned i = 0; i < N; i++) {
		q[i] = hs_malloc(512);
		assert_ptr_equal(hs_span_of((uintptr_t)q[i]), s);
		uintptr_t off = (uintptr_t)q[i] - s->start_addr;
		assert_int_equal(off % 512, 0);
		assert_false(seen & (1u << (off / 512)));
		seen |= 1u << (off / 512);
	}
	assert_int_equal(seen, 0xffff);
	hs_heap_stats(&after);
	assert_int_equal(after.in_use, before.in_use);
	assert_int_equal(after.pages_in_use, before.pages_in_use);
	assert_int_equal(after.spans_swept, before.spans_swept + 1);
	assert_ptr_equal(c->alloc[sc], s);
	assert_int_equal(c->owned[sc].n, 0);
	assert_int_equal(s->alloc_count, N);
	assert_int_equal(s->needzero, 1);
	HEAP_CHECK();

	for (unsigned i = 0; i < N; i++)
		hs_free(q[i]);
	hs_heap_sweep();
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_DEAD);
	HEAP_CHECK();
}

/* A span the owner filled stays owned (parked); refill comes back to it once
 * enough of it has been freed. */
static void test_mcache_owned_span_parking(void **state)
{
	(void)state;
	enum { CLS = 24, N = 18 }; /* 448 B, 18 objects */
	hs_mcache *c = hs_mcache_get();
	hs_span_class sc = hs_make_span_class(CLS);
	assert_int_equal(hs_size_to_class(448), CLS);
	assert_true(hs_mcache_span_is_empty(c->alloc[sc]));
	assert_int_equal(c->owned[sc].n, 0);
	assert_central_empty(&hs_heap.central[sc]);
	uint32_t h = atomic_load(&hs_heap.sweepgen);

	void *p[N], *tp[N], *r[N / 2];
	for (unsigned i = 0; i < N; i++)
		p[i] = hs_malloc(448);
	hs_mspan *s = hs_span_of((uintptr_t)p[0]);
	for (unsigned i = 0; i < N; i++)
		assert_ptr_equal(p[i], obj(s, i));
	assert_int_equal(atomic_load(&s->freeindex), N);

	/* One more: s is full with nothing freed, so it is parked and a new span taken. */
	tp[0] = hs_malloc(448);
	hs_mspan *t = hs_span_of((uintptr_t)tp[0]);
	assert_ptr_not_equal(t, s);
	assert_ptr_equal(tp[0], obj(t, 0));
	assert_ptr_equal(c->alloc[sc], t);
	assert_ptr_equal(atomic_load(&t->owner), c);
	assert_ptr_equal(atomic_load(&s->owner), c);
	assert_true(on_list(&c->owned[sc], s));
	assert_int_equal(c->owned[sc].n, 1);
	assert_int_equal(atomic_load(&s->sweepgen), h + 3);
	HEAP_CHECK();

	/* The owner frees the even objects of the parked span: local frees. */
	for (unsigned i = 0; i < N; i += 2)
		hs_free(p[i]);
	assert_int_equal(s->local_nfree, N / 2);
	assert_int_equal(hs_span_local_free(s)[0], 0x15555);
	assert_int_equal(atomic_load(&hs_span_free_bits(s)[0]), 0);
	HEAP_CHECK();

	for (unsigned i = 1; i < N; i++) {
		tp[i] = hs_malloc(448);
		assert_ptr_equal(tp[i], obj(t, i));
	}

	/* t is full: parked; s (half free) is swept and allocated from again, the
	 * freed objects lowest first, with no new span. */
	hs_heap_stats_t before, after;
	hs_heap_stats(&before);
	for (unsigned k = 0; k < N / 2; k++) {
		r[k] = hs_malloc(448);
		assert_ptr_equal(r[k], p[2 * k]);
	}
	hs_heap_stats(&after);
	assert_int_equal(after.in_use, before.in_use);
	assert_int_equal(after.spans_swept, before.spans_swept + 1);
	assert_ptr_equal(c->alloc[sc], s);
	assert_false(s->listed);
	assert_true(on_list(&c->owned[sc], t));
	assert_int_equal(c->owned[sc].n, 1);
	assert_int_equal(s->alloc_count, N);
	HEAP_CHECK();

	/* Both full, nothing freed: the next object needs a third span. */
	void *u0 = hs_malloc(448);
	hs_mspan *u = hs_span_of((uintptr_t)u0);
	assert_ptr_not_equal(u, s);
	assert_ptr_not_equal(u, t);
	assert_ptr_equal(c->alloc[sc], u);
	assert_int_equal(c->owned[sc].n, 2);
	hs_heap_stats(&after);
	assert_int_equal(after.in_use, before.in_use + PAGE);
	HEAP_CHECK();

	/* The owner freeing the last object of a parked span retires it to the
	 * heap at once (hs_mcache_retire); the span it allocates from stays. */
	for (unsigned i = 1; i < N; i += 2)
		hs_free(p[i]);
	for (unsigned k = 0; k + 1 < N / 2; k++)
		hs_free(r[k]);
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_IN_USE);
	hs_free(r[N / 2 - 1]);
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_DEAD);
	for (unsigned i = 0; i < N; i++)
		hs_free(tp[i]);
	assert_int_equal(atomic_load(&t->state), HS_MSPAN_DEAD);
	assert_int_equal(c->owned[sc].n, 0);
	hs_free(u0);
	assert_int_equal(atomic_load(&u->state), HS_MSPAN_IN_USE);
	assert_ptr_equal(c->alloc[sc], u);
	hs_heap_stats(&after);
	assert_int_equal(after.in_use, before.in_use - PAGE);
	HEAP_CHECK();
	hs_heap_sweep();
	assert_int_equal(atomic_load(&u->state), HS_MSPAN_DEAD);
	assert_true(hs_mcache_span_is_empty(c->alloc[sc]));
	HEAP_CHECK();
}

/*
 * Refill keeps a span only if at least an eighth of it is free (core/mcache.c
 * has_room); for parked spans it counts the owner's pending frees without
 * sweeping. Class 22: 384 B, 21 objects, so 3 free objects are enough
 * (3 * 8 >= 21) and 2 are not (2 * 8 < 21).
 */
static void test_mcache_refill_eighth_rule(void **state)
{
	(void)state;
	enum { CLS = 22, N = 21 };
	hs_mcache *c = hs_mcache_get();
	hs_span_class sc = hs_make_span_class(CLS);
	assert_int_equal(hs_size_to_class(384), CLS);
	assert_true(hs_mcache_span_is_empty(c->alloc[sc]));
	assert_int_equal(c->owned[sc].n, 0);
	assert_central_empty(&hs_heap.central[sc]);

	void *p[N], *tp[N];
	for (unsigned i = 0; i < N; i++)
		p[i] = hs_malloc(384);
	hs_mspan *s = hs_span_of((uintptr_t)p[0]);
	assert_int_equal(s->nelems, N);
	assert_ptr_equal(p[N - 1], obj(s, N - 1));

	/* Two of 21 free: swept, too full to keep, parked; a new span. */
	hs_free(p[3]);
	hs_free(p[7]);
	hs_heap_stats_t before, after;
	hs_heap_stats(&before);
	tp[0] = hs_malloc(384);
	hs_mspan *t = hs_span_of((uintptr_t)tp[0]);
	assert_ptr_not_equal(t, s);
	assert_ptr_equal(tp[0], obj(t, 0));
	assert_ptr_equal(c->alloc[sc], t);
	assert_true(on_list(&c->owned[sc], s));
	assert_int_equal(s->alloc_count, N - 2);
	assert_int_equal(s->local_nfree, 0);
	hs_heap_stats(&after);
	assert_int_equal(after.spans_swept, before.spans_swept + 1);
	assert_int_equal(after.in_use, before.in_use + PAGE);
	HEAP_CHECK();

	/* Three of 21 free in the current span: swept and kept. */
	for (unsigned i = 1; i < N; i++)
		tp[i] = hs_malloc(384);
	hs_free(tp[0]);
	hs_free(tp[10]);
	hs_free(tp[20]);
	hs_heap_stats(&before);
	assert_ptr_equal(hs_malloc(384), tp[0]);
	hs_heap_stats(&after);
	assert_ptr_equal(c->alloc[sc], t);
	assert_int_equal(c->owned[sc].n, 1);
	assert_int_equal(after.spans_swept, before.spans_swept + 1);
	assert_int_equal(after.in_use, before.in_use);

	/* One more free in the parked s makes three (two swept in, one pending):
	 * when t is full again, refill takes s back, and its free objects come out
	 * lowest first: 3, 7, 15. */
	hs_free(p[15]);
	assert_int_equal(s->local_nfree, 1);
	assert_ptr_equal(hs_malloc(384), tp[10]);
	assert_ptr_equal(hs_malloc(384), tp[20]);
	hs_heap_stats(&before);
	assert_ptr_equal(hs_malloc(384), p[3]);
	assert_ptr_equal(c->alloc[sc], s);
	assert_true(on_list(&c->owned[sc], t));
	assert_ptr_equal(hs_malloc(384), p[7]);
	assert_ptr_equal(hs_malloc(384), p[15]);
	hs_heap_stats(&after);
	assert_int_equal(after.in_use, before.in_use);
	assert_int_equal(after.spans_swept, before.spans_swept + 1);
	HEAP_CHECK();

	for (unsigned i = 0; i < N; i++)
		hs_free(p[i]), hs_free(tp[i]);
	hs_heap_sweep();
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_DEAD);
	assert_int_equal(atomic_load(&t->state), HS_MSPAN_DEAD);
	HEAP_CHECK();
}

static void test_mcache_large_cache(void **state)
{
	(void)state;
	hs_mcache *c = hs_mcache_get();
	hs_heap_sweep(); /* start with an empty large cache */
	assert_int_equal(c->nlarge, 0);
	hs_heap_stats_t s0, s1, s2;

	/* 100000 bytes: 13 pages, within HS_LARGE_CACHE_PAGES (32). */
	hs_heap_stats(&s0);
	char *p = hs_malloc(100000);
	hs_mspan *sp = hs_span_of((uintptr_t)p);
	assert_ptr_equal(p, (void *)sp->start_addr);
	assert_int_equal(hs_span_npages(sp), 13);
	assert_int_equal(sp->spanclass, hs_make_span_class(0));
	assert_int_equal(sp->nelems, 1);
	assert_int_equal(sp->alloc_count, 1);
	assert_null(atomic_load(&sp->owner));
	hs_heap_stats(&s1);
	assert_int_equal(s1.large_allocs, s0.large_allocs + 1);
	assert_int_equal(s1.in_use, s0.in_use + 13 * PAGE);

	/* Freed: kept in the mcache, in use, its object marked free. */
	hs_free(p);
	hs_heap_stats(&s2);
	assert_int_equal(s2.large_frees, s1.large_frees + 1);
	assert_int_equal(s2.in_use, s1.in_use);
	assert_int_equal(c->nlarge, 1);
	assert_ptr_equal(c->large[0], sp);
	assert_ptr_equal(atomic_load(&sp->owner), c);
	assert_int_equal(sp->alloc_count, 0);
	assert_int_equal(atomic_load(&sp->alloc_bits[0]), 0);
	assert_int_equal(atomic_load(&hs_span_free_bits(sp)[0]), 0);
	assert_int_equal(sp->needzero, 1);
	assert_int_equal(atomic_load(&sp->state), HS_MSPAN_IN_USE);
	assert_ptr_equal(hs_span_of((uintptr_t)p), sp);
	HEAP_CHECK();

	/* The same size again: the same span and address. */
	char *q = hs_malloc(100000);
	assert_ptr_equal(q, p);
	assert_int_equal(c->nlarge, 0);
	assert_null(atomic_load(&sp->owner));
	assert_int_equal(sp->alloc_count, 1);
	assert_int_equal(atomic_load(&sp->alloc_bits[0]), 1);
	hs_heap_stats(&s1);
	assert_int_equal(s1.large_allocs, s2.large_allocs + 1);
	assert_int_equal(s1.in_use, s2.in_use);

	/* Only the same page count takes a kept span: 120000 bytes is 15 pages. */
	hs_free(q);
	char *r = hs_malloc(120000);
	assert_ptr_not_equal(r, p);
	assert_int_equal(hs_span_npages(hs_span_of((uintptr_t)r)), 15);
	assert_int_equal(c->nlarge, 1);
	hs_free(r);
	assert_int_equal(c->nlarge, 2);
	q = hs_malloc(100000);
	assert_ptr_equal(q, p);
	assert_int_equal(c->nlarge, 1);
	assert_ptr_equal(c->large[0], hs_span_of((uintptr_t)r));
	hs_free(q);
	assert_int_equal(c->nlarge, 2);

	/* 32 pages in all: with 28 (13 + 15) kept, a 5-page span (40000 bytes)
	 * does not fit. */
	char *b5 = hs_malloc(40000);
	assert_int_equal(hs_span_npages(hs_span_of((uintptr_t)b5)), 5);
	assert_int_equal(c->large_pages, 28);
	hs_free(b5);
	assert_int_equal(c->nlarge, 2);
	assert_null(hs_span_of((uintptr_t)b5));
	HEAP_CHECK();
	hs_heap_sweep();
	assert_int_equal(c->nlarge, 0);
	assert_int_equal(c->large_pages, 0);

	/* Into an empty cache, 32 pages are kept, 33 are not. */
	char *b32 = hs_malloc(32 * PAGE), *b33 = hs_malloc(32 * PAGE + 1);
	assert_int_equal(hs_span_npages(hs_span_of((uintptr_t)b33)), 33);
	hs_free(b32);
	assert_int_equal(c->nlarge, 1);
	assert_int_equal(c->large_pages, 32);
	assert_non_null(hs_span_of((uintptr_t)b32));
	hs_heap_stats(&s0);
	hs_free(b33);
	hs_heap_stats(&s1);
	assert_int_equal(c->nlarge, 1);
	assert_null(hs_span_of((uintptr_t)b33));
	assert_int_equal(s1.in_use, s0.in_use - 33 * PAGE);
	assert_int_equal(s1.large_frees, s0.large_frees + 1);

	/* 2 MiB (256 pages): counted like any large object, but not kept. */
	hs_heap_stats(&s0);
	char *m = hs_malloc((size_t)2 << 20);
	assert_int_equal(hs_span_npages(hs_span_of((uintptr_t)m)), 256);
	hs_free(m);
	hs_heap_stats(&s1);
	assert_int_equal(s1.large_allocs, s0.large_allocs + 1);
	assert_int_equal(s1.large_frees, s0.large_frees + 1);
	assert_int_equal(s1.in_use, s0.in_use);
	assert_int_equal(c->nlarge, 1);
	assert_null(hs_span_of((uintptr_t)m));
	HEAP_CHECK();

	/* Handing the cache back returns the kept spans to the heap. */
	hs_heap_sweep();
	assert_int_equal(c->nlarge, 0);
	assert_null(hs_span_of((uintptr_t)p));
	assert_null(hs_span_of((uintptr_t)r));
	assert_null(hs_span_of((uintptr_t)b32));

	/* Nine 13-page spans: two fit in 32 pages (26), the other seven go to the heap. */
	enum { NL = 9, NKEPT = 2 };
	char *v[NL];
	for (unsigned i = 0; i < NL; i++)
		v[i] = hs_malloc(100000);
	hs_heap_stats(&s0);
	for (unsigned i = 0; i < NL; i++)
		hs_free(v[i]);
	hs_heap_stats(&s1);
	assert_int_equal(c->nlarge, NKEPT);
	assert_int_equal(c->large_pages, NKEPT * 13);
	for (unsigned i = 0; i < NL; i++) {
		if (i < NKEPT)
			assert_non_null(hs_span_of((uintptr_t)v[i]));
		else
			assert_null(hs_span_of((uintptr_t)v[i]));
	}
	assert_int_equal(s1.in_use, s0.in_use - (NL - NKEPT) * 13 * PAGE);
	HEAP_CHECK();
	hs_heap_sweep();
	hs_heap_stats(&s1);
	assert_int_equal(c->nlarge, 0);
	assert_int_equal(s1.in_use, s0.in_use - NL * 13 * PAGE);
	HEAP_CHECK();
}

/*
 * Idle spans (core/mcache.c): an empty span in alloc[] and a kept large span go
 * back to the heap once HS_IDLE_TICKS ticks have passed since the mcache last
 * used them on a slow path; a tick looks at four size classes in turn, so
 * within 17 more ticks every class has been looked at. Class 45 (4864 B x 5,
 * 3 pages) and class 64 (24 KiB x 1, 3 pages) are emptied; class 48 (6528 B x
 * 5, 4 pages) keeps an object and its span; then a refill stamps class 64's
 * new span, which stays for HS_IDLE_TICKS ticks.
 */
static void test_mcache_idle_spans(void **state)
{
	(void)state;
	enum { FULL_TURN = 17 };
	hs_mcache *c = hs_mcache_get();
	hs_heap_sweep(); /* nothing cached: every class starts without a span */
	hs_span_class sc45 = hs_make_span_class(45), sc48 = hs_make_span_class(48), sc64 = hs_make_span_class(64);
	hs_heap_stats_t s0, s1;

	void *a[3], *one = hs_malloc(24576), *kept = hs_malloc(100000), *b = hs_malloc(6528);
	for (unsigned i = 0; i < 3; i++)
		a[i] = hs_malloc(4864);
	hs_mspan *s45 = c->alloc[sc45], *s48 = c->alloc[sc48], *s64 = c->alloc[sc64];
	for (unsigned i = 0; i < 3; i++)
		hs_free(a[i]);
	hs_free(one);
	hs_free(kept);
	assert_int_equal(c->nlarge, 1);
	assert_int_equal(s45->idle_tick, c->ticks);
	assert_int_equal(c->large[0]->idle_tick, c->ticks);

	hs_heap_stats(&s0);
	for (unsigned k = 0; k + 1 < HS_IDLE_TICKS; k++)
		hs_mcache_tick(c);
	assert_ptr_equal(c->alloc[sc45], s45);
	assert_ptr_equal(c->alloc[sc64], s64);
	assert_int_equal(c->nlarge, 1);
	HEAP_CHECK();

	for (unsigned k = 0; k < FULL_TURN; k++)
		hs_mcache_tick(c);
	hs_heap_stats(&s1);
	assert_true(hs_mcache_span_is_empty(c->alloc[sc45]));
	assert_true(hs_mcache_span_is_empty(c->alloc[sc64]));
	assert_int_equal(c->nlarge, 0);
	assert_null(hs_span_of((uintptr_t)a[0]));
	assert_null(hs_span_of((uintptr_t)one));
	assert_null(hs_span_of((uintptr_t)kept));
	assert_int_equal(s1.in_use, s0.in_use - (3 + 3 + 13) * PAGE);
	assert_ptr_equal(c->alloc[sc48], s48); /* b is still allocated */
	HEAP_CHECK();

	hs_free(hs_malloc(24576));
	s64 = c->alloc[sc64];
	assert_int_equal(s64->idle_tick, c->ticks);
	for (unsigned k = 0; k + 1 < HS_IDLE_TICKS; k++)
		hs_mcache_tick(c);
	assert_ptr_equal(c->alloc[sc64], s64);
	for (unsigned k = 0; k < FULL_TURN; k++)
		hs_mcache_tick(c);
	assert_true(hs_mcache_span_is_empty(c->alloc[sc64]));
	hs_free(b);
	HEAP_CHECK();
}

enum { EXIT_SMALL = 300, EXIT_BIG = 100 };

typedef struct exit_report {
	hs_mcache *mc;
	int listed;
	void *small[EXIT_SMALL]; /* 48 B; the even ones are left allocated */
	void *big[EXIT_BIG];	 /* 1000 B; every tenth left allocated */
	void *large_kept;	 /* 100000 B, freed: in the thread's large cache at exit */
	void *large_live;	 /* 50000 B, left allocated */
	hs_mspan *owned5, *alloc5; /* the thread's class-5 spans */
	unsigned nlarge, owned5_n;
} exit_report;

static void *exit_thread(void *arg)
{
	exit_report *x = arg;
	hs_span_class sc5 = hs_make_span_class(5);
	x->mc = hs_mcache_get();
	x->listed = mcache_listed(x->mc);
	/* 300 objects of class 5 (170 per span): the first span fills and is
	 * parked, the second is the one allocated from. */
	for (unsigned i = 0; i < EXIT_SMALL; i++)
		x->small[i] = hs_malloc(48);
	for (unsigned i = 1; i < EXIT_SMALL; i += 2)
		hs_free(x->small[i]);
	for (unsigned i = 0; i < EXIT_BIG; i++)
		x->big[i] = hs_malloc(1000);
	for (unsigned i = 0; i < EXIT_BIG; i++) {
		if (i % 10 != 0)
			hs_free(x->big[i]);
	}
	x->large_kept = hs_malloc(100000);
	hs_free(x->large_kept);
	x->large_live = hs_malloc(50000);
	x->nlarge = x->mc->nlarge;
	x->owned5 = x->mc->owned[sc5].first;
	x->owned5_n = x->mc->owned[sc5].n;
	x->alloc5 = x->mc->alloc[sc5];
	return NULL;
}

/* A span an exited thread held: in use, owned by nobody, in a swept mcentral set. */
static void assert_in_central_set(const hs_mspan *s)
{
	const hs_mcentral *c = &hs_heap.central[s->spanclass];
	unsigned sw = atomic_load(&hs_heap.sweepgen) / 2 % 2;
	assert_int_equal(atomic_load(&s->state), HS_MSPAN_IN_USE);
	assert_null(atomic_load(&s->owner));
	assert_true(on_list(&c->partial[sw], s) || on_list(&c->full[sw], s));
	assert_int_equal(s->local_nfree, 0);
	for (unsigned w = 0; w < hs_span_bitmap_words(s); w++)
		assert_int_equal(hs_span_local_free(s)[w], 0);
}

static void test_mcache_thread_exit_releases(void **state)
{
	(void)state;
	static exit_report x;
	memset(&x, 0, sizeof x);
	hs_heap_sweep(); /* settle: everything this thread cached is back, all swept */
	hs_heap_stats_t before, after;
	hs_heap_stats(&before);

	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, exit_thread, &x), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(x.listed);
	assert_int_equal(x.nlarge, 1);
	assert_non_null(x.owned5);
	assert_int_equal(x.owned5_n, 1);
	assert_false(hs_mcache_span_is_empty(x.alloc5));
	assert_ptr_not_equal(x.owned5, x.alloc5);

	/* The mcache is gone, and the heap is consistent without it. */
	assert_false(mcache_listed(x.mc));
	HEAP_CHECK();

	/* Its spans went back to the mcentrals, its own frees swept in: the first
	 * class-5 span keeps objects 0, 2, ..., 168 (85), the second 170, ..., 298 (65). */
	assert_in_central_set(x.owned5);
	assert_in_central_set(x.alloc5);
	assert_int_equal(x.owned5->alloc_count, 85);
	assert_int_equal(x.alloc5->alloc_count, 65);
	assert_ptr_equal(hs_span_of((uintptr_t)x.small[0]), x.owned5);
	assert_ptr_equal(hs_span_of((uintptr_t)x.small[170]), x.alloc5);
	for (unsigned i = 0; i < EXIT_SMALL; i += 2)
		assert_in_central_set(hs_span_of((uintptr_t)x.small[i]));
	for (unsigned i = 0; i < EXIT_BIG; i += 10)
		assert_in_central_set(hs_span_of((uintptr_t)x.big[i]));
	/* The large span it kept for reuse went back to the heap. */
	assert_null(hs_span_of((uintptr_t)x.large_kept));
	assert_non_null(hs_span_of((uintptr_t)x.large_live));
	/* Its counts were retired into the heap's totals. */
	hs_heap_stats(&after);
	assert_int_equal(after.large_allocs, before.large_allocs + 2);
	assert_int_equal(after.large_frees, before.large_frees + 1);

	/* What it left allocated can be freed by another thread; a sweep then
	 * returns the heap to where it was before the thread ran. */
	for (unsigned i = 0; i < EXIT_SMALL; i += 2)
		hs_free(x.small[i]);
	for (unsigned i = 0; i < EXIT_BIG; i += 10)
		hs_free(x.big[i]);
	hs_free(x.large_live);
	hs_heap_sweep();
	hs_heap_stats(&after);
	assert_int_equal(after.in_use, before.in_use);
	assert_int_equal(after.pages_in_use, before.pages_in_use);
	assert_int_equal(atomic_load(&x.owned5->state), HS_MSPAN_DEAD);
	assert_int_equal(atomic_load(&x.alloc5->state), HS_MSPAN_DEAD);
	HEAP_CHECK();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixalloc_sizes),
		cmocka_unit_test(test_fixalloc_blocks_and_reuse),
		cmocka_unit_test_teardown(test_span_objects_and_sweep, free_span_under_test),
		cmocka_unit_test(test_span_sweep_reports),
		cmocka_unit_test(test_span_cached_stale),
		cmocka_unit_test(test_mcentral_sets_and_sweepgen),
		cmocka_unit_test(test_mcache_per_thread),
		cmocka_unit_test(test_mcache_refill),
		cmocka_unit_test(test_mcache_reuses_freed_slots),
		cmocka_unit_test(test_mcache_owned_span_parking),
		cmocka_unit_test(test_mcache_refill_eighth_rule),
		cmocka_unit_test(test_mcache_large_cache),
		cmocka_unit_test(test_mcache_idle_spans),
		cmocka_unit_test(test_mcache_thread_exit_releases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
