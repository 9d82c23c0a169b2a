/*
 * core/model.c — replaying events into replica heaps (see core/model.h).
 *
 * Every event is validated against the replica before it touches the page
 * allocator, because the page allocator trusts its callers (a bad free throws).
 * A page range must lie inside one in-use range of the replica; a free must
 * find its pages allocated, an allocation at a chosen base must find them free.
 *
 * Sequence numbers must increase; they may skip (a lossy transport, or a
 * producer killed mid-write). Every transport numbers events densely, so a
 * skip means events were lost: the model marks the first event after the
 * first skip as the point from which it can no longer be trusted
 * (hs_model_untrusted_seq) and carries on. A lost heap-level event shows up as
 * a divergence at the next event that depends on it or at the next digest,
 * never as a crash.
 *
 * Snapshots (snap_begin ... snap_end, taken by a process when an eBPF tracer
 * attaches) start the process's replica afresh: the grown ranges, then each
 * 64-page group's allocated and scavenged bits, rebuilt through the page
 * allocator's own operations (so summaries and the scavenger index follow),
 * then the live spans; snap_end checks the counts.
 *
 * Memory: the model runs in the recorder and the readers, never in a traced
 * process, so it uses the C library's malloc for its own tables; the replica
 * page allocators reserve their metadata from the OS as the real one does.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "scavindex.h"
#include "sizeclasses.h"
#include "trace.h"

#define MAX_HEAPS 1024 /* a shell script or a build starts many processes */
#define MAX_FORKS 16 /* proc_fork snapshots awaiting their child's proc_start */

typedef struct fork_snapshot {
	uint64_t seq; /* of the proc_fork; 0: an empty slot */
	void *blob;
	size_t len;
} fork_snapshot;

struct hs_model {
	hs_model_heap *heaps[MAX_HEAPS];
	unsigned nheaps;
	fork_snapshot forks[MAX_FORKS];
	unsigned next_fork;
	uint64_t nevents, last_seq, ndigests;
	uint64_t untrusted_seq; /* the first event after lost ones, or 0 */
	int failed;
	uint64_t fail_seq;
	char error[320];
};

/* --- heaps -------------------------------------------------------------------- */

static hs_model_heap *heap_new(uint32_t pid, uint32_t ppid)
{
	hs_model_heap *h = calloc(1, sizeof *h);
	if (h == NULL)
		return NULL;
	h->pid = pid;
	h->ppid = ppid;
	hs_mutex_init(&h->lock);
	if (hs_pagealloc_init(&h->pages, &h->lock, &h->meta, 1) != 0) {
		free(h);
		return NULL;
	}
	return h;
}

static void heap_free(hs_model_heap *h)
{
	hs_pagealloc_destroy(&h->pages);
	free(h->spans);
	free(h);
}

hs_model *hs_model_new(void)
{
	return calloc(1, sizeof(hs_model));
}

void hs_model_free(hs_model *m)
{
	if (m == NULL)
		return;
	for (unsigned i = 0; i < m->nheaps; i++)
		heap_free(m->heaps[i]);
	for (unsigned i = 0; i < MAX_FORKS; i++)
		free(m->forks[i].blob);
	free(m);
}

unsigned hs_model_nheaps(const hs_model *m)
{
	return m->nheaps;
}

hs_model_heap *hs_model_heap_at(hs_model *m, unsigned i)
{
	return i < m->nheaps ? m->heaps[i] : NULL;
}

/* The newest heap of pid: a process that exec'd (or a pid reused) has an older
 * heap of the same pid, ended. */
hs_model_heap *hs_model_heap_of(hs_model *m, uint32_t pid)
{
	for (unsigned i = m->nheaps; i-- > 0;)
		if (m->heaps[i]->pid == pid)
			return m->heaps[i];
	return NULL;
}

uint64_t hs_model_events(const hs_model *m)
{
	return m->nevents;
}

uint64_t hs_model_last_seq(const hs_model *m)
{
	return m->last_seq;
}

uint64_t hs_model_untrusted_seq(const hs_model *m)
{
	return m->untrusted_seq;
}

void hs_model_note_loss(hs_model *m)
{
	if (m->untrusted_seq == 0)
		m->untrusted_seq = m->last_seq + 1;
}

uint64_t hs_model_digests(const hs_model *m)
{
	return m->ndigests;
}

const char *hs_model_error(const hs_model *m)
{
	return m->failed ? m->error : NULL;
}

uint64_t hs_model_error_seq(const hs_model *m)
{
	return m->fail_seq;
}

/* --- the span table ------------------------------------------------------------- */

static size_t span_slot(uintptr_t base, size_t cap)
{
	return (size_t)(((uint64_t)(base >> HS_PAGE_SHIFT) * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & (cap - 1);
}

static hs_model_span *span_find(const hs_model_heap *h, uintptr_t base)
{
	if (h->span_cap == 0)
		return NULL;
	for (size_t i = span_slot(base, h->span_cap);; i = (i + 1) & (h->span_cap - 1)) {
		hs_model_span *s = &h->spans[i];
		if (s->base == base && !s->tomb)
			return s;
		if (s->base == 0 && !s->tomb)
			return NULL;
	}
}

static int span_grow(hs_model_heap *h)
{
	size_t ncap = h->span_cap == 0 ? 1024 : (h->nspans * 4 > h->span_cap ? h->span_cap * 2 : h->span_cap);
	hs_model_span *n = calloc(ncap, sizeof *n);
	if (n == NULL)
		return -1;
	for (size_t i = 0; i < h->span_cap; i++) {
		hs_model_span *s = &h->spans[i];
		if (s->base == 0 || s->tomb)
			continue;
		size_t j = span_slot(s->base, ncap);
		while (n[j].base != 0)
			j = (j + 1) & (ncap - 1);
		n[j] = *s;
	}
	free(h->spans);
	h->spans = n;
	h->span_cap = ncap;
	h->ntombs = 0;
	return 0;
}

static hs_model_span *span_insert(hs_model_heap *h, uintptr_t base)
{
	if ((h->nspans + h->ntombs + 1) * 2 > h->span_cap && span_grow(h) != 0)
		return NULL;
	size_t i = span_slot(base, h->span_cap);
	while (h->spans[i].base != 0 && !h->spans[i].tomb)
		i = (i + 1) & (h->span_cap - 1);
	if (h->spans[i].tomb)
		h->ntombs--;
	memset(&h->spans[i], 0, sizeof h->spans[i]);
	h->spans[i].base = base;
	h->nspans++;
	return &h->spans[i];
}

static void span_remove(hs_model_heap *h, hs_model_span *s)
{
	s->tomb = 1;
	h->nspans--;
	h->ntombs++;
}

const hs_model_span *hs_model_span_of(const hs_model_heap *h, uintptr_t addr)
{
	if (!hs_addr_ranges_contains(&h->pages.in_use, hs_off(addr)))
		return NULL;
	/* Spans are at most a few thousand pages in practice; look back page by
	 * page from addr for a span base, as far as the longest span seen. */
	uintptr_t page = addr & ~(uintptr_t)(HS_PAGE_SIZE - 1);
	for (uintptr_t k = 0; k <= h->span_pages && k < 1u << 20; k++) {
		uintptr_t b = page - (k << HS_PAGE_SHIFT);
		const hs_model_span *s = span_find(h, b);
		if (s != NULL)
			return addr < b + ((uintptr_t)s->npages << HS_PAGE_SHIFT) ? s : NULL;
	}
	return NULL;
}

void hs_model_spans(const hs_model_heap *h, void (*fn)(const hs_model_span *, void *), void *arg)
{
	for (size_t i = 0; i < h->span_cap; i++)
		if (h->spans[i].base != 0 && !h->spans[i].tomb)
			fn(&h->spans[i], arg);
}

/* --- validation ------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int diverge(hs_model *m, const hs_event *e, const char *fmt, ...)
{
	if (m->failed)
		return -1;
	m->failed = 1;
	m->fail_seq = e->seq;
	const hs_event_info *info = hs_event_lookup(e->kind);
	int n = snprintf(m->error, sizeof m->error, "seq %llu (%s, pid %u): ", (unsigned long long)e->seq,
			 info != NULL ? info->name : "unknown kind", e->pid);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->error + n, sizeof m->error - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Whether [base, base+npages pages) is a page-aligned range inside one in-use range. */
static int range_ok(const hs_model_heap *h, uint64_t base, uint64_t npages)
{
	if (npages == 0 || npages > ((uint64_t)1 << (HS_HEAP_ADDR_BITS - HS_PAGE_SHIFT)) ||
	    (base & (HS_PAGE_SIZE - 1)) != 0)
		return 0;
	uint64_t limit = base + (npages << HS_PAGE_SHIFT);
	if (limit <= base)
		return 0;
	hs_off_addr lo = hs_off((uintptr_t)base), hi = hs_off((uintptr_t)limit - 1) + 1;
	const hs_addr_ranges *r = &h->pages.in_use;
	for (size_t k = 0; k < r->len; k++)
		if (r->ranges[k].base <= lo && hi <= r->ranges[k].limit)
			return 1;
	return 0;
}

/* Allocated pages among [base, base+npages pages); the range is range_ok. */
static uint64_t count_alloc(const hs_model_heap *h, uintptr_t base, uintptr_t npages)
{
	uint64_t n = 0;
	while (npages > 0) {
		unsigned i = hs_chunk_page_index(base);
		unsigned k = HS_PALLOC_CHUNK_PAGES - i < npages ? HS_PALLOC_CHUNK_PAGES - i : (unsigned)npages;
		n += hs_page_bits_popcnt_range(&hs_pagealloc_chunk_of(&h->pages, hs_chunk_index(base))->alloc, i, k);
		base += (uintptr_t)k << HS_PAGE_SHIFT;
		npages -= k;
	}
	return n;
}

static int pages_all(hs_model_heap *h, uint64_t base, uint64_t npages, int allocated)
{
	if (!range_ok(h, base, npages))
		return 0;
	uint64_t n = count_alloc(h, (uintptr_t)base, (uintptr_t)npages);
	return allocated ? n == npages : n == 0;
}

/* --- applying ---------------------------------------------------------------------- */

/* proc_fork: keeps a copy of the forking heap for the child's proc_start. A
 * fork that failed leaves its copy until the slot is reused. */
static int note_fork(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	hs_model one = { .nheaps = 1 };
	one.heaps[0] = h;
	fork_snapshot *f = &m->forks[m->next_fork++ % MAX_FORKS];
	free(f->blob);
	f->seq = e->seq;
	f->blob = hs_model_save(&one, &f->len);
	if (f->blob == NULL)
		return diverge(m, e, "out of memory copying the heap");
	return 0;
}

static fork_snapshot *find_fork(hs_model *m, uint64_t seq)
{
	for (unsigned i = 0; i < MAX_FORKS; i++)
		if (m->forks[i].blob != NULL && m->forks[i].seq == seq)
			return &m->forks[i];
	return NULL;
}

/* A second proc_start for a pid is a new heap: the process exec'd (the new
 * image maps the ring again and starts from nothing) or the pid was reused. The
 * old heap has ended, with or without its proc_end, and stays in the model. */
static int add_heap(hs_model *m, const hs_event *e)
{
	hs_model_heap *old = hs_model_heap_of(m, e->pid);
	if (old != NULL)
		old->ended = 1;
	if (m->nheaps == MAX_HEAPS)
		return diverge(m, e, "more than %d processes in one session", MAX_HEAPS);
	hs_model_heap *h;
	if (e->arg[3] != 0) {
		/* A forked child starts as a copy of its parent's heap at proc_fork. */
		fork_snapshot *f = find_fork(m, e->arg[3]);
		if (f == NULL)
			return diverge(m, e, "no proc_fork at seq %llu for this child", (unsigned long long)e->arg[3]);
		char err[128];
		hs_model *copy = hs_model_load(f->blob, f->len, err, sizeof err);
		free(f->blob);
		*f = (fork_snapshot){ 0 };
		if (copy == NULL)
			return diverge(m, e, "cannot copy the parent's heap: %s", err);
		h = copy->heaps[0];
		copy->nheaps = 0;
		hs_model_free(copy);
		h->pid = e->pid;
		h->ppid = (uint32_t)e->arg[1];
		h->ended = 0;
	} else {
		h = heap_new(e->pid, (uint32_t)e->arg[1]);
		if (h == NULL)
			return diverge(m, e, "out of memory for a replica heap");
	}
	m->heaps[m->nheaps++] = h;
	return 0;
}

/* Whether [base, base+size) is whole chunks of the address space, none grown yet. */
static int grow_ok(const hs_model_heap *h, uint64_t base, uint64_t size)
{
	if (size == 0 || ((base | size) & (HS_PALLOC_CHUNK_BYTES - 1)) != 0 || base + size < base ||
	    base < HS_PALLOC_CHUNK_BYTES || size > ((uint64_t)1 << HS_HEAP_ADDR_BITS) ||
	    hs_off((uintptr_t)(base + size - 1)) >= ((uintptr_t)1 << HS_HEAP_ADDR_BITS))
		return 0;
	for (uint64_t a = base; a < base + size; a += HS_PALLOC_CHUNK_BYTES)
		if (hs_addr_ranges_contains(&h->pages.in_use, hs_off((uintptr_t)a)))
			return 0;
	return 1;
}

static int page_grow(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	if (!grow_ok(h, e->arg[0], e->arg[1]))
		return diverge(m, e, "grow of [%#llx, +%#llx) is not whole new chunks of the address space",
			       (unsigned long long)e->arg[0], (unsigned long long)e->arg[1]);
	hs_pagealloc_grow(&h->pages, (uintptr_t)e->arg[0], (uintptr_t)e->arg[1]);
	return 0;
}

static int page_alloc(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	uint64_t npages = e->arg[1];
	if (npages == 0 || npages > ((uint64_t)1 << (HS_HEAP_ADDR_BITS - HS_PAGE_SHIFT)))
		return diverge(m, e, "page_alloc of %llu pages", (unsigned long long)npages);
	uintptr_t scav = 0;
	uintptr_t base = hs_pagealloc_alloc(&h->pages, (uintptr_t)npages, &scav);
	if (base != e->arg[0] || scav != e->arg[2])
		return diverge(m, e, "the heap took %llu pages at %#llx (%llu bytes scavenged); first fit here gives %#lx (%lu)",
			       (unsigned long long)npages, (unsigned long long)e->arg[0],
			       (unsigned long long)e->arg[2], (unsigned long)base, (unsigned long)scav);
	return 0;
}

static int alloc_range(hs_model *m, hs_model_heap *h, const hs_event *e, uint64_t want_scav)
{
	if (!pages_all(h, e->arg[0], e->arg[1], 0))
		return diverge(m, e, "pages [%#llx, +%llu) are not all free", (unsigned long long)e->arg[0],
			       (unsigned long long)e->arg[1]);
	uintptr_t scav = hs_pagealloc_alloc_range(&h->pages, (uintptr_t)e->arg[0], (uintptr_t)e->arg[1]);
	if (want_scav != UINT64_MAX && scav != want_scav)
		return diverge(m, e, "%llu bytes scavenged in the heap, %lu here", (unsigned long long)want_scav,
			       (unsigned long)scav);
	return 0;
}

static int page_free(hs_model *m, hs_model_heap *h, const hs_event *e, int released)
{
	if (!pages_all(h, e->arg[0], e->arg[1], 1))
		return diverge(m, e, "pages [%#llx, +%llu) are not all allocated", (unsigned long long)e->arg[0],
			       (unsigned long long)e->arg[1]);
	if (released) {
		if (hs_chunk_index((uintptr_t)e->arg[0]) !=
		    hs_chunk_index((uintptr_t)(e->arg[0] + (e->arg[1] << HS_PAGE_SHIFT) - 1)))
			return diverge(m, e, "a released run crosses a chunk boundary");
		hs_pagealloc_free_released(&h->pages, (uintptr_t)e->arg[0], (uintptr_t)e->arg[1]);
		h->scav_released += e->arg[1] << HS_PAGE_SHIFT;
	} else {
		hs_pagealloc_free(&h->pages, (uintptr_t)e->arg[0], (uintptr_t)e->arg[1], 0);
	}
	return 0;
}

static int cache_alloc(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	hs_page_cache c = hs_pagealloc_alloc_to_cache(&h->pages);
	if (c.base != e->arg[0] || c.cache != e->arg[1] || c.scav != e->arg[2])
		return diverge(m, e, "allocToCache gave %#llx/%#llx/%#llx in the heap, %#lx/%#llx/%#llx here",
			       (unsigned long long)e->arg[0], (unsigned long long)e->arg[1],
			       (unsigned long long)e->arg[2], (unsigned long)c.base, (unsigned long long)c.cache,
			       (unsigned long long)c.scav);
	return 0;
}

static int cache_flush(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	hs_page_cache c = { (uintptr_t)e->arg[0], e->arg[1], e->arg[2] };
	if ((c.scav & ~c.cache) != 0 || (c.base & (HS_PAGE_CACHE_PAGES * HS_PAGE_SIZE - 1)) != 0 ||
	    !range_ok(h, c.base, HS_PAGE_CACHE_PAGES))
		return diverge(m, e, "not a page cache: base %#lx cache %#llx scav %#llx", (unsigned long)c.base,
			       (unsigned long long)c.cache, (unsigned long long)c.scav);
	for (unsigned i = 0; i < 64; i++)
		if ((c.cache >> i & 1) && count_alloc(h, c.base + ((uintptr_t)i << HS_PAGE_SHIFT), 1) != 1)
			return diverge(m, e, "page %u of the cache at %#lx is free", i, (unsigned long)c.base);
	hs_page_cache_flush(&c, &h->pages);
	return 0;
}

static int span_alloc(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	uint64_t base = e->arg[0], npages = e->arg[1];
	if (e->arg[2] >= 2 * HS_NUM_SIZE_CLASSES || npages > UINT32_MAX || !pages_all(h, base, npages, 1))
		return diverge(m, e, "span [%#llx, +%llu pages) class %llu is not over allocated pages",
			       (unsigned long long)base, (unsigned long long)npages, (unsigned long long)e->arg[2]);
	if (span_find(h, (uintptr_t)base) != NULL)
		return diverge(m, e, "a span at %#llx exists already", (unsigned long long)base);
	hs_model_span *s = span_insert(h, (uintptr_t)base);
	if (s == NULL)
		return diverge(m, e, "out of memory for the span table");
	s->npages = (uint32_t)npages;
	s->spanclass = (uint16_t)e->arg[2];
	s->where = HS_MODEL_SPAN_NEW;
	h->span_hash += hs_trace_span_term((uintptr_t)base, (uintptr_t)npages, (unsigned)e->arg[2]);
	if (npages > h->span_pages)
		h->span_pages = npages;
	return 0;
}

static int span_free(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	hs_model_span *s = span_find(h, (uintptr_t)e->arg[0]);
	if (s == NULL || s->npages != e->arg[1] || s->spanclass != e->arg[2])
		return diverge(m, e, "no span [%#llx, +%llu pages) class %llu to free", (unsigned long long)e->arg[0],
			       (unsigned long long)e->arg[1], (unsigned long long)e->arg[2]);
	h->span_hash -= hs_trace_span_term(s->base, s->npages, s->spanclass);
	span_remove(h, s);
	return 0;
}

/*
 * sweep, mcentral_move, mcache_refill/flush: where the span is and its
 * allocCount. These come through per-thread buffers (core/trace.c), so one may
 * arrive after its span was freed, or even after another span took the base:
 * they inform, they do not check.
 */
static int span_note(hs_model_heap *h, const hs_event *e, uint64_t count, int where)
{
	hs_model_span *s = span_find(h, (uintptr_t)e->arg[0]);
	if (s == NULL)
		return 0;
	s->alloc_count = (uint16_t)count;
	if (where >= 0)
		s->where = (uint8_t)where;
	return 0;
}

static int digest(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	uint64_t nchunks, sums = hs_pagealloc_digest(&h->pages, &nchunks);
	if (sums != e->arg[0] || nchunks != e->arg[3])
		return diverge(m, e, "summary digest %#llx over %llu chunks in the heap, %#llx over %llu here",
			       (unsigned long long)e->arg[0], (unsigned long long)e->arg[3],
			       (unsigned long long)sums, (unsigned long long)nchunks);
	if (h->span_hash != e->arg[1] || h->nspans != e->arg[2])
		return diverge(m, e, "span digest %#llx over %llu spans in the heap, %#llx over %llu here",
			       (unsigned long long)e->arg[1], (unsigned long long)e->arg[2],
			       (unsigned long long)h->span_hash, (unsigned long long)h->nspans);
	h->digests_ok++;
	m->ndigests++;
	return 0;
}

/* snap_begin: the process's heap from now on is the snapshot's; an older
 * replica of the pid (begun before a loss, or by proc_start) has ended. */
static int snap_begin(hs_model *m, const hs_event *e)
{
	hs_model_heap *old = hs_model_heap_of(m, e->pid);
	if (old != NULL)
		old->ended = 1;
	if (m->nheaps == MAX_HEAPS)
		return diverge(m, e, "more than %d processes in one session", MAX_HEAPS);
	hs_model_heap *h = heap_new(e->pid, (uint32_t)e->arg[1]);
	if (h == NULL)
		return diverge(m, e, "out of memory for a replica heap");
	h->snapshot = 1;
	m->heaps[m->nheaps++] = h;
	return 0;
}

/* Allocates (or frees) each run of set bits of w, 64 pages from base. */
static void runs(hs_model_heap *h, uintptr_t base, uint64_t w, int alloc)
{
	for (unsigned i = 0; i < 64;) {
		if (!(w >> i & 1)) {
			i++;
			continue;
		}
		unsigned j = i;
		while (j < 64 && (w >> j & 1))
			j++;
		uintptr_t a = base + ((uintptr_t)i << HS_PAGE_SHIFT);
		if (alloc)
			hs_pagealloc_alloc_range(&h->pages, a, j - i);
		else
			hs_pagealloc_free(&h->pages, a, j - i, 0);
		i = j;
	}
}

/*
 * snap_pages: a 64-page group, all free and scavenged since its snap_range,
 * gets the heap's bits. Allocating a page clears its scavenged bit and freeing
 * does not set it, so: allocate every page that is allocated or not
 * scavenged, then free those of them that are free.
 */
static int snap_pages(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	uint64_t base = e->arg[0], alloc = e->arg[1], scav = e->arg[2];
	if (!h->snapshot || (base & (64 * HS_PAGE_SIZE - 1)) != 0 || (alloc & scav) != 0 ||
	    !pages_all(h, base, 64, 0) || hs_page_bits_popcnt_range(&hs_pagealloc_chunk_of(&h->pages, hs_chunk_index((uintptr_t)base))->scavenged,
				      hs_chunk_page_index((uintptr_t)base), 64) != 64)
		return diverge(m, e, "not a fresh 64-page group, or allocated pages marked scavenged");
	runs(h, (uintptr_t)base, alloc | ~scav, 1);
	runs(h, (uintptr_t)base, ~alloc & ~scav, 0);
	h->snap_groups++;
	return 0;
}

static int snap_end(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	if (!h->snapshot || e->arg[0] != h->pages.in_use.len || e->arg[1] != h->snap_groups ||
	    e->arg[2] != h->nspans)
		return diverge(m, e, "the snapshot sent %llu ranges, %llu groups, %llu spans; %zu, %llu, %zu arrived",
			       (unsigned long long)e->arg[0], (unsigned long long)e->arg[1],
			       (unsigned long long)e->arg[2], h->pages.in_use.len,
			       (unsigned long long)h->snap_groups, h->nspans);
	h->snapshot = 0;
	return 0;
}

static int apply_heap(hs_model *m, hs_model_heap *h, const hs_event *e)
{
	const uint64_t *a = e->arg;
	switch (e->kind) {
	case HS_EV_PROC_END:
		h->ended = 1;
		return 0;
	case HS_EV_PROC_FORK:
		return note_fork(m, h, e);
	case HS_EV_ARENA_RESERVE:
		h->arena_bytes += a[1];
		return 0;
	case HS_EV_ARENA_MAP:
	case HS_EV_HEAP_GROW:
		return 0;
	case HS_EV_SCAV_START:
		h->scav_cycles++;
		h->scav_goal = a[0];
		h->scav_retained = a[1];
		return 0;
	case HS_EV_SCAV_END:
		h->scav_goal = a[0];
		h->scav_retained = a[1];
		h->scav_cpu_ns = a[4];
		return 0;
	case HS_EV_PAGE_GROW:
		return page_grow(m, h, e);
	case HS_EV_PAGE_ALLOC:
		return page_alloc(m, h, e);
	case HS_EV_PAGE_ALLOC_RANGE:
		return alloc_range(m, h, e, a[2]);
	case HS_EV_PAGE_FREE:
		return page_free(m, h, e, 0);
	case HS_EV_PAGE_CACHE_ALLOC:
		return cache_alloc(m, h, e);
	case HS_EV_PAGE_CACHE_FLUSH:
		return cache_flush(m, h, e);
	case HS_EV_SPAN_ALLOC:
		return span_alloc(m, h, e);
	case HS_EV_SPAN_FREE:
		return span_free(m, h, e);
	case HS_EV_SWEEP:
		return span_note(h, e, a[3], -1);
	case HS_EV_MCENTRAL_MOVE:
		return span_note(h, e, a[3], a[2] >= 2 ? HS_MODEL_SPAN_FULL : HS_MODEL_SPAN_PARTIAL);
	case HS_EV_MCACHE_REFILL:
		return span_note(h, e, a[2], HS_MODEL_SPAN_CACHED);
	case HS_EV_MCACHE_FLUSH:
		return span_note(h, e, a[2], HS_MODEL_SPAN_NEW);
	case HS_EV_SCAV_TAKE:
		return alloc_range(m, h, e, UINT64_MAX);
	case HS_EV_SCAV_RANGE:
		return page_free(m, h, e, 1);
	case HS_EV_RECOMMIT:
		h->recommitted += a[1];
		return 0;
	case HS_EV_STATS:
		memcpy(h->stats, a, sizeof h->stats);
		h->stats_ts = e->ts;
		return 0;
	case HS_EV_DIGEST:
		return digest(m, h, e);
	case HS_EV_SNAP_RANGE:
		return h->snapshot ? page_grow(m, h, e) : diverge(m, e, "snap_range outside a snapshot");
	case HS_EV_SNAP_PAGES:
		return snap_pages(m, h, e);
	case HS_EV_SNAP_SPAN:
		return h->snapshot ? span_alloc(m, h, e) : diverge(m, e, "snap_span outside a snapshot");
	case HS_EV_SNAP_END:
		return snap_end(m, h, e);
	case HS_EV_MALLOC:
		h->mallocs++;
		h->malloc_bytes += a[1];
		return 0;
	case HS_EV_FREE:
		h->frees++;
		return 0;
	default:
		return diverge(m, e, "unknown event kind %u", e->kind);
	}
}

int hs_model_apply(hs_model *m, const hs_event *e)
{
	if (m->failed)
		return -1;
	if (m->nevents != 0 && e->seq <= m->last_seq)
		return diverge(m, e, "sequence number after %llu", (unsigned long long)m->last_seq);
	if (m->nevents != 0 && e->seq != m->last_seq + 1)
		hs_model_note_loss(m);
	m->nevents++;
	m->last_seq = e->seq;
	if (e->kind == HS_EV_PROC_START)
		return add_heap(m, e);
	if (e->kind == HS_EV_SNAP_BEGIN)
		return snap_begin(m, e);
	hs_model_heap *h = hs_model_heap_of(m, e->pid);
	if (h == NULL)
		return diverge(m, e, "no proc_start for pid %u", e->pid);
	hs_lock(&h->lock);
	int r = apply_heap(m, h, e);
	hs_unlock(&h->lock);
	return r;
}

/* --- checking ----------------------------------------------------------------------- */

static int span_ok(hs_model_heap *h, const hs_model_span *s, char *msg, size_t msglen)
{
	if (!pages_all(h, s->base, s->npages, 1)) {
		snprintf(msg, msglen, "pid %u: span [%#lx, +%u pages) is not over allocated pages", h->pid,
			 (unsigned long)s->base, s->npages);
		return -1;
	}
	return 0;
}

static int cmp_base(const void *x, const void *y)
{
	uintptr_t a = ((const hs_model_span *)x)->base, b = ((const hs_model_span *)y)->base;
	return a < b ? -1 : a > b;
}

/* The live spans in address order (malloc'd; NULL when out of memory). */
static hs_model_span *sorted_spans(const hs_model_heap *h, size_t *n)
{
	hs_model_span *sorted = malloc((h->nspans + 1) * sizeof *sorted);
	if (sorted == NULL)
		return NULL;
	*n = 0;
	for (size_t i = 0; i < h->span_cap; i++)
		if (h->spans[i].base != 0 && !h->spans[i].tomb)
			sorted[(*n)++] = h->spans[i];
	qsort(sorted, *n, sizeof *sorted, cmp_base);
	return sorted;
}

static int check_heap(hs_model_heap *h, char *msg, size_t msglen)
{
	if (hs_pagealloc_check(&h->pages, msg, msglen) != 0)
		return -1;
	size_t n;
	hs_model_span *sorted = sorted_spans(h, &n);
	if (sorted == NULL) {
		snprintf(msg, msglen, "out of memory checking spans");
		return -1;
	}
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		r = span_ok(h, &sorted[i], msg, msglen);
		if (r == 0 && i > 0 &&
		    sorted[i - 1].base + ((uintptr_t)sorted[i - 1].npages << HS_PAGE_SHIFT) > sorted[i].base) {
			snprintf(msg, msglen, "pid %u: spans at %#lx and %#lx overlap", h->pid,
				 (unsigned long)sorted[i - 1].base, (unsigned long)sorted[i].base);
			r = -1;
		}
	}
	free(sorted);
	return r;
}

/* The pages an event touched, as [base, base + npages pages); 0 if none. */
static int touched(const hs_event *e, uintptr_t *base, uintptr_t *npages)
{
	switch (e->kind) {
	case HS_EV_PAGE_GROW:
	case HS_EV_SNAP_RANGE:
		*base = (uintptr_t)e->arg[0];
		*npages = (uintptr_t)(e->arg[1] >> HS_PAGE_SHIFT);
		return 1;
	case HS_EV_SNAP_PAGES:
		*base = (uintptr_t)e->arg[0];
		*npages = 64;
		return 1;
	case HS_EV_SNAP_SPAN:
	case HS_EV_PAGE_ALLOC:
	case HS_EV_PAGE_ALLOC_RANGE:
	case HS_EV_PAGE_FREE:
	case HS_EV_SCAV_TAKE:
	case HS_EV_SCAV_RANGE:
	case HS_EV_SPAN_ALLOC:
		*base = (uintptr_t)e->arg[0];
		*npages = (uintptr_t)e->arg[1];
		return 1;
	case HS_EV_PAGE_CACHE_ALLOC:
	case HS_EV_PAGE_CACHE_FLUSH:
		*base = (uintptr_t)e->arg[0];
		*npages = HS_PAGE_CACHE_PAGES;
		return 1;
	default:
		return 0;
	}
}

int hs_model_check(hs_model *m, const hs_event *e, char *msg, size_t msglen)
{
	if (e == NULL) {
		for (unsigned i = 0; i < m->nheaps; i++)
			if (check_heap(m->heaps[i], msg, msglen) != 0)
				return -1;
		return 0;
	}
	hs_model_heap *h = hs_model_heap_of(m, e->pid);
	uintptr_t base = 0, npages = 0;
	if (h == NULL || !touched(e, &base, &npages) || npages == 0)
		return 0;
	if (hs_pagealloc_check_range(&h->pages, base, base + (npages << HS_PAGE_SHIFT), msg, msglen) != 0)
		return -1;
	const hs_model_span *s = e->kind == HS_EV_SPAN_ALLOC || e->kind == HS_EV_SNAP_SPAN ? span_find(h, base) : NULL;
	return s != NULL ? span_ok(h, s, msg, msglen) : 0;
}

/* --- keyframes ---------------------------------------------------------------------- */

#define KF_MAGIC UINT64_C(0x334c45444f4d5348) /* "HSMODEL3" */

typedef struct kf_buf {
	unsigned char *p;
	size_t len, cap;
	int oom;
} kf_buf;

static void put(kf_buf *b, const void *v, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 4096;
		while (ncap < b->len + n)
			ncap *= 2;
		unsigned char *q = realloc(b->p, ncap);
		if (q == NULL) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, v, n);
	b->len += n;
}

static void put64(kf_buf *b, uint64_t v)
{
	put(b, &v, sizeof v);
}

/* The header names the configuration: keyframes only load into the same one. */
static uint64_t config_tag(void)
{
	return (uint64_t)HS_HEAP_ADDR_BITS << 48 | (uint64_t)HS_SUMMARY_LEVELS << 40 | (uint64_t)HS_PAGE_SHIFT << 32 |
	       HS_PALLOC_CHUNK_PAGES;
}

static void save_heap(kf_buf *b, const hs_model_heap *h)
{
	put64(b, (uint64_t)h->pid << 32 | h->ppid);
	put64(b, (uint64_t)h->ended);
	for (unsigned i = 0; i < 6; i++)
		put64(b, h->stats[i]);
	uint64_t counters[] = { h->stats_ts,	  h->mallocs,	     h->frees,		h->malloc_bytes,
				h->scav_released, h->scav_goal,	     h->scav_retained,	h->scav_cpu_ns,
				h->scav_cycles,	  h->recommitted,    h->arena_bytes,	h->digests_ok,
				h->span_pages,	  h->pages.search_off };
	for (unsigned i = 0; i < sizeof counters / sizeof counters[0]; i++)
		put64(b, counters[i]);
	const hs_addr_ranges *r = &h->pages.in_use;
	put64(b, r->len);
	for (size_t k = 0; k < r->len; k++) {
		put64(b, hs_off_to_addr(r->ranges[k].base));
		put64(b, r->ranges[k].limit - r->ranges[k].base);
		for (hs_off_addr o = r->ranges[k].base; o < r->ranges[k].limit; o += HS_PALLOC_CHUNK_BYTES) {
			const hs_palloc_data *d = hs_pagealloc_chunk_of(&h->pages, o >> HS_LOG_PALLOC_CHUNK_BYTES);
			put(b, d, sizeof *d);
		}
	}
	/* In address order, so that equal models save equal bytes whatever the
	 * history of their hash tables. */
	size_t n;
	hs_model_span *sorted = sorted_spans(h, &n);
	if (sorted == NULL) {
		b->oom = 1;
		return;
	}
	put64(b, n);
	for (size_t i = 0; i < n; i++) {
		const hs_model_span *s = &sorted[i];
		put64(b, s->base);
		put64(b, (uint64_t)s->npages << 32 | (uint64_t)s->spanclass << 16 | s->alloc_count);
		put64(b, s->where);
	}
	free(sorted);
}

void *hs_model_save(const hs_model *m, size_t *len)
{
	kf_buf b = { 0 };
	put64(&b, KF_MAGIC);
	put64(&b, config_tag());
	put64(&b, m->nevents);
	put64(&b, m->last_seq);
	put64(&b, m->ndigests);
	put64(&b, m->untrusted_seq);
	put64(&b, m->nheaps);
	for (unsigned i = 0; i < m->nheaps; i++)
		save_heap(&b, m->heaps[i]);
	/* Forks whose child has not started yet: a keyframe between the two must
	 * let the child's proc_start find its parent's heap. */
	for (unsigned i = 0; i < MAX_FORKS; i++) {
		const fork_snapshot *f = &m->forks[(m->next_fork + i) % MAX_FORKS];
		if (f->blob == NULL)
			continue;
		put64(&b, f->seq);
		put64(&b, f->len);
		put(&b, f->blob, f->len);
	}
	put64(&b, 0);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

typedef struct kf_reader {
	const unsigned char *p;
	size_t len, off;
	int bad;
} kf_reader;

static int get(kf_reader *r, void *v, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = 1;
		memset(v, 0, n);
		return -1;
	}
	memcpy(v, r->p + r->off, n);
	r->off += n;
	return 0;
}

static uint64_t get64(kf_reader *r)
{
	uint64_t v;
	get(r, &v, sizeof v);
	return v;
}

/* Rebuilds one chunk from its saved bitmaps, as hs_pam_new does. */
static void load_chunk(hs_model_heap *h, uintptr_t base, const hs_palloc_data *saved)
{
	hs_chunk_idx ci = hs_chunk_index(base);
	*hs_pagealloc_chunk_of(&h->pages, ci) = *saved;
	int unscavenged_free = 0;
	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++)
		unscavenged_free |= (~saved->alloc.w[k] & ~saved->scavenged.w[k]) != 0;
	if (unscavenged_free)
		hs_scav_index_mark(&h->pages.scav, hs_off(base), hs_off(base) + HS_PALLOC_CHUNK_BYTES);
	else
		hs_scav_index_clear(&h->pages.scav, ci);
	hs_pagealloc_update(&h->pages, base, HS_PALLOC_CHUNK_PAGES, 0, 0);
}

static hs_model_heap *load_heap(kf_reader *r)
{
	uint64_t ids = get64(r);
	hs_model_heap *h = heap_new((uint32_t)(ids >> 32), (uint32_t)ids);
	if (h == NULL)
		return NULL;
	h->ended = (int)get64(r);
	for (unsigned i = 0; i < 6; i++)
		h->stats[i] = get64(r);
	h->stats_ts = get64(r);
	h->mallocs = get64(r);
	h->frees = get64(r);
	h->malloc_bytes = get64(r);
	h->scav_released = get64(r);
	h->scav_goal = get64(r);
	h->scav_retained = get64(r);
	h->scav_cpu_ns = get64(r);
	h->scav_cycles = get64(r);
	h->recommitted = get64(r);
	h->arena_bytes = get64(r);
	h->digests_ok = get64(r);
	h->span_pages = get64(r);
	hs_off_addr search = (hs_off_addr)get64(r);
	uint64_t nranges = get64(r);
	hs_lock(&h->lock);
	for (uint64_t k = 0; k < nranges && !r->bad; k++) {
		uint64_t base = get64(r), size = get64(r);
		if (!grow_ok(h, base, size) || size / HS_PALLOC_CHUNK_BYTES * sizeof(hs_palloc_data) > r->len - r->off) {
			r->bad = 1;
			break;
		}
		hs_pagealloc_grow(&h->pages, (uintptr_t)base, (uintptr_t)size);
		for (uint64_t a = base; a < base + size; a += HS_PALLOC_CHUNK_BYTES) {
			hs_palloc_data d;
			get(r, &d, sizeof d);
			load_chunk(h, (uintptr_t)a, &d);
		}
	}
	h->pages.search_off = search;
	uint64_t nspans = get64(r);
	for (uint64_t i = 0; i < nspans && !r->bad; i++) {
		uint64_t base = get64(r), packed = get64(r), where = get64(r);
		hs_model_span *s = base != 0 && span_find(h, (uintptr_t)base) == NULL ? span_insert(h, (uintptr_t)base)
										     : NULL;
		if (s == NULL) {
			r->bad = 1;
			break;
		}
		s->npages = (uint32_t)(packed >> 32);
		s->spanclass = (uint16_t)(packed >> 16);
		s->alloc_count = (uint16_t)packed;
		s->where = (uint8_t)where;
		h->span_hash += hs_trace_span_term(s->base, s->npages, s->spanclass);
	}
	hs_unlock(&h->lock);
	return h;
}

hs_model *hs_model_load(const void *buf, size_t len, char *err, size_t errlen)
{
	kf_reader r = { buf, len, 0, 0 };
	if (get64(&r) != KF_MAGIC || get64(&r) != config_tag()) {
		snprintf(err, errlen, "not a model keyframe of this heapscope's configuration (%s)", HS_ARCH_NAME);
		return NULL;
	}
	hs_model *m = hs_model_new();
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->nevents = get64(&r);
	m->last_seq = get64(&r);
	m->ndigests = get64(&r);
	m->untrusted_seq = get64(&r);
	uint64_t nheaps = get64(&r);
	if (nheaps > MAX_HEAPS)
		r.bad = 1;
	for (uint64_t i = 0; i < nheaps && !r.bad; i++) {
		hs_model_heap *h = load_heap(&r);
		if (h == NULL) {
			r.bad = 1;
			break;
		}
		m->heaps[m->nheaps++] = h;
	}
	for (uint64_t seq; !r.bad && (seq = get64(&r)) != 0;) {
		uint64_t flen = get64(&r);
		fork_snapshot *f = &m->forks[m->next_fork % MAX_FORKS];
		if (m->next_fork == MAX_FORKS || flen > r.len - r.off || (f->blob = malloc(flen ? flen : 1)) == NULL) {
			r.bad = 1;
			break;
		}
		get(&r, f->blob, flen);
		f->seq = seq;
		f->len = flen;
		m->next_fork++;
	}
	if (r.bad || r.off != r.len) {
		snprintf(err, errlen, "keyframe is truncated or corrupt");
		hs_model_free(m);
		return NULL;
	}
	return m;
}
