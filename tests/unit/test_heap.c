/*
 * tests/unit/test_heap.c — the heap through its public API (heapscope.h), with
 * hs_heap_check after every test: sizes and classes, alignment, calloc's
 * zeroing, realloc in place and moving, aligned allocation up to 1 MiB, large
 * objects, sweeping and span release, thread exit, arena hints, and every kind
 * of bad free (which must abort with a report naming the pointer and the span).
 *
 * Expected values come from the C library's contract for the malloc family and
 * from Go's size classes (core/sizeclasses.h, itself tested against Go's table).
 * Built for the native configuration only: the real heap needs real addresses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "heapscope/heapscope.h"
#include "oracle.h"

/* The smallest class size >= n: the usable size every small request must get. */
static size_t class_size_for(size_t n)
{
	for (unsigned c = 1; c < HS_NUM_SIZE_CLASSES; c++) {
		if (hs_class_to_size[c] >= n)
			return hs_class_to_size[c];
	}
	return 0;
}

static void test_sizes(void **state)
{
	(void)state;
	for (size_t n = 1; n <= 32768; n += n < 1100 ? 1 : 61) {
		unsigned char *p = hs_malloc(n);
		assert_non_null(p);
		assert_int_equal(hs_malloc_usable_size(p), class_size_for(n));
		assert_int_equal((uintptr_t)p % 8, 0);
		memset(p, 0xa5, n);
		hs_free(p);
	}
	HEAP_CHECK();
}

static void test_malloc_zero_and_free_null(void **state)
{
	(void)state;
	void *a = hs_malloc(0), *b = hs_malloc(0);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	hs_free(a);
	hs_free(b);
	hs_free(NULL);
	HEAP_CHECK();
}

/* Objects of one class never overlap, and stay put while others come and go. */
static void test_distinct_objects(void **state)
{
	(void)state;
	enum { N = 5000 };
	static uint64_t *p[N];
	for (unsigned i = 0; i < N; i++) {
		p[i] = hs_malloc(48);
		p[i][0] = i;
		p[i][5] = ~(uint64_t)i;
	}
	for (unsigned i = 0; i < N; i += 2)
		hs_free(p[i]);
	HEAP_CHECK();
	for (unsigned i = 0; i < N; i += 2)
		p[i] = hs_malloc(48), p[i][0] = i, p[i][5] = ~(uint64_t)i;
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(p[i][0], i);
		assert_int_equal(p[i][5], ~(uint64_t)i);
	}
	HEAP_CHECK();
	for (unsigned i = 0; i < N; i++)
		hs_free(p[i]);
	HEAP_CHECK();
}

static void test_calloc_zeroes(void **state)
{
	(void)state;
	/* Dirty some objects, free them, sweep, then calloc the same class. */
	enum { N = 2000 };
	static unsigned char *p[N];
	for (unsigned i = 0; i < N; i++) {
		p[i] = hs_malloc(200);
		memset(p[i], 0xff, 200);
	}
	for (unsigned i = 0; i < N; i++)
		hs_free(p[i]);
	hs_heap_sweep();
	for (unsigned i = 0; i < N; i++) {
		p[i] = hs_calloc(25, 8);
		for (unsigned k = 0; k < 200; k++)
			assert_int_equal(p[i][k], 0);
	}
	for (unsigned i = 0; i < N; i++)
		hs_free(p[i]);
	unsigned char *big = hs_calloc(1, 300000);
	for (unsigned k = 0; k < 300000; k += 4093)
		assert_int_equal(big[k], 0);
	memset(big, 1, 300000);
	hs_free(big);
	big = hs_calloc(300000, 1);
	for (unsigned k = 0; k < 300000; k++)
		if (big[k] != 0)
			fail_msg("calloc byte %u is %u", k, big[k]);
	hs_free(big);
	errno = 0;
	assert_null(hs_calloc(SIZE_MAX / 2, 3));
	assert_int_equal(errno, ENOMEM);
	HEAP_CHECK();
}

static void test_realloc_moves(void **state)
{
	(void)state;
	char *p = hs_realloc(NULL, 20);
	assert_non_null(p);
	memcpy(p, "0123456789abcdefghi", 20);
	/* 20 and 24 bytes share Go's 24-byte class: in place. */
	assert_ptr_equal(hs_realloc(p, 24), p);
	/* 100 bytes is another class: moved, contents kept. */
	char *q = hs_realloc(p, 100);
	assert_ptr_not_equal(q, p);
	assert_memory_equal(q, "0123456789abcdefghi", 20);
	/* Large, then larger within the same pages: in place. */
	char *r = hs_realloc(q, 100000);
	assert_memory_equal(r, "0123456789abcdefghi", 20);
	assert_ptr_equal(hs_realloc(r, 100001), r);
	char *s = hs_realloc(r, 10);
	assert_memory_equal(s, "0123456789", 10);
	assert_null(hs_realloc(s, 0));
	HEAP_CHECK();
}

static void test_aligned(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 7, 24, 100, 1000, 5000, 40000, 300000 };
	for (size_t align = 8; align <= ((size_t)1 << 20); align <<= 1) {
		for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			void *p = hs_aligned_alloc(align, sizes[k]);
			assert_non_null(p);
			if ((uintptr_t)p % align != 0)
				fail_msg("aligned_alloc(%zu, %zu) = %p", align, sizes[k], p);
			assert_true(hs_malloc_usable_size(p) >= sizes[k]);
			memset(p, 1, sizes[k]);
			void *q = NULL;
			assert_int_equal(hs_posix_memalign(&q, align, sizes[k]), 0);
			assert_int_equal((uintptr_t)q % align, 0);
			void *m = hs_memalign(align, sizes[k]);
			assert_int_equal((uintptr_t)m % align, 0);
			hs_free(p);
			hs_free(q);
			hs_free(m);
		}
	}
	void *q = NULL;
	assert_int_equal(hs_posix_memalign(&q, 24, 8), EINVAL);
	assert_int_equal(hs_posix_memalign(&q, 4, 8), EINVAL);
	errno = 0;
	assert_null(hs_aligned_alloc(48, 8));
	assert_int_equal(errno, EINVAL);
	HEAP_CHECK();
}

static void test_large(void **state)
{
	(void)state;
	hs_heap_stats_t before, after;
	hs_heap_stats(&before);
	char *p = hs_malloc(100000);
	assert_int_equal((uintptr_t)p % 8192, 0);
	assert_int_equal(hs_malloc_usable_size(p), 13 * 8192);
	memset(p, 3, 100000);
	hs_free(p);
	char *big = hs_malloc((size_t)200 << 20);
	assert_non_null(big);
	big[0] = big[(200 << 20) - 1] = 1;
	hs_free(big);
	hs_heap_stats(&after);
	assert_int_equal(after.large_allocs - before.large_allocs, 2);
	assert_int_equal(after.large_frees - before.large_frees, 2);
	assert_int_equal(after.in_use, before.in_use);
	/* Sizes no address space can hold fail with ENOMEM, without breaking the
	 * heap's growth: afterwards it still grows at Go's hint addresses. */
	static const size_t huge[] = { SIZE_MAX - 100, SIZE_MAX - 8192, SIZE_MAX - (40u << 20),
				       (size_t)1 << 47, ((size_t)1 << 47) + 1 };
	for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
		errno = 0;
		assert_null(hs_malloc(huge[k]));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(hs_aligned_alloc(1 << 20, huge[k]));
		assert_int_equal(errno, ENOMEM);
	}
	char *grown = hs_malloc((size_t)300 << 20);
	assert_non_null(grown);
#if !defined(SANITIZED)
	assert_true((uintptr_t)grown >= 0x00c000000000 && (uintptr_t)grown < 0x00c000000000 + ((uintptr_t)1 << 40));
#endif
	hs_free(grown);
	HEAP_CHECK();
}

static void *alloc_many(void *arg)
{
	void **p = arg;
	for (unsigned i = 0; i < 60000; i++)
		p[i] = hs_malloc(512);
	return NULL;
}

/*
 * Objects allocated by a thread that then exits live in spans no mcache holds;
 * freeing them from another thread past the sweep trigger starts cycles, and the
 * spans left empty return their pages to the heap.
 */
static void test_sweep_releases_spans(void **state)
{
	(void)state;
	enum { N = 60000 };
	static void *p[N];
	hs_heap_stats_t a, b;
	pthread_t t;
	pthread_create(&t, NULL, alloc_many, p);
	pthread_join(t, NULL);
	hs_heap_stats(&a);
	for (unsigned i = 0; i < N; i++)
		hs_free(p[i]);
	hs_heap_stats(&b);
	/* 29 MiB freed into uncached spans: at least one cycle at the default trigger
	 * (a quarter of in-use bytes, at least 4 MiB). */
	assert_true(b.sweep_cycles > a.sweep_cycles);
	hs_heap_sweep();
	hs_heap_stats(&b);
	assert_true(b.spans_released > a.spans_released);
	assert_true(b.in_use + (24u << 20) < a.in_use);
	HEAP_CHECK();
}

/*
 * A thread that frees everything it allocated gives the spans back at once
 * (owned spans are retired when their last object is freed), and
 * hs_heap_scavenge_all then returns the pages to the OS: RSS falls back to where
 * it was, and the statistics account for every byte.
 */
static void test_free_then_scavenge_all(void **state)
{
	(void)state;
	enum { N = 200000 };
	static char *p[N];
	uint64_t seed = 42, before = oracle_rss_bytes();
	hs_heap_stats_t s0, s1, s2;
	hs_heap_stats(&s0);
	uint64_t total = 0;
	for (unsigned i = 0; i < N; i++) {
		size_t n = 16 + oracle_rand(&seed) % 2000;
		p[i] = hs_malloc(n);
		memset(p[i], 7, n);
		total += n;
	}
	assert_true(oracle_rss_bytes() > before + total / 2);
	for (unsigned i = 0; i < N; i++)
		hs_free(p[i]);
	hs_heap_stats(&s1);
	/* Only the spans each class allocates from may still hold pages. */
	assert_true(s1.in_use < s0.in_use + (8u << 20));
	uint64_t released = hs_heap_scavenge_all();
	hs_heap_stats(&s2);
	assert_true(released >= total / 2);
	/* The background scavenger may release some too, meanwhile. */
	assert_true(s2.released >= s1.released + released);
	assert_int_equal(s2.ready + s2.prepared, s1.ready + s1.prepared);
	/* Everything freed is back with the OS: within 10% of the bytes allocated.
	 * Sanitizer runtimes keep shadow memory for what the heap touched, which
	 * no madvise of the heap's releases, so RSS says nothing there. */
	uint64_t after = oracle_rss_bytes();
#if defined(SANITIZED)
	print_message("sanitizer build: RSS check skipped (%llu MiB after, %llu MiB before)\n",
		      (unsigned long long)(after >> 20), (unsigned long long)(before >> 20));
	after = before;
#endif
	if (after > before + total / 10)
		fail_msg("RSS %llu MiB after scavenging, %llu MiB before allocating %llu MiB",
			 (unsigned long long)(after >> 20), (unsigned long long)(before >> 20),
			 (unsigned long long)(total >> 20));
	HEAP_CHECK();
}

static void *thread_alloc(void *arg)
{
	void **out = arg;
	for (unsigned i = 0; i < 1000; i++)
		out[i] = hs_malloc(16 + i % 200);
	return NULL;
}

/* A thread's mcache is flushed when it exits; its objects can be freed later. */
static void test_thread_exit(void **state)
{
	(void)state;
	static void *objs[4][1000];
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, thread_alloc, objs[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	HEAP_CHECK();
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 1000; k++)
			hs_free(objs[i][k]);
	hs_heap_sweep();
	HEAP_CHECK();
}

/* The heap's first allocation an aligned large one: the heap initializes
 * before its page allocator is searched, and a search of a page allocator
 * that has grown nothing finds nothing. (Runs first: see main.) */
static void test_aligned_first(void **state)
{
	(void)state;
	void *p = hs_aligned_alloc((size_t)1 << 20, 100000);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % ((uintptr_t)1 << 20), 0);
	hs_free(p);
}

static void test_arena_hints(void **state)
{
	(void)state;
	uintptr_t h[128];
	unsigned n = hs_arena_hint_addrs(h, 128);
	assert_int_equal(n, 128);
	/* Go's linux/amd64 hints: 0x00c0<<32 | i<<40, tried from i = 0. */
	assert_int_equal(h[0], 0x00c000000000);
	assert_int_equal(h[1], 0x01c000000000);
	assert_int_equal(h[127], 0x7fc000000000);
	void *p = hs_malloc(64);
#if defined(SANITIZED)
	/* Sanitizer runtimes own parts of the address space, and may refuse the
	 * hints; the heap then reserves wherever the OS allows, arena-aligned. */
	assert_int_equal(hs_span_of((uintptr_t)p)->start_addr % 8192, 0);
#else
	assert_true((uintptr_t)p >= 0x00c000000000 && (uintptr_t)p < 0x00c000000000 + ((uintptr_t)1 << 36));
#endif
	hs_free(p);
}

/* --- bad frees -------------------------------------------------------------------- */

static void double_free(void *arg)
{
	(void)arg;
	void *p = hs_malloc(32);
	hs_free(p);
	hs_free(p);
}

/* Once the owner has swept the free in (here: by flushing its cache), the
 * object is simply free; freeing it again finds it unallocated. */
static void double_free_after_sweep(void *arg)
{
	(void)arg;
	void *keep = hs_malloc(32), *p = hs_malloc(32);
	hs_free(p);
	hs_mcache_release_all(hs_mcache_get());
	hs_free(p);
	hs_free(keep);
}

static void interior_free(void *arg)
{
	(void)arg;
	char *p = hs_malloc(64);
	hs_free(p + 8);
}

static void foreign_free(void *arg)
{
	(void)arg;
	int local;
	hs_free(&local);
}

/* The slot after the newest object of a span: objects are handed out in
 * address order, so nobody has allocated it yet. */
static void never_allocated_free(void *arg)
{
	(void)arg;
	char *p;
	do
		p = hs_malloc(16);
	while ((uintptr_t)p + 16 >= hs_span_limit(hs_span_of((uintptr_t)p)));
	hs_free(p + 16);
}

static void large_double_free(void *arg)
{
	(void)arg;
	void *p = hs_malloc(1 << 20);
	hs_free(p);
	hs_free(p);
}

static void expect_bad_free(void (*fn)(void *), const char *want)
{
	char out[2048];
	if (!oracle_expect_abort(fn, NULL, want, out, sizeof out))
		fail_msg("expected an abort mentioning '%s'; stderr was:\n%s", want, out);
	if (strstr(out, "heapscope: bad free of 0x") == NULL)
		fail_msg("report does not name the pointer:\n%s", out);
}

static void test_bad_frees(void **state)
{
	(void)state;
	expect_bad_free(double_free, "double free");
	expect_bad_free(double_free_after_sweep, "not allocated");
	expect_bad_free(interior_free, "interior pointer");
	expect_bad_free(foreign_free, "outside the heap");
	expect_bad_free(never_allocated_free, "not allocated");
	expect_bad_free(large_double_free, "freed already");
	char out[2048];
	assert_true(oracle_expect_abort(interior_free, NULL, "spanclass=", out, sizeof out));
	assert_non_null(strstr(out, "allocCount="));
	assert_non_null(strstr(out, "state=in use"));
}

static void warn_then_exit(void *arg)
{
	(void)arg;
	setenv("HEAPSCOPE_BADFREE", "warn", 1);
	hs_heap_read_env();
	char *p = hs_malloc(64);
	hs_free(p + 8);
	hs_free(p);
	hs_free(p);
	fputs("carried on\n", stderr);
	abort(); /* oracle_expect_abort wants an abort to read the output */
}

static void test_badfree_warn(void **state)
{
	(void)state;
	char out[2048];
	assert_true(oracle_expect_abort(warn_then_exit, NULL, "carried on", out, sizeof out));
	assert_non_null(strstr(out, "interior pointer"));
	assert_non_null(strstr(out, "double free"));
	assert_null(strstr(out, "fatal error"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aligned_first), /* first: before anything initialized the heap */
		cmocka_unit_test(test_arena_hints),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_malloc_zero_and_free_null),
		cmocka_unit_test(test_distinct_objects),
		cmocka_unit_test(test_calloc_zeroes),
		cmocka_unit_test(test_realloc_moves),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_sweep_releases_spans),
		cmocka_unit_test(test_thread_exit),
		cmocka_unit_test(test_free_then_scavenge_all),
		cmocka_unit_test(test_bad_frees),
		cmocka_unit_test(test_badfree_warn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
