/*
 * shim/preload.c — libheapscope-preload.so: heapscope's heap as the C library's
 * malloc, for any dynamically linked program (LD_PRELOAD). docs/hosting.md is
 * the user's guide; this essay is the engineer's.
 *
 * What it is. The core's hs_malloc family (include/heapscope/heapscope.h,
 * core/malloc.c) under the names the C library exports, so that the dynamic
 * linker binds every malloc of the program, of its libraries and of glibc
 * itself (strdup, fopen, the loader's own tables once it is running) to the
 * heap. libstdc++'s operator new and delete call malloc and free, so C++ needs
 * nothing more. The library is linked from the core's release objects through
 * their archive with --exclude-libs, so that only the names below are exported:
 * the core's hs_ symbols are local, calls into them are direct, and a program
 * that links libheapscope itself keeps its own copy apart.
 *
 * Semantics: glibc 2.36's (Debian 12), name by name:
 *
 *   malloc(0)                 a unique object (1 byte, the 8-byte class)
 *   calloc(n, size)           NULL, ENOMEM when n * size overflows
 *   realloc(NULL, n)          malloc(n)
 *   realloc(p, 0)             frees p, returns NULL (glibc's REALLOC_ZERO_BYTES_FREES)
 *   reallocarray(p, n, size)  NULL, ENOMEM on overflow; else realloc
 *   free(NULL)                nothing
 *   memalign(a, n)            a <= 8: malloc; a not a power of two: rounded up to
 *                             one (glibc does); a > SIZE_MAX/2 + 1: NULL, EINVAL
 *   aligned_alloc(a, n)       as memalign (in glibc 2.36 it is memalign; 2.38
 *                             rejects a non-power-of-two with EINVAL instead)
 *   posix_memalign(&p, a, n)  returns EINVAL unless a is a power of two and a
 *                             multiple of sizeof(void *); ENOMEM; errno untouched
 *   valloc(n), pvalloc(n)     aligned to the system page (4 KiB); pvalloc rounds n
 *                             up to whole pages, NULL with ENOMEM on overflow
 *   malloc_usable_size(p)     the object's size class; 0 for NULL
 *   every failure             NULL with errno ENOMEM, the heap unchanged
 *
 * Alignment: every object is aligned to 8 bytes and to its size class's natural
 * alignment, so every object of 16 bytes or more is 16-byte aligned except those
 * of 17..24 bytes (Go's 24-byte class, which mimalloc has too); glibc aligns all
 * to 16. Bad frees are reported and abort, as core/malloc.c documents
 * (HEAPSCOPE_BADFREE=warn prints and ignores them).
 *
 * Also exported, because glibc programs call them: cfree, the __libc_ names
 * (some programs call __libc_malloc to reach the "real" malloc; it is this one),
 * free_sized and free_aligned_sized (C23), mallopt (accepted, ignored: 1),
 * malloc_trim (sweeps and releases every free page: hs_heap_scavenge_all),
 * mallinfo, mallinfo2, malloc_stats and malloc_info (the heap's statistics in
 * glibc's shapes).
 *
 * Before constructors run. The first call may come from the dynamic loader or a
 * library's constructor, before this library's own constructor, so nothing here
 * depends on one: the heap initializes lazily on the first allocation, and each
 * thread's cache on the thread's first (core/mheap.c, hs_mallocinit; core/
 * mcache.c), and what mallocinit calls that may
 * itself allocate (pthread_atfork, atexit) comes back into a heap that can
 * already serve it (a per-thread guard, see hs_mallocinit). The background
 * threads (scavenger, trace sampler) start at the first span, never under a
 * heap lock.
 *
 * Fork: core/mheap.c holds every heap lock across fork and resets the child;
 * the tracer emits proc_fork and the child's proc_start (core/trace.c).
 * Threads: an exiting thread's mcache is flushed by its pthread key destructor
 * (core/mcache.c). Exec: the new image maps the same ring from the inherited
 * HEAPSCOPE_TRACE_FD (not close-on-exec) and becomes a new heap of the session.
 *
 * The trace descriptor of an exec'd process. Programs often close every
 * descriptor above 2 before exec (Python's subprocess does by default). Then
 * HEAPSCOPE_TRACE_FD names a closed descriptor, or one reused for some other
 * file. At the first allocation, before the heap and its tracer initialize,
 * check_trace_fd looks: if the descriptor is not a trace ring but is closed and
 * HEAPSCOPE_TRACE_PATH names the recorder's copy (/proc/PID/fd/N, which
 * `heapscope run -- PROGRAM` sets), the ring is opened again on the same
 * number; otherwise the variable's value is emptied in place, so that the
 * process (and its children) run untraced and say nothing, rather than print a
 * warning into the program's stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "heapscope/heapscope.h"
#include "ring.h"

/* Exported names no header of this glibc declares. */
void cfree(void *p);
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
int __posix_memalign(void **out, size_t align, size_t size);

/* The system page valloc and pvalloc align to (glibc's dl_pagesize, not the
 * heap's 8 KiB page). */
#define SYS_PAGE 4096

/* --- first use --------------------------------------------------------------------- */

static int is_ring(int fd)
{
	uint64_t magic;
	return pread(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic && magic == HS_RING_MAGIC;
}

/* See the essay: makes HEAPSCOPE_TRACE_FD name a ring, or empties it. */
static void check_trace_fd(void)
{
	char *v = getenv("HEAPSCOPE_TRACE_FD");
	if (v == NULL || *v == '\0')
		return;
	char *end;
	long fd = strtol(v, &end, 10);
	if (*end != '\0' || fd < 0 || fd > 1 << 20)
		return; /* malformed: the tracer reports it */
	if (is_ring((int)fd))
		return;
	const char *path = getenv("HEAPSCOPE_TRACE_PATH");
	if (path != NULL && *path != '\0' && fcntl((int)fd, F_GETFD) == -1 && errno == EBADF) {
		int r = open(path, O_RDWR);
		if (r >= 0 && r != (int)fd) {
			if (dup2(r, (int)fd) < 0) {
				close(r);
				r = -1;
			} else {
				close(r);
			}
		}
		if (r >= 0 && is_ring((int)fd))
			return;
		if (r >= 0)
			close((int)fd);
	}
	*v = '\0';
}

/* 0: not checked; 1: a thread is checking; 2: done. */
static _Atomic int checked;

/* The calling thread has no mcache yet: its first allocation. The process's
 * very first one checks the trace descriptor before the heap (and with it the
 * tracer) initializes; a thread that comes meanwhile waits for the check (the
 * tracer must not read the variable half-repaired). errno is left as it was. */
__attribute__((noinline, cold)) static void first_use(void)
{
	if (atomic_load_explicit(&checked, memory_order_acquire) == 2)
		return;
	int saved = errno, expected = 0;
	if (atomic_compare_exchange_strong(&checked, &expected, 1)) {
		check_trace_fd();
		atomic_store_explicit(&checked, 2, memory_order_release);
	} else {
		while (atomic_load_explicit(&checked, memory_order_acquire) != 2)
			sched_yield();
	}
	errno = saved;
}

static inline void ensure(void)
{
	if (__builtin_expect(hs_tls_mcache == NULL, 0))
		first_use();
}

/* --- the malloc family --------------------------------------------------------------- */

/*
 * Each exported name is a small function over these, inlined: a call from one
 * exported name to another would go through the PLT (they are interposable).
 */
static inline void *do_malloc(size_t size)
{
	ensure();
	return hs_malloc(size);
}

static inline void *do_calloc(size_t n, size_t size)
{
	ensure();
	return hs_calloc(n, size);
}

static inline void *do_realloc(void *p, size_t size)
{
	ensure();
	return hs_realloc(p, size);
}

static inline void *do_memalign(size_t align, size_t size)
{
	ensure();
	if (align <= 8)
		return hs_malloc(size);
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if ((align & (align - 1)) != 0)
		align = (size_t)1 << (64 - __builtin_clzll((unsigned long long)align));
	return hs_memalign(align, size);
}

static inline int do_posix_memalign(void **out, size_t align, size_t size)
{
	ensure();
	return hs_posix_memalign(out, align, size);
}

static inline void *do_pvalloc(size_t size)
{
	if (size > SIZE_MAX - SYS_PAGE) {
		errno = ENOMEM;
		return NULL;
	}
	return do_memalign(SYS_PAGE, (size + SYS_PAGE - 1) & ~(size_t)(SYS_PAGE - 1));
}

void *malloc(size_t size)
{
	return do_malloc(size);
}

void free(void *p)
{
	hs_free(p);
}

void *calloc(size_t n, size_t size)
{
	return do_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	return do_realloc(p, size);
}

void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return do_realloc(p, total);
}

void *memalign(size_t align, size_t size)
{
	return do_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	return do_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	return do_posix_memalign(out, align, size);
}

void *valloc(size_t size)
{
	return do_memalign(SYS_PAGE, size);
}

void *pvalloc(size_t size)
{
	return do_pvalloc(size);
}

size_t malloc_usable_size(void *p)
{
	return hs_malloc_usable_size(p);
}

void cfree(void *p)
{
	hs_free(p);
}

void free_sized(void *p, size_t size)
{
	(void)size;
	hs_free(p);
}

void free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	(void)size;
	hs_free(p);
}

void *__libc_malloc(size_t size)
{
	return do_malloc(size);
}

void __libc_free(void *p)
{
	hs_free(p);
}

void *__libc_calloc(size_t n, size_t size)
{
	return do_calloc(n, size);
}

void *__libc_realloc(void *p, size_t size)
{
	return do_realloc(p, size);
}

void *__libc_memalign(size_t align, size_t size)
{
	return do_memalign(align, size);
}

void *__libc_valloc(size_t size)
{
	return do_memalign(SYS_PAGE, size);
}

void *__libc_pvalloc(size_t size)
{
	return do_pvalloc(size);
}

int __posix_memalign(void **out, size_t align, size_t size)
{
	return do_posix_memalign(out, align, size);
}

/* --- glibc's tuning and statistics calls ------------------------------------------ */

int mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1;
}

int malloc_trim(size_t pad)
{
	(void)pad;
	ensure();
	return hs_heap_scavenge_all() != 0;
}

/* glibc's fields, filled from the heap's statistics: arena the bytes the heap
 * has grown into plus its metadata, uordblks the bytes in spans, fordblks the
 * free bytes, keepcost the free bytes not released to the OS; counts of chunks
 * have no equivalent and are 0, except hblks/hblkhd (large objects live). */
struct mallinfo2 mallinfo2(void)
{
	hs_heap_stats_t st;
	hs_heap_stats(&st);
	struct mallinfo2 mi = { 0 };
	mi.arena = st.sys;
	mi.uordblks = st.in_use;
	mi.fordblks = st.free;
	mi.keepcost = st.free - st.released;
	mi.hblks = st.large_allocs - st.large_frees;
	return mi;
}

struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi = { 0 };
	mi.arena = (int)m2.arena;
	mi.uordblks = (int)m2.uordblks;
	mi.fordblks = (int)m2.fordblks;
	mi.keepcost = (int)m2.keepcost;
	mi.hblks = (int)m2.hblks;
	return mi;
}

void malloc_stats(void)
{
	hs_heap_stats_t st;
	hs_heap_stats(&st);
	hs_print("heapscope heap:\nsystem bytes     = %10llu\nin use bytes     = %10llu\n"
		 "free bytes       = %10llu\nreleased bytes   = %10llu\n",
		 (unsigned long long)st.sys, (unsigned long long)st.in_use, (unsigned long long)st.free,
		 (unsigned long long)st.released);
}

int malloc_info(int options, FILE *fp)
{
	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	hs_heap_stats_t st;
	hs_heap_stats(&st);
	fprintf(fp,
		"<malloc version=\"1\" allocator=\"heapscope\">\n"
		"<total type=\"in_use\" size=\"%llu\"/>\n<total type=\"free\" size=\"%llu\"/>\n"
		"<total type=\"released\" size=\"%llu\"/>\n<system type=\"current\" size=\"%llu\"/>\n"
		"</malloc>\n",
		(unsigned long long)st.in_use, (unsigned long long)st.free, (unsigned long long)st.released,
		(unsigned long long)st.sys);
	return 0;
}
