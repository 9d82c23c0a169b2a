/*
 * tests/unit/oracle.h — slow, obviously correct versions of the page allocator's
 * bit tricks (Go's SummarizeSlow and friends), and the helpers every unit test
 * shares. The oracles work one page at a time, so a reader can check them by eye;
 * the fast code is tested against them.
 */
#ifndef HS_TEST_ORACLE_H
#define HS_TEST_ORACLE_H

#include <stdint.h>

#include "heapscope/pagealloc.h"
#include "pallocbits.h"

/* Page i of a 512-page bitmap: 1 = allocated. */
unsigned oracle_bit(const uint64_t w[8], unsigned i);

/* Longest run of 1 bits in x, one bit at a time. */
unsigned oracle_max_run64(uint64_t x);
/* Lowest start of n consecutive 1 bits in x, or 64. */
unsigned oracle_find_bit_range64(uint64_t x, unsigned n);
/* (start, max, end) of the free pages, page by page. */
hs_pam_sum oracle_summarize(const uint64_t w[8]);
/* First run of npages free pages starting at or after page `from`, or ~0u. */
unsigned oracle_find(const uint64_t w[8], unsigned npages, unsigned from);
/*
 * (start, max, end) of the free pages of a bitmap of any length (npages bits in
 * w[], 1 = allocated). merge(summaries of the parts) must equal this of the whole,
 * which is how merging is tested.
 */
hs_pam_sum oracle_summarize_n(const uint64_t *w, unsigned long npages);

/* A deterministic generator (splitmix64) so that every random test is seeded. */
uint64_t oracle_rand(uint64_t *state);

/*
 * A random 512-page chunk bitmap (1 = allocated) in one of ORACLE_CHUNK_MODES
 * styles, drawn from *seed: wholly free; each word the AND or the OR of up to
 * four random words (1/16, 1/8, 1/4, 1/2, 3/4, 7/8, 15/16 of the pages
 * allocated); wholly allocated; or alternating allocated and free runs of 1 to
 * 6, 8, 64, 70, 250 or 300 pages. mode is taken modulo ORACLE_CHUNK_MODES.
 */
#define ORACLE_CHUNK_MODES 15
void oracle_random_chunk(uint64_t w[8], unsigned mode, uint64_t *seed);

/*
 * Runs fn(arg) in a child process and returns 1 if the child was killed by
 * SIGABRT and its stderr contains `want`; the child's stderr is copied into
 * out (NUL-terminated, truncated to outlen).
 */
int oracle_expect_abort(void (*fn)(void *), void *arg, const char *want, char *out, size_t outlen);

/* Defined in sanitizer builds (gcc names them with macros, clang with
 * __has_feature), where RSS also counts the sanitizer's shadow memory. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#endif

/* Fails the current cmocka test with the checker's message if p is inconsistent. */
#define CHECK_INVARIANTS(p)                                                   \
	do {                                                                  \
		char msg_[256];                                               \
		if (hs_pam_check((p), msg_, sizeof msg_) != 0)                \
			fail_msg("invariant violated: %s", msg_);             \
	} while (0)

/* Fails the current cmocka test with hs_heap_check's message if the heap is
 * inconsistent (exact only while no other thread allocates). */
#define HEAP_CHECK()                                                  \
	do {                                                          \
		char msg_[256];                                       \
		if (hs_heap_check(msg_, sizeof msg_) != 0)            \
			fail_msg("heap invariant violated: %s", msg_); \
	} while (0)

/* The process's resident bytes, from /proc/self/statm; aborts if unreadable. */
uint64_t oracle_rss_bytes(void);
/* The process's threads, from /proc/self/status; -1 if unreadable. */
long oracle_threads(void);

#endif /* HS_TEST_ORACLE_H */
