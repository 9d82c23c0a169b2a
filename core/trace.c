/*
 * core/trace.c — the tracer's emitters, the USDT probe sites and their
 * semaphores, the sampler thread, and the span-table hash (see core/trace.h).
 *
 * Every emitter is generated from the event table: one function, one USDT site
 * (provider "heapscope", the event's name, six arguments), one ring write. The
 * semaphores live in the .probes section where the probe notes point, so a
 * tracer attaching through libbpf finds and raises them.
 *
 * The sampler thread wakes every 100 ms and emits a statistics sample and a
 * digest. A digest is taken under heap.lock (summaries) and the order lock (the
 * span-table hash), so it describes the heap exactly between two records.
 *
 * Fork: the order lock is held across fork so the child's copy is consistent;
 * the child re-reads its pid, forgets its parent's thread ids, emits proc_start
 * and starts its own sampler on demand.
 */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "heapscope/heapscope.h"
#include "ring.h"
#include "splitmix.h"
#include "trace.h"

/* Set at init, and to off when the process's tracing ends (hs_trace_finish):
 * read relaxed at every site, so a thread may emit one more record after. */
_Atomic int hs_trace_level;

#define SEMAPHORE_(NAME, name, ...)                                                                \
	volatile unsigned short heapscope_##name##_semaphore __attribute__((section(".probes"), used));
HS_EVENT_TABLE(SEMAPHORE_)

static struct {
	hs_ring_hdr *ring;
	uint32_t pid;
	_Atomic uint32_t generation; /* bumped in a forked child: thread ids are stale */
	atomic_flag order;	     /* the order lock: span events and the digest */
	uint64_t span_hash, nspans;  /* order lock */
	_Atomic int sampler_started;
	pthread_mutex_t sample_mu; /* a sample and the end of tracing exclude each other */
	int finished;		   /* sample_mu */
} tracer = { .order = ATOMIC_FLAG_INIT, .sample_mu = PTHREAD_MUTEX_INITIALIZER };

static __thread uint64_t tls_tid __attribute__((tls_model("initial-exec")));
/* The seq of this thread's last record; a fork child reads its parent's proc_fork here. */
static __thread uint64_t tls_last_seq __attribute__((tls_model("initial-exec")));

static uint32_t thread_id(void)
{
	uint64_t gen = atomic_load_explicit(&tracer.generation, memory_order_relaxed);
	if (__builtin_expect((tls_tid >> 32) != gen + 1, 0))
		tls_tid = (gen + 1) << 32 | (uint32_t)syscall(SYS_gettid);
	return (uint32_t)tls_tid;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void order_lock(void)
{
	while (atomic_flag_test_and_set_explicit(&tracer.order, memory_order_acquire))
		;
}

static void order_unlock(void)
{
	atomic_flag_clear_explicit(&tracer.order, memory_order_release);
}

static void emit(unsigned kind, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	hs_ring_hdr *r = tracer.ring;
	uint64_t seq;
	hs_event *e;
	if (r == NULL || (e = hs_ring_reserve(r, &seq)) == NULL)
		return;
	e->ts = now_ns();
	e->pid = tracer.pid;
	e->tid = thread_id();
	e->kind = (uint16_t)kind;
	e->flags = 0;
	e->reserved = 0;
	e->arg[0] = a0;
	e->arg[1] = a1;
	e->arg[2] = a2;
	e->arg[3] = a3;
	e->arg[4] = a4;
	e->arg[5] = a5;
	hs_ring_publish(e, seq);
	tls_last_seq = seq;
}

#define EMITTER_(NAME, name, kind, level, nargs, ...)                                              \
	void hs_trace_emit_##name(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, \
				  uint64_t a5)                                                     \
	{                                                                                          \
		STAP_PROBE6(heapscope, name, a0, a1, a2, a3, a4, a5);                              \
		if (atomic_load_explicit(&hs_trace_level, memory_order_relaxed) >= HS_EVL_##level)   \
			emit(HS_EV_##NAME, a0, a1, a2, a3, a4, a5);                                \
	}
HS_EVENT_TABLE(EMITTER_)

uint64_t hs_trace_span_term(uintptr_t base, uintptr_t npages, unsigned spanclass)
{
	uint64_t st = (uint64_t)base ^ ((uint64_t)npages << 48) ^ ((uint64_t)spanclass << 40);
	return hs_splitmix64(&st);
}

void hs_trace_span(unsigned kind, uintptr_t base, uintptr_t npages, unsigned spanclass, unsigned state)
{
	order_lock();
	uint64_t term = hs_trace_span_term(base, npages, spanclass);
	if (kind == HS_EV_SPAN_ALLOC) {
		tracer.span_hash += term;
		tracer.nspans++;
		HS_TRACE(span_alloc, base, npages, spanclass, state);
	} else {
		tracer.span_hash -= term;
		tracer.nspans--;
		HS_TRACE(span_free, base, npages, spanclass, state);
	}
	order_unlock();
}

/* Resident bytes of this process, from /proc/self/statm (no allocation). */
static uint64_t rss_bytes(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	unsigned long long size, resident;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* A statistics sample and a digest; sample_mu held. */
static void sample_locked(void)
{
	hs_heap_stats_t st;
	hs_heap_stats(&st);
	HS_TRACE(stats, st.in_use, st.free, st.released, st.sys, rss_bytes(), st.metadata);

	uint64_t nchunks;
	hs_lock(&hs_heap.lock);
	order_lock();
	uint64_t sums = hs_pagealloc_digest(&hs_heap.pages, &nchunks);
	HS_TRACE(digest, sums, tracer.span_hash, tracer.nspans, nchunks);
	order_unlock();
	hs_unlock(&hs_heap.lock);
}

/* Returns 0 once tracing has ended. */
static int sample(void)
{
	pthread_mutex_lock(&tracer.sample_mu);
	int on = !tracer.finished && atomic_load(&hs_trace_level) != HS_EVL_OFF;
	if (on)
		sample_locked();
	pthread_mutex_unlock(&tracer.sample_mu);
	return on;
}

void hs_trace_sample(void)
{
	sample();
}

static void *sampler(void *arg)
{
	(void)arg;
	do {
		struct timespec d = { 0, 100 * 1000 * 1000 };
		nanosleep(&d, NULL);
	} while (sample());
	return NULL;
}

void hs_trace_start_sampler(void)
{
	if (__builtin_expect(atomic_load_explicit(&hs_trace_level, memory_order_relaxed) == HS_EVL_OFF ||
				     atomic_load_explicit(&tracer.sampler_started, memory_order_acquire),
			     1))
		return;
	int expected = 0;
	if (!atomic_compare_exchange_strong(&tracer.sampler_started, &expected, 1))
		return;
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, sampler, NULL) != 0)
		hs_print("heapscope: cannot start the trace sampler; no statistics samples\n");
	pthread_attr_destroy(&a);
}

void hs_trace_finish(int status)
{
	pthread_mutex_lock(&tracer.sample_mu);
	if (!tracer.finished && atomic_load(&hs_trace_level) != HS_EVL_OFF) {
		tracer.finished = 1;
		sample_locked();
		HS_TRACE(proc_end, (uint64_t)(unsigned)status);
		atomic_store(&hs_trace_level, HS_EVL_OFF);
	}
	pthread_mutex_unlock(&tracer.sample_mu);
}

/*
 * Fork: heap.lock and the order lock are held across it, so that no page or
 * span event of the parent falls between its proc_fork and the fork itself:
 * the child's heap is the parent's as of proc_fork, and its proc_start names
 * that event. (The child also gets a heap.lock nobody holds.)
 */
static void fork_prepare(void)
{
	hs_lock(&hs_heap.lock);
	order_lock();
	tls_last_seq = 0;
	HS_TRACE(proc_fork, tracer.pid);
}

static void fork_parent(void)
{
	order_unlock();
	hs_unlock(&hs_heap.lock);
}

static void fork_child(void)
{
	uint32_t ppid = tracer.pid;
	uint64_t fork_seq = tls_last_seq;
	tracer.pid = (uint32_t)getpid();
	atomic_fetch_add(&tracer.generation, 1);
	atomic_store(&tracer.sampler_started, 0);
	pthread_mutex_init(&tracer.sample_mu, NULL);
	order_unlock();
	hs_unlock(&hs_heap.lock);
	HS_TRACE(proc_start, tracer.pid, ppid, (uint64_t)atomic_load(&hs_trace_level), fork_seq);
}

static void finish_at_exit(void)
{
	hs_trace_finish(0);
}

void hs_trace_init_from_env(void)
{
	const char *v = getenv("HEAPSCOPE_TRACE_FD");
	if (v == NULL || *v == '\0')
		return;
	char *end;
	long fd = strtol(v, &end, 10);
	hs_ring_hdr *r = NULL;
	if (*end != '\0' || fd < 0 || fd > 1 << 20 || (r = hs_ring_map((int)fd)) == NULL) {
		hs_print("heapscope: HEAPSCOPE_TRACE_FD=%s is not a heapscope trace ring; tracing is off\n", v);
		return;
	}
	tracer.ring = r;
	tracer.pid = (uint32_t)getpid();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	atexit(finish_at_exit);
	atomic_store(&hs_trace_level, (int)r->level);
	HS_TRACE(proc_start, tracer.pid, (uint64_t)getppid(), r->level, 0);
}
