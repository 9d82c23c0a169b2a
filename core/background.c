/*
 * core/background.c — the heap's background work on a virtual clock, for a
 * replay that gives the same events every time (heapscope replay-workload,
 * docs/regressions.md). The public half is hs_heap_virtual_clock and
 * hs_heap_advance in include/heapscope/heapscope.h.
 *
 * Why. Three things in the heap run on their own threads and clocks: the
 * background sweeper (woken when a sweep cycle starts, core/sweep.c), the
 * background scavenger (paced by its CPU time over wall-clock windows,
 * core/scavenger.c) and, while tracing, the sampler that emits a statistics
 * sample and a digest every 100 ms (core/trace.c). Where their work falls
 * among the program's own allocations depends on the scheduler, so two runs
 * of the same allocations give different event streams. A replay that runs
 * one allocation at a time (cli/replay.c passes a baton between its threads)
 * removes every other source of difference; this file removes these three.
 *
 * How. hs_heap_virtual_clock, called before the heap's first span, keeps the
 * three threads from ever starting (account_alloc in core/mheap.c, the cycle
 * start in core/sweep.c). The caller then owns a virtual clock: nanoseconds
 * since the heap started, as it chooses them (the replay takes the recorded
 * timestamps). hs_heap_advance(now) brings the background work up to now, on
 * the calling thread, in this order:
 *
 *   1. the sweeper: if a cycle woke it, every unswept span is swept now (as if
 *      the thread were infinitely fast: a cycle's sweep ends before the next
 *      operation);
 *   2. in time order, every scavenger turn due by now (the first at 0, each
 *      next one after the sleep the last one asked for; the work of a turn is
 *      charged at a fixed CPU price per byte, core/scavenger.c) and every
 *      statistics sample and digest due by now (at 100, 200, ... ms; they
 *      are no-ops unless the heap is traced). A turn and a sample due at the
 *      same time: the turn first.
 *
 * Between two calls the heap does nothing in the background, so taking the
 * turns of a long gap one after another at the gap's end is exact as long as
 * the caller calls hs_heap_advance before each of its operations: the heap's
 * state over the gap is the state at its end.
 *
 * Invariants: vclock.now never decreases; next_turn and next_sample are
 * above vclock.now after a call (below-or-equal ones were just taken).
 *
 * Locking: the times belong to the caller, which calls from one thread at a
 * time (the replay's baton orders its threads). The work takes the locks it
 * takes on its own threads: sweeper_mu, mcentral locks, heap.lock, the
 * tracer's. No heap lock may be held by the caller.
 *
 * On the real clock the three threads start through hs_background_thread,
 * which creates them with every signal blocked. They run inside the hosted
 * program, and a process-directed signal goes to any thread that does not
 * block it. A shell that waits for its children with sigsuspend (dash's
 * `wait`) counts on SIGCHLD interrupting that call; delivered to one of our
 * threads instead, the handler ran there and the shell slept for ever (seen
 * under `heapscope run`, about one run in 300 of `sh -c '... & ... ; wait'`
 * on a loaded machine). Blocked in our threads, the program's signals reach
 * only the program's threads, as they would without heapscope.
 */
#include <pthread.h>
#include <signal.h>

#include "heap.h"
#include "heapscope/heapscope.h"

#define SAMPLE_NS 100000000ull /* the sampler's period, as core/trace.c's thread */

int hs_heap_virtual_clock(void)
{
	hs_mallocinit();
	hs_lock(&hs_heap.lock);
	int fresh = hs_heap.nallspans == 0;
	if (fresh)
		hs_heap.vclock = (struct hs_vclock){ .on = 1, .next_sample = SAMPLE_NS };
	hs_unlock(&hs_heap.lock);
	return fresh ? 0 : -1;
}

void hs_heap_advance(uint64_t now)
{
	struct hs_vclock *k = &hs_heap.vclock;
	if (!k->on || now < k->now)
		return;
	k->now = now;
	hs_sweep_background_step();
	int scavenging = hs_heap.scav.budget > 0;
	for (;;) {
		int turn = scavenging && k->next_turn <= k->next_sample;
		uint64_t due = turn ? k->next_turn : k->next_sample;
		if (due > now)
			return;
		if (turn) {
			k->next_turn += hs_scavenger_turn(due, 1);
		} else {
			hs_trace_sample();
			k->next_sample += SAMPLE_NS;
		}
	}
}

int hs_background_thread(void *(*fn)(void *))
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int err = pthread_create(&t, &attr, fn, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}
