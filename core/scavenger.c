/*
 * core/scavenger.c — returning free memory to the OS in the background: Go's
 * background scavenger (mgcscavenge.go, Go 1.19-1.21) without the collector that
 * sets its goal. The page allocator's half (the index over chunks, the candidate
 * search, scavengeOne) is core/scavindex.c and core/pagescav.c.
 *
 * Retained memory is what the heap holds in the Ready state: pages in spans plus
 * free pages not yet released (hs_heap.mem_ready). The scavenger keeps it near a
 * goal, from above:
 *
 *   heap goal      Go: the heap size that triggers the next collection. heapscope
 *                  has no collection, so the heap goal is the peak of in-use bytes
 *                  over the last 100 to 200 ms (the current 100 ms window and the
 *                  one before). Retained memory then follows what the program
 *                  recently needed, and a freed peak starts going back to the OS
 *                  within a quarter of a second. (The release itself is paced; on
 *                  this kind of machine 1 GiB takes 3 to 7 s of wall time at the
 *                  default budget, most of it the kernel's work in madvise.)
 *   retained goal  retain_pct (110%, as Go) of the heap goal;
 *                  HEAPSCOPE_SCAVENGER_RETAIN sets the percentage.
 *   memory limit   HEAPSCOPE_MEMORY_LIMIT (like GOMEMLIMIT, it counts the heap's
 *                  metadata too). When set, the scavenger also aims at 95% of it
 *                  (Go's memoryLimitGoal). An allocation that takes retained
 *                  memory over the limit scavenges the excess itself, before
 *                  returning (an assist, as in the seeds' allocSpan). Near the
 *                  limit (above 90%), refill takes any span with room rather than
 *                  only those with an eighth free (hs_scavenger_tight), so the
 *                  heap fills the spans it has before it grows. Free slots in
 *                  spans still holding objects cannot be released: a heap that
 *                  does not move objects cannot go below its fragmentation.
 *
 * Pacing. Go's scavenger spends about 1% of the CPU time of all GOMAXPROCS, and
 * adjusts its sleep with a controller, because it measures its work in wall time.
 * heapscope reads the thread's own CPU clock (CLOCK_THREAD_CPUTIME_ID), so the
 * pace can be computed directly: a step of work w (one chunk, 4 MiB, so a wholly
 * free chunk goes in one madvise) moves the next step's due time on by
 * w / (budget * nprocs), and the thread sleeps until then. Due times are kept
 * from the cycle's start rather than from each wake-up, so time the thread
 * loses to a late wake-up or to waiting for a CPU on a busy machine is made up
 * by the next steps instead of lowering the pace; the make-up is limited to
 * CATCHUP_NS of the budget, so a long stall cannot turn into a burst. Over a
 * cycle, the work is the budget times the wall time, plus at most a step.
 * HEAPSCOPE_SCAVENGER_BUDGET sets the budget, in percent (default 1, 0 turns the
 * scavenger off).
 *
 * Release: madvise(MADV_DONTNEED), or MADV_FREE with
 * HEAPSCOPE_SCAVENGER_ADVICE=free (the kernel then takes the pages back only under
 * memory pressure, so RSS does not fall at once).
 *
 * Huge pages. Go 1.21 tracks each chunk's density and asks for huge pages on dense
 * chunks and no huge pages on sparse ones. heapscope does not call
 * MADV_HUGEPAGE or MADV_NOHUGEPAGE: the heap's mappings get whatever the
 * system's transparent huge page mode gives them ("madvise" on Debian 12, which
 * means none for these mappings). What it does is keep Go 1.19's candidate rule:
 * a release that would leave the bottom of a huge page behind is extended down to
 * the huge page's start (core/pallocbits.c), so released ranges do not split
 * huge pages needlessly if the kernel did back them.
 *
 * The virtual clock (core/background.c). For a deterministic replay the thread
 * never starts: hs_heap_advance takes the turns the thread would have taken
 * up to a given virtual time, each at its due time, the window and the goal
 * reckoned on that clock, and the work of a turn charged at a fixed price per
 * byte released (VIRTUAL_NS_PER_MIB) instead of measured. The pace is then
 * the budget's: a 4 MiB step costs 320 us, and at 1% of 2 CPUs the next turn
 * is due 16 ms later, 250 MiB/s of virtual time; a budget of 0 releases
 * nothing.
 *
 * Statistics (hs_heap_stats): bytes released in total and in the last cycle (a
 * cycle runs from the moment there is something to release until there is
 * none), cycles, CPU time, assists and the bytes they released, the goal.
 *
 * Locking: scav.mu (a leaf) for the wake-up; the start is a compare-and-swap. Scavenging takes
 * heap.lock per step (hs_mheap_scavenge), which the page allocator drops around
 * each madvise.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"

#define STEP_BYTES ((uintptr_t)4 << 20) /* work per step (a chunk), between pacing decisions */
#define WINDOW_NS 100000000ull	/* peak-tracking window */
#define IDLE_NS 50000000ull		/* sleep when there is nothing to release */
#define CATCHUP_NS 100000000ull	/* how late a due time may fall behind the clock */
/* The virtual clock's price of release: CPU time per MiB, as measured on the
 * project's machine (test_scavenger: 442 MiB in 43.5 ms, 1971 MiB in 143 ms). */
#define VIRTUAL_NS_PER_MIB 80000ull

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void hs_scavenger_read_env(void)
{
	const char *b = getenv("HEAPSCOPE_SCAVENGER_BUDGET");
	const char *r = getenv("HEAPSCOPE_SCAVENGER_RETAIN");
	const char *a = getenv("HEAPSCOPE_SCAVENGER_ADVICE");
	hs_heap.scav.budget = b != NULL && *b != '\0' ? strtod(b, NULL) / 100.0 : 0.01;
	if (hs_heap.scav.budget < 0 || hs_heap.scav.budget > 1)
		hs_heap.scav.budget = 0.01;
	hs_heap.scav.retain_pct = r != NULL && *r != '\0' ? (unsigned)strtoul(r, NULL, 10) : 110;
	if (hs_heap.scav.retain_pct < 100)
		hs_heap.scav.retain_pct = 110;
	hs_heap.pages.release_lazy = a != NULL && strcmp(a, "free") == 0;
}

/* Raises the window's peak; called whenever in_use grows (a CAS only when it
 * sets a new peak). */
void hs_scavenger_note_alloc(uint64_t in_use_now)
{
	uint64_t peak = atomic_load_explicit(&hs_heap.scav.window_peak, memory_order_relaxed);
	while (in_use_now > peak &&
	       !atomic_compare_exchange_weak_explicit(&hs_heap.scav.window_peak, &peak, in_use_now,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

/* The retained goal at time now: retain_pct of the peak over this window and
 * the last. */
static uint64_t retained_goal(uint64_t now)
{
	struct hs_scavenger *v = &hs_heap.scav;
	uint64_t in_use = atomic_load_explicit(&hs_heap.in_use, memory_order_relaxed);
	if (now - v->window_start_ns >= WINDOW_NS) {
		v->last_peak = atomic_exchange_explicit(&v->window_peak, in_use, memory_order_relaxed);
		v->window_start_ns = now;
	}
	uint64_t peak = atomic_load_explicit(&v->window_peak, memory_order_relaxed);
	if (v->last_peak > peak)
		peak = v->last_peak;
	if (in_use > peak)
		peak = in_use;
	uint64_t goal = peak / 100 * v->retain_pct;
	atomic_store_explicit(&v->goal, goal, memory_order_relaxed);
	return goal;
}

/* Retained memory as the memory limit counts it: Ready pages and metadata. */
static uint64_t limit_usage(void)
{
	return atomic_load_explicit(&hs_heap.mem_ready, memory_order_relaxed) +
	       atomic_load_explicit(&hs_heap.meta_stat.bytes, memory_order_relaxed);
}

int hs_scavenger_near_limit(void)
{
	uint64_t limit = hs_heap.scav.memory_limit;
	return limit_usage() > limit / 10 * 9;
}

/* Bytes to release at time now to meet the goal and the limit. */
static uint64_t excess(uint64_t now)
{
	uint64_t retained = atomic_load_explicit(&hs_heap.mem_ready, memory_order_relaxed);
	uint64_t goal = retained_goal(now), want = retained > goal ? retained - goal : 0;
	uint64_t limit = hs_heap.scav.memory_limit, usage = limit_usage();
	if (limit != 0 && usage > limit / 100 * 95 && usage - limit / 100 * 95 > want)
		want = usage - limit / 100 * 95;
	return want;
}

static void end_cycle(void)
{
	struct hs_scavenger *v = &hs_heap.scav;
	if (!v->in_cycle)
		return;
	v->in_cycle = 0;
	HS_TRACE(scav_end, atomic_load(&v->goal), atomic_load(&hs_heap.mem_ready), atomic_load(&hs_heap.released),
		 atomic_load(&v->released_cycle), atomic_load(&v->cpu_ns));
	atomic_store_explicit(&v->released_last_cycle, atomic_load(&v->released_cycle), memory_order_relaxed);
	atomic_store_explicit(&v->released_cycle, 0, memory_order_relaxed);
}

/* Sleeps ns, or less if woken. */
static void sleep_for(uint64_t ns)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	uint64_t t = (uint64_t)until.tv_nsec + ns;
	until.tv_sec += (time_t)(t / 1000000000ull);
	until.tv_nsec = (long)(t % 1000000000ull);
	pthread_mutex_lock(&hs_heap.scav.mu);
	if (!hs_heap.scav.wake)
		pthread_cond_timedwait(&hs_heap.scav.cv, &hs_heap.scav.mu, &until);
	hs_heap.scav.wake = 0;
	pthread_mutex_unlock(&hs_heap.scav.mu);
}

/*
 * One turn of the background scavenger at time now: a step of release towards
 * the goal; returns how long to sleep before the next turn. The work is
 * measured on the thread's CPU clock, or, under the virtual clock
 * (virtual_cost), charged at VIRTUAL_NS_PER_MIB per MiB released, so that it
 * depends on nothing but the heap. Turns run one at a time: on the scavenger
 * thread, or inside hs_heap_advance.
 */
uint64_t hs_scavenger_turn(uint64_t now, int virtual_cost)
{
	struct hs_scavenger *v = &hs_heap.scav;
	if (v->capacity == 0)
		v->capacity = v->budget * (double)sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t want = excess(now);
	if (want == 0) {
		end_cycle();
		return IDLE_NS;
	}
	if (!v->in_cycle) {
		v->in_cycle = 1;
		v->due_ns = now;
		atomic_fetch_add_explicit(&v->cycles, 1, memory_order_relaxed);
		HS_TRACE(scav_start, atomic_load(&v->goal), atomic_load(&hs_heap.mem_ready),
			 atomic_load(&hs_heap.released), HS_EV_SCAV_BACKGROUND);
	}
	uint64_t t0 = virtual_cost ? 0 : now_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t released = hs_mheap_scavenge(want < STEP_BYTES ? want : STEP_BYTES);
	uint64_t worked = virtual_cost ? released * VIRTUAL_NS_PER_MIB >> 20 : now_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	atomic_fetch_add_explicit(&v->cpu_ns, worked, memory_order_relaxed);
	atomic_fetch_add_explicit(&v->released, released, memory_order_relaxed);
	atomic_fetch_add_explicit(&v->released_cycle, released, memory_order_relaxed);
	if (released == 0) {
		/* Everything free is released already; the rest is in use. */
		end_cycle();
		return IDLE_NS;
	}
	if (v->capacity >= 1.0)
		return 0;
	if (v->due_ns + CATCHUP_NS < now)
		v->due_ns = now - CATCHUP_NS;
	v->due_ns += (uint64_t)((double)worked / v->capacity);
	uint64_t after = virtual_cost ? now : now_ns(CLOCK_MONOTONIC);
	return v->due_ns > after ? v->due_ns - after : 0;
}

static void *scavenger_main(void *arg)
{
	(void)arg;
	hs_heap.scav.window_start_ns = now_ns(CLOCK_MONOTONIC);
	for (;;) {
		uint64_t sleep = hs_scavenger_turn(now_ns(CLOCK_MONOTONIC), 0);
		if (sleep != 0)
			sleep_for(sleep);
	}
	return NULL;
}

/* Starts the thread on the heap's first span (never under a lock: pthread_create
 * may call malloc). */
void hs_scavenger_start(void)
{
	struct hs_scavenger *v = &hs_heap.scav;
	if (__builtin_expect(atomic_load_explicit(&v->started, memory_order_acquire), 1) || v->budget <= 0)
		return;
	int expected = 0;
	if (!atomic_compare_exchange_strong(&v->started, &expected, 1))
		return;
	if (hs_background_thread(scavenger_main) != 0) {
		/* No thread: assists still hold the memory limit; hs_heap_scavenge_all works. */
		hs_print("heapscope: could not start the background scavenger\n");
	}
}

/*
 * Scavenging assist (the seeds' allocSpan): with a memory limit set, an
 * allocation that leaves retained memory above it releases the excess before
 * returning, whatever the background scavenger's pace.
 */
void hs_scavenger_assist(void)
{
	uint64_t limit = hs_heap.scav.memory_limit;
	if (limit == 0)
		return;
	uint64_t usage = limit_usage();
	if (usage <= limit)
		return;
	struct hs_scavenger *v = &hs_heap.scav;
	HS_TRACE(scav_start, atomic_load(&v->goal), atomic_load(&hs_heap.mem_ready), atomic_load(&hs_heap.released),
		 HS_EV_SCAV_ASSIST);
	uint64_t released = hs_mheap_scavenge(usage - limit);
	HS_TRACE(scav_end, atomic_load(&v->goal), atomic_load(&hs_heap.mem_ready), atomic_load(&hs_heap.released),
		 released, atomic_load(&v->cpu_ns));
	atomic_fetch_add_explicit(&v->assists, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&v->assist_bytes, released, memory_order_relaxed);
	atomic_fetch_add_explicit(&v->released, released, memory_order_relaxed);
}
