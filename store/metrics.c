/*
 * store/metrics.c — a session's heap, summed up: the numbers behind
 * `heapscope report` (cli/report.c) and `heapscope diff` (cli/diff.c).
 *
 * One pass. The session's events are streamed from seq 0 (hs_source) into a
 * fresh model (core/model.h), so the replica heap is exact at every event;
 * nothing is kept per event. At every STATS event of the reported process the
 * pass takes a sample: the event's six figures plus what the model says at
 * that point (free pages, the longest free run, the spans' live and free
 * bytes). Counters (heap growth, spans per class, the scavenger) come from the
 * events themselves, not from the model, so they stay right after the model
 * diverges. Memory: the model (the size of the heap's metadata, not of the
 * session), the fixed class table and at most HS_METRICS_MAX_SAMPLES + 16
 * samples. A 10-million-event session (churn at object level for 6 s) is
 * read in about 6 s at 7 MiB of RSS (docs/reports.md).
 *
 * Which process. A session may hold a program and the children it forks; the
 * figures are those of the session's first process (the sessions row's pid,
 * else the first proc_start). nprocs says how many there were, and the report
 * says when it left some out.
 *
 * Fragmentation (of free pages). 1 - L / F, where F is the free pages in the
 * chunk bitmaps over the in-use ranges and L the longest run of free pages
 * anywhere in them, 0 when F is 0. L comes from the root level of the page
 * allocator's summaries, as Go's find would see it: each root entry gives the
 * free pages at its start, its longest run and the free pages at its end;
 * walking the entries over the in-use ranges in address order,
 *
 *     run  = free pages ending at the previous entry's end (0 after a gap)
 *     entry wholly free:   run += pages per entry
 *     otherwise:           L = max(L, run + start, max);  run = end
 *
 * and L = max(L, run) at the end. Entries between in-use ranges were never
 * grown; they break runs. On amd64 a root entry covers 16 GiB, so a heap of a
 * few GiB is one or two entries and this is a handful of loads.
 *
 * Where RSS goes. At each sample, from the model's span table:
 *   live   = sum over small-class spans of allocCount * object size
 *            + sum over large spans (class 0) of their bytes
 *   slots  = span bytes - live: free slots inside in-use spans, and the tail
 *            of each span too short for one more object (at most 1/8 of it)
 *   unscav = free - released (STATS): free pages whose memory is still
 *            resident, or at least not yet given back
 *   meta   = the STATS metadata: summaries, chunk bitmaps, span structures
 *   other  = rss - live - slots - unscav - meta: the rest of the process
 *            (code, libraries, stacks, the trace ring) plus released pages the
 *            kernel has not reclaimed yet minus pages never touched. It can be
 *            negative (free pages that were never faulted in are not resident);
 *            other_negative notes it and the report clamps it at 0.
 * allocCount is as of the span's last event (a sweep, an mcentral move, an
 * mcache refill or flush). The pass corrects it where it knows better (see
 * span_state): a span an mcache took counts as full, and at level objects the
 * objects freed since the span's last sweep are taken off. At level heap, live
 * therefore includes objects freed but not yet swept, as the heap's own
 * allocCount does.
 *
 * The exit sample. A process's last STATS comes at exit (its proc_end
 * follows), after the program freed what it frees before exiting. It counts
 * for the peaks of in-use, retained and RSS and as the final values, not for
 * the figures that judge the heap while it ran (see note_peaks). A sample is
 * held back until the next STATS or proc_end of its process says which it is.
 *
 * Keeping the series small. Samples are appended with a stride, first 1. When
 * HS_METRICS_MAX_SAMPLES are stored, every other one is dropped (keeping the
 * current peaks and the last) and the stride doubles. A sample that sets a new
 * peak is always stored; the last sample of the session is always stored. The
 * means and peaks are over every sample, never the decimated series.
 *
 * The verdict: see hs_metrics_verdict below.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "model.h"
#include "sizeclasses.h"

_Static_assert(HS_METRICS_NSPANCLASS == 2 * HS_NUM_SIZE_CLASSES, "one slot per span class");

#define MIB ((uint64_t)1 << 20)
#define NPEAKS 7
#define MAX_TAKES 16 /* scavenger runs in flight at once: one per scavenging thread */
#define STORE_CAP (HS_METRICS_MAX_SAMPLES + 16)

/*
 * A span in an mcache (the model's where is cached: from its mcache_refill to
 * its mcache_flush or mcentral_move) may be allocated from without events
 * until it is full. It counts as full, as Go's own accounting counts a cached
 * span, unless its last event left it with too little room to be allocated
 * from (less than an eighth of its slots free: hs_room_worth_taking); a
 * later sweep that leaves room makes it count as full again, since its owner
 * takes such spans back without an event. See filling().
 *
 * What the pass knows about a span beyond the model, kept only for spans where
 * it matters; the table's size follows the heap's spans, not the session's
 * length.
 *
 *   pending  objects freed and not yet swept (level objects only): the
 *            heap's allocCount still counts them. Free events add one, a
 *            sweep takes off the objects it freed. Per-thread buffers deliver
 *            frees and sweeps of different threads out of order, so the
 *            count may dip below 0 for a while (a sweep seen before the frees
 *            it swept); only its positive part is taken off allocCount, and
 *            in sum it is exact once every free is seen. For a large span, 1
 *            means its object is freed.
 *
 * Open addressing keyed by span base, linear probing, deletion by backward
 * shift; an entry goes once it says nothing (nothing pending).
 */
typedef struct span_state {
	uintptr_t base; /* 0: an empty slot */
	int64_t pending;
} span_state;

typedef struct span_table {
	span_state *slot;
	size_t cap, n; /* cap a power of two or 0; n <= cap / 2 */
} span_table;

/* The pass's own state, beside what it fills in. */
typedef struct pass {
	hs_metrics *m;
	hs_model *model;
	span_table spans;
	hs_metrics_sample held; /* the last sample, until we know whether it is the exit sample */
	int has_held;
	int objects; /* the session has object events (level objects) */
	int oom;
	struct {
		uint64_t base, npages;
	} takes[MAX_TAKES]; /* scav_takes awaiting their scav_range, oldest first */
	unsigned ntakes;
	double frag_sum, slots_sum, unscav_sum;
} pass;

static size_t table_home(uintptr_t base, size_t cap)
{
	return (size_t)(((uint64_t)(base >> HS_PAGE_SHIFT) * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & (cap - 1);
}

/* The slot holding base, or the empty slot where it would go. cap > 0. */
static size_t table_find(const span_table *t, uintptr_t base)
{
	size_t i = table_home(base, t->cap);
	while (t->slot[i].base != 0 && t->slot[i].base != base)
		i = (i + 1) & (t->cap - 1);
	return i;
}

static const span_state *table_get(const span_table *t, uintptr_t base)
{
	if (t->cap == 0)
		return NULL;
	const span_state *e = &t->slot[table_find(t, base)];
	return e->base == base ? e : NULL;
}

/* The entry of base, made if missing; NULL out of memory. */
static span_state *table_put(span_table *t, uintptr_t base)
{
	if (t->cap != 0) {
		span_state *e = &t->slot[table_find(t, base)];
		if (e->base == base)
			return e;
	}
	if ((t->n + 1) * 2 > t->cap) {
		size_t ocap = t->cap, ncap = ocap ? 2 * ocap : 1024;
		span_state *old = t->slot, *n = calloc(ncap, sizeof *n);
		if (n == NULL)
			return NULL;
		t->slot = n;
		t->cap = ncap;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].base != 0)
				t->slot[table_find(t, old[i].base)] = old[i];
		free(old);
	}
	span_state *e = &t->slot[table_find(t, base)];
	*e = (span_state){ .base = base };
	t->n++;
	return e;
}

static void table_del(span_table *t, uintptr_t base)
{
	if (t->cap == 0)
		return;
	size_t i = table_find(t, base);
	if (t->slot[i].base != base)
		return;
	t->slot[i] = (span_state){ 0 };
	t->n--;
	/* Backward shift: pull each later entry of the cluster into the hole
	 * unless its home lies cyclically in (hole, its slot]. */
	for (size_t j = (i + 1) & (t->cap - 1); t->slot[j].base != 0; j = (j + 1) & (t->cap - 1)) {
		size_t h = table_home(t->slot[j].base, t->cap);
		int stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (!stays) {
			t->slot[i] = t->slot[j];
			t->slot[j] = (span_state){ 0 };
			i = j;
		}
	}
}

/* Drops the entry of base once it says nothing. */
static void table_tidy(span_table *t, span_state *e)
{
	if (e->pending == 0)
		table_del(t, e->base);
}

static int fail(char *err, size_t errlen, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	return -1;
}

int hs_metrics_last_session(hs_store *st, int64_t *id, char *err, size_t errlen)
{
	int r = hs_store_last_session(st, id);
	if (r < 0)
		return fail(err, errlen, "%s", hs_store_error(st));
	if (r > 0)
		return fail(err, errlen, "%s", "the file holds no session");
	return 0;
}

/* --- one sample ------------------------------------------------------------- */

/* Free pages and the longest free run over the in-use ranges (see the essay). */
static void page_runs(const hs_pagealloc *p, uint64_t *free_pages, uint64_t *largest)
{
	const unsigned shift = hs_level_shift(0);
	const uint64_t entry_pages = (uint64_t)1 << hs_level_log_pages(0);
	uint64_t nfree = 0, best = 0, run = 0;
	uintptr_t prev = UINTPTR_MAX; /* the last root entry walked */
	for (size_t k = 0; k < p->in_use.len; k++) {
		hs_addr_range r = p->in_use.ranges[k];
		for (hs_chunk_idx ci = r.base >> HS_LOG_PALLOC_CHUNK_BYTES;
		     ci <= (r.limit - 1) >> HS_LOG_PALLOC_CHUNK_BYTES; ci++) {
			const hs_palloc_data *d = hs_pagealloc_try_chunk_of(p, ci);
			if (d != NULL)
				nfree += HS_PALLOC_CHUNK_PAGES - hs_page_bits_popcnt_range(&d->alloc, 0, HS_PALLOC_CHUNK_PAGES);
		}
		for (uintptr_t i = r.base >> shift; i <= (r.limit - 1) >> shift; i++) {
			if (prev != UINTPTR_MAX && i <= prev)
				continue; /* two ranges inside one root entry */
			if (prev == UINTPTR_MAX || i != prev + 1) {
				best = run > best ? run : best;
				run = 0;
			}
			hs_palloc_sum s = p->summary[0][i];
			uint64_t start = hs_palloc_sum_start(s), max = hs_palloc_sum_max(s), end = hs_palloc_sum_end(s);
			if (max == entry_pages) {
				run += entry_pages;
			} else {
				best = run + start > best ? run + start : best;
				best = max > best ? max : best;
				run = end;
			}
			prev = i;
		}
	}
	*free_pages = nfree;
	*largest = run > best ? run : best;
}

/* The span counts as full: see the essay above span_state. */
static int filling(const hs_model_span *sp, uint64_t nelems)
{
	return sp->where == HS_MODEL_SPAN_CACHED && sp->alloc_count < nelems &&
	       hs_room_worth_taking((unsigned)(nelems - sp->alloc_count), (unsigned)nelems);
}

/* Arguments of the span walk. */
typedef struct span_walk {
	hs_metrics_sample *s;
	const span_table *table;
} span_walk;

static void span_bytes(const hs_model_span *sp, void *arg)
{
	span_walk *w = arg;
	hs_metrics_sample *out = w->s;
	const span_state *st = table_get(w->table, sp->base);
	uint64_t bytes = (uint64_t)sp->npages << HS_PAGE_SHIFT, live = bytes;
	unsigned c = sp->spanclass >> 1;
	if (c == 0) {
		live = st != NULL && st->pending > 0 ? 0 : bytes;
	} else if (c < HS_NUM_SIZE_CLASSES) {
		uint64_t nelems = hs_class_nelems(c);
		uint64_t n = filling(sp, nelems) ? nelems : sp->alloc_count;
		uint64_t freed = st != NULL && st->pending > 0 ? (uint64_t)st->pending : 0;
		n = n < nelems ? n : nelems;
		n = freed < n ? n - freed : 0;
		live = n * hs_class_to_size[c];
		live = live < bytes ? live : bytes;
	}
	out->nspans++;
	out->span_bytes += bytes;
	out->live += live;
}

static void model_figures(pass *ps, hs_model_heap *h, hs_metrics_sample *s)
{
	s->model_ok = 1;
	page_runs(&h->pages, &s->free_pages, &s->largest_run);
	s->frag = s->free_pages == 0 ? 0.0 : 1.0 - (double)s->largest_run / (double)s->free_pages;
	if (s->frag < 0)
		s->frag = 0;
	span_walk w = { s, &ps->spans };
	hs_model_spans(h, span_bytes, &w);
	s->slots = s->span_bytes - s->live;
}

static void take_sample(pass *ps, const hs_event *e, hs_metrics_sample *s)
{
	hs_metrics *m = ps->m;
	memset(s, 0, sizeof *s);
	s->seq = e->seq;
	s->t = e->ts > m->first_ts ? (double)(e->ts - m->first_ts) / 1e9 : 0.0;
	s->in_use = e->arg[0];
	s->free = e->arg[1];
	s->released = e->arg[2];
	s->sys = e->arg[3];
	s->rss = e->arg[4];
	s->metadata = e->arg[5];
	s->retained = s->in_use + s->free > s->released ? s->in_use + s->free - s->released : 0;
	s->unscav = s->free > s->released ? s->free - s->released : 0;
	hs_model_heap *h = m->diverged ? NULL : hs_model_heap_of(ps->model, m->pid);
	if (h != NULL)
		model_figures(ps, h, s);
	uint64_t heap = (s->model_ok ? s->live + s->slots : s->in_use) + s->unscav + s->metadata;
	s->other = (int64_t)s->rss - (int64_t)heap;
}

/* --- the series -------------------------------------------------------------- */

/*
 * Updates the peaks and means; returns whether s set a peak. The exit sample
 * (taken after the program freed what it frees at exit) counts for in-use,
 * retained and RSS and as the final values, not for the figures that judge the
 * heap while it ran: live, free slots, fragmentation, free pages not released.
 */
static int note_peaks(pass *ps, const hs_metrics_sample *s)
{
	hs_metrics *m = ps->m;
	int first = m->nseen == 0, any = first;
	if (first)
		m->first = *s;
#define PEAK_(field, value, fresh)                                             \
	if ((fresh) || s->value > m->field.value) {                             \
		m->field = *s;                                                  \
		any = 1;                                                        \
	}
	PEAK_(peak_in_use, in_use, first)
	PEAK_(peak_retained, retained, first)
	PEAK_(peak_rss, rss, first)
	if (!s->exit) {
		PEAK_(peak_unscav, unscav, m->nrun == 0)
		m->nrun++;
		ps->unscav_sum += s->retained != 0 ? (double)s->unscav / (double)s->retained : 0.0;
	}
	if (s->model_ok && !s->exit) {
		PEAK_(peak_live, live, m->nmodel == 0)
		PEAK_(peak_slots, slots, m->nmodel == 0)
		PEAK_(peak_frag, frag, m->nmodel == 0)
		m->nmodel++;
		ps->frag_sum += s->frag;
		ps->slots_sum += s->span_bytes != 0 ? (double)s->slots / (double)s->span_bytes : 0.0;
	}
#undef PEAK_
	m->last = *s;
	if (s->other < 0)
		m->other_negative = 1;
	return any;
}

static int is_peak(const hs_metrics *m, uint64_t seq)
{
	const hs_metrics_sample *p[NPEAKS] = { &m->peak_in_use, &m->peak_retained, &m->peak_rss, &m->peak_unscav,
					       &m->peak_live,	 &m->peak_slots,    &m->peak_frag };
	for (int i = 0; i < NPEAKS; i++)
		if (p[i]->seq == seq)
			return 1;
	return 0;
}

/* Drops every other stored sample but the peaks and the last; doubles the stride. */
static void decimate(hs_metrics *m)
{
	size_t k = 0;
	for (size_t j = 0; j < m->nsamples; j++)
		if (j % 2 == 0 || j + 1 == m->nsamples || is_peak(m, m->samples[j].seq))
			m->samples[k++] = m->samples[j];
	m->nsamples = k;
	m->stride *= 2;
}

static void add_sample(pass *ps, const hs_metrics_sample *s)
{
	hs_metrics *m = ps->m;
	int peak = note_peaks(ps, s);
	uint64_t index = m->nseen++;
	if (!peak && index % m->stride != 0)
		return;
	if (m->nsamples >= HS_METRICS_MAX_SAMPLES)
		decimate(m);
	m->samples[m->nsamples++] = *s;
}

/* A sample waits for the next event of its kind: a proc_end first makes it
 * the exit sample. */
static void flush_held(pass *ps, int exit)
{
	if (!ps->has_held)
		return;
	ps->held.exit = exit;
	add_sample(ps, &ps->held);
	ps->has_held = 0;
}

/* --- events ------------------------------------------------------------------- */

/* A sweep at level objects: allocCount now counts the objects it freed, which
 * are no longer pending. */
static void note_sweep(pass *ps, const hs_event *e)
{
	if (!ps->objects || e->arg[1] >> 1 == 0 || e->arg[2] == 0)
		return;
	span_state *st = table_put(&ps->spans, (uintptr_t)e->arg[0]);
	if (st == NULL) {
		ps->oom = 1;
		return;
	}
	st->pending -= (int64_t)e->arg[2];
	table_tidy(&ps->spans, st);
}

/* heap_grow: did the heap have the pages free, only not in one run? */
static void note_grow(pass *ps, const hs_event *e)
{
	hs_model_heap *h = ps->m->diverged ? NULL : hs_model_heap_of(ps->model, ps->m->pid);
	if (h == NULL)
		return;
	uint64_t free_pages, largest;
	page_runs(&h->pages, &free_pages, &largest);
	if (free_pages >= e->arg[0] && largest < e->arg[0]) {
		ps->m->frag_grows++;
		ps->m->frag_grow_bytes += e->arg[1];
	}
}

/* An object freed (free = 1) or a large one allocated (free = 0) at addr: its
 * span's pending count (level objects only). */
static void note_object(pass *ps, uintptr_t addr, int free)
{
	hs_model_heap *h = ps->m->diverged ? NULL : hs_model_heap_of(ps->model, ps->m->pid);
	const hs_model_span *sp = h != NULL ? hs_model_span_of(h, addr) : NULL;
	if (sp == NULL)
		return;
	int large = sp->spanclass >> 1 == 0;
	if (!free) {
		span_state *st = (span_state *)table_get(&ps->spans, sp->base);
		if (st != NULL && large) {
			st->pending = 0;
			table_tidy(&ps->spans, st);
		}
		return;
	}
	span_state *st = table_put(&ps->spans, sp->base);
	if (st == NULL) {
		ps->oom = 1;
		return;
	}
	st->pending = large ? 1 : st->pending + 1;
	table_tidy(&ps->spans, st);
}

/* A run the scavenger took to release; the oldest is forgotten when more
 * are in flight than scavenging threads could have. */
static void note_take(pass *ps, uint64_t base, uint64_t npages)
{
	if (ps->ntakes == MAX_TAKES)
		memmove(ps->takes, ps->takes + 1, --ps->ntakes * sizeof ps->takes[0]);
	ps->takes[ps->ntakes].base = base;
	ps->takes[ps->ntakes++].npages = npages;
}

/* Whether a released run ends a take (the scavenger's), forgetting it. */
static int end_take(pass *ps, uint64_t base, uint64_t npages)
{
	for (unsigned i = 0; i < ps->ntakes; i++) {
		if (ps->takes[i].base == base && ps->takes[i].npages == npages) {
			memmove(ps->takes + i, ps->takes + i + 1, (--ps->ntakes - i) * sizeof ps->takes[0]);
			return 1;
		}
	}
	return 0;
}

static void count_event(pass *ps, const hs_event *e)
{
	hs_metrics *m = ps->m;
	const uint64_t *a = e->arg;
	switch (e->kind) {
	case HS_EV_PAGE_GROW:
		m->page_grows++;
		m->page_grow_bytes += a[1];
		break;
	case HS_EV_HEAP_GROW:
		m->heap_grows++;
		m->heap_grow_bytes += a[1];
		note_grow(ps, e);
		break;
	case HS_EV_SPAN_ALLOC:
		m->span_allocs++;
		m->span_alloc_bytes += a[1] << HS_PAGE_SHIFT;
		if (a[2] < HS_METRICS_NSPANCLASS) {
			m->classes[a[2]].allocs++;
			m->classes[a[2]].alloc_bytes += a[1] << HS_PAGE_SHIFT;
		}
		break;
	case HS_EV_SPAN_FREE:
		m->span_frees++;
		if (a[2] < HS_METRICS_NSPANCLASS) {
			m->classes[a[2]].frees++;
			m->classes[a[2]].free_bytes += a[1] << HS_PAGE_SHIFT;
		}
		table_del(&ps->spans, (uintptr_t)a[0]);
		break;
	case HS_EV_SWEEP:
		note_sweep(ps, e);
		break;
	case HS_EV_PAGE_CACHE_ALLOC:
		m->cache_allocs++;
		m->page_allocs_locked++;
		break;
	case HS_EV_PAGE_ALLOC:
	case HS_EV_PAGE_ALLOC_RANGE:
		m->page_allocs_locked++;
		break;
	case HS_EV_SCAV_TAKE:
		note_take(ps, a[0], a[1]);
		break;
	case HS_EV_SCAV_RANGE:
		if (end_take(ps, a[0], a[1])) {
			m->scav_ranges++;
			m->scav_released += a[1] << HS_PAGE_SHIFT;
		} else {
			m->freed_released_ranges++;
			m->freed_released += a[1] << HS_PAGE_SHIFT;
		}
		break;
	case HS_EV_SCAV_START:
		m->scav_cycles++;
		break;
	case HS_EV_SCAV_END:
		m->scav_cpu_ns = a[4];
		break;
	case HS_EV_RECOMMIT:
		m->recommit_bytes += a[1];
		break;
	case HS_EV_MALLOC:
		m->mallocs++;
		m->malloc_bytes += a[1];
		if (a[2] == 0) /* a large object: maybe a cached large span taken again */
			note_object(ps, (uintptr_t)a[0], 0);
		break;
	case HS_EV_FREE:
		m->frees++;
		note_object(ps, (uintptr_t)a[0], 1);
		break;
	case HS_EV_PROC_END:
		flush_held(ps, 1);
		break;
	default:
		break;
	}
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src != NULL ? src : "-");
}

static int session_row(hs_store *st, int64_t session, hs_metrics *m, char *err, size_t errlen)
{
	hs_session_info info;
	if (hs_store_session_get(st, session, &info) != 0)
		return fail(err, errlen, "%s", hs_store_error(st));
	m->session = info.id;
	copy_str(m->command, sizeof m->command, info.command);
	copy_str(m->status, sizeof m->status, hs_session_status_name(info.status));
	copy_str(m->level, sizeof m->level, info.level);
	copy_str(m->transport, sizeof m->transport, info.transport);
	m->seed = info.seed;
	m->nevents = info.nevents;
	m->nlost = info.nlost;
	m->wall_ns = info.end_ns != 0 && info.start_ns != 0 ? info.end_ns - info.start_ns : 0;
	m->pid = info.pid > 0 && info.pid <= UINT32_MAX ? (uint32_t)info.pid : 0;
	return 0;
}

static void apply(pass *ps, const hs_event *e)
{
	hs_metrics *m = ps->m;
	if (m->events++ == 0)
		m->first_ts = e->ts;
	if (e->ts > m->last_ts)
		m->last_ts = e->ts;
	if (e->kind == HS_EV_PROC_START) {
		m->nprocs++;
		if (m->pid == 0)
			m->pid = e->pid;
	}
	if (!m->diverged && hs_model_apply(ps->model, e) != 0) {
		m->diverged = 1;
		m->diverge_seq = hs_model_error_seq(ps->model);
		snprintf(m->diverge, sizeof m->diverge, "%s", hs_model_error(ps->model));
	}
	if (e->pid != m->pid)
		return;
	m->events_pid++;
	if (e->kind == HS_EV_STATS) {
		flush_held(ps, 0);
		take_sample(ps, e, &ps->held);
		ps->has_held = 1;
	} else {
		count_event(ps, e);
	}
}

static void pass_free(pass *ps)
{
	hs_model_free(ps->model);
	free(ps->spans.slot);
}

int hs_metrics_compute(hs_store *st, int64_t session, hs_metrics *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->stride = 1;
	if (session < 0 && hs_metrics_last_session(st, &session, err, errlen) != 0)
		return -1;
	if (session_row(st, session, out, err, errlen) != 0)
		return -1;
	out->samples = malloc(STORE_CAP * sizeof *out->samples);
	pass ps = { .m = out, .model = hs_model_new(), .objects = strcmp(out->level, "objects") == 0 };
	if (out->samples == NULL || ps.model == NULL) {
		pass_free(&ps);
		return fail(err, errlen, "%s", "out of memory");
	}
	hs_source *src;
	if (hs_source_open(st, session, 0, &src) != 0) {
		pass_free(&ps);
		return fail(err, errlen, "%s", hs_store_error(st));
	}
	hs_event e;
	int r;
	while ((r = hs_source_next(src, &e)) == 1 && !ps.oom)
		apply(&ps, &e);
	hs_source_close(src);
	if (r < 0 || ps.oom) {
		pass_free(&ps);
		return fail(err, errlen, "%s", r < 0 ? hs_store_error(st) : "out of memory");
	}
	flush_held(&ps, 0); /* a session cut short: no proc_end */
	/* The session's last sample, when the stride skipped it. */
	if (out->nseen != 0 && (out->nsamples == 0 || out->samples[out->nsamples - 1].seq != out->last.seq))
		out->samples[out->nsamples++] = out->last;
	out->digests = hs_model_digests(ps.model);
	out->duration = out->last_ts > out->first_ts ? (double)(out->last_ts - out->first_ts) / 1e9 : 0.0;
	out->frag_mean = out->nmodel != 0 ? ps.frag_sum / (double)out->nmodel : 0.0;
	out->slots_mean = out->nmodel != 0 ? ps.slots_sum / (double)out->nmodel : 0.0;
	out->unscav_mean = out->nrun != 0 ? ps.unscav_sum / (double)out->nrun : 0.0;
	pass_free(&ps);
	return 0;
}

void hs_metrics_free(hs_metrics *m)
{
	if (m == NULL)
		return;
	free(m->samples);
	m->samples = NULL;
	m->nsamples = 0;
}

/* --- the verdict ------------------------------------------------------------------ */

/*
 * The verdict answers "is it a leak or fragmentation?" with the largest of
 * the findings that hold, by the bytes each concerns (MiB = 2^20). The exit
 * sample is left out throughout: a program that frees everything before it
 * exits would hide a leak and show every page free.
 *
 *   growth         live data rises and stays up: the lowest live figure of the
 *                  last quarter of the samples is >= 1.5x the highest of the
 *                  first quarter and >= 4 MiB above it; needs 4 samples.
 *                  Without the model, in_use stands in for live.
 *                  Bytes: the rise.
 *   fragmentation  (spans) at peak in-use, free slots are >= 30% of the span
 *                  bytes and >= 4 MiB: memory sits in spans that are mostly
 *                  empty. Bytes: those free slots.
 *   fragmentation  (pages) the heap grew by more than one chunk (4 MiB) in
 *                  total, and by >= 10% of all its growth, at heap_grow
 *                  events where it had the
 *                  pages asked for free, but in no run long enough
 *                  (frag_grows): scattered free pages cost address space and,
 *                  until released, memory. Bytes: that growth, or
 *                  the peak of free pages not released if larger and "held"
 *                  (below).
 *   retained       held: free pages not released (free - released) are on
 *                  average >= 25% of retained and reach >= 4 MiB, and no
 *                  growth came of fragmentation: the scavenger has not given
 *                  back what the heap does not use. Bytes: that peak. (A mean
 *                  fragmentation of free pages >= 30% is mentioned.)
 *
 * The other findings that hold follow after "also:". When none holds the
 * line gives the share of span bytes that is live at peak in-use, kind none.
 */
const char *hs_verdict_name(hs_verdict_kind k)
{
	switch (k) {
	case HS_VERDICT_GROWTH:
		return "growth";
	case HS_VERDICT_FRAGMENTATION:
		return "fragmentation";
	case HS_VERDICT_RETAINED:
		return "retained";
	default:
		return "none";
	}
}

static double mib(uint64_t n)
{
	return (double)n / (double)MIB;
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole != 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

static uint64_t live_of(const hs_metrics_sample *s)
{
	return s->model_ok ? s->live : s->in_use;
}

/* growth: fills early/late and the in-use figures; returns the bytes of growth or 0. */
static uint64_t growth(const hs_metrics *m, uint64_t *early, uint64_t *late, uint64_t *use_early, uint64_t *use_late)
{
	size_t n = m->nsamples;
	if (n != 0 && m->samples[n - 1].exit)
		n--;
	if (n < 4)
		return 0;
	size_t q = n / 4 ? n / 4 : 1;
	uint64_t e = 0, l = UINT64_MAX, ue = 0, ul = UINT64_MAX;
	for (size_t i = 0; i < q; i++) {
		uint64_t v = live_of(&m->samples[i]);
		e = v > e ? v : e;
		ue = m->samples[i].in_use > ue ? m->samples[i].in_use : ue;
	}
	for (size_t i = n - q; i < n; i++) {
		uint64_t v = live_of(&m->samples[i]);
		l = v < l ? v : l;
		ul = m->samples[i].in_use < ul ? m->samples[i].in_use : ul;
	}
	*early = e;
	*late = l;
	*use_early = ue;
	*use_late = ul;
	if ((double)l >= 1.5 * (double)e && l >= e + 4 * MIB)
		return l - e;
	return 0;
}

hs_verdict_kind hs_metrics_verdict(const hs_metrics *m, char *buf, size_t len)
{
	if (m->nseen == 0) {
		snprintf(buf, len, "no statistics samples in this session: nothing to judge");
		return HS_VERDICT_NONE;
	}
	if (m->nrun == 0) {
		snprintf(buf, len, "only the exit sample: nothing to judge while the program ran (record a longer "
				   "session; samples come every 100 ms)");
		return HS_VERDICT_NONE;
	}
	enum { GROWTH, SPANS, PAGES, RETAINED, NFIND };
	static const char *const short_name[NFIND] = { "live data grows", "free slots in spans",
						       "scattered free pages", "free pages not released" };
	static const hs_verdict_kind kind[NFIND] = { HS_VERDICT_GROWTH, HS_VERDICT_FRAGMENTATION,
						     HS_VERDICT_FRAGMENTATION, HS_VERDICT_RETAINED };
	char text[NFIND][320] = { "", "", "", "" };
	uint64_t bytes[NFIND] = { 0, 0, 0, 0 };

	uint64_t e = 0, l = 0, ue = 0, ul = 0;
	bytes[GROWTH] = growth(m, &e, &l, &ue, &ul);
	if (bytes[GROWTH] != 0)
		snprintf(text[GROWTH], sizeof text[GROWTH],
			 "live data grows (a leak or a growing working set): %s %.1f MiB -> %.1f MiB, in-use spans "
			 "%.1f MiB -> %.1f MiB",
			 m->nmodel != 0 ? "live objects" : "in-use (no model)", mib(e), mib(l), mib(ue), mib(ul));

	const hs_metrics_sample *p = &m->peak_in_use;
	if (p->model_ok && !p->exit && p->slots >= 4 * MIB && 10 * p->slots >= 3 * p->span_bytes) {
		bytes[SPANS] = p->slots;
		snprintf(text[SPANS], sizeof text[SPANS],
			 "fragmentation: %.0f%% of in-use span bytes are free slots (%.1f MiB of %.1f MiB at peak "
			 "in-use, t=%.1fs; live objects %.1f MiB)",
			 pct(p->slots, p->span_bytes), mib(p->slots), mib(p->span_bytes), p->t, mib(p->live));
	}

	const hs_metrics_sample *u = &m->peak_unscav;
	int held = m->nrun != 0 && m->unscav_mean >= 0.25 && u->unscav >= 4 * MIB;
	if (m->frag_grow_bytes > 4 * MIB && 10 * m->frag_grow_bytes >= m->page_grow_bytes) {
		bytes[PAGES] = held && u->unscav > m->frag_grow_bytes ? u->unscav : m->frag_grow_bytes;
		int n = snprintf(text[PAGES], sizeof text[PAGES],
				 "fragmentation: free pages are scattered: the heap grew %.1f MiB in %" PRIu64
				 " step%s while it had the pages free, just not in one run",
				 mib(m->frag_grow_bytes), m->frag_grows, m->frag_grows == 1 ? "" : "s");
		if (m->nmodel != 0 && m->peak_frag.frag > 0)
			n += snprintf(text[PAGES] + n, sizeof text[PAGES] - (size_t)n,
				      "; at the samples, on average %.0f%% of free pages lie outside the largest free "
				      "run (%.0f%% at worst)",
				      100 * m->frag_mean, 100 * m->peak_frag.frag);
		if (held)
			snprintf(text[PAGES] + n, sizeof text[PAGES] - (size_t)n,
				 "; %.1f MiB of free pages held, not released (t=%.1fs)", mib(u->unscav), u->t);
	} else if (held) {
		bytes[RETAINED] = u->unscav;
		int n = snprintf(text[RETAINED], sizeof text[RETAINED],
				 "retained but unused memory: the scavenger has not released %.1f MiB (%.0f%% of "
				 "retained at t=%.1fs; %.0f%% on average)",
				 mib(u->unscav), pct(u->unscav, u->retained), u->t, 100.0 * m->unscav_mean);
		if (m->nmodel != 0 && m->frag_mean >= 0.30)
			snprintf(text[RETAINED] + n, sizeof text[RETAINED] - (size_t)n,
				 "; those pages are scattered (%.0f%% outside the largest free run on average)",
				 100 * m->frag_mean);
	}

	int best = -1;
	for (int i = 0; i < NFIND; i++)
		if (bytes[i] != 0 && (best < 0 || bytes[i] > bytes[best]))
			best = i;
	if (best < 0) {
		if (p->model_ok) {
			int n = snprintf(buf, len,
					 "no leak or fragmentation: at peak in-use live objects fill %.0f%% of in-use "
					 "spans (%.1f of %.1f MiB), live data does not keep growing and free pages are "
					 "released",
					 pct(p->live, p->span_bytes), mib(p->live), mib(p->span_bytes));
			if (m->frag_mean >= 0.30 && n > 0 && (size_t)n < len)
				snprintf(buf + n, len - (size_t)n,
					 "; free pages are scattered (%.0f%% outside the largest free run on average) "
					 "but hardly make the heap grow",
					 100 * m->frag_mean);
		} else
			snprintf(buf, len, "no leak or fragmentation seen in the statistics (the model diverged: "
					   "no span figures)");
		return HS_VERDICT_NONE;
	}
	size_t n = (size_t)snprintf(buf, len, "%s", text[best]);
	for (int i = 0; i < NFIND; i++) {
		if (i == best || bytes[i] == 0 || n >= len)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "; also: %s (%.1f MiB)", short_name[i], mib(bytes[i]));
	}
	return kind[best];
}

/* --- formatting ------------------------------------------------------------------- */

const char *hs_metrics_fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return buf;
	}
	double v = (double)n / 1024;
	int u = 0;
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s" : "%.2f %s", v, unit[u]);
	return buf;
}

/* Length of the valid UTF-8 sequence at s, 0 if invalid (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (n >= 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
		       (c == 0xf4 && s[1] >= 0x90)))
		return 0;
	return n;
}

void hs_metrics_json_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	fputc('"', f);
	while (*s != '\0') {
		if (*s == '"' || *s == '\\') {
			fputc('\\', f);
			fputc(*s++, f);
		} else if (*s < 0x20) {
			fprintf(f, "\\u%04x", *s++);
		} else if (*s < 0x80) {
			fputc(*s++, f);
		} else {
			size_t n = utf8_len(s);
			if (n == 0) {
				fputs("\\ufffd", f);
				s++;
			} else {
				fwrite(s, 1, n, f);
				s += n;
			}
		}
	}
	fputc('"', f);
}

void hs_metrics_json_double(FILE *f, double v)
{
	if (!isfinite(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}
