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
 * Buffered events. The events nothing is replayed from — sweep, mcentral_move,
 * mcache_refill/flush, malloc, free — are far the most frequent (a sweep every
 * few allocations under churn; two per malloc/free pair at object level). A
 * record written straight into the shared ring costs a locked add (which waits
 * for the previous record's stores to reach memory), a clock read and two cache
 * lines another core reads next: about 150 ns each, measured. So each thread
 * collects these in a buffer of its own (BUF_EVENTS records, stamped with the
 * TSC) and moves the whole buffer into the ring with one reservation of
 * consecutive tickets, converting the stamps to CLOCK_MONOTONIC nanoseconds
 * there. A thread flushes before any ordered event of its own, so each thread's
 * records stay in its program order; across threads a buffered record may come
 * after records that happened later. A buffer is flushed when full, at thread
 * exit and at the end of tracing; records of other threads still buffered when
 * the process exits are not recorded.
 *
 * Fork: heap.lock and the order lock are held across fork (see fork_prepare);
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
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "heap.h"
#include "heapscope/heapscope.h"
#include "ring.h"
#include "splitmix.h"
#include "trace.h"

/* Set at init, and to off when the process's tracing ends (hs_trace_finish):
 * read relaxed at every site, so a thread may emit one more record after. */
_Atomic int hs_trace_level;
/* The sampler thread runs (or is being started): read inline at every refill
 * (hs_trace_start_sampler in trace.h). */
_Atomic int hs_trace_sampler_running;

#define SEMAPHORE_(NAME, name, ...)                                                                \
	volatile unsigned short heapscope_##name##_semaphore __attribute__((section(".probes"), used));
HS_EVENT_TABLE(SEMAPHORE_)

static struct {
	hs_ring_hdr *ring;
	uint32_t pid;
	_Atomic uint32_t generation; /* bumped in a forked child: thread ids are stale */
	atomic_flag order;	     /* the order lock: span events and the digest */
	uint64_t span_hash, nspans;  /* order lock */
	pthread_mutex_t sample_mu; /* a sample and the end of tracing exclude each other */
	int finished;		   /* sample_mu */
	int snapped;		   /* the attached tracer has its snapshot; sample_mu */
	uint64_t tsc0, ns0;	   /* the TSC and the clock read together at init */
	atomic_flag bufs_lock;	   /* the free buffers */
	struct tbuf *free_bufs;
	_Atomic uint64_t populated; /* bytes of the ring mapped in this process, from its start */
} tracer = { .order = ATOMIC_FLAG_INIT, .sample_mu = PTHREAD_MUTEX_INITIALIZER, .bufs_lock = ATOMIC_FLAG_INIT };

#define BUF_EVENTS 64

/* A TSC read every STAMP_EVERY records, the others' times interpolated
 * between: a read costs as much as the rest of a record here (perf put it at
 * half of hs_trace_emit_sweep's samples with 8), and a group of 32 spans a few
 * microseconds to tens of microseconds under load. */
#define STAMP_EVERY 32

/* A buffered record: what the site knows. The rest of an hs_event (seq, time,
 * pid, tid) is filled in as the record goes into the ring. */
typedef struct brec {
	uint64_t arg[HS_EVENT_MAX_ARGS];
	uint64_t kind;
} brec;

typedef struct tbuf {
	uint32_t n;
	struct tbuf *next; /* in free_bufs */
	uint64_t stamp[BUF_EVENTS / STAMP_EVERY]; /* stamp() at records 0, STAMP_EVERY, ... */
	brec ev[BUF_EVENTS];
} tbuf;

static __thread tbuf *tls_buf __attribute__((tls_model("initial-exec")));
/* The time of this thread's last record: estimated times never go below it. */
static __thread uint64_t tls_last_ts __attribute__((tls_model("initial-exec")));

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

/* A cheap timestamp for buffered records: the TSC where there is one. */
static uint64_t stamp(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	return now_ns();
#endif
}

/* Nanoseconds per stamp() tick, given both clocks read now: measured over the
 * whole time since init, so it only gets better; a buffer spans microseconds,
 * so its error stays far below that. */
static double stamp_rate(uint64_t tsc_now, uint64_t ns_now)
{
#if defined(__x86_64__) || defined(__i386__)
	return tsc_now > tracer.tsc0 ? (double)(ns_now - tracer.ns0) / (double)(tsc_now - tracer.tsc0) : 0;
#else
	(void)tsc_now;
	(void)ns_now;
	return 1;
#endif
}

/* A stamp() value as CLOCK_MONOTONIC ns, counting back from (tsc_now, ns_now). */
static uint64_t stamp_to_ns(uint64_t tsc, uint64_t tsc_now, uint64_t ns_now, double rate)
{
	uint64_t back = tsc_now > tsc ? (uint64_t)((double)(tsc_now - tsc) * rate) : 0;
	return ns_now > back ? ns_now - back : 0;
}

static void spin_lock(atomic_flag *f)
{
	while (atomic_flag_test_and_set_explicit(f, memory_order_acquire))
		;
}

static void spin_unlock(atomic_flag *f)
{
	atomic_flag_clear_explicit(f, memory_order_release);
}

static void order_lock(void)
{
	spin_lock(&tracer.order);
}

static void order_unlock(void)
{
	spin_unlock(&tracer.order);
}

/*
 * Maps the ring's pages in this process ahead of its records, POPULATE_AHEAD
 * at a time, until the first lap is done. Writing each page first would take
 * a fault per page: 1.2-1.4 us each here, 6-7 ms for the default ring, 1.5% of
 * heap-level churn. One MADV_POPULATE_READ per 256 KiB maps them for about a
 * seventh of that (the fault-around maps 16 pages at a time, and a shared
 * mapping of shared memory is writable as soon as it is mapped), and only as
 * far as the process writes: a short process does not pay for the whole ring.
 * A kernel without MADV_POPULATE_READ (before 5.14) refuses it, and the pages
 * fault in one by one as before. end is the ticket after the last one taken.
 */
#define POPULATE_AHEAD ((uint64_t)256 << 10)
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static void populate_ahead(hs_ring_hdr *r, uint64_t end)
{
	uint64_t total = hs_ring_bytes(r->capacity);
	uint64_t done = atomic_load_explicit(&tracer.populated, memory_order_relaxed);
	if (__builtin_expect(done >= total, 1))
		return;
	uint64_t need = end >= r->capacity ? total : (uint64_t)((char *)hs_ring_slot(r, end) - (char *)r);
	if (need < done)
		return;
	uint64_t upto = (need + POPULATE_AHEAD) & ~(POPULATE_AHEAD - 1);
	if (upto > total)
		upto = total;
	if (!atomic_compare_exchange_strong(&tracer.populated, &done, upto))
		return; /* another thread maps this stretch */
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), from = done & ~(page - 1);
	if (madvise((char *)r + from, upto - from, MADV_POPULATE_READ) != 0)
		atomic_store(&tracer.populated, total);
}

/*
 * CLOCK_MONOTONIC at stamp() value tsc_now, for a record. The clock itself is
 * read at most once per CLOCK_EVERY_NS of this thread's records and
 * extrapolated with the TSC in between: a clock read costs a miss on the
 * kernel's time data more often than not, and at heap level it was a fifth of
 * the tracer's samples (perf, churn). Over 1 ms the extrapolation is off by
 * the TSC rate's error since init, nanoseconds.
 */
#define CLOCK_EVERY_NS 1000000.0
static __thread uint64_t tls_clock_tsc __attribute__((tls_model("initial-exec")));
static __thread uint64_t tls_clock_ns __attribute__((tls_model("initial-exec")));
static __thread double tls_clock_rate __attribute__((tls_model("initial-exec")));

static uint64_t clock_at(uint64_t tsc_now)
{
#if defined(__x86_64__) || defined(__i386__)
	double since = (double)(tsc_now - tls_clock_tsc) * tls_clock_rate;
	if (tsc_now >= tls_clock_tsc && tls_clock_rate > 0 && since < CLOCK_EVERY_NS)
		return tls_clock_ns + (uint64_t)since;
	uint64_t ns = now_ns();
	tls_clock_tsc = tsc_now;
	tls_clock_ns = ns;
	tls_clock_rate = stamp_rate(tsc_now, ns);
	return ns;
#else
	return tsc_now; /* stamp() is the clock */
#endif
}

/* The times of the buffer's records: each group of STAMP_EVERY records
 * between its stamp and the next group's (or the flush's), in proportion to a
 * record's place in the group. ns[] receives one time per record. */
static void record_times(const tbuf *b, uint64_t tsc_now, uint64_t ns_now, uint64_t *ns)
{
	uint64_t at[BUF_EVENTS / STAMP_EVERY + 1];
	uint32_t groups = (b->n + STAMP_EVERY - 1) / STAMP_EVERY;
	double rate = stamp_rate(tsc_now, ns_now);
	for (uint32_t g = 0; g < groups; g++)
		at[g] = stamp_to_ns(b->stamp[g], tsc_now, ns_now, rate);
	at[groups] = ns_now;
	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t g = i / STAMP_EVERY, j = i % STAMP_EVERY, first = g * STAMP_EVERY;
		uint64_t d = at[g + 1] > at[g] ? at[g + 1] - at[g] : 0;
		uint32_t size = b->n - first < STAMP_EVERY ? b->n - first : STAMP_EVERY;
		ns[i] = at[g] + (size == STAMP_EVERY ? d * j / STAMP_EVERY : d * j / size);
	}
}

/* Moves this thread's buffered records into the ring, in order. Each slot is
 * written field by field straight from the buffer: assembling the whole record
 * in the buffer first and copying it would read back stores still in flight
 * (measured: most of flush's time went to that). */
static void flush(tbuf *b)
{
	hs_ring_hdr *r = tracer.ring;
	uint32_t n = b->n;
	uint64_t seq;
	if (r == NULL || n == 0 || hs_ring_reserve_n(r, n, &seq) != 0) {
		b->n = 0;
		return;
	}
	populate_ahead(r, seq + n);
	uint64_t ts[BUF_EVENTS];
	uint64_t tsc = stamp();
	record_times(b, tsc, clock_at(tsc), ts);
	uint32_t pid = tracer.pid, tid = thread_id();
	uint64_t last_ts = tls_last_ts;
	for (uint32_t i = 0; i < n; i++) {
		const brec *s = &b->ev[i];
		hs_event *e = hs_ring_slot(r, seq + i);
		last_ts = ts[i] > last_ts ? ts[i] : last_ts;
		e->ts = last_ts;
		e->pid = pid;
		e->tid = tid;
		e->kind = (uint16_t)s->kind;
		e->flags = 0;
		e->reserved = 0;
		memcpy(e->arg, s->arg, sizeof e->arg);
		hs_ring_publish(e, seq + i);
	}
	tls_last_ts = last_ts;
	b->n = 0;
	tls_last_seq = seq + n - 1;
}

static tbuf *new_buf(void)
{
	spin_lock(&tracer.bufs_lock);
	tbuf *b = tracer.free_bufs;
	if (b != NULL)
		tracer.free_bufs = b->next;
	spin_unlock(&tracer.bufs_lock);
	void *p;
	if (b == NULL && hs_sys_alloc(sizeof(tbuf), NULL, &p) == 0)
		b = p;
	if (b != NULL)
		b->n = 0;
	return b;
}

/*
 * Warms the ring slot that buffered record n will most likely fill: the one
 * after this thread's last record, n further on, which is right whenever no
 * other thread takes tickets before this buffer's flush. Without it, flush
 * writes slots the recorder read last (or that fell out to L3) and stalls on
 * every line (a third of the tracer's time at object level, perf); prefetched
 * one record at a time while the buffer fills, the lines are in cache by the
 * flush. A wrong guess only costs the prefetch. Record n warms slot n + 1: the
 * slot of an ordered event that flushes the buffer after it, too, and for the
 * last record the next buffer's first.
 */
static inline __attribute__((always_inline)) void prefetch_slot(uint32_t n)
{
	hs_ring_hdr *r = tracer.ring;
	if (r == NULL)
		return;
	const char *slot = (const char *)hs_ring_slot(r, tls_last_seq + 1 + n);
	/* Into L2, not L1: a buffer's worth of slots is 8 KiB of the workload's L1. */
	__builtin_prefetch(slot, 1, 2);
	__builtin_prefetch(slot + sizeof(hs_event) - 1, 1, 2);
}

/* Appends a record to b, flushing it when full. */
static inline __attribute__((always_inline)) void put(tbuf *b, unsigned kind, uint64_t a0, uint64_t a1, uint64_t a2,
						      uint64_t a3, uint64_t a4, uint64_t a5)
{
	if (b->n % STAMP_EVERY == 0)
		b->stamp[b->n / STAMP_EVERY] = stamp();
	prefetch_slot(b->n + 1);
	brec *e = &b->ev[b->n];
	e->kind = kind;
	e->arg[0] = a0;
	e->arg[1] = a1;
	e->arg[2] = a2;
	e->arg[3] = a3;
	e->arg[4] = a4;
	e->arg[5] = a5;
	if (++b->n == BUF_EVENTS)
		flush(b);
}

/* A thread's first buffered record: out of line, so that the emitters keep
 * the arguments in their argument registers (no call before the stores). */
static __attribute__((noinline)) void buffer_first(unsigned kind, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
						     uint64_t a4, uint64_t a5)
{
	tbuf *b = tls_buf = new_buf();
	if (b != NULL)
		put(b, kind, a0, a1, a2, a3, a4, a5);
}

/* Inlined into the emitters of the buffered events: the call and its register
 * saves cost as much as the record itself. */
static inline __attribute__((always_inline)) void buffer(unsigned kind, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
							 uint64_t a4, uint64_t a5)
{
	tbuf *b = tls_buf;
	if (__builtin_expect(b == NULL, 0))
		buffer_first(kind, a0, a1, a2, a3, a4, a5);
	else
		put(b, kind, a0, a1, a2, a3, a4, a5);
}

void hs_trace_thread_exit(void)
{
	tbuf *b = tls_buf;
	if (b == NULL)
		return;
	flush(b);
	tls_buf = NULL;
	spin_lock(&tracer.bufs_lock);
	b->next = tracer.free_bufs;
	tracer.free_bufs = b;
	spin_unlock(&tracer.bufs_lock);
}

/* The events written through the thread's buffer (see the essay). */
static inline int buffered(unsigned kind)
{
	switch (kind) {
	case HS_EV_SWEEP:
	case HS_EV_MCENTRAL_MOVE:
	case HS_EV_MCACHE_REFILL:
	case HS_EV_MCACHE_FLUSH:
	case HS_EV_MALLOC:
	case HS_EV_FREE:
		return 1;
	default:
		return 0;
	}
}

static void emit(unsigned kind, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	hs_ring_hdr *r = tracer.ring;
	uint64_t seq;
	hs_event *e;
	if (tls_buf != NULL && tls_buf->n != 0)
		flush(tls_buf);
	if (r == NULL || (e = hs_ring_reserve(r, &seq)) == NULL)
		return;
	populate_ahead(r, seq + 1);
	uint64_t ts = clock_at(stamp());
	/* Never below this thread's last record (the clock was extrapolated from another read). */
	e->ts = ts > tls_last_ts ? ts : tls_last_ts;
	tls_last_ts = e->ts;
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
		if (atomic_load_explicit(&hs_trace_level, memory_order_relaxed) < HS_EVL_##level)    \
			return;                                                                    \
		if (buffered(HS_EV_##NAME))                                                        \
			buffer(HS_EV_##NAME, a0, a1, a2, a3, a4, a5);                              \
		else                                                                               \
			emit(HS_EV_##NAME, a0, a1, a2, a3, a4, a5);                                \
	}
HS_EVENT_TABLE(EMITTER_)

uint64_t hs_trace_span_term(uintptr_t base, uintptr_t npages, unsigned spanclass)
{
	uint64_t st = (uint64_t)base ^ ((uint64_t)npages << 48) ^ ((uint64_t)spanclass << 40);
	return hs_splitmix64(&st);
}

/*
 * A span's state changes together with its event, under the order lock, so
 * that a snapshot (taken under the same lock) and the events around it agree
 * on every span: s->traced says whether the trace stream has seen the span
 * alive. A span made while nobody traced has traced 0 and its free emits
 * nothing; the snapshot sets traced for exactly the spans it lists.
 */
void hs_trace_span_state(hs_mspan *s, unsigned state)
{
	order_lock();
	atomic_store_explicit(&s->state, (uint8_t)state, memory_order_release);
	if (state == HS_MSPAN_IN_USE && !s->traced && HS_TRACE_ON(span_alloc)) {
		s->traced = 1;
		tracer.span_hash += hs_trace_span_term(s->start_addr, hs_span_npages(s), s->spanclass);
		tracer.nspans++;
		HS_TRACE(span_alloc, s->start_addr, hs_span_npages(s), s->spanclass, state);
	} else if (state != HS_MSPAN_IN_USE && s->traced) {
		s->traced = 0;
		tracer.span_hash -= hs_trace_span_term(s->start_addr, hs_span_npages(s), s->spanclass);
		tracer.nspans--;
		HS_TRACE(span_free, s->start_addr, hs_span_npages(s), s->spanclass, state);
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

/* Whether an eBPF tracer is attached (heapscope attach; probes/): it raises
 * every probe's semaphore, snap_begin's included. */
static int attached(void)
{
	return heapscope_snap_begin_semaphore != 0;
}

static int tracing(void)
{
	return atomic_load_explicit(&hs_trace_level, memory_order_relaxed) != HS_EVL_OFF || attached();
}

/*
 * The snapshot an attaching tracer starts from (snap_* events; the model
 * replays them into a fresh replica, core/model.c): under heap.lock and the
 * order lock, the page allocator's grown ranges, every 64-page group that is
 * not all free and scavenged, and every live span. It also resets the traced
 * flags and the span-table hash to exactly the spans it lists, so the events
 * after it and the next digest continue from the same table.
 */
static void snapshot(void)
{
	const hs_pagealloc *p = &hs_heap.pages;
	uint64_t ngroups = 0, nspans = 0;
	hs_lock(&hs_heap.lock);
	order_lock();
	/* The semaphore, then the states, both sequentially consistent: see
	 * span_set_state in mheap.c. */
	if (__atomic_load_n(&heapscope_snap_begin_semaphore, __ATOMIC_SEQ_CST) == 0) {
		order_unlock();
		hs_unlock(&hs_heap.lock);
		return;
	}
	HS_TRACE(snap_begin, (uint64_t)getpid(), (uint64_t)getppid(), (uint64_t)atomic_load(&hs_trace_level));
	for (size_t i = 0; i < p->in_use.len; i++) {
		uintptr_t base = hs_off_to_addr(p->in_use.ranges[i].base);
		uintptr_t limit = hs_off_to_addr(p->in_use.ranges[i].limit);
		HS_TRACE(snap_range, base, limit - base);
		for (uintptr_t c = base; c < limit; c += HS_PALLOC_CHUNK_BYTES) {
			const hs_palloc_data *d = hs_pagealloc_chunk_of(p, hs_chunk_index(c));
			for (unsigned w = 0; w < HS_PALLOC_CHUNK_WORDS; w++) {
				if (d->alloc.w[w] == 0 && d->scavenged.w[w] == ~(uint64_t)0)
					continue;
				HS_TRACE(snap_pages, c + ((uintptr_t)w * 64 << HS_PAGE_SHIFT), d->alloc.w[w],
					 d->scavenged.w[w]);
				ngroups++;
			}
		}
	}
	tracer.span_hash = 0;
	for (uint32_t i = 0; i < hs_heap.nallspans; i++) {
		hs_mspan *s = hs_heap.allspans[i];
		unsigned state = atomic_load_explicit(&s->state, memory_order_seq_cst);
		s->traced = state == HS_MSPAN_IN_USE;
		if (!s->traced)
			continue;
		tracer.span_hash += hs_trace_span_term(s->start_addr, hs_span_npages(s), s->spanclass);
		nspans++;
		HS_TRACE(snap_span, s->start_addr, hs_span_npages(s), s->spanclass, state);
	}
	tracer.nspans = nspans;
	HS_TRACE(snap_end, p->in_use.len, ngroups, nspans);
	order_unlock();
	hs_unlock(&hs_heap.lock);
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

/* Returns 0 once tracing has ended, or nobody is attached any more. A
 * tracer that attached gets its snapshot first. */
static int sample(void)
{
	pthread_mutex_lock(&tracer.sample_mu);
	int on = !tracer.finished && tracing();
	if (on && attached() && !tracer.snapped) {
		snapshot();
		tracer.snapped = 1;
	}
	if (on)
		sample_locked();
	else
		tracer.snapped = 0;
	pthread_mutex_unlock(&tracer.sample_mu);
	return on;
}

void hs_trace_sample(void)
{
	sample();
}

/* Every 100 ms while tracing; at once when a tracer has attached (it wants
 * its snapshot). Ends when nobody traces, so that a later attach starts it
 * again. */
static void *sampler(void *arg)
{
	(void)arg;
	int now = atomic_load(&hs_trace_level) == HS_EVL_OFF;
	do {
		struct timespec d = { 0, 100 * 1000 * 1000 };
		if (!now)
			nanosleep(&d, NULL);
		now = 0;
	} while (sample());
	atomic_store_explicit(&hs_trace_sampler_running, 0, memory_order_release);
	return NULL;
}

void hs_trace_start_sampler_slow(void)
{
	if (!tracing() || hs_heap.vclock.on) /* no threads under the virtual clock (core/background.c) */
		return;
	int expected = 0;
	if (!atomic_compare_exchange_strong(&hs_trace_sampler_running, &expected, 1))
		return;
	if (hs_background_thread(sampler) != 0)
		hs_print("heapscope: cannot start the trace sampler; no statistics samples\n");
}

void hs_trace_finish(int status)
{
	pthread_mutex_lock(&tracer.sample_mu);
	if (!tracer.finished && tracing()) {
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
	spin_lock(&tracer.bufs_lock);
	tls_last_seq = 0;
	HS_TRACE(proc_fork, tracer.pid);
}

static void fork_parent(void)
{
	spin_unlock(&tracer.bufs_lock);
	order_unlock();
	hs_unlock(&hs_heap.lock);
}

static void fork_child(void)
{
	uint32_t ppid = tracer.pid;
	uint64_t fork_seq = tls_last_seq;
	tracer.pid = (uint32_t)getpid();
	atomic_fetch_add(&tracer.generation, 1);
	atomic_store(&hs_trace_sampler_running, 0);
	atomic_store(&tracer.populated, 0); /* fork copies no page-table entries of a shared mapping */
	pthread_mutex_init(&tracer.sample_mu, NULL);
	spin_unlock(&tracer.bufs_lock);
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
	/* An attached tracer (probes/) wants the last sample and proc_end too,
	 * and a process it traces may fork while its sampler holds sample_mu or
	 * the order lock: the handlers are needed in every mode. */
	atexit(finish_at_exit);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	const char *v = getenv("HEAPSCOPE_TRACE_FD");
	if (v == NULL || *v == '\0') {
		/* Attached already: a tracer that attached to this pid before an
		 * exec (or before it started) sees the new image's heap from its
		 * first event, as an empty snapshot. */
		if (attached()) {
			snapshot();
			tracer.snapped = 1;
		}
		return;
	}
	char *end;
	long fd = strtol(v, &end, 10);
	hs_ring_hdr *r = NULL;
	if (*end != '\0' || fd < 0 || fd > 1 << 20 || (r = hs_ring_map((int)fd)) == NULL) {
		hs_print("heapscope: HEAPSCOPE_TRACE_FD=%s is not a heapscope trace ring; tracing is off\n", v);
		return;
	}
	tracer.ring = r;
	tracer.pid = (uint32_t)getpid();
	tracer.tsc0 = stamp();
	tracer.ns0 = now_ns();
	atomic_store(&hs_trace_level, (int)r->level);
	HS_TRACE(proc_start, tracer.pid, (uint64_t)getppid(), r->level, 0);
}
