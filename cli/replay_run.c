/*
 * cli/replay_run.c — the replay workload: runs the operations that
 * `heapscope replay-workload` extracted (cli/replay.h, cli/replay.c) on this
 * process's heap, in the recorded threads and order, deterministically.
 *
 * Threads. Each recorded thread is a replay thread; the one whose tid was the
 * process's pid is this, the main thread (when the trace has none, the main
 * thread only starts the others and waits). A thread starts just before its
 * first operation and ends right after its last, so its mcache is released
 * (and its page cache flushed) where the recorded thread's last operation
 * was, not all at once at the end.
 *
 * The baton. Exactly one thread runs at a time: the holder of the baton. It
 * runs operations while the next one is its own; when the next belongs to
 * another thread it starts that thread if needed and hands it the baton (a
 * semaphore per thread), then waits for its own again. A thread whose last
 * operation is done hands the baton on and ends; the next holder joins it
 * before anything else, so that the thread's exit (its mcache released, its
 * trace buffer flushed) is complete before the next operation. After the
 * last operation, or when the workload is told to stop, the baton goes to the
 * main thread, which ends the replay. Every thread's work and every event it
 * emits therefore come in one order, run after run. (A semaphore post and the
 * wait it ends order memory like a lock, so the shared state below needs no
 * other synchronisation: only the holder touches it.)
 *
 * Time. The heap's background work runs on its virtual clock
 * (core/background.c), switched on before the first allocation: before each
 * operation the holder advances the clock to the operation's recorded time,
 * and at the end to the recorded process's last event, so the sweeper, the
 * scavenger and the statistics samples happen where they would have in the
 * recording, between the same operations every time. The operations
 * themselves run as fast as the heap allows; a replay of a 2-second session
 * may take a tenth of that.
 *
 * Objects are written one byte per OS page and their last byte, as the
 * built-in workloads do, so that RSS reflects them. The replay's own
 * bookkeeping (the slots, the threads) lives in the C library's heap, not on
 * the traced one, so that the replayed heap sees the recorded operations and
 * nothing else.
 */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "replay.h"
#include "heapscope/heapscope.h"

#define OS_PAGE 4096
#define STOP_POLL_MS 50 /* a stop is seen within this long, whoever holds the baton */

typedef struct thread {
	sem_t baton;
	pthread_t t;
	int started;
	uint64_t last; /* index of its last operation */
} thread;

typedef struct replay {
	const hs_replay_header *h;
	const hs_replay_op *ops;
	void **slot;
	thread *th;	 /* nthreads + 1: the last is the main thread when no recorded thread is */
	uint32_t main;	 /* the main thread's index in th */
	uint64_t pos;	 /* the next operation; the holder's */
	uint32_t ending; /* a thread that has ended and waits to be joined, or UINT32_MAX; the holder's */
	unsigned running; /* replay threads started and not yet joined; the holder's */
	volatile sig_atomic_t *stop; /* set by the signal handler, which runs on the main thread */
	atomic_int stopping;	     /* ... passed on by the main thread to the others */
	const char *error; /* the first failure; the holder's */
} replay;

typedef struct start {
	replay *r;
	uint32_t self;
} start;

static void hold(replay *r, uint32_t self);

/* Waits for the baton. The signal handler runs on the main thread (the
 * others block SIGINT and SIGTERM), which looks at the stop flag every
 * STOP_POLL_MS while it waits and passes a stop on to the holder. */
static void wait_baton(replay *r, uint32_t self)
{
	if (self != r->main) {
		while (sem_wait(&r->th[self].baton) != 0)
			;
		return;
	}
	for (;;) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += STOP_POLL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		if (sem_timedwait(&r->th[self].baton, &until) == 0)
			return;
		if (r->stop != NULL && *r->stop)
			atomic_store(&r->stopping, 1);
	}
}

static int stopped(replay *r, uint32_t self)
{
	return atomic_load(&r->stopping) || (self == r->main && r->stop != NULL && *r->stop);
}

static void *thread_main(void *arg)
{
	start s = *(start *)arg;
	free(arg);
	wait_baton(s.r, s.self);
	hold(s.r, s.self);
	return NULL;
}

/* Starts thread i with SIGINT and SIGTERM blocked, so that the handler runs
 * on the main thread. 0, or -1 after setting r->error. */
static int start_thread(replay *r, uint32_t i)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	start *s = malloc(sizeof *s);
	if (s == NULL) {
		r->error = "out of memory";
		return -1;
	}
	*s = (start){ r, i };
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int err = pthread_create(&r->th[i].t, NULL, thread_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		free(s);
		r->error = "cannot start a replay thread";
		return -1;
	}
	r->th[i].started = 1;
	r->running++;
	return 0;
}

/* Hands the baton to thread i, starting it first if it has not run yet; to
 * the main thread if it cannot be started. */
static void pass(replay *r, uint32_t i)
{
	if (!r->th[i].started && start_thread(r, i) != 0)
		i = r->main;
	sem_post(&r->th[i].baton);
}

static void write_object(unsigned char *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i += OS_PAGE)
		p[i] = 1;
	if (n != 0)
		p[n - 1] = 1;
}

/* Runs one operation; 0, or -1 after setting r->error. */
static int run_op(replay *r, const hs_replay_op *op)
{
	void **slot = &r->slot[op->slot];
	if (op->kind == HS_REPLAY_MALLOC) {
		if (*slot != NULL || op->size > ((uint64_t)1 << 46)) {
			r->error = "the replay input is corrupt (a malloc into a live slot, or an impossible size)";
			return -1;
		}
		if ((*slot = hs_malloc((size_t)op->size)) == NULL) {
			r->error = "hs_malloc failed";
			return -1;
		}
		write_object(*slot, op->size);
		return 0;
	}
	if (*slot == NULL) {
		r->error = "the replay input is corrupt (a free of an empty slot)";
		return -1;
	}
	hs_free(*slot);
	*slot = NULL;
	return 0;
}

/* The holder of the baton: see the essay. Returns when the thread is to end
 * (its last operation done), or, on the main thread, when the replay is over. */
static void hold(replay *r, uint32_t self)
{
	for (;;) {
		if (r->ending != UINT32_MAX) {
			pthread_join(r->th[r->ending].t, NULL);
			r->ending = UINT32_MAX;
			r->running--;
		}
		int over = r->pos == r->h->nops || r->error != NULL || stopped(r, self);
		uint32_t next = over ? r->main : r->ops[r->pos].thread;
		if (next != self) {
			pass(r, next);
			wait_baton(r, self);
			continue;
		}
		if (over)
			return;
		const hs_replay_op *op = &r->ops[r->pos];
		hs_heap_advance(op->t);
		if (run_op(r, op) != 0)
			continue;
		if (r->pos++ == r->th[self].last && self != r->main) {
			r->ending = self;
			over = r->pos == r->h->nops || stopped(r, self);
			pass(r, over ? r->main : r->ops[r->pos].thread);
			return;
		}
	}
}

/* Checks every operation before any runs (bytes from outside the process). */
static const char *check_ops(const hs_replay_header *h, const hs_replay_op *ops)
{
	uint64_t t = 0;
	for (uint64_t i = 0; i < h->nops; i++) {
		const hs_replay_op *op = &ops[i];
		if (op->thread >= h->nthreads || op->slot >= h->nslots || op->t < t ||
		    (op->kind != HS_REPLAY_MALLOC && op->kind != HS_REPLAY_FREE))
			return "the replay input is corrupt (an operation out of range or out of time order)";
		t = op->t;
	}
	return NULL;
}

static int run_replay(const hs_workload_opts *o)
{
	char err[256];
	size_t len;
	const hs_replay_header *h = hs_replay_map(&len, err, sizeof err);
	if (h == NULL) {
		fprintf(stderr, "replay: %s\n", err);
		return 1;
	}
	replay r = { .h = h, .ops = (const hs_replay_op *)(h + 1), .ending = UINT32_MAX, .stop = o->stop };
	r.error = check_ops(h, r.ops);
	if (r.error == NULL && hs_heap_virtual_clock() != 0)
		r.error = "the heap had allocated before the replay could set its clock";
	r.slot = calloc(h->nslots ? h->nslots : 1, sizeof *r.slot);
	r.th = calloc((size_t)h->nthreads + 1, sizeof *r.th);
	if (r.error == NULL && (r.slot == NULL || r.th == NULL))
		r.error = "out of memory";
	int sems = r.error == NULL;
	if (sems) {
		r.main = h->main_thread != HS_REPLAY_NO_THREAD ? h->main_thread : h->nthreads;
		for (uint32_t i = 0; i <= h->nthreads; i++)
			sem_init(&r.th[i].baton, 0, 0);
		for (uint64_t i = 0; i < h->nops; i++)
			r.th[r.ops[i].thread].last = i;
		r.th[r.main].started = 1;
		hold(&r, r.main);
		if (r.ending != UINT32_MAX) {
			pthread_join(r.th[r.ending].t, NULL);
			r.running--;
		}
		if (r.error == NULL && !stopped(&r, r.main))
			hs_heap_advance(h->end_ns);
	}
	if (r.error != NULL)
		fprintf(stderr, "replay: %s\n", r.error);
	int failed = r.error != NULL;
	/* Stopped early, threads still wait for a baton that will not come: the
	 * process is about to exit, and their semaphores must outlive them. */
	if (r.running == 0) {
		for (uint32_t i = 0; sems && i <= h->nthreads; i++)
			sem_destroy(&r.th[i].baton);
		free(r.slot);
		free(r.th);
		munmap((void *)h, len);
	}
	return failed;
}

const hs_workload hs_replay_workload = {
	"replay", "the malloc/free trace of a recorded session (heapscope replay-workload)",
	"Runs the operations heapscope replay-workload extracted from a session recorded\n"
	"with --events objects: every recorded thread as a thread, every operation in the\n"
	"recorded order, the heap's background work on a virtual clock that follows the\n"
	"recorded times. Started by heapscope replay-workload, which gives it its input.",
	run_replay,
};
