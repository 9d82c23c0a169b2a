/*
 * tests/hosted/semantics.c — the malloc family's glibc semantics, checked from
 * a program run under the LD_PRELOAD shim (shim/preload.c lists them). One
 * "ok NAME" or "not ok NAME: why" line per check; exit 1 if any failed.
 *
 * Usage: semantics        the checks
 *        semantics badfree   frees a pointer the heap never returned (the
 *                             heap reports it and aborts, or with
 *                             HEAPSCOPE_BADFREE=warn ignores it and the
 *                             program prints "survived")
 *        semantics doublefree  likewise for a double free
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failed;

static void check(const char *name, int ok, const char *why)
{
	if (ok) {
		printf("ok %s\n", name);
	} else {
		printf("not ok %s: %s\n", name, why);
		failed = 1;
	}
}

/* A size the compiler cannot see, so that it neither warns about nor folds the
 * impossible requests below, nor elides a malloc and free it can pair. */
static size_t opaque(size_t n)
{
	volatile size_t v = n;
	return v;
}

static int aligned(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

/* The allocator really is the shim: malloc resolves into libheapscope-preload.so. */
static void check_interposed(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	int ok = sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL &&
		 strstr(info.dli_fname, "libheapscope-preload") != NULL;
	check("malloc is heapscope's", ok, ok ? "" : "malloc resolves elsewhere");
}

static void check_basics(void)
{
	void *p = malloc(0);
	check("malloc(0) is a unique object", p != NULL && malloc_usable_size(p) >= 1, "NULL");
	free(p);
	free(NULL);
	check("free(NULL)", 1, "");

	errno = 0;
	p = malloc(opaque(SIZE_MAX));
	check("malloc(SIZE_MAX) is NULL, ENOMEM", p == NULL && errno == ENOMEM, "wrong result");
	errno = 0;
	p = calloc(opaque(SIZE_MAX / 2), 3);
	check("calloc overflow is NULL, ENOMEM", p == NULL && errno == ENOMEM, "wrong result");
	unsigned char *c = calloc(1000, 10);
	int zero = c != NULL;
	for (size_t i = 0; zero && i < 10000; i++)
		zero = c[i] == 0;
	check("calloc zeroes", zero, "non-zero byte");
	free(c);

	/* Dirty memory, then calloc of the same size must still be zero. */
	for (int k = 0; k < 100; k++) {
		unsigned char *d = malloc(40000);
		memset(d, 0xab, 40000);
		free(d);
		unsigned char *e = malloc(200);
		memset(e, 0xcd, 200);
		free(e);
	}
	c = calloc(1, 40000);
	unsigned char *c2 = calloc(200, 1);
	zero = c != NULL && c2 != NULL;
	for (size_t i = 0; zero && i < 40000; i++)
		zero = c[i] == 0 && (i >= 200 || c2[i] == 0);
	check("calloc after frees zeroes", zero, "non-zero byte");
	free(c);
	free(c2);

	for (size_t n = 1; n <= 1 << 20; n = n * 3 + 1) {
		void *q = malloc(n);
		if (q == NULL || !aligned(q, n >= 16 && (n <= 16 || n > 24) ? 16 : 8) || malloc_usable_size(q) < n) {
			check("malloc alignment and usable size", 0, "misaligned or short");
			return;
		}
		memset(q, 1, n);
		free(q);
	}
	check("malloc alignment and usable size", 1, "");
}

static void check_realloc(void)
{
	char *p = realloc(NULL, 10);
	check("realloc(NULL, n) allocates", p != NULL, "NULL");
	strcpy(p, "123456789");
	for (size_t n = 20; n < 200000; n *= 3) {
		p = realloc(p, n);
		if (p == NULL || strcmp(p, "123456789") != 0) {
			check("realloc keeps the contents", 0, "changed");
			return;
		}
	}
	p = realloc(p, 5);
	check("realloc keeps the contents", p != NULL && memcmp(p, "12345", 5) == 0, "changed");
	errno = 0;
	char *q = realloc((char *)opaque((size_t)p), opaque(SIZE_MAX / 2));
	check("realloc failure keeps the object", q == NULL && errno == ENOMEM && memcmp(p, "12345", 5) == 0,
	      "wrong result");
	q = realloc((char *)opaque((size_t)p), 0);
	check("realloc(p, 0) frees and is NULL", q == NULL, "not NULL");

	errno = 0;
	p = reallocarray(NULL, opaque(SIZE_MAX / 4), 8);
	check("reallocarray overflow is NULL, ENOMEM", p == NULL && errno == ENOMEM, "wrong result");
	p = reallocarray(NULL, 10, 10);
	check("reallocarray allocates", p != NULL && malloc_usable_size(p) >= 100, "NULL");
	free(p);
}

static void check_aligned(void)
{
	static const size_t aligns[] = { 8, 16, 32, 64, 256, 4096, 8192, 65536, 1 << 20 };
	static const size_t sizes[] = { 0, 1, 24, 100, 5000, 40000, 300000 };
	for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
		for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
			size_t a = aligns[i], n = sizes[j];
			void *p = NULL, *q = memalign(a, n), *r = aligned_alloc(a, n);
			int rc = posix_memalign(&p, a, n);
			if (rc != 0 || p == NULL || q == NULL || r == NULL || !aligned(p, a) || !aligned(q, a) ||
			    !aligned(r, a) || malloc_usable_size(p) < n) {
				printf("  align %zu size %zu: %p %p %p rc %d\n", a, n, p, q, r, rc);
				check("memalign, aligned_alloc, posix_memalign", 0, "misaligned");
				return;
			}
			memset(p, 1, n);
			free(p);
			free(q);
			free(r);
		}
	}
	check("memalign, aligned_alloc, posix_memalign", 1, "");

	void *p = (void *)1;
	errno = 1234;
	int rc = posix_memalign(&p, 3, 10);
	check("posix_memalign(3) is EINVAL, errno untouched", rc == EINVAL && p == (void *)1 && errno == 1234,
	      "wrong result");
	rc = posix_memalign(&p, 4, 10);
	check("posix_memalign(4) is EINVAL", rc == EINVAL, "accepted");
	errno = 1234;
	rc = posix_memalign(&p, 64, opaque(SIZE_MAX / 2));
	check("posix_memalign failure is ENOMEM, errno untouched", rc == ENOMEM && errno == 1234, "wrong result");

	void *q = memalign(24, 10);
	check("memalign rounds the alignment up", q != NULL && aligned(q, 32), "misaligned");
	free(q);
	errno = 0;
	q = memalign(SIZE_MAX / 2 + 2, 10);
	check("memalign of a huge alignment is EINVAL", q == NULL && errno == EINVAL, "wrong result");
	errno = 0;
	q = memalign((size_t)1 << 62, 10);
	check("memalign(2^62) is NULL, ENOMEM", q == NULL && errno == ENOMEM, "wrong result");

	q = valloc(10);
	check("valloc is page-aligned", q != NULL && aligned(q, 4096), "misaligned");
	free(q);
	q = pvalloc(5000);
	check("pvalloc rounds to pages", q != NULL && aligned(q, 4096) && malloc_usable_size(q) >= 8192,
	      "misaligned or short");
	free(q);
	errno = 0;
	q = pvalloc(opaque(SIZE_MAX - 10));
	check("pvalloc overflow is NULL, ENOMEM", q == NULL && errno == ENOMEM, "wrong result");
}

static void check_extras(void)
{
	check("mallopt accepts", mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1, "refused");
	void *big = malloc(50 << 20);
	memset(big, 1, 50 << 20);
	free(big);
	struct mallinfo2 mi = mallinfo2();
	check("mallinfo2 reports the heap", mi.arena > 0, "empty");
	check("malloc_trim runs", malloc_trim(0) >= 0, "");
	check("malloc_usable_size(NULL) is 0", malloc_usable_size(NULL) == 0, "not 0");
	/* The dynamic loader allocates its link maps and scopes through the shim,
	 * and frees them at dlclose. */
	int loaded = 1;
	for (int k = 0; k < 3 && loaded; k++) {
		void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
		loaded = h != NULL && dlsym(h, "cos") != NULL && dlclose(h) == 0;
	}
	check("dlopen and dlclose (the loader allocating)", loaded, dlerror());
	char *s = strdup("glibc's own allocations");
	check("strdup (glibc allocating through the shim)", s != NULL && malloc_usable_size(s) >= 24, "short");
	free(s);
}

/* The signals a thread blocks, from /proc/self/task/TID/status; 0 if unreadable. */
static unsigned long long blocked_signals(const char *tid)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
	FILE *f = fopen(path, "r");
	unsigned long long blk = 0;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "SigBlk: %llx", &blk) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return blk;
}

/* The heap's own threads (the scavenger, started with the first span, and the
 * sweeper and the tracer's sampler when they run) block the program's
 * signals: a process-directed signal such as SIGCHLD must reach a thread of
 * the program, which may be waiting for it in sigsuspend, as without the shim. */
static void check_heap_threads_block_signals(void)
{
	static const int sigs[] = { SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGALRM, SIGUSR1, SIGWINCH };
	unsigned long long want = 0;
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		want |= 1ull << (sigs[i] - 1);
	char self[16], why[96] = "";
	snprintf(self, sizeof self, "%d", (int)getpid());
	int others = 0, open_signals = 0;
	DIR *d = opendir("/proc/self/task");
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
			continue;
		others++;
		unsigned long long blk = blocked_signals(e->d_name);
		if ((blk & want) != want) {
			open_signals++;
			snprintf(why, sizeof why, "thread %s blocks only %llx", e->d_name, blk);
		}
	}
	if (d != NULL)
		closedir(d);
	if (others == 0)
		snprintf(why, sizeof why, "no thread besides main (the scavenger did not start)");
	char name[96];
	snprintf(name, sizeof name, "the heap's threads block the program's signals (%d threads)", others);
	check(name, others > 0 && open_signals == 0, why);
	sigset_t mine;
	pthread_sigmask(SIG_BLOCK, NULL, &mine);
	check("the main thread's mask is the program's", !sigismember(&mine, SIGCHLD), "SIGCHLD blocked");
	/* glibc's setuid signals every thread with an internal signal and waits for
	 * each to answer: blocking that one too would hang the program here. */
	check("setuid and setgid return with the heap's threads running",
	      setgid(getgid()) == 0 && setuid(getuid()) == 0, strerror(errno));
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "badfree") == 0) {
		static char not_heap[64];
		free((char *)opaque((size_t)(not_heap + 16)));
		printf("survived\n");
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "doublefree") == 0) {
		char *p = malloc(opaque(100));
		free((char *)opaque((size_t)p));
		free((char *)opaque((size_t)p));
		printf("survived\n");
		return 0;
	}
	check_interposed();
	check_basics();
	check_realloc();
	check_aligned();
	check_extras();
	check_heap_threads_block_signals();
	return failed;
}
