/*
 * tests/unit/test_trace.c — the tracer end to end: a child process's heap is
 * traced into a ring (core/ring.h), the test process drains the ring while the
 * child runs and replays every record into the model (core/model.h), checking
 * the replica after every event and in full at the end.
 *
 * Every hs_ call happens in a child process: the heap initializes on first use
 * and reads HEAPSCOPE_TRACE_FD once, so the test process itself never touches
 * the heap (it only runs the model, which uses the C library's malloc).
 *
 * Expected values come from the event table (include/heapscope/events.h: kinds,
 * levels, argument counts, proc_start's pid/ppid/level/fork_seq), the ring's
 * protocol (a session's records are seq 0, 1, 2, ... with no gaps in lossless
 * mode), trace.h (proc_start first, then a final sample and digest, then
 * proc_end last), heapscope.h (after freeing everything and a sweep, no span is
 * left), and model.h (divergences name the first event that does not fit;
 * keyframes round-trip). The child counts its own successful allocation calls
 * and frees and passes the counts back through a pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "heapscope/heapscope.h"
#include "model.h"
#include "oracle.h"
#include "ring.h"

/* --- recording a child ------------------------------------------------------------ */

/* What a child reports through its pipe. */
typedef struct child_report {
	uint64_t magic;
	uint64_t mallocs; /* successful calls that made a new object */
	uint64_t frees;	  /* hs_free (or realloc) of a non-NULL object */
	uint64_t bytes;	  /* the sizes asked for those new objects */
	uint64_t in_place; /* reallocs that kept their object: no event */
	uint64_t grandchild; /* the pid of a process it forked, or 0 */
	uint64_t grandchild_status;
	uint64_t failed; /* a check inside the child failed: its line */
} child_report;

#define REPORT_MAGIC UINT64_C(0x74726f7065726863)

typedef void (*child_fn)(child_report *);

/* Set in the traced children: what the test process allocated before the fork
 * (and a failed test left behind) is not theirs to report as leaked. */
static int in_child;
#if defined(SANITIZED)
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return in_child;
}
#endif

/* fork() for a test's child: stdio flushed first, so that the child does not
 * print the parent's buffered output again, and in_child set in the child. */
static pid_t fork_child(void)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		in_child = 1;
	return pid;
}

/* A recorded session. */
typedef struct stream {
	hs_event *ev;
	size_t n, cap;
	uint64_t holes; /* tickets skipped with hs_ring_skip_hole after the child was gone */
	uint64_t head;	/* the ring's head at the end: tickets taken */
	pid_t pid;
	int status; /* the child's wait status */
	int have_report;
	child_report rep;
	hs_event_level level;
} stream;

static void append(stream *s, const hs_event *ev, size_t n)
{
	if (s->n + n > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 65536;
		while (ncap < s->n + n)
			ncap *= 2;
		hs_event *p = realloc(s->ev, ncap * sizeof *p);
		if (p == NULL)
			fail_msg("out of memory for %zu events", ncap);
		s->ev = p;
		s->cap = ncap;
	}
	memcpy(s->ev + s->n, ev, n * sizeof *ev);
	s->n += n;
}

static void stream_free(stream *s)
{
	free(s->ev);
	memset(s, 0, sizeof *s);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
	struct timespec d = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&d, NULL);
}

/*
 * Runs fn in a child process whose heap traces into a new ring of the given
 * level; drains the ring into s while the child runs, then what is left, then
 * skips the holes of records never published. With kill_after != 0, kills the
 * child with SIGKILL once that many events have been read.
 */
static void record(stream *s, hs_event_level level, uint64_t capacity, child_fn fn, size_t kill_after)
{
	memset(s, 0, sizeof *s);
	s->level = level;
	hs_ring_hdr *r;
	int fd = hs_ring_create(capacity, level, 0, &r);
	if (fd < 0)
		fail_msg("hs_ring_create: %s", strerror(errno));
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		setpgid(0, 0); /* so that a timeout can kill what it forks as well */
		close(p[0]);
		char v[32];
		snprintf(v, sizeof v, "%d", fd);
		/* Before the first hs_ call: the heap reads it once, at its first use. */
		setenv("HEAPSCOPE_TRACE_FD", v, 1);
		child_report rep = { .magic = REPORT_MAGIC };
		fn(&rep);
		if (write(p[1], &rep, sizeof rep) != (ssize_t)sizeof rep)
			_exit(99);
		close(p[1]);
		exit(0); /* atexit: hs_trace_finish emits the final stats, digest, proc_end */
	}
	close(p[1]);
	s->pid = pid;

	enum { BATCH = 4096 };
	static hs_event buf[BATCH];
	int reaped = 0, killed = 0;
	double deadline = now_s() + 20;
	while (!reaped) {
		size_t n = hs_ring_read(r, buf, BATCH);
		if (n != 0) {
			append(s, buf, n);
			if (kill_after != 0 && !killed && s->n >= kill_after) {
				kill(pid, SIGKILL);
				killed = 1;
			}
			continue;
		}
		pid_t w = waitpid(pid, &s->status, WNOHANG);
		if (w == pid) {
			reaped = 1;
			break;
		}
		assert_int_equal(w, 0);
		if (now_s() > deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &s->status, 0);
			fail_msg("the traced child did not finish in time (%zu events read)", s->n);
		}
		sleep_us(100);
	}
	/* Every producer is gone: drain, skipping holes. */
	for (;;) {
		size_t n = hs_ring_read(r, buf, BATCH);
		if (n != 0) {
			append(s, buf, n);
			continue;
		}
		if (hs_ring_skip_hole(r) == 1) {
			s->holes++;
			continue;
		}
		break;
	}
	s->head = atomic_load(&r->head);
	assert_int_equal(atomic_load(&r->tail), s->head);
	assert_int_equal(atomic_load(&r->drops), 0);
	ssize_t got = read(p[0], &s->rep, sizeof s->rep);
	s->have_report = got == (ssize_t)sizeof s->rep && s->rep.magic == REPORT_MAGIC;
	close(p[0]);
	hs_ring_unmap(r);
	close(fd);
}

/* --- the children's workloads --------------------------------------------------------- */

#define CHILD_CHECK(rep, cond)                                                                     \
	do {                                                                                       \
		if (!(cond) && (rep)->failed == 0)                                                 \
			(rep)->failed = __LINE__;                                                  \
	} while (0)

/* A size up to 64 KiB, spread over the powers of two (most are small). */
static size_t rand_size(uint64_t *seed)
{
	unsigned e = 4 + (unsigned)(oracle_rand(seed) % 13); /* 16 .. 65536 */
	return 1 + (size_t)(oracle_rand(seed) % ((uint64_t)1 << e));
}

static void touch(void *p, size_t n, uint64_t tag)
{
	unsigned char *c = p;
	c[0] = (unsigned char)tag;
	c[n - 1] = (unsigned char)(tag >> 8);
}

/* One new object of about size bytes by one of the allocation calls; counted. */
static void *alloc_one(child_report *rep, uint64_t *seed, size_t size, size_t *got)
{
	void *p = NULL;
	switch (oracle_rand(seed) % 8) {
	case 0:
	case 1:
	case 2:
	case 3:
		p = hs_malloc(size);
		break;
	case 4: {
		size_t k = 1 + oracle_rand(seed) % 8;
		size = (size + k - 1) / k * k;
		p = hs_calloc(k, size / k);
		if (p != NULL) {
			CHILD_CHECK(rep, ((unsigned char *)p)[0] == 0 && ((unsigned char *)p)[size - 1] == 0);
		}
		break;
	}
	case 5: {
		static const size_t aligns[] = { 16, 64, 512, 4096, 8192, 16384, 65536, 262144 };
		size_t a = aligns[oracle_rand(seed) % (sizeof aligns / sizeof aligns[0])];
		p = hs_aligned_alloc(a, size);
		CHILD_CHECK(rep, p == NULL || (uintptr_t)p % a == 0);
		break;
	}
	case 6:
		p = hs_realloc(NULL, size);
		break;
	case 7: {
		/* A smaller object first, then realloc'd to size: in place when the
		 * class stays, moved otherwise (a new object and a free). */
		size_t first = 1 + oracle_rand(seed) % size;
		void *q = hs_malloc(first);
		CHILD_CHECK(rep, q != NULL);
		if (q == NULL)
			return NULL;
		rep->mallocs++;
		rep->bytes += first;
		touch(q, first, 1);
		p = hs_realloc(q, size);
		CHILD_CHECK(rep, p != NULL);
		if (p != NULL && p != q) {
			rep->mallocs++;
			rep->bytes += size;
			rep->frees++;
		} else if (p != NULL) {
			rep->in_place++;
		}
		*got = size;
		return p;
	}
	}
	CHILD_CHECK(rep, p != NULL);
	if (p != NULL) {
		rep->mallocs++;
		rep->bytes += size;
	}
	*got = size;
	return p;
}

static void free_one(child_report *rep, void *p)
{
	if (p != NULL)
		rep->frees++;
	hs_free(p);
}

/* Reallocs an object to a new size; counts a move as a new object and a free. */
static void *realloc_one(child_report *rep, void *p, size_t size)
{
	void *q = hs_realloc(p, size);
	CHILD_CHECK(rep, q != NULL);
	if (q != NULL && q != p) {
		rep->mallocs++;
		rep->bytes += size;
		rep->frees++;
	} else if (q != NULL) {
		rep->in_place++;
	}
	return q;
}

enum { NOBJ = 20000, NAGAIN = 6000 };
static void *objs[NOBJ];
static size_t sizes[NOBJ];

/* The deterministic mix: many spans of every kind, page caches, large and
 * aligned spans, span frees by sweeping, scavenging, and reuse of scavenged
 * pages; everything freed at the end and swept. */
static void mix_workload(child_report *rep)
{
	uint64_t seed = 0x5eed0001;
	for (unsigned i = 0; i < NOBJ; i++) {
		objs[i] = alloc_one(rep, &seed, rand_size(&seed), &sizes[i]);
		if (objs[i] != NULL)
			touch(objs[i], sizes[i], i);
	}
	/* Free three quarters, in a scrambled order. */
	for (unsigned k = 0; k < NOBJ; k++) {
		unsigned i = (unsigned)(((uint64_t)k * 7919) % NOBJ);
		if (i % 4 != 0) {
			free_one(rep, objs[i]);
			objs[i] = NULL;
		}
	}
	free_one(rep, NULL); /* no event, not counted */
	hs_heap_sweep();
	hs_heap_scavenge_all();
	/* Allocate again (reusing scavenged pages), and resize some survivors. */
	for (unsigned k = 0; k < NAGAIN; k++) {
		unsigned i = (unsigned)(oracle_rand(&seed) % NOBJ);
		if (objs[i] == NULL) {
			objs[i] = alloc_one(rep, &seed, rand_size(&seed), &sizes[i]);
			if (objs[i] != NULL)
				touch(objs[i], sizes[i], i);
		} else if (k % 3 == 0) {
			sizes[i] = rand_size(&seed);
			objs[i] = realloc_one(rep, objs[i], sizes[i]);
			if (objs[i] != NULL)
				touch(objs[i], sizes[i], i);
		}
	}
	/* realloc(p, 0) frees. */
	for (unsigned i = 0; i < NOBJ; i += 97) {
		if (objs[i] != NULL) {
			CHILD_CHECK(rep, hs_realloc(objs[i], 0) == NULL);
			rep->frees++;
			objs[i] = NULL;
		}
	}
	for (unsigned i = 0; i < NOBJ; i++) {
		free_one(rep, objs[i]);
		objs[i] = NULL;
	}
	hs_heap_sweep();
	char msg[256];
	CHILD_CHECK(rep, hs_heap_check(msg, sizeof msg) == 0);
}

/* Runs until killed (or for 15 s at most): large and small objects churning. */
static void endless_workload(child_report *rep)
{
	uint64_t seed = 0x5eed0002;
	double stop = now_s() + 15;
	for (unsigned round = 0; now_s() < stop; round++) {
		for (unsigned i = 0; i < 2000; i++) {
			unsigned k = (unsigned)(oracle_rand(&seed) % 2000);
			if (objs[k] != NULL) {
				free_one(rep, objs[k]);
				objs[k] = NULL;
			} else {
				objs[k] = alloc_one(rep, &seed, rand_size(&seed), &sizes[k]);
			}
		}
		if (round % 4 == 3)
			hs_heap_sweep();
	}
}

/* n allocations of every kind, a third freed at once, the rest every 512. */
static void small_work(child_report *rep, uint64_t seed, unsigned n)
{
	static void *mine[512];
	for (unsigned i = 0; i < n; i++) {
		size_t size;
		mine[i % 512] = alloc_one(rep, &seed, rand_size(&seed), &size);
		if (i % 3 == 0) {
			free_one(rep, mine[i % 512]);
			mine[i % 512] = NULL;
		}
		if (i % 512 == 511) {
			for (unsigned k = 0; k < 512; k++) {
				free_one(rep, mine[k]);
				mine[k] = NULL;
			}
		}
	}
	for (unsigned k = 0; k < 512; k++) {
		free_one(rep, mine[k]);
		mine[k] = NULL;
	}
	hs_heap_sweep();
}

/* A little work, a fork whose child frees some of what it inherited, works a
 * little and exits, more work in the parent. */
static void forking_workload_common(child_report *rep, int wait_first)
{
	small_work(rep, 11, 3000);
	/* Keep some objects live across the fork: the grandchild frees its copies. */
	void *keep[64];
	for (unsigned i = 0; i < 64; i++) {
		size_t size = i % 2 ? 40000 : 100 + i;
		keep[i] = hs_malloc(size);
		CHILD_CHECK(rep, keep[i] != NULL);
		rep->mallocs++;
		rep->bytes += size;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t g = fork();
	if (g == 0) {
		child_report grep = { 0 };
		for (unsigned i = 0; i < 64; i += 2)
			free_one(&grep, keep[i]);
		small_work(&grep, 22, 1500);
		exit(grep.failed ? 3 : 0); /* atexit: the grandchild's final digest and proc_end */
	}
	CHILD_CHECK(rep, g > 0);
	rep->grandchild = (uint64_t)g;
	int st = 0;
	if (wait_first)
		CHILD_CHECK(rep, waitpid(g, &st, 0) == g);
	/* Carry on (while the grandchild runs, unless it was waited for). */
	small_work(rep, 33, 1500);
	for (unsigned i = 0; i < 64; i++)
		free_one(rep, keep[i]);
	hs_heap_sweep();
	if (!wait_first)
		CHILD_CHECK(rep, waitpid(g, &st, 0) == g);
	rep->grandchild_status = (uint64_t)st;
}

static void forking_workload(child_report *rep)
{
	/* No background scavenger: nothing but this thread changes the heap
	 * while the grandchild starts (see test_fork_concurrent). */
	setenv("HEAPSCOPE_SCAVENGER_BUDGET", "0", 1);
	forking_workload_common(rep, 1);
}

static void forking_workload_concurrent(child_report *rep)
{
	forking_workload_common(rep, 0);
}

/* --- checking a stream ------------------------------------------------------------------ */

static const char *kind_name(unsigned kind)
{
	const hs_event_info *info = hs_event_lookup(kind);
	return info != NULL ? info->name : "?";
}

/* Per-record checks from the event table: a known kind at or below the ring's
 * level, the reserved fields zero, the unused argument slots zero. */
static void check_record(const stream *s, const hs_event *e)
{
	const hs_event_info *info = hs_event_lookup(e->kind);
	if (info == NULL)
		fail_msg("seq %llu: unknown kind %u", (unsigned long long)e->seq, e->kind);
	if (info->level > s->level)
		fail_msg("seq %llu: a %s event (level %u) in a ring of level %u", (unsigned long long)e->seq,
			 info->name, info->level, s->level);
	if (e->flags != 0 || e->reserved != 0)
		fail_msg("seq %llu (%s): reserved fields %u/%u", (unsigned long long)e->seq, info->name, e->flags,
			 e->reserved);
	for (unsigned k = info->nargs; k < HS_EVENT_MAX_ARGS; k++)
		if (e->arg[k] != 0)
			fail_msg("seq %llu (%s): unused arg[%u] = %#llx", (unsigned long long)e->seq, info->name, k,
				 (unsigned long long)e->arg[k]);
	if (e->tid == 0 || e->ts == 0)
		fail_msg("seq %llu (%s): tid %u ts %llu", (unsigned long long)e->seq, info->name, e->tid,
			 (unsigned long long)e->ts);
}

/* Replays ev[0..n) into m with hs_model_check after every event; fails the
 * test on the first divergence or violated invariant. */
static void replay_checked(hs_model *m, const hs_event *ev, size_t n)
{
	char msg[512];
	for (size_t i = 0; i < n; i++) {
		if (hs_model_apply(m, &ev[i]) != 0)
			fail_msg("model diverged at event %zu: %s", i, hs_model_error(m));
		if (hs_model_check(m, &ev[i], msg, sizeof msg) != 0)
			fail_msg("model invariant after seq %llu (%s): %s", (unsigned long long)ev[i].seq,
				 kind_name(ev[i].kind), msg);
	}
	if (hs_model_check(m, NULL, msg, sizeof msg) != 0)
		fail_msg("model invariant at the end: %s", msg);
	assert_null(hs_model_error(m));
}

/* Replays without failing; returns the index of the first apply that fails,
 * or n. Every apply after a failure must fail too. */
static size_t replay_until_divergence(hs_model *m, const hs_event *ev, size_t n)
{
	size_t first = n;
	for (size_t i = 0; i < n; i++) {
		int r = hs_model_apply(m, &ev[i]);
		if (r != 0 && r != -1)
			fail_msg("hs_model_apply returned %d", r);
		if (r != 0 && first == n)
			first = i;
		if (r == 0 && first != n)
			fail_msg("hs_model_apply accepted seq %llu after the divergence at index %zu",
				 (unsigned long long)ev[i].seq, first);
	}
	return first;
}

/* Per thread, timestamps do not go backwards in sequence order. */
static void check_ts_per_thread(const stream *s)
{
	enum { MAXT = 64 };
	uint64_t tids[MAXT], last[MAXT];
	unsigned nt = 0;
	for (size_t i = 0; i < s->n; i++) {
		const hs_event *e = &s->ev[i];
		uint64_t id = (uint64_t)e->pid << 32 | e->tid;
		unsigned k = 0;
		while (k < nt && tids[k] != id)
			k++;
		if (k == nt) {
			assert_true(nt < MAXT);
			tids[nt] = id;
			last[nt++] = e->ts;
			continue;
		}
		if (e->ts < last[k])
			fail_msg("seq %llu: thread %u's clock went back (%llu < %llu)", (unsigned long long)e->seq, e->tid,
				 (unsigned long long)e->ts, (unsigned long long)last[k]);
		last[k] = e->ts;
	}
}

/* The checks every complete session of one process passes. */
static void check_complete_session(const stream *s)
{
	if (!WIFEXITED(s->status) || WEXITSTATUS(s->status) != 0)
		fail_msg("traced child ended with status %#x", s->status);
	assert_true(s->have_report);
	if (s->rep.failed != 0)
		fail_msg("a check in the child failed (test_trace.c line %llu)", (unsigned long long)s->rep.failed);
	assert_int_equal(s->holes, 0);
	assert_true(s->n >= 4);
	assert_int_equal(s->head, s->n);
	for (size_t i = 0; i < s->n; i++) {
		if (s->ev[i].seq != i)
			fail_msg("event %zu has seq %llu", i, (unsigned long long)s->ev[i].seq);
		check_record(s, &s->ev[i]);
	}
	check_ts_per_thread(s);

	const hs_event *first = &s->ev[0], *last = &s->ev[s->n - 1];
	assert_int_equal(first->kind, HS_EV_PROC_START);
	assert_int_equal(first->pid, (uint32_t)s->pid);
	assert_int_equal(first->arg[0], (uint64_t)s->pid);
	assert_int_equal(first->arg[1], (uint64_t)getpid());
	assert_int_equal(first->arg[2], (uint64_t)s->level);
	assert_int_equal(first->arg[3], 0);
	assert_int_equal(last->kind, HS_EV_PROC_END);
	assert_int_equal(last->pid, (uint32_t)s->pid);
	assert_int_equal(last->arg[0], 0);
	/* The final sample: stats, then the digest, then proc_end. */
	if (s->ev[s->n - 2].kind != HS_EV_DIGEST || s->ev[s->n - 3].kind != HS_EV_STATS)
		fail_msg("the session ends with %s, %s, %s instead of stats, digest, proc_end",
			 kind_name(s->ev[s->n - 3].kind), kind_name(s->ev[s->n - 2].kind), kind_name(last->kind));
}

static void count_kinds(const stream *s, uint64_t counts[HS_EV_KIND_LIMIT])
{
	memset(counts, 0, HS_EV_KIND_LIMIT * sizeof counts[0]);
	for (size_t i = 0; i < s->n; i++)
		if (s->ev[i].kind < HS_EV_KIND_LIMIT)
			counts[s->ev[i].kind]++;
}

/* --- what a test owns ---------------------------------------------------------------------
 * Models and buffers a test makes are registered here and released by the
 * test's teardown, so that a failed check (which leaves the test by longjmp)
 * leaks nothing and leaves the sanitizers' reports to real leaks. */

enum { OWN_BUF, OWN_MODEL, MAX_OWNED = 32 };
static struct {
	void *p;
	int kind;
} owned[MAX_OWNED];

static void *own(void *p, int kind)
{
	if (p == NULL)
		return NULL;
	for (unsigned i = 0; i < MAX_OWNED; i++)
		if (owned[i].p == NULL) {
			owned[i].p = p;
			owned[i].kind = kind;
			return p;
		}
	fail_msg("more than %d objects owned by one test", MAX_OWNED);
	return p;
}

static void release(unsigned i)
{
	if (owned[i].kind == OWN_MODEL)
		hs_model_free(owned[i].p);
	else
		free(owned[i].p);
	owned[i].p = NULL;
}

/* Frees p (a buffer or a model) now. */
static void drop(void *p)
{
	for (unsigned i = 0; i < MAX_OWNED; i++)
		if (owned[i].p == p && p != NULL) {
			release(i);
			return;
		}
	fail_msg("dropping %p, which no test owns", p);
}

static int release_owned(void **state)
{
	(void)state;
	for (unsigned i = 0; i < MAX_OWNED; i++)
		if (owned[i].p != NULL)
			release(i);
	return 0;
}

static hs_model *new_model(void)
{
	hs_model *m = hs_model_new();
	assert_non_null(m);
	return own(m, OWN_MODEL);
}

static hs_model *load_model(const void *buf, size_t len, char *err, size_t errlen)
{
	return own(hs_model_load(buf, len, err, errlen), OWN_MODEL);
}

static void *owned_malloc(size_t n)
{
	void *p = malloc(n);
	assert_non_null(p);
	return own(p, OWN_BUF);
}

/* --- the recorded sessions (recorded once, shared by the tests below) ------------------- */

static stream heap_session, object_session, killed_session, fork_session;

static const stream *heap_stream(void)
{
	if (heap_session.n == 0)
		record(&heap_session, HS_EVL_HEAP, 1 << 16, mix_workload, 0);
	return &heap_session;
}

static const stream *object_stream(void)
{
	if (object_session.n == 0)
		record(&object_session, HS_EVL_OBJECT, 1 << 16, mix_workload, 0);
	return &object_session;
}

static int teardown_streams(void **state)
{
	(void)state;
	stream_free(&heap_session);
	stream_free(&object_session);
	stream_free(&killed_session);
	stream_free(&fork_session);
	return 0;
}

/* --- the tests --------------------------------------------------------------------------- */

/* The final digest after everything was freed and swept: no spans. */
static void check_final_digest(const stream *s, hs_model *m)
{
	/* The last digest of the stream is the final one, after every free. */
	size_t last = SIZE_MAX, last_free = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->ev[i].kind == HS_EV_DIGEST)
			last = i;
		if (s->ev[i].kind == HS_EV_FREE || s->ev[i].kind == HS_EV_SPAN_FREE || s->ev[i].kind == HS_EV_PAGE_FREE)
			last_free = i;
	}
	assert_int_equal(last, s->n - 2);
	assert_true(last_free < last);
	const hs_event *d = &s->ev[last];
	if (d->arg[2] != 0)
		fail_msg("final digest: %llu spans after every object was freed and swept",
			 (unsigned long long)d->arg[2]);
	assert_true(d->arg[3] >= 1); /* chunks grown */
	hs_model_heap *h = hs_model_heap_of(m, (uint32_t)s->pid);
	assert_non_null(h);
	assert_int_equal(h->nspans, 0);
	assert_int_equal(h->ended, 1);
	assert_true(h->digests_ok >= 1);
	/* The final stats sample: nothing in spans. */
	assert_int_equal(h->stats[0], 0);
	assert_true(h->stats[2] <= h->stats[1]); /* released is part of free */
	assert_true(h->stats[5] <= h->stats[3]); /* metadata is part of sys */
}

static void test_heap_level_session(void **state)
{
	(void)state;
	const stream *s = heap_stream();
	check_complete_session(s);
	uint64_t k[HS_EV_KIND_LIMIT];
	count_kinds(s, k);
	assert_int_equal(k[HS_EV_MALLOC], 0);
	assert_int_equal(k[HS_EV_FREE], 0);
	assert_int_equal(k[HS_EV_PROC_START], 1);
	assert_int_equal(k[HS_EV_PROC_END], 1);
	/* The mix makes every kind of heap change. */
	assert_true(k[HS_EV_PAGE_GROW] >= 1);
	assert_true(k[HS_EV_PAGE_ALLOC] >= 1);
	assert_true(k[HS_EV_PAGE_ALLOC_RANGE] >= 1);
	assert_true(k[HS_EV_PAGE_FREE] >= 1);
	assert_true(k[HS_EV_PAGE_CACHE_ALLOC] >= 1);
	assert_true(k[HS_EV_SPAN_ALLOC] >= 10);
	assert_true(k[HS_EV_SPAN_FREE] >= 10);
	assert_true(k[HS_EV_SCAV_RANGE] >= 1);
	assert_true(k[HS_EV_SCAV_START] >= 1);
	assert_true(k[HS_EV_SCAV_END] >= 1);
	assert_true(k[HS_EV_RECOMMIT] >= 1); /* scavenged pages handed out again */
	assert_true(k[HS_EV_DIGEST] >= 1);
	/* Every span made is freed: everything was freed and swept. */
	assert_int_equal(k[HS_EV_SPAN_ALLOC], k[HS_EV_SPAN_FREE]);

	hs_model *m = new_model();
	assert_non_null(m);
	replay_checked(m, s->ev, s->n);
	assert_int_equal(hs_model_events(m), s->n);
	assert_int_equal(hs_model_last_seq(m), s->n - 1);
	assert_int_equal(hs_model_nheaps(m), 1);
	assert_true(hs_model_digests(m) >= 1);
	assert_int_equal(hs_model_digests(m), k[HS_EV_DIGEST]);
	check_final_digest(s, m);
	hs_model_heap *h = hs_model_heap_at(m, 0);
	assert_int_equal(h->pid, (uint32_t)s->pid);
	assert_int_equal(h->ppid, (uint32_t)getpid());
	assert_int_equal(h->mallocs, 0);
	assert_int_equal(h->frees, 0);
	drop(m);
}

static void test_object_level_session(void **state)
{
	(void)state;
	const stream *s = object_stream();
	check_complete_session(s);
	uint64_t k[HS_EV_KIND_LIMIT];
	count_kinds(s, k);
	assert_int_equal(k[HS_EV_MALLOC], s->rep.mallocs);
	assert_int_equal(k[HS_EV_FREE], s->rep.frees);
	assert_true(s->rep.mallocs > NOBJ);
	/* Every object allocated was freed. */
	assert_int_equal(s->rep.mallocs, s->rep.frees);

	/* Replay; each malloc's and free's object lies in a span the model holds
	 * right then, of the class the event names — or, since malloc and free
	 * records wait in their thread's buffer (docs/events.md), in a span that
	 * another thread (the background sweeper) freed before the buffer was
	 * flushed. */
	hs_model *m = new_model();
	assert_non_null(m);
	char msg[512];
	uint64_t large = 0, late = 0;
	size_t nfreed = 0;
	hs_event *freed = calloc(s->n, sizeof *freed);
	assert_non_null(freed);
	for (size_t i = 0; i < s->n; i++) {
		const hs_event *e = &s->ev[i];
		if (hs_model_apply(m, e) != 0)
			fail_msg("model diverged: %s", hs_model_error(m));
		if (hs_model_check(m, e, msg, sizeof msg) != 0)
			fail_msg("model invariant after seq %llu: %s", (unsigned long long)e->seq, msg);
		if (e->kind == HS_EV_SPAN_FREE)
			freed[nfreed++] = *e;
		if (e->kind != HS_EV_MALLOC && e->kind != HS_EV_FREE)
			continue;
		hs_model_heap *h = hs_model_heap_of(m, e->pid);
		const hs_model_span *sp = hs_model_span_of(h, (uintptr_t)e->arg[0]);
		if (sp == NULL) {
			size_t j = nfreed;
			while (j > 0 && !(freed[j - 1].arg[0] <= e->arg[0] &&
					  e->arg[0] < freed[j - 1].arg[0] + (freed[j - 1].arg[1] << HS_PAGE_SHIFT)))
				j--;
			if (j == 0 || freed[j - 1].tid == e->tid)
				fail_msg("seq %llu: %s of %#llx outside every span of the model, and not in one "
					 "another thread freed before", (unsigned long long)e->seq, kind_name(e->kind),
					 (unsigned long long)e->arg[0]);
			late++;
			continue;
		}
		if (e->kind == HS_EV_FREE)
			continue;
		uint64_t size = e->arg[1] == 0 ? 1 : e->arg[1];
		if (e->arg[0] + size > sp->base + ((uint64_t)sp->npages << HS_PAGE_SHIFT))
			fail_msg("seq %llu: object [%#llx, +%llu) runs past its span", (unsigned long long)e->seq,
				 (unsigned long long)e->arg[0], (unsigned long long)size);
		if (e->arg[2] == 0) {
			large++;
			assert_int_equal(hs_span_class_size((hs_span_class)sp->spanclass), 0);
			assert_int_equal(e->arg[0], sp->base);
		} else {
			assert_int_equal(e->arg[2], sp->spanclass);
			assert_true(e->arg[1] <= HS_MAX_SMALL_SIZE);
		}
		if (e->arg[1] > HS_MAX_SMALL_SIZE)
			assert_int_equal(e->arg[2], 0);
	}
	free(freed);
	if (hs_model_check(m, NULL, msg, sizeof msg) != 0)
		fail_msg("model invariant at the end: %s", msg);
	assert_true(large > 0);
	assert_true(late * 100 <= s->rep.mallocs + s->rep.frees); /* rare: at most 1% */
	assert_true(hs_model_digests(m) >= 1);
	hs_model_heap *h = hs_model_heap_of(m, (uint32_t)s->pid);
	assert_int_equal(h->mallocs, s->rep.mallocs);
	assert_int_equal(h->frees, s->rep.frees);
	/* malloc's size argument is the size asked (calloc: n * size). */
	assert_int_equal(h->malloc_bytes, s->rep.bytes);
	assert_true(s->rep.in_place > 0); /* the mix has both kinds of realloc */
	check_final_digest(s, m);
	drop(m);
}

static void test_killed_child(void **state)
{
	(void)state;
	stream_free(&killed_session);
	stream *s = &killed_session; /* static: freed by the teardown if a check fails */
	record(s, HS_EVL_OBJECT, 1 << 14, endless_workload, 10000);
	assert_true(WIFSIGNALED(s->status));
	assert_int_equal(WTERMSIG(s->status), SIGKILL);
	assert_false(s->have_report);
	assert_true(s->n >= 10000);
	/* Every ticket taken was read or skipped as a hole, in order. */
	assert_int_equal(s->n + s->holes, s->head);
	uint64_t first_hole = UINT64_MAX;
	for (size_t i = 0; i < s->n; i++) {
		if (i > 0 && s->ev[i].seq <= s->ev[i - 1].seq)
			fail_msg("seq %llu after %llu", (unsigned long long)s->ev[i].seq,
				 (unsigned long long)s->ev[i - 1].seq);
		if (s->ev[i].seq != i && first_hole == UINT64_MAX)
			first_hole = i; /* tickets before i were all read */
		check_record(s, &s->ev[i]);
	}
	if (s->holes == 0)
		assert_int_equal(first_hole, UINT64_MAX);
	else if (first_hole == UINT64_MAX)
		first_hole = s->n; /* the holes are at the end */
	check_ts_per_thread(s);
	assert_int_equal(s->ev[0].kind, HS_EV_PROC_START);
	for (size_t i = 0; i < s->n; i++)
		assert_int_not_equal(s->ev[i].kind, HS_EV_PROC_END);

	hs_model *m = new_model();
	assert_non_null(m);
	if (s->holes == 0) {
		replay_checked(m, s->ev, s->n);
	} else {
		/* A lost heap event may make a later one not fit: only what precedes
		 * the first hole must replay without divergence. */
		size_t bad = replay_until_divergence(m, s->ev, s->n);
		if (bad < s->n)
			assert_true(s->ev[bad].seq > first_hole);
	}
	assert_int_equal(hs_model_nheaps(m), 1);
	assert_int_equal(hs_model_heap_at(m, 0)->ended, 0);
	drop(m);
	stream_free(s);
}

/* The index of the n-th event of a kind (n counted from 0), or SIZE_MAX. */
static size_t nth_of_kind(const stream *s, unsigned kind, size_t nth)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ev[i].kind == kind && nth-- == 0)
			return i;
	return SIZE_MAX;
}

static size_t count_of_kind(const stream *s, unsigned kind)
{
	size_t c = 0;
	for (size_t i = 0; i < s->n; i++)
		c += s->ev[i].kind == kind;
	return c;
}

static hs_event *copy_events(const stream *s)
{
	hs_event *c = owned_malloc(s->n * sizeof *c);
	memcpy(c, s->ev, s->n * sizeof *c);
	return c;
}

static void test_divergence_altered_page_alloc(void **state)
{
	(void)state;
	const stream *s = heap_stream();
	size_t npa = count_of_kind(s, HS_EV_PAGE_ALLOC);
	assert_true(npa >= 1);
	size_t at = nth_of_kind(s, HS_EV_PAGE_ALLOC, npa / 2);
	hs_event *ev = copy_events(s);
	ev[at].arg[0] += HS_PAGE_SIZE; /* a base first fit does not give */
	hs_model *m = new_model();
	size_t bad = replay_until_divergence(m, ev, s->n);
	assert_int_equal(bad, at);
	assert_int_equal(hs_model_error_seq(m), ev[at].seq);
	assert_non_null(hs_model_error(m));
	assert_true(strlen(hs_model_error(m)) > 0);
	drop(m);

	/* The same event with its scavenged bytes altered instead. */
	memcpy(ev, s->ev, s->n * sizeof *ev);
	ev[at].arg[2] += HS_PAGE_SIZE;
	m = new_model();
	assert_int_equal(replay_until_divergence(m, ev, s->n), at);
	assert_int_equal(hs_model_error_seq(m), ev[at].seq);
	drop(m);
	drop(ev);
}

static void test_divergence_dropped_span_free(void **state)
{
	(void)state;
	const stream *s = heap_stream();
	size_t nsf = count_of_kind(s, HS_EV_SPAN_FREE);
	assert_true(nsf >= 1);
	size_t at = nth_of_kind(s, HS_EV_SPAN_FREE, nsf / 2);
	uint64_t dropped = s->ev[at].seq;
	hs_event *ev = owned_malloc(s->n * sizeof *ev);
	memcpy(ev, s->ev, at * sizeof *ev);
	memcpy(ev + at, s->ev + at + 1, (s->n - at - 1) * sizeof *ev);
	hs_model *m = new_model();
	size_t bad = replay_until_divergence(m, ev, s->n - 1);
	/* The span stays in the replica: at the latest the final digest differs. */
	if (bad == s->n - 1)
		fail_msg("dropping span_free seq %llu went unnoticed", (unsigned long long)dropped);
	assert_true(hs_model_error_seq(m) > dropped);
	assert_int_equal(hs_model_error_seq(m), ev[bad].seq);
	assert_non_null(hs_model_error(m));
	drop(m);
	drop(ev);
}

static void test_divergence_other_alterations(void **state)
{
	(void)state;
	const stream *s = heap_stream();
	hs_event *ev = copy_events(s);
	hs_model *m;

	/* A digest whose summary hash is off: divergence at the digest. */
	size_t d = nth_of_kind(s, HS_EV_DIGEST, 0);
	assert_true(d != SIZE_MAX);
	ev[d].arg[0] ^= 1;
	m = new_model();
	assert_int_equal(replay_until_divergence(m, ev, s->n), d);
	assert_int_equal(hs_model_error_seq(m), ev[d].seq);
	drop(m);
	memcpy(ev, s->ev, s->n * sizeof *ev);

	/* ... and one whose span count is off. */
	ev[d].arg[2]++;
	m = new_model();
	assert_int_equal(replay_until_divergence(m, ev, s->n), d);
	drop(m);
	memcpy(ev, s->ev, s->n * sizeof *ev);

	/* A page_free of pages that are free: divergence right there. */
	size_t pf = nth_of_kind(s, HS_EV_PAGE_FREE, count_of_kind(s, HS_EV_PAGE_FREE) / 2);
	assert_true(pf != SIZE_MAX);
	m = new_model();
	hs_event twice[2];
	assert_int_equal(replay_until_divergence(m, ev, pf + 1), pf + 1);
	twice[0] = ev[pf];
	twice[0].seq = ev[pf].seq + 1000000000; /* later, and the same pages again */
	assert_int_equal(hs_model_apply(m, &twice[0]), -1);
	assert_int_equal(hs_model_error_seq(m), twice[0].seq);
	drop(m);

	/* Sequence numbers going backwards. */
	m = new_model();
	assert_int_equal(replay_until_divergence(m, ev, 10), 10);
	twice[1] = ev[10];
	twice[1].seq = ev[5].seq;
	assert_int_equal(hs_model_apply(m, &twice[1]), -1);
	drop(m);

	/* An event of a process that never started, and an unknown kind. */
	m = new_model();
	hs_event e = ev[1];
	e.pid ^= 0x40000000;
	assert_int_equal(hs_model_apply(m, &ev[0]), 0);
	assert_int_equal(hs_model_apply(m, &e), -1);
	drop(m);
	m = new_model();
	e = ev[1];
	e.kind = 63;
	assert_int_equal(hs_model_apply(m, &ev[0]), 0);
	assert_int_equal(hs_model_apply(m, &e), -1);
	assert_int_equal(hs_model_error_seq(m), e.seq);
	drop(m);
	drop(ev);
}

/* Random damage to single records never crashes the model, and a divergence is
 * never reported before the damaged record. */
static void test_divergence_fuzz(void **state)
{
	(void)state;
	const stream *s = heap_stream();
	hs_event *ev = copy_events(s);
	uint64_t seed = 0xf022;
#if defined(SANITIZED)
	enum { ROUNDS = 8 };
#else
	enum { ROUNDS = 24 };
#endif
	for (unsigned r = 0; r < ROUNDS; r++) {
		memcpy(ev, s->ev, s->n * sizeof *ev);
		size_t at = 1 + (size_t)(oracle_rand(&seed) % (s->n - 1));
		unsigned a = (unsigned)(oracle_rand(&seed) % HS_EVENT_MAX_ARGS);
		switch (r % 3) {
		case 0:
			ev[at].arg[a] ^= (uint64_t)1 << (oracle_rand(&seed) % 64);
			break;
		case 1:
			ev[at].arg[a] = oracle_rand(&seed);
			break;
		default:
			ev[at].kind = (uint16_t)(oracle_rand(&seed) % HS_EV_KIND_LIMIT);
			break;
		}
		hs_model *m = new_model();
		size_t bad = replay_until_divergence(m, ev, s->n);
		if (bad < s->n)
			assert_true(bad >= at);
		char msg[512];
		if (bad == s->n && hs_model_check(m, NULL, msg, sizeof msg) != 0) {
			/* An undetected change may still leave the replica consistent;
			 * it must never leave it broken without a divergence. */
			fail_msg("round %u: seq %llu altered, no divergence, but: %s", r, (unsigned long long)ev[at].seq,
				 msg);
		}
		drop(m);
	}
	drop(ev);
}

static void *save_or_fail(const hs_model *m, size_t *len)
{
	void *b = own(hs_model_save(m, len), OWN_BUF);
	assert_non_null(b);
	assert_true(*len >= 16);
	return b;
}

static void test_keyframes(void **state)
{
	(void)state;
	const stream *s = object_stream();
	size_t half = s->n / 2;
	hs_model *a = new_model();
	assert_non_null(a);
	replay_checked(a, s->ev, half);

	size_t len;
	void *kf = save_or_fail(a, &len);
	char err[256] = "";
	hs_model *b = load_model(kf, len, err, sizeof err);
	if (b == NULL)
		fail_msg("hs_model_load refused a fresh keyframe: %s", err);
	assert_int_equal(hs_model_events(b), hs_model_events(a));
	assert_int_equal(hs_model_last_seq(b), hs_model_last_seq(a));
	assert_int_equal(hs_model_digests(b), hs_model_digests(a));
	assert_int_equal(hs_model_nheaps(b), hs_model_nheaps(a));
	{
		hs_model_heap *ha = hs_model_heap_at(a, 0), *hb = hs_model_heap_at(b, 0);
		assert_int_equal(hb->pid, ha->pid);
		assert_int_equal(hb->nspans, ha->nspans);
		assert_int_equal(hb->span_hash, ha->span_hash);
		assert_int_equal(hb->mallocs, ha->mallocs);
		assert_int_equal(hb->frees, ha->frees);
	}
	char msg[512];
	if (hs_model_check(b, NULL, msg, sizeof msg) != 0)
		fail_msg("loaded keyframe: %s", msg);

	/* Both carry on with the second half, in lockstep. */
	for (size_t i = half; i < s->n; i++) {
		if (hs_model_apply(a, &s->ev[i]) != 0)
			fail_msg("model A diverged: %s", hs_model_error(a));
		if (hs_model_apply(b, &s->ev[i]) != 0)
			fail_msg("model B (from the keyframe) diverged: %s", hs_model_error(b));
		if (hs_model_check(b, &s->ev[i], msg, sizeof msg) != 0)
			fail_msg("model B after seq %llu: %s", (unsigned long long)s->ev[i].seq, msg);
	}
	assert_null(hs_model_error(a));
	assert_null(hs_model_error(b));
	if (hs_model_check(b, NULL, msg, sizeof msg) != 0)
		fail_msg("model B at the end: %s", msg);
	assert_int_equal(hs_model_digests(b), hs_model_digests(a));
	assert_int_equal(hs_model_heap_at(b, 0)->nspans, hs_model_heap_at(a, 0)->nspans);

	size_t la, lb;
	void *sa = save_or_fail(a, &la), *sb = save_or_fail(b, &lb);
	assert_int_equal(la, lb);
	if (memcmp(sa, sb, la) != 0) {
		size_t i = 0;
		while (((unsigned char *)sa)[i] == ((unsigned char *)sb)[i])
			i++;
		fail_msg("keyframes of A and B differ from byte %zu of %zu", i, la);
	}
	drop(sa);
	drop(sb);
	drop(b);

	/* Damaged keyframes are refused with a reason, never crash. */
	err[0] = '\0';
	assert_null(load_model(kf, len - 1, err, sizeof err));
	assert_true(strlen(err) > 0);
	err[0] = '\0';
	assert_null(load_model(kf, len / 2, err, sizeof err));
	assert_true(strlen(err) > 0);
	err[0] = '\0';
	assert_null(load_model(kf, 0, err, sizeof err));
	assert_true(strlen(err) > 0);
	unsigned char *bad = owned_malloc(len + 8);
	memcpy(bad, kf, len);
	bad[0] ^= 0xff;
	err[0] = '\0';
	assert_null(load_model(bad, len, err, sizeof err));
	assert_true(strlen(err) > 0);
	memcpy(bad, kf, len);
	memset(bad + len, 0, 8);
	err[0] = '\0';
	assert_null(load_model(bad, len + 8, err, sizeof err)); /* trailing bytes */
	assert_true(strlen(err) > 0);
	/* Single damaged bytes anywhere: loaded or refused, but no crash. */
	uint64_t seed = 77;
	for (unsigned r = 0; r < 64; r++) {
		memcpy(bad, kf, len);
		bad[oracle_rand(&seed) % len] ^= (unsigned char)(1u << (r % 8));
		hs_model *c = hs_model_load(bad, len, err, sizeof err);
		hs_model_free(c);
	}
	drop(bad);
	drop(kf);
	drop(a);
}

typedef struct span_list {
	hs_model_span *s;
	size_t n, cap;
} span_list;

static void collect_span(const hs_model_span *sp, void *arg)
{
	span_list *l = arg;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->s = realloc(l->s, l->cap * sizeof *l->s);
		if (l->s == NULL)
			abort();
	}
	l->s[l->n++] = *sp;
}

static int cmp_span(const void *x, const void *y)
{
	uintptr_t a = ((const hs_model_span *)x)->base, b = ((const hs_model_span *)y)->base;
	return a < b ? -1 : a > b;
}

/* The same spans in two replicas, whatever the order of their tables; with
 * exact, also the same allocCount and place (what a keyframe keeps). */
static void same_spans(hs_model_heap *a, hs_model_heap *b, int exact, const char *what)
{
	assert_int_equal(a->nspans, b->nspans);
	assert_int_equal(a->span_hash, b->span_hash);
	span_list la = { 0 }, lb = { 0 };
	hs_model_spans(a, collect_span, &la);
	hs_model_spans(b, collect_span, &lb);
	own(la.s, OWN_BUF);
	own(lb.s, OWN_BUF);
	assert_int_equal(la.n, a->nspans);
	assert_int_equal(lb.n, b->nspans);
	if (la.n != 0) {
		qsort(la.s, la.n, sizeof *la.s, cmp_span);
		qsort(lb.s, lb.n, sizeof *lb.s, cmp_span);
	}
	for (size_t i = 0; i < la.n; i++)
		if (la.s[i].base != lb.s[i].base || la.s[i].npages != lb.s[i].npages ||
		    la.s[i].spanclass != lb.s[i].spanclass ||
		    (exact && (la.s[i].alloc_count != lb.s[i].alloc_count || la.s[i].where != lb.s[i].where)))
			fail_msg("span %zu differs %s: %#lx vs %#lx", i, what, (unsigned long)la.s[i].base,
				 (unsigned long)lb.s[i].base);
	if (la.s != NULL) {
		drop(la.s);
		drop(lb.s);
	}
}

/* A keyframe saved and loaded straight away saves to the same bytes, taken at
 * points of the stream where thousands of spans are live. */
static void round_trip_at(const stream *s, size_t at)
{
	hs_model *a = new_model();
	assert_non_null(a);
	replay_checked(a, s->ev, at);
	size_t l1, l2;
	void *k1 = save_or_fail(a, &l1);
	char err[256];
	hs_model *b = load_model(k1, l1, err, sizeof err);
	if (b == NULL)
		fail_msg("load: %s", err);
	void *k2 = save_or_fail(b, &l2);
	assert_int_equal(l1, l2);
	hs_model_heap *ha = hs_model_heap_at(a, 0), *hb = hs_model_heap_at(b, 0);
	same_spans(ha, hb, 1, "after a keyframe round trip");
	/* ... and the same bytes: a keyframe is a function of the model's state. */
	if (memcmp(k1, k2, l1) != 0) {
		size_t i = 0;
		while (((unsigned char *)k1)[i] == ((unsigned char *)k2)[i])
			i++;
		fail_msg("event %zu of %zu, %zu spans live: save(load(save(A))) differs from save(A) from byte %zu of %zu",
			 at, s->n, ha->nspans, i, l1);
	}
	drop(k1);
	drop(k2);
	drop(a);
	drop(b);
}

static void test_keyframe_round_trip(void **state)
{
	(void)state;
	const stream *s = heap_stream();
	round_trip_at(s, s->n / 4);
	round_trip_at(s, s->n / 3);
	round_trip_at(s, s->n / 2);
	round_trip_at(s, 2 * s->n / 3);
	round_trip_at(s, s->n);
}

/* --- snapshots (an eBPF tracer attaching, core/trace.c) ---------------------------------------- */

/* A heap in the middle of its life (live spans of many classes, free pages
 * scavenged and not), then an attach as the kernel makes one: snap_begin's
 * semaphore raised, a sample (which takes the snapshot); then more work. */
static void snapshot_workload(child_report *rep)
{
	uint64_t seed = 0x5eed0002;
	for (unsigned i = 0; i < NOBJ; i++)
		objs[i] = alloc_one(rep, &seed, rand_size(&seed), &sizes[i]);
	for (unsigned i = 0; i < NOBJ; i++)
		if (i % 4 != 0) {
			free_one(rep, objs[i]);
			objs[i] = NULL;
		}
	hs_heap_sweep();
	hs_heap_scavenge_all();
	for (unsigned i = 0; i < NOBJ; i += 3)
		if (objs[i] == NULL)
			objs[i] = alloc_one(rep, &seed, rand_size(&seed), &sizes[i]);
	/* Free pages not yet released: small spans, swept away. */
	static void *tmp[20000];
	for (unsigned i = 0; i < 20000; i++)
		tmp[i] = alloc_one(rep, &seed, 256, &(size_t){ 0 });
	for (unsigned i = 0; i < 20000; i++)
		free_one(rep, tmp[i]);
	hs_heap_sweep();
	heapscope_snap_begin_semaphore = 1;
	hs_trace_sample();
	heapscope_snap_begin_semaphore = 0;
	for (unsigned i = 0; i < NOBJ; i++) {
		if (i % 2 == 0) {
			free_one(rep, objs[i]);
			objs[i] = alloc_one(rep, &seed, rand_size(&seed), &sizes[i]);
		}
	}
	for (unsigned i = 0; i < NOBJ; i++)
		free_one(rep, objs[i]);
	hs_heap_sweep();
}

/* The chunk bitmaps of a replica over its in-use ranges, and its sorted spans. */
static void same_replicas(hs_model_heap *a, hs_model_heap *b)
{
	assert_int_equal(a->pages.in_use.len, b->pages.in_use.len);
	for (size_t i = 0; i < a->pages.in_use.len; i++) {
		assert_int_equal(a->pages.in_use.ranges[i].base, b->pages.in_use.ranges[i].base);
		assert_int_equal(a->pages.in_use.ranges[i].limit, b->pages.in_use.ranges[i].limit);
		for (uintptr_t c = hs_off_to_addr(a->pages.in_use.ranges[i].base);
		     c < hs_off_to_addr(a->pages.in_use.ranges[i].limit); c += HS_PALLOC_CHUNK_BYTES) {
			const hs_palloc_data *x = hs_pagealloc_chunk_of(&a->pages, hs_chunk_index(c));
			const hs_palloc_data *y = hs_pagealloc_chunk_of(&b->pages, hs_chunk_index(c));
			if (memcmp(x, y, sizeof *x) != 0)
				fail_msg("chunk %#lx: the snapshot's bits differ from the events'", (unsigned long)c);
		}
	}
	same_spans(a, b, 0, "between the events and the snapshot");
}

/*
 * The snapshot against the slowest oracle at hand, the events themselves: the
 * replica built from every event before snap_begin must equal the one the
 * snapshot builds (every chunk bit, every span). Then a model that starts at
 * snap_begin, as an attaching tracer's does, checks every later digest.
 */
static void test_snapshot(void **state)
{
	(void)state;
	stream st;
	record(&st, HS_EVL_HEAP, 1 << 20, snapshot_workload, 0);
	own(st.ev, OWN_BUF);
	const stream *s = &st;
	check_complete_session(s);
	assert_int_equal(count_of_kind(s, HS_EV_SNAP_BEGIN), 1);
	assert_int_equal(count_of_kind(s, HS_EV_SNAP_END), 1);
	size_t begin = nth_of_kind(s, HS_EV_SNAP_BEGIN, 0), end = nth_of_kind(s, HS_EV_SNAP_END, 0);
	assert_true(begin < end);
	assert_true(count_of_kind(s, HS_EV_SNAP_SPAN) > 100);
	assert_true(count_of_kind(s, HS_EV_SNAP_PAGES) > 8);
	/* ... among them groups with nothing allocated but pages not released. */
	size_t unreleased = 0;
	for (size_t i = begin; i < end; i++)
		unreleased += s->ev[i].kind == HS_EV_SNAP_PAGES && s->ev[i].arg[1] == 0 && s->ev[i].arg[2] != ~UINT64_C(0);
	assert_true(unreleased >= 2);
	/* Nothing else between: the snapshot holds heap.lock and the order lock
	 * (informational buffered records of other threads aside: none here). */
	for (size_t i = begin + 1; i < end; i++)
		if (s->ev[i].kind != HS_EV_SNAP_RANGE && s->ev[i].kind != HS_EV_SNAP_PAGES &&
		    s->ev[i].kind != HS_EV_SNAP_SPAN)
			fail_msg("a %s event inside the snapshot", kind_name(s->ev[i].kind));

	hs_model *events = new_model(), *snap = new_model(), *whole = new_model();
	replay_checked(events, s->ev, begin);
	replay_checked(snap, s->ev + begin, end + 1 - begin);
	same_replicas(hs_model_heap_of(events, (uint32_t)s->pid), hs_model_heap_of(snap, (uint32_t)s->pid));
	/* From the snapshot on, as an attached tracer sees the process. */
	replay_checked(snap, s->ev + end + 1, s->n - end - 1);
	assert_true(hs_model_digests(snap) >= 2);
	check_final_digest(s, snap);
	/* And through it: the snapshot restarts the replica where it stands. */
	replay_checked(whole, s->ev, s->n);
	assert_int_equal(hs_model_untrusted_seq(whole), 0);
	drop(events);
	drop(snap);
	drop(whole);
}

/* Whether a thread beyond the `before` this process had (the sampler) starts
 * within a second. */
static int sampler_started(long before)
{
	long during = before;
	for (int k = 0; k < 100 && during == before; k++) {
		sleep_us(10000);
		during = oracle_threads();
	}
	return during == before + 1;
}

/*
 * Runs child (an attach simulated in a fork) and fails unless it exits 0. Exit
 * 2 means the heap made a span, so the path named was not the only one tried;
 * any other status, that no sampler thread started.
 */
static void expect_sampler_in_child(int (*child)(void), const char *path)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		unsetenv("HEAPSCOPE_TRACE_FD");
		_exit(child());
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 2)
		fail_msg("the workload made a span: the test does not test the %s path", path);
	if (WEXITSTATUS(status) != 0)
		fail_msg("no sampler thread started within 1 s of the attach");
}

/* The child of test_attach_noticed_at_refill: its exit status says what it saw. */
static int attach_at_refill_child(void)
{
	enum { N = 20000 };
	static void *o[N];
	for (unsigned i = 0; i < N; i++)
		o[i] = hs_malloc(64);
	for (unsigned i = 0; i < N; i += 2)
		hs_free(o[i]);
	hs_heap_stats_t st;
	hs_heap_stats(&st);
	uint64_t pages = st.pages_in_use;
	long before = oracle_threads();
	heapscope_snap_begin_semaphore = 1; /* what the kernel does as the tracer attaches */
	/* Refills from the spans this thread owns: half their slots are free. */
	for (unsigned i = 0; i < N; i += 2)
		o[i] = hs_malloc(64);
	hs_heap_stats(&st);
	if (st.pages_in_use != pages)
		return 2; /* the heap made a span: the refill path was not the only one */
	int started = sampler_started(before);
	heapscope_snap_begin_semaphore = 0;
	return started ? 0 : 1;
}

/* An attach is noticed, and the sampler (which takes the snapshot) started, by
 * a process that only refills its mcache from spans it owns and makes no span:
 * a program in a steady state. */
static void test_attach_noticed_at_refill(void **state)
{
	(void)state;
	expect_sampler_in_child(attach_at_refill_child, "refill");
}

/* The child of test_attach_noticed_at_malloc: its exit status says what it saw. */
static int attach_at_malloc_child(void)
{
	void *first = hs_malloc(64); /* a span of 128 objects with 127 to go */
	hs_heap_stats_t st;
	hs_heap_stats(&st);
	uint64_t pages = st.pages_in_use;
	long before = oracle_threads();
	/* What the kernel does as an object-level tracer attaches. */
	heapscope_snap_begin_semaphore = 1;
	heapscope_malloc_semaphore = 1;
	heapscope_free_semaphore = 1;
	/* Ten pairs take ten of the span's 127 free objects: no refill, no span. */
	for (int k = 0; k < 10; k++)
		hs_free(hs_malloc(64));
	hs_heap_stats(&st);
	int made_span = st.pages_in_use != pages;
	int started = sampler_started(before);
	heapscope_snap_begin_semaphore = 0;
	heapscope_malloc_semaphore = 0;
	heapscope_free_semaphore = 0;
	hs_free(first);
	if (made_span)
		return 2;
	return started ? 0 : 1;
}

/* An object-level attach is noticed at the next traced malloc or free, by a
 * process that neither refills its mcache nor makes a span while attached:
 * a steady loop of small pairs. */
static void test_attach_noticed_at_malloc(void **state)
{
	(void)state;
	expect_sampler_in_child(attach_at_malloc_child, "malloc");
}

/* A replica fed by hand: snap_begin, one chunk, then groups given as words. */
static hs_model *snap_model(hs_event *e, uint64_t base)
{
	hs_model *m = new_model();
	*e = (hs_event){ .seq = 0, .pid = 42, .kind = HS_EV_SNAP_BEGIN, .arg = { 42, 1, 1 } };
	assert_int_equal(hs_model_apply(m, e), 0);
	*e = (hs_event){ .seq = 1, .pid = 42, .kind = HS_EV_SNAP_RANGE, .arg = { base, HS_PALLOC_CHUNK_BYTES } };
	assert_int_equal(hs_model_apply(m, e), 0);
	return m;
}

/* snap_pages, table-driven: the replica's bits are the words sent; a group
 * with pages both allocated and scavenged, or sent twice, diverges. */
static void test_snapshot_groups(void **state)
{
	(void)state;
	static const struct {
		uint64_t alloc, scav;
	} cases[] = {
		{ 0, 0 },					 /* all free, none released */
		{ ~UINT64_C(0), 0 },				 /* all allocated */
		{ 0x00000000ffffffff, 0xffffffff00000000 },	 /* half and half */
		{ 0x8000000000000001, 0x0000000000000000 },	 /* the ends allocated */
		{ 0x0f0f0f0f0f0f0f0f, 0x3030303030303030 },	 /* runs of all three kinds */
		{ 0x0000000000000010, 0xfffffffffffffe0f },	 /* one page allocated, one free, unreleased */
		{ 0, ~UINT64_C(0) - 1 },			 /* one free page unreleased */
	};
	const unsigned n = sizeof cases / sizeof cases[0];
	const uint64_t base = (uint64_t)HS_PALLOC_CHUNK_BYTES * 64;
	hs_event e;
	hs_model *m = snap_model(&e, base);
	uint64_t seq = 2;
	for (unsigned i = 0; i < n; i++) {
		e = (hs_event){ .seq = seq++, .pid = 42, .kind = HS_EV_SNAP_PAGES,
				.arg = { base + (uint64_t)i * 64 * HS_PAGE_SIZE, cases[i].alloc, cases[i].scav } };
		assert_int_equal(hs_model_apply(m, &e), 0);
	}
	e = (hs_event){ .seq = seq++, .pid = 42, .kind = HS_EV_SNAP_END, .arg = { 1, n, 0 } };
	assert_int_equal(hs_model_apply(m, &e), 0);
	char msg[256];
	if (hs_model_check(m, NULL, msg, sizeof msg) != 0)
		fail_msg("%s", msg);
	const hs_palloc_data *d = hs_pagealloc_chunk_of(&hs_model_heap_of(m, 42)->pages, hs_chunk_index(base));
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(d->alloc.w[i], cases[i].alloc);
		assert_int_equal(d->scavenged.w[i], cases[i].scav);
	}
	for (unsigned i = n; i < HS_PALLOC_CHUNK_WORDS; i++) {
		assert_int_equal(d->alloc.w[i], 0);
		assert_int_equal(d->scavenged.w[i], ~UINT64_C(0)); /* grown memory is released */
	}
	drop(m);

	/* Allocated and scavenged at once: not a heap's state. */
	m = snap_model(&e, base);
	e = (hs_event){ .seq = 2, .pid = 42, .kind = HS_EV_SNAP_PAGES, .arg = { base, 1, 1 } };
	assert_int_equal(hs_model_apply(m, &e), -1);
	drop(m);
	/* The same group twice. */
	m = snap_model(&e, base);
	e = (hs_event){ .seq = 2, .pid = 42, .kind = HS_EV_SNAP_PAGES, .arg = { base, 1, 0 } };
	assert_int_equal(hs_model_apply(m, &e), 0);
	e.seq = 3;
	assert_int_equal(hs_model_apply(m, &e), -1);
	drop(m);
	/* A count that does not match what arrived: a record of the snapshot lost. */
	m = snap_model(&e, base);
	e = (hs_event){ .seq = 2, .pid = 42, .kind = HS_EV_SNAP_END, .arg = { 1, 1, 0 } };
	assert_int_equal(hs_model_apply(m, &e), -1);
	drop(m);
	/* A gap in the sequence: trusted no more from the event after it. */
	m = snap_model(&e, base);
	e = (hs_event){ .seq = 7, .pid = 42, .kind = HS_EV_SNAP_END, .arg = { 1, 0, 0 } };
	assert_int_equal(hs_model_apply(m, &e), 0);
	assert_int_equal(hs_model_untrusted_seq(m), 2);
	drop(m);
}

static void check_fork_session(const stream *s)
{
	if (!WIFEXITED(s->status) || WEXITSTATUS(s->status) != 0)
		fail_msg("traced child ended with status %#x", s->status);
	assert_true(s->have_report);
	if (s->rep.failed != 0)
		fail_msg("a check in the child failed (test_trace.c line %llu)", (unsigned long long)s->rep.failed);
	assert_true(WIFEXITED((int)s->rep.grandchild_status));
	assert_int_equal(WEXITSTATUS((int)s->rep.grandchild_status), 0);
	assert_int_equal(s->holes, 0);
	assert_int_equal(s->head, s->n);
	uint32_t child = (uint32_t)s->pid, grand = (uint32_t)s->rep.grandchild;
	assert_true(grand != 0 && grand != child);
	size_t starts = 0, ends_child = 0, ends_grand = 0, gstart = SIZE_MAX, gend = SIZE_MAX;
	for (size_t i = 0; i < s->n; i++) {
		const hs_event *e = &s->ev[i];
		if (e->seq != i)
			fail_msg("event %zu has seq %llu", i, (unsigned long long)e->seq);
		check_record(s, e);
		if (e->pid != child && e->pid != grand)
			fail_msg("seq %llu from pid %u", (unsigned long long)e->seq, e->pid);
		if (e->pid == grand && gstart == SIZE_MAX)
			gstart = i;
		if (e->kind == HS_EV_PROC_START)
			starts++;
		if (e->kind == HS_EV_PROC_END) {
			if (e->pid == child)
				ends_child++;
			else {
				ends_grand++;
				gend = i;
			}
		}
	}
	check_ts_per_thread(s);
	assert_int_equal(starts, 2);
	assert_int_equal(ends_child, 1);
	assert_int_equal(ends_grand, 1);
	assert_int_equal(s->ev[0].kind, HS_EV_PROC_START);
	assert_int_equal(s->ev[0].pid, child);
	assert_int_equal(s->ev[0].arg[3], 0);
	/* The grandchild's first event is its proc_start: the child its parent, and
	 * fork_seq naming the child's proc_fork, emitted just before. */
	assert_true(gstart != SIZE_MAX);
	const hs_event *g = &s->ev[gstart];
	assert_int_equal(g->kind, HS_EV_PROC_START);
	assert_int_equal(g->arg[0], grand);
	assert_int_equal(g->arg[1], child);
	assert_int_equal(g->arg[2], s->level);
	assert_true(g->arg[3] != 0 && g->arg[3] < g->seq);
	const hs_event *f = &s->ev[g->arg[3]];
	assert_int_equal(f->kind, HS_EV_PROC_FORK);
	assert_int_equal(f->pid, child);
	/* Its last is its proc_end, after its final stats and digest. */
	for (size_t i = gend + 1; i < s->n; i++)
		assert_int_not_equal(s->ev[i].pid, grand);
	assert_int_equal(s->ev[s->n - 1].kind, HS_EV_PROC_END);
	assert_int_equal(s->ev[s->n - 1].pid, child);

	hs_model *m = new_model();
	replay_checked(m, s->ev, s->n);
	assert_int_equal(hs_model_nheaps(m), 2);
	hs_model_heap *hc = hs_model_heap_of(m, child), *hg = hs_model_heap_of(m, grand);
	assert_non_null(hc);
	assert_non_null(hg);
	assert_int_equal(hg->ppid, child);
	assert_int_equal(hc->ended, 1);
	assert_int_equal(hg->ended, 1);
	assert_true(hc->digests_ok >= 1);
	assert_true(hg->digests_ok >= 1);
	if (s->level == HS_EVL_OBJECT) {
		/* The counts the child made include nothing of the grandchild's. */
		assert_int_equal(hc->mallocs, s->rep.mallocs);
		assert_int_equal(hc->frees, s->rep.frees);
		assert_int_equal(hc->malloc_bytes, s->rep.bytes);
		assert_true(hg->frees >= 32);
	}
	drop(m);
}

static void test_fork_in_traced_child(void **state)
{
	(void)state;
	stream *s = &fork_session;
	stream_free(s);
	record(s, HS_EVL_OBJECT, 1 << 16, forking_workload, 0);
	check_fork_session(s);
	stream_free(s);
}

/* The same with the parent carrying on while its forked child starts: the
 * child's proc_start must still describe a copy of the parent's heap as it was
 * at the fork. */
static void test_fork_concurrent(void **state)
{
	(void)state;
	stream *s = &fork_session;
	for (unsigned round = 0; round < 3; round++) {
		stream_free(s);
		record(s, HS_EVL_HEAP, 1 << 16, forking_workload_concurrent, 0);
		check_fork_session(s);
	}
	stream_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_heap_level_session, release_owned),
		cmocka_unit_test_teardown(test_object_level_session, release_owned),
		cmocka_unit_test_teardown(test_killed_child, release_owned),
		cmocka_unit_test_teardown(test_divergence_altered_page_alloc, release_owned),
		cmocka_unit_test_teardown(test_divergence_dropped_span_free, release_owned),
		cmocka_unit_test_teardown(test_divergence_other_alterations, release_owned),
		cmocka_unit_test_teardown(test_divergence_fuzz, release_owned),
		cmocka_unit_test_teardown(test_keyframes, release_owned),
		cmocka_unit_test_teardown(test_keyframe_round_trip, release_owned),
		cmocka_unit_test_teardown(test_fork_in_traced_child, release_owned),
		cmocka_unit_test_teardown(test_fork_concurrent, release_owned),
		cmocka_unit_test_teardown(test_snapshot, release_owned),
		cmocka_unit_test_teardown(test_snapshot_groups, release_owned),
		cmocka_unit_test_teardown(test_attach_noticed_at_refill, release_owned),
		cmocka_unit_test_teardown(test_attach_noticed_at_malloc, release_owned),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_streams);
}
