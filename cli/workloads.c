/*
 * cli/workloads.c — the built-in workloads (cli/workloads.h) and `heapscope
 * workloads`, which lists them and, with --run, runs one here, untraced.
 *
 * Each workload is a small program aimed at one part of the heap, so that what
 * a viewer shows can be told apart: the mcache fast path (churn), partly full
 * spans (fragment), growth, sweep and the scavenger (grow-shrink), large and
 * aligned spans (large), every mcentral (sizeclasses), frees from another thread
 * (threads), or all of them, paced for a human (demo). Their descriptions, in the
 * table near the end, say how; `heapscope workloads` prints them.
 *
 * Determinism. Sizes and choices come from hs_splitmix64 seeded from the run's
 * seed (and, for later passes, the pass number), never from the clock or from
 * addresses, so the same seed gives the same hs_ calls on each thread and two
 * traces can be compared, or a failure replayed. Time only ends a run: the stop
 * flag is read before every heap operation and the clock every CLOCK_EVERY
 * reads, and the pauses are sliced, so a stop is seen within a few ms (threads
 * passes it on to its workers, which look once per batch; see threads_pass).
 *
 * Memory is written, not just allocated: small objects whole, larger ones one
 * byte per OS page and their last byte. Otherwise the kernel never backs the
 * pages, and RSS, the number a viewer sets beside the heap's own accounting of
 * retained and released memory, would say nothing. The bytes written depend on
 * the size alone, so an object is checked again before it is freed: a live
 * object changed by someone else means the heap handed its memory out twice.
 *
 * A workload frees everything it holds, its bookkeeping included (which also
 * lives on the hs_ heap), before it returns, whether it finished, was stopped
 * or failed, so the heap after a run holds nothing of it. docs/heap.md describes
 * the parts of the heap named here.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "replay.h"
#include "splitmix.h"
#include "workloads.h"
#include "heapscope/heapscope.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define SMALL_MAX (32 * KiB)	/* the largest size served from a size class */
#define LARGE_MIN (33 * KiB)	/* comfortably a large object */
#define OS_PAGE 4096		/* touch stride: the smallest page the kernel backs */
#define CLOCK_EVERY 64		/* polls between clock reads: rare enough to cost nothing beside a malloc */
#define NAP_SLICE_MS 5		/* longest sleep between looks at the stop flag */
#define MAX_DURATION_S (365.0 * 24 * 3600) /* keeps the deadline in 64-bit nanoseconds */

/* --- running, stopping, failing ------------------------------------------------ */

/* One thread's view of a run. The threads workload's workers have their own,
 * without stop or deadline (see threads_pass). */
typedef struct ctl {
	const char *name;
	volatile sig_atomic_t *stop;
	uint64_t deadline_ns;	/* CLOCK_MONOTONIC; 0: none */
	int repeat;		/* start another pass after one ends */
	unsigned ticks;		/* polls since the last clock read */
	int halted;		/* stop asked, deadline passed or the heap failed; never cleared */
	int failed;		/* failed implies halted */
} ctl;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void ctl_init(ctl *c, const char *name, const hs_workload_opts *o, int forever)
{
	*c = (ctl){ .name = name, .stop = o->stop, .repeat = forever || o->duration_s > 0 };
	if (o->duration_s > 0)
		c->deadline_ns = now_ns() + (uint64_t)(o->duration_s * 1e9);
}

static int deadline_passed(const ctl *c)
{
	return c->deadline_ns != 0 && now_ns() >= c->deadline_ns;
}

/* Polled before every heap operation. */
static int halted(ctl *c)
{
	if (!c->halted && ((c->stop != NULL && *c->stop) ||
			   (++c->ticks % CLOCK_EVERY == 0 && deadline_passed(c))))
		c->halted = 1;
	return c->halted;
}

/* Whether to start pass number `pass` (from 0). */
static int next_pass(ctl *c, unsigned pass)
{
	if (pass > 0 && !c->repeat)
		return 0;
	if (deadline_passed(c))
		c->halted = 1;
	return !halted(c);
}

/* Later passes get other sizes and orders, still a function of the seed alone. */
static uint64_t pass_seed(uint64_t seed, unsigned pass)
{
	if (pass == 0)
		return seed;
	uint64_t s = seed + pass * UINT64_C(0xd1b54a32d192ed03);
	return hs_splitmix64(&s);
}

/* Prints "NAME: reason" for the first failure only, as one line even when
 * threads fail together. */
__attribute__((format(printf, 2, 3))) static void fail(ctl *c, const char *fmt, ...)
{
	va_list ap;
	if (c->failed)
		return;
	flockfile(stderr);
	fprintf(stderr, "%s: ", c->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	c->failed = c->halted = 1;
}

/* Sleeps ms, in slices so that a stop is noticed. */
static void nap(ctl *c, unsigned ms)
{
	for (unsigned t = 0; t < ms && !halted(c); t += NAP_SLICE_MS) {
		unsigned slice = ms - t < NAP_SLICE_MS ? ms - t : NAP_SLICE_MS;
		struct timespec ts = { 0, (long)slice * 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* --- random sizes ----------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	return hs_splitmix64(s);
}

/* Uniform in [lo, hi]. */
static size_t rnd_in(uint64_t *s, size_t lo, size_t hi)
{
	return lo + (size_t)(rnd(s) % (hi - lo + 1));
}

static unsigned bit_length(size_t x)
{
	return 64 - (unsigned)__builtin_clzll((unsigned long long)x);
}

/*
 * Log-uniform in [lo, hi], 1 <= lo <= hi < 2^63: each power-of-two band is as
 * likely as any other, so small objects far outnumber large ones, as in real
 * programs, while every class still gets its share. Integer-only, no libm.
 */
static size_t rnd_log(uint64_t *s, size_t lo, size_t hi)
{
	unsigned b = bit_length(lo) + (unsigned)(rnd(s) % (bit_length(hi) - bit_length(lo) + 1));
	size_t band_lo = (size_t)1 << (b - 1), band_hi = ((size_t)1 << b) - 1;
	return rnd_in(s, band_lo > lo ? band_lo : lo, band_hi < hi ? band_hi : hi);
}

/* --- objects: written on allocation, checked on free --------------------------- */

#define WRITE_WHOLE 4096 /* objects up to this size are written entirely */

static unsigned char fill_of(size_t n)
{
	return (unsigned char)((n * 0x9dU >> 3) | 1);
}

static void touch(unsigned char *p, size_t n)
{
	unsigned char f = fill_of(n);
	if (n <= WRITE_WHOLE) {
		memset(p, f, n);
		return;
	}
	for (size_t i = 0; i < n; i += OS_PAGE)
		p[i] = f;
	p[n - 1] = f;
}

static int intact(const unsigned char *p, size_t n)
{
	return p[0] == fill_of(n) && p[n - 1] == fill_of(n);
}

/* hs_malloc, written; NULL after reporting. */
static unsigned char *get(ctl *c, size_t n)
{
	unsigned char *p = hs_malloc(n);
	if (p == NULL) {
		fail(c, "hs_malloc(%zu) failed: %s", n, strerror(errno));
		return NULL;
	}
	touch(p, n);
	return p;
}

typedef struct obj {
	unsigned char *p; /* NULL: empty slot */
	size_t n;
} obj;

/*
 * The objects a workload holds, in an array on the hs_ heap. Used either as
 * slots (pool_fill, pool_drop at any index) or densely (pool_push,
 * pool_swap_remove keep [0, live) full); each workload keeps to one way.
 *   live  = number of slots with p != NULL
 *   bytes = sum of n over them
 */
typedef struct pool {
	obj *v;
	size_t cap, live;
	uint64_t bytes;
} pool;

/* A pool that cannot get its array fails the run, so the callers' loops never start. */
static void pool_init(ctl *c, pool *pl, size_t cap)
{
	*pl = (pool){ 0 };
	if (cap == 0)
		return;
	pl->v = hs_calloc(cap, sizeof *pl->v);
	if (pl->v == NULL)
		fail(c, "hs_calloc(%zu, %zu) failed: %s", cap, sizeof *pl->v, strerror(errno));
	else
		pl->cap = cap;
}

static void pool_set(pool *pl, size_t i, unsigned char *p, size_t n)
{
	pl->v[i] = (obj){ p, n };
	pl->live++;
	pl->bytes += n;
}

static void pool_fill(ctl *c, pool *pl, size_t i, size_t n)
{
	unsigned char *p = get(c, n);
	if (p != NULL)
		pool_set(pl, i, p, n);
}

static void pool_drop(ctl *c, pool *pl, size_t i)
{
	obj *o = &pl->v[i];
	if (o->p == NULL)
		return;
	if (!intact(o->p, o->n))
		fail(c, "the %zu-byte object at %p was overwritten while live", o->n, (void *)o->p);
	hs_free(o->p);
	pl->live--;
	pl->bytes -= o->n;
	o->p = NULL;
}

/* Appends an object of n bytes; NULL after reporting a failure. */
static obj *pool_push(ctl *c, pool *pl, size_t n)
{
	if (pl->live == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 1024;
		obj *v = hs_realloc(pl->v, cap * sizeof *v);
		if (v == NULL) {
			fail(c, "hs_realloc(%zu) failed: %s", cap * sizeof *v, strerror(errno));
			return NULL;
		}
		memset(v + pl->cap, 0, (cap - pl->cap) * sizeof *v);
		pl->v = v;
		pl->cap = cap;
	}
	size_t i = pl->live;
	pool_fill(c, pl, i, n);
	return pl->v[i].p != NULL ? &pl->v[i] : NULL;
}

static void pool_swap_remove(ctl *c, pool *pl, size_t i)
{
	pool_drop(c, pl, i);
	if (i != pl->live) {
		pl->v[i] = pl->v[pl->live];
		pl->v[pl->live].p = NULL;
	}
}

static void pool_fini(ctl *c, pool *pl)
{
	for (size_t i = 0; i < pl->cap; i++)
		pool_drop(c, pl, i);
	hs_free(pl->v);
	*pl = (pool){ 0 };
}

/* Runs pass after pass for as long as the options say. */
static int passes(const char *name, const hs_workload_opts *o, void (*pass)(ctl *, uint64_t))
{
	ctl c;
	ctl_init(&c, name, o, 0);
	for (unsigned n = 0; next_pass(&c, n); n++)
		pass(&c, pass_seed(o->seed, n));
	return c.failed;
}

/* --- churn -------------------------------------------------------------------------- */

#define CHURN_LIVE 100000
#define CHURN_STEPS 2000000
#define CHURN_MAX 1024

static void churn_pass(ctl *c, uint64_t seed)
{
	uint64_t rng = seed;
	pool pl;
	pool_init(c, &pl, CHURN_LIVE);
	for (size_t i = 0; i < CHURN_LIVE && !halted(c); i++)
		pool_fill(c, &pl, i, rnd_in(&rng, 1, CHURN_MAX));
	for (size_t s = 0; s < CHURN_STEPS && !halted(c); s++) {
		size_t k = (size_t)(rnd(&rng) % CHURN_LIVE);
		pool_drop(c, &pl, k);
		pool_fill(c, &pl, k, rnd_in(&rng, 1, CHURN_MAX));
	}
	pool_fini(c, &pl);
}

static int run_churn(const hs_workload_opts *o)
{
	return passes("churn", o, churn_pass);
}

/* --- fragment ----------------------------------------------------------------------- */

/* About 110 MiB of small objects, of which an eighth stays: half the span bytes
 * stay in use, at an eighth full, and the pages freed lie scattered between them. */
#define FRAG_SMALL (96 * 1024)
#define FRAG_KEEP_EVERY 8
#define FRAG_LARGE 48

static void fragment_pass(ctl *c, uint64_t seed)
{
	uint64_t rng = seed;
	pool pl;
	pool_init(c, &pl, FRAG_SMALL + FRAG_LARGE);
	for (size_t i = 0; i < FRAG_SMALL && !halted(c); i++)
		pool_fill(c, &pl, i, rnd_log(&rng, 16, 4096));
	for (size_t i = 0; i < FRAG_SMALL && !halted(c); i++) {
		if (i % FRAG_KEEP_EVERY != 0)
			pool_drop(c, &pl, i);
	}
	for (size_t i = FRAG_SMALL; i < FRAG_SMALL + FRAG_LARGE && !halted(c); i++)
		pool_fill(c, &pl, i, rnd_log(&rng, 256 * KiB, MiB));
	pool_fini(c, &pl);
}

static int run_fragment(const hs_workload_opts *o)
{
	return passes("fragment", o, fragment_pass);
}

/* --- grow-shrink -------------------------------------------------------------------- */

#define GS_CYCLES 4
#define GS_HIGH (256 * MiB)
#define GS_LOW (8 * MiB)
/* Longer than the scavenger's 100-200 ms peak window, so it starts releasing the
 * freed peak before the next cycle takes the pages back. */
#define GS_REST_MS 250

static size_t gs_size(uint64_t *rng)
{
	return rnd(rng) % 16 == 0 ? rnd_log(rng, LARGE_MIN, MiB) : rnd_log(rng, 16, SMALL_MAX);
}

static void grow_shrink_pass(ctl *c, uint64_t seed)
{
	uint64_t rng = seed;
	pool pl;
	pool_init(c, &pl, 0);
	for (unsigned cycle = 0; cycle < GS_CYCLES && !halted(c); cycle++) {
		while (pl.bytes < GS_HIGH && !halted(c))
			pool_push(c, &pl, gs_size(&rng));
		/* In random order, so spans empty out gradually and all over the heap. */
		while (pl.bytes > GS_LOW && !halted(c))
			pool_swap_remove(c, &pl, (size_t)(rnd(&rng) % pl.live));
		nap(c, GS_REST_MS);
	}
	pool_fini(c, &pl);
}

static int run_grow_shrink(const hs_workload_opts *o)
{
	return passes("grow-shrink", o, grow_shrink_pass);
}

/* --- large -------------------------------------------------------------------------- */

#define LARGE_OPS 20000
#define LARGE_SLOTS 32
#define LARGE_MAX (8 * MiB)
#define LARGE_ALIGN_MAX_SHIFT 20 /* 1 MiB */

static void large_aligned(ctl *c, pool *pl, size_t k, uint64_t *rng)
{
	size_t align = (size_t)1 << rnd_in(rng, 12, LARGE_ALIGN_MAX_SHIFT);
	size_t n = rnd_log(rng, LARGE_MIN, 2 * MiB);
	unsigned char *p = hs_aligned_alloc(align, n);
	if (p == NULL) {
		fail(c, "hs_aligned_alloc(%zu, %zu) failed: %s", align, n, strerror(errno));
		return;
	}
	touch(p, n);
	pool_set(pl, k, p, n);
	if ((uintptr_t)p % align != 0)
		fail(c, "hs_aligned_alloc(%zu, %zu) returned %p", align, n, (void *)p);
}

/* Grows by a quarter to all of the object's size, and checks the copy. */
static void large_grow(ctl *c, pool *pl, size_t k, uint64_t *rng)
{
	obj *o = &pl->v[k];
	size_t n = o->n + o->n * rnd_in(rng, 1, 4) / 4;
	if (n > LARGE_MAX)
		n = LARGE_MAX;
	unsigned char *p = hs_realloc(o->p, n);
	if (p == NULL) {
		fail(c, "hs_realloc(%p, %zu) failed: %s", (void *)o->p, n, strerror(errno));
		return;
	}
	if (!intact(p, o->n))
		fail(c, "hs_realloc(%p, %zu) lost the object's contents", (void *)o->p, n);
	touch(p, n);
	pl->bytes += n - o->n;
	*o = (obj){ p, n };
}

static void large_pass(ctl *c, uint64_t seed)
{
	uint64_t rng = seed;
	pool pl;
	pool_init(c, &pl, LARGE_SLOTS);
	for (size_t op = 0; op < LARGE_OPS && !halted(c); op++) {
		size_t k = (size_t)(rnd(&rng) % LARGE_SLOTS);
		uint64_t r = rnd(&rng) % 4;
		if (pl.v[k].p == NULL && r == 0)
			large_aligned(c, &pl, k, &rng);
		else if (pl.v[k].p == NULL)
			pool_fill(c, &pl, k, rnd_log(&rng, LARGE_MIN, LARGE_MAX));
		else if (r == 0 && pl.v[k].n < LARGE_MAX)
			large_grow(c, &pl, k, &rng);
		else
			pool_drop(c, &pl, k);
	}
	pool_fini(c, &pl);
}

static int run_large(const hs_workload_opts *o)
{
	return passes("large", o, large_pass);
}

/* --- sizeclasses ---------------------------------------------------------------------- */

/* Go's longest small-object span is 10 pages (class 65); this many bytes of
 * objects fill at least SC_SPANS spans of any class. */
#define SC_SPAN_BYTES_MAX (10 * 8192)
#define SC_SPANS 3
#define SC_MIN_OBJECTS 8
#define SC_MAX_CLASSES 128 /* Go has 67; a guard, not a guess */

/*
 * Finds each class from the API alone: the usable size of an object of size lo
 * is its class's size, and the next class starts one byte above. Objects take
 * sizes anywhere in the class's range, so the size-to-class tables are used
 * throughout, and must agree with hs_malloc_usable_size on every one.
 */
static void sizeclasses_pass(ctl *c, uint64_t seed)
{
	uint64_t rng = seed;
	size_t start[SC_MAX_CLASSES];
	unsigned nclass = 0;
	pool pl;
	pool_init(c, &pl, 0);
	for (size_t lo = 1; lo <= SMALL_MAX && !halted(c); nclass++) {
		if (nclass == SC_MAX_CLASSES) {
			fail(c, "more than %d size classes up to %zu bytes", SC_MAX_CLASSES, SMALL_MAX);
			break;
		}
		start[nclass] = pl.live;
		obj *first = pool_push(c, &pl, lo);
		if (first == NULL)
			break;
		size_t size = hs_malloc_usable_size(first->p);
		if (size < lo) {
			fail(c, "a %zu-byte object has %zu usable bytes", lo, size);
			break;
		}
		size_t count = SC_SPANS * SC_SPAN_BYTES_MAX / size;
		if (count < SC_MIN_OBJECTS)
			count = SC_MIN_OBJECTS;
		for (size_t k = 1; k < count && !halted(c); k++) {
			obj *o = pool_push(c, &pl, rnd_in(&rng, lo, size));
			if (o != NULL && hs_malloc_usable_size(o->p) != size)
				fail(c, "a %zu-byte object has %zu usable bytes, not its class's %zu", o->n,
				     hs_malloc_usable_size(o->p), size);
		}
		lo = size + 1;
	}
	/* The largest class first, each in random order, so that a class's spans
	 * empty together rather than one after another. */
	while (nclass-- > 0 && !halted(c)) {
		while (pl.live > start[nclass] && !halted(c))
			pool_swap_remove(c, &pl, start[nclass] + (size_t)(rnd(&rng) % (pl.live - start[nclass])));
	}
	pool_fini(c, &pl);
}

static int run_sizeclasses(const hs_workload_opts *o)
{
	return passes("sizeclasses", o, sizeclasses_pass);
}

/* --- threads ---------------------------------------------------------------------------- */

/*
 * Producer i hands objects to consumer i through queue i. One queue per pair,
 * first in first out, keeps each consumer's frees in an order fixed by the seed.
 * Objects move in batches so that the lock is taken once per TQ_BATCH objects,
 * not per object: the heap, not the queue, should be what the run measures.
 */
#define T_PAIRS 2
#define T_HANDOVERS 1000000 /* objects handed over in all */
#define T_LOCAL 1024	    /* each thread's own churning set */
#define T_CHURN_EVERY 4	    /* one local replacement per this many handovers */
#define TQ_CAP 1024
#define TQ_BATCH 64

typedef struct tqueue {
	pthread_mutex_t mu;
	pthread_cond_t more, room;
	unsigned char *slot[TQ_CAP]; /* [head, head + count) mod TQ_CAP; protected by mu */
	size_t head, count;	     /* protected by mu */
	int closed;		     /* protected by mu; never reopened */
} tqueue;

/* A handed-over object starts with this; its last byte, past it, is fill_of(n). */
typedef struct handover {
	uint64_t seq; /* the producer's count, which the consumer must see in order */
	uint64_t n;
} handover;

/* What the threads of a pass share. */
typedef struct tshared {
	atomic_int halt;    /* stop asked or deadline passed: producers stop */
	atomic_int failed;  /* a worker failed: producers stop */
	atomic_int running; /* workers not yet done */
} tshared;

typedef struct tworker {
	ctl c; /* for failures only */
	tqueue *q;
	uint64_t seed;
	tshared *sh;
} tworker;

static void worker_done(tworker *w)
{
	if (w->c.failed)
		atomic_store(&w->sh->failed, 1);
	atomic_fetch_sub(&w->sh->running, 1);
}

static void tq_push(tqueue *q, unsigned char **v, size_t n)
{
	pthread_mutex_lock(&q->mu);
	while (TQ_CAP - q->count < n)
		pthread_cond_wait(&q->room, &q->mu);
	for (size_t i = 0; i < n; i++)
		q->slot[(q->head + q->count + i) % TQ_CAP] = v[i];
	q->count += n;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->mu);
}

/* Up to TQ_BATCH objects into v; 0 once the queue is closed and empty. */
static size_t tq_pop(tqueue *q, unsigned char **v)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == 0 && !q->closed)
		pthread_cond_wait(&q->more, &q->mu);
	size_t n = q->count < TQ_BATCH ? q->count : TQ_BATCH;
	for (size_t i = 0; i < n; i++)
		v[i] = q->slot[(q->head + i) % TQ_CAP];
	q->head = (q->head + n) % TQ_CAP;
	q->count -= n;
	pthread_cond_signal(&q->room);
	pthread_mutex_unlock(&q->mu);
	return n;
}

static void tq_close(tqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = 1;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->mu);
}

/* The pool is empty only if its array could not be had; the run has failed then. */
static void local_churn(tworker *w, pool *local, uint64_t *rng)
{
	if (local->cap == 0 || w->c.failed)
		return;
	size_t k = (size_t)(rnd(rng) % T_LOCAL);
	pool_drop(&w->c, local, k);
	pool_fill(&w->c, local, k, rnd_log(rng, 8, 512));
}

static void *producer(void *arg)
{
	tworker *w = arg;
	uint64_t rng = w->seed;
	unsigned char *batch[TQ_BATCH];
	size_t nb = 0;
	pool local;
	pool_init(&w->c, &local, T_LOCAL);
	for (uint64_t seq = 0; seq < T_HANDOVERS / T_PAIRS; seq++) {
		if (seq % TQ_BATCH == 0 && (atomic_load(&w->sh->halt) || atomic_load(&w->sh->failed)))
			break;
		size_t n = rnd(&rng) % 32 == 0 ? rnd_log(&rng, KiB, SMALL_MAX)
					       : rnd_log(&rng, sizeof(handover) + 1, KiB);
		unsigned char *p = get(&w->c, n);
		if (p == NULL)
			break;
		memcpy(p, &(handover){ seq, n }, sizeof(handover));
		batch[nb++] = p;
		if (nb == TQ_BATCH) {
			tq_push(w->q, batch, nb);
			nb = 0;
		}
		if (seq % T_CHURN_EVERY == 0)
			local_churn(w, &local, &rng);
	}
	tq_push(w->q, batch, nb);
	tq_close(w->q);
	pool_fini(&w->c, &local);
	worker_done(w);
	return NULL;
}

/* Drains its queue to the end even after a failure, so that its producer never waits for room. */
static void *consumer(void *arg)
{
	tworker *w = arg;
	uint64_t rng = w->seed, want = 0;
	unsigned char *got[TQ_BATCH];
	size_t n;
	pool local;
	pool_init(&w->c, &local, T_LOCAL);
	while ((n = tq_pop(w->q, got)) > 0) {
		for (size_t i = 0; i < n; i++, want++) {
			handover h;
			memcpy(&h, got[i], sizeof h);
			if (h.seq != want || h.n < sizeof h || h.n > hs_malloc_usable_size(got[i]) ||
			    got[i][h.n - 1] != fill_of(h.n))
				fail(&w->c, "object %llu handed over at %p was overwritten", (unsigned long long)want,
				     (void *)got[i]);
			hs_free(got[i]);
			if (want % T_CHURN_EVERY == 0)
				local_churn(w, &local, &rng);
		}
	}
	pool_fini(&w->c, &local);
	worker_done(w);
	return NULL;
}

static int spawn(pthread_t *t, void *(*fn)(void *), tworker *w)
{
	atomic_fetch_add(&w->sh->running, 1);
	int err = pthread_create(t, NULL, fn, w);
	if (err != 0)
		atomic_fetch_sub(&w->sh->running, 1);
	return err;
}

/*
 * The workers start with SIGINT and SIGTERM blocked, so that the handler runs on
 * this thread, the only one that reads the stop flag (a plain sig_atomic_t is
 * safe against a handler on its own thread, not against other threads). It
 * watches the flag and the deadline while they work and passes a stop on
 * through an atomic.
 */
static void threads_pass(ctl *c, uint64_t seed)
{
#define TQ_INIT { .mu = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER, .room = PTHREAD_COND_INITIALIZER }
	tqueue q[T_PAIRS] = { TQ_INIT, TQ_INIT };
#undef TQ_INIT
	tshared sh = { 0 };
	tworker w[2 * T_PAIRS];
	pthread_t t[2 * T_PAIRS];
	int started[2 * T_PAIRS] = { 0 };
	/* Threads 0..T_PAIRS-1 produce, the rest consume; each seeded by its index. */
	for (unsigned i = 0; i < 2 * T_PAIRS; i++)
		w[i] = (tworker){ .c = { .name = c->name }, .q = &q[i % T_PAIRS], .seed = seed + i, .sh = &sh };
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (unsigned i = 0; i < T_PAIRS; i++) {
		int err = spawn(&t[T_PAIRS + i], consumer, &w[T_PAIRS + i]);
		if (err == 0) {
			started[T_PAIRS + i] = 1;
			err = spawn(&t[i], producer, &w[i]);
			if (err != 0)
				tq_close(&q[i]);
			started[i] = err == 0;
		}
		if (err != 0)
			fail(c, "pthread_create failed: %s", strerror(err));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (atomic_load(&sh.running) > 0) {
		if (deadline_passed(c))
			c->halted = 1;
		if (halted(c))
			atomic_store(&sh.halt, 1);
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	for (unsigned i = 0; i < 2 * T_PAIRS; i++) {
		if (started[i])
			pthread_join(t[i], NULL);
	}
	for (unsigned i = 0; i < T_PAIRS; i++) {
		pthread_mutex_destroy(&q[i].mu);
		pthread_cond_destroy(&q[i].more);
		pthread_cond_destroy(&q[i].room);
	}
	if (atomic_load(&sh.failed))
		c->failed = c->halted = 1;
}

static int run_threads(const hs_workload_opts *o)
{
	return passes("threads", o, threads_pass);
}

/* --- demo ------------------------------------------------------------------------------- */

/*
 * Each pass: grow (four allocations to each free, DEMO_GROW_STEPS steps), free
 * every other slot, refill the holes up to 3/4 of the peak, free all but a
 * sixteenth of the peak in scrambled order, rest. A pass draws six favourite
 * sizes, so the span classes that dominate change from pass to pass, and what
 * survives a pass stays into the next as long-lived clutter. Pacing (a short
 * sleep every DEMO_PACE_OPS operations) stretches a pass to 2-3 s so each phase
 * spans many frames of a viewer. The phases are counted in operations, not
 * bytes, so that passes last about as long whatever their sizes. The rest at the
 * bottom outlasts the scavenger's peak window, so it is seen releasing the peak.
 */
#define DEMO_SLOTS 32768 /* a power of two: an odd stride visits every slot */
#define DEMO_HOT 6
#define DEMO_GROW_STEPS 24000
#define DEMO_MAX_BYTES (160 * MiB) /* growing frees instead beyond this */
#define DEMO_PACE_OPS 48
#define DEMO_PACE_MS 2
#define DEMO_REST_MS 300

typedef struct demo {
	ctl *c;
	pool pl;
	uint64_t rng;
	size_t hot[DEMO_HOT];
	uint64_t ops;
} demo;

static void demo_paced(demo *d)
{
	if (++d->ops % DEMO_PACE_OPS == 0)
		nap(d->c, DEMO_PACE_MS);
}

static void demo_alloc(demo *d, size_t i)
{
	uint64_t r = rnd(&d->rng) % 100;
	size_t n = r < 70 ? d->hot[rnd(&d->rng) % DEMO_HOT]
		 : r < 99 ? rnd_log(&d->rng, 1, SMALL_MAX)
			  : rnd_log(&d->rng, LARGE_MIN, MiB);
	pool_fill(d->c, &d->pl, i, n);
	demo_paced(d);
}

static void demo_free(demo *d, size_t i)
{
	if (d->pl.v[i].p == NULL)
		return;
	pool_drop(d->c, &d->pl, i);
	demo_paced(d);
}

/* An empty slot at or after *cursor, circularly; DEMO_SLOTS if there is none. */
static size_t demo_empty_slot(demo *d, size_t *cursor)
{
	for (size_t j = 0; j < DEMO_SLOTS; j++) {
		size_t i = (*cursor + j) % DEMO_SLOTS;
		if (d->pl.v[i].p == NULL) {
			*cursor = i + 1;
			return i;
		}
	}
	return DEMO_SLOTS;
}

static void demo_pass(demo *d, uint64_t seed)
{
	ctl *c = d->c;
	d->rng = seed;
	for (unsigned h = 0; h < DEMO_HOT; h++)
		d->hot[h] = rnd_log(&d->rng, 8, 16 * KiB);
	size_t cursor = 0;
	for (unsigned step = 0; step < DEMO_GROW_STEPS && !halted(c); step++) {
		size_t i = DEMO_SLOTS;
		if (rnd(&d->rng) % 5 != 0 && d->pl.bytes < DEMO_MAX_BYTES)
			i = demo_empty_slot(d, &cursor);
		if (i < DEMO_SLOTS)
			demo_alloc(d, i);
		else
			demo_free(d, (size_t)(rnd(&d->rng) % DEMO_SLOTS));
	}
	uint64_t peak = d->pl.bytes;
	for (size_t i = 1; i < DEMO_SLOTS && !halted(c); i += 2)
		demo_free(d, i);
	for (size_t i = 1; i < DEMO_SLOTS && d->pl.bytes < peak / 4 * 3 && !halted(c); i += 2) {
		if (d->pl.v[i].p == NULL)
			demo_alloc(d, i);
	}
	size_t at = (size_t)rnd(&d->rng), stride = (size_t)rnd(&d->rng) | 1;
	for (size_t j = 0; j < DEMO_SLOTS && d->pl.bytes > peak / 16 && !halted(c); j++)
		demo_free(d, (at + j * stride) % DEMO_SLOTS);
	nap(c, DEMO_REST_MS);
}

static int run_demo(const hs_workload_opts *o)
{
	ctl c;
	ctl_init(&c, "demo", o, 1);
	demo d = { .c = &c };
	pool_init(&c, &d.pl, DEMO_SLOTS);
	for (unsigned n = 0; next_pass(&c, n); n++)
		demo_pass(&d, pass_seed(o->seed, n));
	pool_fini(&c, &d.pl);
	return c.failed;
}

/* --- the table ------------------------------------------------------------------------- */

static const hs_workload workloads[] = {
	{ "demo", "every pane moves: grow, fragment, reuse, shrink, rest; repeats until stopped",
	  "Passes of 2-3 s, paced for a human: grow (mostly six favourite sizes, some of\n"
	  "every class, 1% large objects; up to 160 MiB), free every other object, refill\n"
	  "the holes, free all but a sixteenth, rest 300 ms while the scavenger releases.\n"
	  "Each pass draws new favourites; survivors of one pass clutter the next.\n"
	  "Exercises size classes, span reuse, page allocator growth, sweep and scavenger.",
	  run_demo },
	{ "churn", "100,000 live objects of 1..1024 bytes, one replaced per step",
	  "Fills a live set of 100,000 objects of random sizes from 1 to 1024 bytes, then\n"
	  "replaces a random one at each of 2,000,000 steps. The mcache fast path and the\n"
	  "steady state of the small classes: spans stay in use and are refilled.",
	  run_churn },
	{ "fragment", "keep 1 in 8 small objects, then ask for large ones",
	  "Allocates 98,304 objects of 16..4096 bytes (about 110 MiB) across many classes,\n"
	  "frees 7 of every 8, then allocates 48 objects of 256 KiB..1 MiB. Kept objects\n"
	  "pin many spans at an eighth full, and the pages freed between them are too\n"
	  "scattered for the large objects: in-use spans stay far above the live bytes,\n"
	  "and the heap grows although it has free pages.",
	  run_fragment },
	{ "grow-shrink", "grow to 256 MiB in use, free down to 8 MiB, four times",
	  "Four cycles of growing the live set to 256 MiB (small objects of every class,\n"
	  "1 in 16 a large object up to 1 MiB), freeing at random down to 8 MiB and\n"
	  "resting 250 ms. The page allocator grows, empty spans return at sweep, and the\n"
	  "scavenger releases the freed peak while the next cycle takes pages back.",
	  run_grow_shrink },
	{ "large", "objects of 33 KiB to 8 MiB, aligned up to 1 MiB, grown by realloc",
	  "20,000 operations on 32 slots: large objects of 33 KiB..8 MiB, a quarter of\n"
	  "them from hs_aligned_alloc with alignments of 4 KiB..1 MiB, some grown by\n"
	  "hs_realloc (contents checked). Large spans, the aligned page search, page\n"
	  "allocator growth and coalescing of freed runs.",
	  run_large },
	{ "sizeclasses", "every small size class, a few spans each",
	  "Walks the sizes 1..32768 class by class (found by hs_malloc_usable_size),\n"
	  "allocating enough objects of sizes within each class to fill three spans or\n"
	  "more, all held at once; then frees them from the largest class down, each\n"
	  "class in random order. Every mcentral, and the size-to-class tables.",
	  run_sizeclasses },
	{ "threads", "2 producers hand objects to 2 consumers that free them",
	  "Four threads: each producer allocates 500,000 objects (17 B..32 KiB) and hands\n"
	  "them through a bounded queue to its consumer, which checks and frees them;\n"
	  "every thread also churns a set of its own. Frees into spans another thread's\n"
	  "mcache owns, per-thread caches, thread exit.",
	  run_threads },
};

#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/* The table's, or the replay workload (cli/replay_run.c), which is not listed:
 * it runs only on an input heapscope replay-workload makes. */
const hs_workload *hs_workload_find(const char *name)
{
	for (size_t i = 0; i < NWORKLOADS; i++) {
		if (strcmp(workloads[i].name, name) == 0)
			return &workloads[i];
	}
	return strcmp(name, hs_replay_workload.name) == 0 ? &hs_replay_workload : NULL;
}

const hs_workload *hs_workloads(unsigned *n)
{
	*n = NWORKLOADS;
	return workloads;
}

/* --- heapscope workloads ---------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void print_description(FILE *f, const hs_workload *w)
{
	for (const char *s = w->description; *s != '\0';) {
		size_t len = strcspn(s, "\n");
		fprintf(f, "  %.*s\n", (int)len, s);
		s += len + (s[len] == '\n');
	}
}

static void usage(FILE *f)
{
	int width = 0;
	for (size_t i = 0; i < NWORKLOADS; i++) {
		int len = (int)strlen(workloads[i].name);
		width = len > width ? len : width;
	}
	fprintf(f, "usage: heapscope workloads [NAME]\n"
		   "       heapscope workloads --run NAME [--seed N] [--duration SECONDS]\n\n"
		   "The built-in workloads heapscope runs on its own heap:\n\n");
	for (size_t i = 0; i < NWORKLOADS; i++)
		fprintf(f, "  %-*s  %s\n", width, workloads[i].name, workloads[i].summary);
	for (size_t i = 0; i < NWORKLOADS; i++) {
		fprintf(f, "\n%s\n", workloads[i].name);
		print_description(f, &workloads[i]);
	}
	fprintf(f, "\noptions:\n"
		   "  --run NAME          run a workload here, untraced (for testing); with\n"
		   "                      HEAPSCOPE_CHECK=1 the heap's invariants are checked after\n"
		   "  --seed N            workload seed (default 1)\n"
		   "  --duration SECONDS  repeat the workload until this much time has passed\n"
		   "                      (default 0: one pass; demo runs until interrupted)\n"
		   "  --help              this text\n");
}

static const hs_workload *find_or_die(const char *name)
{
	const hs_workload *w = hs_workload_find(name);
	if (w == NULL)
		hs_cli_usage_error("unknown workload '%s' (see 'heapscope workloads')", name);
	return w;
}

/* A non-negative decimal number: digits with at most one point, nothing else. */
static double parse_duration(const char *option, const char *value)
{
	if (value == NULL)
		hs_cli_usage_error("option %s needs a value", option);
	size_t digits = strspn(value, "0123456789");
	const char *s = value + digits;
	if (*s == '.') {
		size_t frac = strspn(s + 1, "0123456789");
		digits += frac;
		s += 1 + frac;
	}
	if (digits == 0 || *s != '\0')
		hs_cli_usage_error("option %s: '%s' is not a number of seconds", option, value);
	double d = strtod(value, NULL);
	if (d > MAX_DURATION_S)
		hs_cli_usage_error("option %s: %s is more than %.0f seconds", option, value, MAX_DURATION_S);
	return d;
}

static int run_here(const hs_workload *w, hs_workload_opts o)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	o.stop = &stop_requested;
	uint64_t t0 = now_ns();
	if (w->run(&o) != 0)
		return HS_EXIT_FAIL;
	double secs = (double)(now_ns() - t0) / 1e9;
	const char *check = getenv("HEAPSCOPE_CHECK");
	if (check != NULL && strcmp(check, "1") == 0) {
		char msg[512];
		if (hs_heap_check(msg, sizeof msg) != 0) {
			fprintf(stderr, "heapscope: heap check after %s failed: %s\n", w->name, msg);
			return HS_EXIT_FAIL;
		}
	}
	printf("%s: done in %.3f s\n", w->name, secs);
	return HS_EXIT_OK;
}

int hs_cmd_workloads(int argc, char **argv)
{
	const char *run = NULL, *name = NULL;
	hs_workload_opts o = { .seed = 1 };
	int tuned = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return HS_EXIT_OK;
		} else if (strcmp(a, "--run") == 0) {
			if (v == NULL)
				hs_cli_usage_error("option %s needs a value", a);
			run = v, i++;
		} else if (strcmp(a, "--seed") == 0) {
			o.seed = hs_cli_parse_u64(a, v, 0, UINT64_MAX), i++, tuned = 1;
		} else if (strcmp(a, "--duration") == 0) {
			o.duration_s = parse_duration(a, v), i++, tuned = 1;
		} else if (a[0] == '-') {
			hs_cli_usage_error("workloads: unknown option '%s' (see 'heapscope workloads --help')", a);
		} else if (name == NULL) {
			name = a;
		} else {
			hs_cli_usage_error("workloads: unexpected argument '%s' (see 'heapscope workloads --help')", a);
		}
	}
	if (run != NULL && name != NULL)
		hs_cli_usage_error("workloads: give NAME or --run NAME, not both");
	if (run == NULL && tuned)
		hs_cli_usage_error("workloads: --seed and --duration go with --run");
	if (run != NULL)
		return run_here(find_or_die(run), o);
	if (name != NULL) {
		const hs_workload *w = find_or_die(name);
		printf("%s: %s\n\n", w->name, w->summary);
		print_description(stdout, w);
		return HS_EXIT_OK;
	}
	usage(stdout);
	return HS_EXIT_OK;
}
