/*
 * core/mcentral.c — the spans of one span class that no mcache holds: Go's
 * mcentral (mcentral.go). See core/heap.h for the sets and core/mheap.c for
 * the overview.
 *
 * Four sets per class: partial and full, each swept or unswept with respect to
 * the current sweep cycle. The swept set of a kind is [sweepgen/2 % 2] and the
 * unswept one is the other, so advancing sweepgen by 2 (a new cycle) turns the
 * swept sets into unswept ones. Go uses lock-free span sets; heapscope uses
 * doubly linked lists under one lock per mcentral, which the issue allows and
 * contention on a single class rarely needs more.
 *
 * Ownership: a span taken off a set belongs to whoever took it, until it goes
 * back into a set, into an mcache, or to the heap. Only the owner sweeps a span,
 * so sweeping needs no lock, and sweepgen records progress for the checker and
 * for spans cached across a cycle boundary (Go's h+1 / h+3 states).
 *
 * cacheSpan, in Go's order: a partial swept span; else sweep partial unswept
 * spans until one has room; else sweep full unswept spans until one has room
 * (at most a bounded number, as Go does); else a new span from the heap.
 *
 * Locking: c->lock for the sets; never held while sweeping or calling the heap.
 */
#include "heap.h"

/* Spans that cacheSpan sweeps looking for room before it asks the heap (Go: 100). */
#define CACHE_SPAN_SWEEP_BUDGET 100

static hs_span_list *partial_swept(hs_mcentral *c, uint32_t sg)
{
	return &c->partial[sg / 2 % 2];
}

static hs_span_list *partial_unswept(hs_mcentral *c, uint32_t sg)
{
	return &c->partial[1 - sg / 2 % 2];
}

static hs_span_list *full_swept(hs_mcentral *c, uint32_t sg)
{
	return &c->full[sg / 2 % 2];
}

static hs_span_list *full_unswept(hs_mcentral *c, uint32_t sg)
{
	return &c->full[1 - sg / 2 % 2];
}

/* Built aside and stored word by word: the mcentrals are 26 KiB of the heap
 * singleton's .bss, and most programs use a few classes. */
void hs_mcentral_init(hs_mcentral *c)
{
	hs_mcentral init = { 0 };
	hs_mutex_init(&init.lock);
	_Static_assert(sizeof init % sizeof(uintptr_t) == 0, "stored a word at a time");
	hs_store_lazily(c, &init, sizeof init);
}

/* Sweeps a span the caller took off an unswept set, for the cycle sg. */
static void sweep_owned(hs_mspan *s, uint32_t sg)
{
	atomic_store_explicit(&s->sweepgen, sg - 1, memory_order_relaxed);
	hs_span_sweep(s);
	atomic_fetch_add_explicit(&hs_heap.spans_swept, 1, memory_order_relaxed);
	atomic_store_explicit(&s->sweepgen, sg, memory_order_relaxed);
}

/*
 * Files a swept span into cycle sg's partial or full swept set. Filed for the
 * cycle it was swept in: if a new cycle began meanwhile, the span lands in the
 * new cycle's unswept set with sweepgen h-2, as it should. c->lock held.
 */
static void file_swept(hs_mcentral *c, hs_mspan *s, uint32_t sg)
{
	int partial = s->alloc_count < s->nelems;
	atomic_store_explicit(&s->sweepgen, sg, memory_order_relaxed);
	hs_span_list_push_back(partial ? partial_swept(c, sg) : full_swept(c, sg), s);
	HS_TRACE(mcentral_move, s->start_addr, hs_mcentral_class(c), partial ? 0 : 2, s->alloc_count);
}

/*
 * Files a span the caller owns, swept for cycle sg: into that cycle's partial or
 * full swept set, or, when it holds no object, back to the heap.
 */
static void insert_swept(hs_mcentral *c, hs_mspan *s, uint32_t sg)
{
	if (s->alloc_count == 0) {
		hs_mheap_free_span(s);
		return;
	}
	hs_lock(&c->lock);
	file_swept(c, s, sg);
	hs_unlock(&c->lock);
}

/* Takes one span off an unswept set (partial first), or NULL. c->lock held. */
static hs_mspan *pop_unswept(hs_mcentral *c, uint32_t sg, int partial_only)
{
	hs_mspan *s = hs_span_list_pop_front(partial_unswept(c, sg));
	if (s == NULL && !partial_only)
		s = hs_span_list_pop_front(full_unswept(c, sg));
	return s;
}

hs_mspan *hs_mcentral_cache_span(hs_mcentral *c, hs_mcache *mc)
{
	uint32_t sg = atomic_load_explicit(&hs_heap.sweepgen, memory_order_acquire);
	hs_mspan *s;

	hs_lock(&c->lock);
	s = hs_span_list_pop_front(partial_swept(c, sg));
	for (int budget = CACHE_SPAN_SWEEP_BUDGET; s == NULL && budget > 0; budget--) {
		s = pop_unswept(c, sg, 0);
		if (s == NULL)
			break;
		hs_unlock(&c->lock);
		sweep_owned(s, sg);
		if (s->alloc_count < s->nelems)
			goto have_span;
		hs_lock(&c->lock);
		file_swept(c, s, sg);
		s = NULL;
	}
	hs_unlock(&c->lock);

	if (s == NULL && hs_scavenger_tight()) {
		/* About to grow near the memory limit: sweep first, then look again. */
		hs_sweep_under_pressure();
		hs_lock(&c->lock);
		s = hs_span_list_pop_front(partial_swept(c, atomic_load(&hs_heap.sweepgen)));
		hs_unlock(&c->lock);
	}
	if (s == NULL) {
		uintptr_t npages = hs_class_to_allocnpages[hs_span_class_size(hs_mcentral_class(c))];
		s = hs_mheap_alloc_span(mc, npages, hs_mcentral_class(c));
		if (s == NULL)
			return NULL;
	}
have_span:
	/* Swept and now cached (Go's h+3). */
	atomic_store_explicit(&s->sweepgen, sg + 3, memory_order_relaxed);
	return s;
}

/*
 * Takes back a span from an mcache. A span not swept since the current cycle
 * began (cached before it: h+1 or older) is swept first; then it is filed as swept.
 */
void hs_mcentral_uncache_span(hs_mcentral *c, hs_mspan *s)
{
	uint32_t sg = atomic_load_explicit(&hs_heap.sweepgen, memory_order_acquire);
	if (hs_span_cached_stale(atomic_load_explicit(&s->sweepgen, memory_order_relaxed), sg))
		sweep_owned(s, sg);
	insert_swept(c, s, sg);
}

#define SWEEP_BATCH 32

/*
 * Sweeps up to SWEEP_BATCH unswept spans of this class (the background sweeper's
 * step): taken off their sets under one acquisition of the lock, swept without
 * it, and filed back under one more (emptied spans go to the heap). Returns how
 * many were swept; 0 when the class has nothing left to sweep this cycle.
 */
int hs_mcentral_sweep_one(hs_mcentral *c)
{
	hs_mspan *batch[SWEEP_BATCH];
	int n = 0;
	uint32_t sg = atomic_load_explicit(&hs_heap.sweepgen, memory_order_acquire);

	hs_lock(&c->lock);
	while (n < SWEEP_BATCH && (batch[n] = pop_unswept(c, sg, 0)) != NULL)
		n++;
	hs_unlock(&c->lock);
	if (n == 0)
		return 0;

	int kept = 0;
	for (int i = 0; i < n; i++) {
		sweep_owned(batch[i], sg);
		if (batch[i]->alloc_count == 0) {
			hs_mheap_free_span(batch[i]);
		} else {
			batch[kept++] = batch[i];
		}
	}
	/* Filed for the cycle they were swept in (see file_swept). */
	hs_lock(&c->lock);
	for (int i = 0; i < kept; i++)
		file_swept(c, batch[i], sg);
	hs_unlock(&c->lock);
	return n;
}
