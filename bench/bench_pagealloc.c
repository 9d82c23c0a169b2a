/*
 * bench/bench_pagealloc.c — ns/op for the page allocator's pieces.
 *
 *   bench_pagealloc [--reps N] [--min-ms MS] [--go-compare] [--filter SUBSTR]
 *
 * Each benchmark runs its body in a loop calibrated to last at least --min-ms
 * (default 100 ms) per sample, --reps times (default 7); the table gives the
 * median, minimum and maximum ns/op. --go-compare runs only the benchmarks Go's
 * runtime also has (same names as `go test -bench` prints: PallocBitsSummarize/
 * UnpackedXX and FindBitRange64/PatternXXSizeN), once each, as "name ns" lines,
 * for scripts/bench-pagealloc.sh to interleave with Go's own runs.
 *
 * Inputs pass through an empty asm barrier every iteration, so the compiler
 * cannot hoist a computation on a constant input out of the loop: what is timed
 * is one call on an input the CPU has not seen folded away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pagealloc.h"
#include "splitmix.h"

#define OPAQUE(x) __asm__ volatile("" : "+r"(x))
#define CLOBBER() __asm__ volatile("" ::: "memory")

typedef struct bench {
	char name[96];
	void (*fn)(void *arg, uint64_t n);
	void *arg;
} bench;

static uint64_t sink;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One sample: ns/op over a loop long enough to last min_ms. */
static double sample(const bench *b, double min_ms)
{
	uint64_t n = 1;
	for (;;) {
		double t0 = now_ns();
		b->fn(b->arg, n);
		double dt = now_ns() - t0;
		if (dt >= min_ms * 1e6)
			return dt / (double)n;
		n = dt < 1e3 ? n * 100 : (uint64_t)((double)n * (min_ms * 1e6 * 1.2) / dt) + 1;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* --- pallocBits: summarize and find ------------------------------------------- */

static const uint64_t patterns[] = {
	0,
	~UINT64_C(0),
	0xaa,
	0xaaaaaaaaaaaaaaaa,
	0x80000000aaaaaaaa,
	0xaaaaaaaa00000001,
	0xbbbbbbbbbbbbbbbb,
	0x80000000bbbbbbbb,
	0xbbbbbbbb00000001,
	0xcccccccccccccccc,
	0x4444444444444444,
	0x4040404040404040,
	0x4000400040004000,
	0x1000404044ccaaff, /* summarize only, as in Go */
};
#define NPATTERNS (sizeof patterns / sizeof patterns[0])

static hs_palloc_bits pattern_bits[NPATTERNS];

static void run_summarize(void *arg, uint64_t n)
{
	const hs_palloc_bits *b = arg;
	for (uint64_t i = 0; i < n; i++) {
		OPAQUE(b);
		sink += hs_palloc_bits_summarize(b);
	}
}

typedef struct range_arg {
	uint64_t pattern;
	unsigned size;
} range_arg;

static range_arg range_args[NPATTERNS * 3];

static void run_find_bit_range64(void *arg, uint64_t n)
{
	const range_arg *a = arg;
	uint64_t p = a->pattern;
	unsigned size = a->size;
	for (uint64_t i = 0; i < n; i++) {
		OPAQUE(p);
		OPAQUE(size);
		sink += hs_find_bit_range64(p, size);
	}
}

typedef struct find_arg {
	hs_palloc_bits bits;
	unsigned npages;
} find_arg;

static find_arg find_args[4];

static void run_find(void *arg, uint64_t n)
{
	find_arg *a = arg;
	unsigned sidx;
	for (uint64_t i = 0; i < n; i++) {
		OPAQUE(a);
		sink += hs_palloc_bits_find(&a->bits, a->npages, 0, &sidx);
	}
}

static uint64_t rng_state = 42;

static uint64_t rnd(void)
{
	return hs_splitmix64(&rng_state);
}

/*
 * A random bitmap that still holds a run of `npages`: each page allocated with
 * probability 1/2, then a free run of the requested length cleared in the last
 * part of the chunk, so the search has to get past the random part first.
 */
static void random_bitmap_with_run(hs_palloc_bits *b, unsigned npages)
{
	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++)
		b->w[k] = rnd();
	hs_page_bits_clear_range(b, HS_PALLOC_CHUNK_PAGES - npages - 3, npages);
}

/* --- pageAlloc on a fragmented 1 GiB heap ----------------------------------- */

typedef struct heap_arg {
	hs_pagealloc *pa;
	uintptr_t npages;
} heap_arg;

static hs_pagealloc frag_heap;
static hs_mutex frag_lock = HS_MUTEX_INIT;
static hs_sys_stat frag_stat;
static heap_arg heap_args[3];

/*
 * 1 GiB (256 chunks) fully allocated, then freed again in short random runs (1-8
 * pages, about half of all pages) so no run longer than a few dozen pages exists
 * by chance; then one 64-page run in the middle chunk and one 1000-page run in
 * the top chunks are freed, so larger requests must search the tree for them.
 */
static void build_fragmented_heap(void)
{
	const uintptr_t base = (uintptr_t)0xc000 * HS_PALLOC_CHUNK_BYTES, chunks = 256;
	const uintptr_t pages = chunks * HS_PALLOC_CHUNK_PAGES;
	if (hs_pagealloc_init(&frag_heap, &frag_lock, &frag_stat, 1) != 0) {
		fprintf(stderr, "bench: cannot reserve page allocator metadata\n");
		exit(1);
	}
	hs_lock(&frag_lock);
	hs_pagealloc_grow(&frag_heap, base, chunks * HS_PALLOC_CHUNK_BYTES);
	uintptr_t scav;
	if (hs_pagealloc_alloc(&frag_heap, pages, &scav) != base) {
		fprintf(stderr, "bench: could not fill the heap\n");
		exit(1);
	}
	for (uintptr_t p = 0; p < pages;) {
		uintptr_t run = 1 + rnd() % 8;
		if (p + run > pages)
			run = pages - p;
		if (rnd() & 1)
			hs_pagealloc_free(&frag_heap, base + (p << HS_PAGE_SHIFT), run, 0);
		p += run + 1 + rnd() % 8;
	}
	uintptr_t mid = base + (chunks / 2) * HS_PALLOC_CHUNK_BYTES + (100 << HS_PAGE_SHIFT);
	uintptr_t top = base + (chunks - 3) * HS_PALLOC_CHUNK_BYTES;
	for (uintptr_t p = 0; p < 64; p++) {
		uintptr_t a = mid + (p << HS_PAGE_SHIFT);
		if (hs_page_bits_get(&hs_pagealloc_chunk_of(&frag_heap, hs_chunk_index(a))->alloc,
				     hs_chunk_page_index(a)))
			hs_pagealloc_free(&frag_heap, a, 1, 0);
	}
	for (uintptr_t p = 0; p < 1000; p++) {
		uintptr_t a = top + (p << HS_PAGE_SHIFT);
		if (hs_page_bits_get(&hs_pagealloc_chunk_of(&frag_heap, hs_chunk_index(a))->alloc,
				     hs_chunk_page_index(a)))
			hs_pagealloc_free(&frag_heap, a, 1, 0);
	}
	char msg[256];
	if (hs_pagealloc_check(&frag_heap, msg, sizeof msg) != 0) {
		fprintf(stderr, "bench: fragmented heap is inconsistent: %s\n", msg);
		exit(1);
	}
	hs_unlock(&frag_lock);
}

/* alloc then free of the same size: the heap is the same before every iteration. */
static void run_alloc_free(void *arg, uint64_t n)
{
	heap_arg *a = arg;
	hs_lock(a->pa->lock);
	for (uint64_t i = 0; i < n; i++) {
		uintptr_t scav;
		uintptr_t p = hs_pagealloc_alloc(a->pa, a->npages, &scav);
		if (p == 0) {
			fprintf(stderr, "bench: alloc(%lu) failed\n", (unsigned long)a->npages);
			exit(1);
		}
		hs_pagealloc_free(a->pa, p, a->npages, 0);
	}
	hs_unlock(a->pa->lock);
}

static void run_alloc_to_cache(void *arg, uint64_t n)
{
	heap_arg *a = arg;
	hs_lock(a->pa->lock);
	for (uint64_t i = 0; i < n; i++) {
		hs_page_cache c = hs_pagealloc_alloc_to_cache(a->pa);
		sink += c.cache;
		hs_page_cache_flush(&c, a->pa);
	}
	hs_unlock(a->pa->lock);
}

/* --- driver ---------------------------------------------------------------------- */

static bench benches[128];
static size_t nbenches;

static void add(void (*fn)(void *, uint64_t), void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#include <stdarg.h>
static void add(void (*fn)(void *, uint64_t), void *arg, const char *fmt, ...)
{
	va_list ap;
	bench *b = &benches[nbenches++];
	va_start(ap, fmt);
	vsnprintf(b->name, sizeof b->name, fmt, ap);
	va_end(ap);
	b->fn = fn;
	b->arg = arg;
}

static int is_go_comparable(const char *name)
{
	return strncmp(name, "PallocBitsSummarize/", 20) == 0 || strncmp(name, "FindBitRange64/", 15) == 0;
}

static void register_all(void)
{
	static const unsigned sizes[] = { 2, 8, 32 };
	for (size_t i = 0; i < NPATTERNS; i++) {
		for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++)
			pattern_bits[i].w[k] = patterns[i];
		add(run_summarize, &pattern_bits[i], "PallocBitsSummarize/Unpacked%02llX",
		    (unsigned long long)patterns[i]);
	}
	for (size_t i = 0; i + 1 < NPATTERNS; i++) {
		for (size_t s = 0; s < 3; s++) {
			range_arg *a = &range_args[i * 3 + s];
			*a = (range_arg){ patterns[i], sizes[s] };
			add(run_find_bit_range64, a, "FindBitRange64/Pattern%02llXSize%u",
			    (unsigned long long)patterns[i], sizes[s]);
		}
	}
	static const unsigned find_sizes[] = { 1, 2, 64, 300 };
	for (size_t i = 0; i < 4; i++) {
		find_args[i].npages = find_sizes[i];
		random_bitmap_with_run(&find_args[i].bits, find_sizes[i]);
		add(run_find, &find_args[i], "PallocBitsFind/Random/%upages", find_sizes[i]);
	}
	build_fragmented_heap();
	static const uintptr_t heap_sizes[] = { 1, 64, 1000 };
	for (size_t i = 0; i < 3; i++) {
		heap_args[i] = (heap_arg){ &frag_heap, heap_sizes[i] };
		add(run_alloc_free, &heap_args[i], "PageAllocAllocFree/Fragmented1GiB/%lupages",
		    (unsigned long)heap_sizes[i]);
	}
	static heap_arg cache_arg;
	cache_arg = (heap_arg){ &frag_heap, 0 };
	add(run_alloc_to_cache, &cache_arg, "PageAllocAllocToCacheFlush/Fragmented1GiB");
}

int main(int argc, char **argv)
{
	unsigned reps = 7;
	double min_ms = 100;
	int go_compare = 0;
	const char *filter = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--min-ms") == 0 && i + 1 < argc)
			min_ms = atof(argv[++i]);
		else if (strcmp(argv[i], "--go-compare") == 0)
			go_compare = 1;
		else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
			filter = argv[++i];
		else {
			fprintf(stderr, "usage: bench_pagealloc [--reps N] [--min-ms MS] [--go-compare] [--filter SUBSTR]\n");
			return 2;
		}
	}
	if (reps == 0 || reps > 1000 || min_ms <= 0) {
		fprintf(stderr, "bench_pagealloc: --reps must be 1..1000 and --min-ms positive\n");
		return 2;
	}
	register_all();
	if (!go_compare)
		printf("%-52s %10s %10s %10s  (%u samples of >= %.0f ms, %s)\n", "benchmark", "median", "min",
		       "max", reps, min_ms, HS_ARCH_NAME);
	for (size_t i = 0; i < nbenches; i++) {
		const bench *b = &benches[i];
		if ((go_compare && !is_go_comparable(b->name)) || (filter && !strstr(b->name, filter)))
			continue;
		double s[1000];
		for (unsigned r = 0; r < reps; r++)
			s[r] = sample(b, min_ms);
		qsort(s, reps, sizeof s[0], cmp_double);
		if (go_compare)
			printf("%s %.3f\n", b->name, s[reps / 2]);
		else
			printf("%-52s %7.2f ns %7.2f ns %7.2f ns\n", b->name, s[reps / 2], s[0], s[reps - 1]);
		fflush(stdout);
	}
	return sink == 42; /* keep the results alive */
}
