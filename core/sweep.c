/*
 * core/sweep.c — sweep cycles and the background sweeper. Go's sweeping
 * (mgcsweep.go) without the collector that drives it. See core/mheap.c for the
 * overview and core/mspan.c for what sweeping one span does.
 *
 * Go starts a sweep cycle at the end of every GC. heapscope starts one once enough
 * bytes have been freed into spans that no mcache holds (see trigger()): frees
 * into a cached span are swept in by its owner and need no cycle. Freed bytes are
 * counted in each mcache and added to the heap's counter 64 KiB at a time, so
 * the counter is not contended. Starting a cycle is one
 * increment of sweepgen by 2 under heap.lock. That increment turns every swept set
 * of every mcentral into an unswept set, and marks every cached span as "cached
 * before the cycle" (h+1). The background sweeper thread then sweeps the
 * unswept sets class by class. Spans left empty go back to the heap, and their
 * pages to the page allocator. Meanwhile allocation sweeps whatever it takes off
 * an unswept set, and each mcache sweeps its own spans when it releases them.
 * The cycle is finished when no unswept set holds a span.
 *
 * The sweeper thread is started on the first cycle (never from under a lock,
 * since pthread_create may call malloc). It sleeps on a condition variable
 * between cycles. Under the virtual clock (core/background.c) it never starts;
 * hs_heap_advance sweeps a woken cycle instead.
 *
 * Locking: sweeper_mu guards the wake-up and the cycle boundary. The background
 * sweeper holds it around each batch of spans it sweeps, and a new cycle holds it
 * around the whole finishing sweep; it is outermost: taken before mcentral and
 * heap locks, never under them.
 */
#include "heap.h"

#define FREED_BATCH ((uint64_t)64 << 10)

static void *sweeper_main(void *arg);
static uint64_t trigger(void);

void hs_sweep_note_freed(hs_mcache *c, uint64_t bytes)
{
	c->freed_bytes += bytes;
	if (c->freed_bytes < FREED_BATCH && bytes != 0)
		return;
	uint64_t total = atomic_fetch_add_explicit(&hs_heap.freed_since_cycle, c->freed_bytes,
						   memory_order_relaxed) + c->freed_bytes;
	c->freed_bytes = 0;
	if (total >= trigger())
		hs_sweep_start_cycle();
}

/*
 * Bytes freed into uncached spans that start a cycle: HEAPSCOPE_SWEEP_TRIGGER if
 * set; otherwise a quarter of the bytes in use, and at least 4 MiB. A fixed
 * trigger would sweep a large heap's every span after a small fraction of it was
 * freed; like Go's pacing, the work per cycle then grows with the heap and so
 * does the distance between cycles.
 */
static uint64_t trigger(void)
{
	if (hs_heap.sweep_trigger != 0)
		return hs_heap.sweep_trigger;
	uint64_t quarter = atomic_load_explicit(&hs_heap.in_use, memory_order_relaxed) / 4;
	return quarter > ((uint64_t)4 << 20) ? quarter : (uint64_t)4 << 20;
}

/*
 * Begins a new cycle: finishes sweeping the current one first, as Go's
 * finishsweep_m does before a collection, because advancing sweepgen turns every
 * unswept set into a swept one. Under sweeper_mu, so the background sweeper is
 * not between spans. Spans that allocation holds while sweeping them are off
 * every set and are filed under the new cycle when they come back.
 */
static void begin_cycle(void)
{
	hs_sweep_finish();
	hs_lock(&hs_heap.lock);
	atomic_store_explicit(&hs_heap.freed_since_cycle, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&hs_heap.sweepgen, 2, memory_order_release);
	atomic_fetch_add_explicit(&hs_heap.sweep_cycles, 1, memory_order_relaxed);
	hs_unlock(&hs_heap.lock);
}

/* Starts a cycle if the trigger is still crossed, and wakes the sweeper. */
void hs_sweep_start_cycle(void)
{
	pthread_mutex_lock(&hs_heap.sweeper_mu);
	if (atomic_load_explicit(&hs_heap.freed_since_cycle, memory_order_relaxed) < trigger()) {
		pthread_mutex_unlock(&hs_heap.sweeper_mu);
		return;
	}
	begin_cycle();
	hs_heap.sweeper_pending = 1;
	int need_thread = !hs_heap.sweeper_started && !hs_heap.vclock.on;
	if (need_thread)
		hs_heap.sweeper_started = 1;
	pthread_cond_signal(&hs_heap.sweeper_cv);
	pthread_mutex_unlock(&hs_heap.sweeper_mu);
	if (need_thread) {
		if (hs_background_thread(sweeper_main) != 0) {
			/* No thread: allocation still sweeps what it needs, and the next
			 * cycle finishes this one. */
			pthread_mutex_lock(&hs_heap.sweeper_mu);
			hs_heap.sweeper_started = 0;
			pthread_mutex_unlock(&hs_heap.sweeper_mu);
		}
	}
}

/*
 * Near the memory limit the heap is about to grow: start a cycle early if a few
 * MiB were freed into uncached spans since the last one, so that they can be
 * reused instead (Go, likewise, collects more often as it nears GOMEMLIMIT).
 */
void hs_sweep_under_pressure(void)
{
	if (atomic_load_explicit(&hs_heap.freed_since_cycle, memory_order_relaxed) < ((uint64_t)4 << 20) ||
	    !hs_scavenger_tight())
		return;
	pthread_mutex_lock(&hs_heap.sweeper_mu);
	if (atomic_load_explicit(&hs_heap.freed_since_cycle, memory_order_relaxed) >= ((uint64_t)4 << 20))
		begin_cycle();
	pthread_mutex_unlock(&hs_heap.sweeper_mu);
	hs_sweep_finish();
}

/* A full cycle now, on this thread: everything freed so far is swept in. */
void hs_sweep_full_cycle(void)
{
	pthread_mutex_lock(&hs_heap.sweeper_mu);
	begin_cycle();
	hs_sweep_finish();
	pthread_mutex_unlock(&hs_heap.sweeper_mu);
}

/* Sweeps every unswept span in the mcentrals now, on this thread. Cached and
 * owned spans are left to their owners. */
void hs_sweep_finish(void)
{
	for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++) {
		while (hs_mcentral_sweep_one(&hs_heap.central[i]))
			;
	}
}

/* What the sweeper does when woken: every unswept span of every mcentral, a
 * batch at a time under sweeper_mu, so the checker can hold it off and a new
 * cycle's wake-up never waits long. */
static void sweep_unswept(void)
{
	for (unsigned i = 0; i < HS_NUM_SPAN_CLASSES; i++) {
		int more = 1;
		while (more) {
			pthread_mutex_lock(&hs_heap.sweeper_mu);
			more = hs_mcentral_sweep_one(&hs_heap.central[i]);
			pthread_mutex_unlock(&hs_heap.sweeper_mu);
		}
	}
}

static void *sweeper_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&hs_heap.sweeper_mu);
		while (!hs_heap.sweeper_pending)
			pthread_cond_wait(&hs_heap.sweeper_cv, &hs_heap.sweeper_mu);
		hs_heap.sweeper_pending = 0;
		pthread_mutex_unlock(&hs_heap.sweeper_mu);
		sweep_unswept();
	}
	return NULL;
}

/* Under the virtual clock there is no sweeper thread: hs_heap_advance does
 * its work here, on the calling thread, if a cycle woke it. */
void hs_sweep_background_step(void)
{
	pthread_mutex_lock(&hs_heap.sweeper_mu);
	int pending = hs_heap.sweeper_pending;
	hs_heap.sweeper_pending = 0;
	pthread_mutex_unlock(&hs_heap.sweeper_mu);
	if (pending)
		sweep_unswept();
}
