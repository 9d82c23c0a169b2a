/*
 * core/malloc.c — the hs_malloc family (include/heapscope/heapscope.h): Go's
 * mallocgc and nextFreeFast (malloc.go) for allocation, and heapscope's free,
 * which takes the place of Go's collector. See core/mheap.c for the overview.
 *
 * Allocation: size -> size class -> span class -> the mcache's span. The fast
 * path is nextFreeFast: the lowest set bit of the span's allocCache is the next
 * free object. Then nextFreeIndex walks the bitmap, and a full span makes the
 * mcache refill. Objects over 32 KiB get their own span (span class 1, size
 * class 0).
 *
 * Free: the span comes from the arena map without locks. The pointer is checked
 * (in the heap, a span in use, the start of an object, allocated, not freed
 * already), and the object's bit is set: with a plain or by the span's owner,
 * with one atomic or by any other thread. A large object's span goes back at
 * once: to the freeing thread's cache of large spans (up to 32 pages), or to the
 * page allocator. A free takes a lock only when it hands a span back to the heap
 * (a large one, or an owned span that its owner's free emptied) or when it
 * crosses the sweep trigger and starts a cycle.
 *
 * Zeroing (calloc): a span records whether any of its memory may be dirty
 * (needzero: pages used before, or objects freed and swept). An object from a
 * clean span is known to be zero and is not cleared again.
 *
 * Bad frees print a report in the spirit of Go's throw and abort; see
 * bad_free below.
 */
#include <errno.h>
#include <string.h>

#include "heap.h"
#include "heapscope/heapscope.h"

/* --- allocation ----------------------------------------------------------------- */

/* Larger than half the heap's address space can never be satisfied; refusing it
 * up front keeps the growth arithmetic (page counts rounded up to chunks and
 * arenas) far from overflow. */
#define HS_MAX_OBJECT_SIZE ((size_t)1 << (HS_HEAP_ADDR_BITS - 1))

/* Go's nextFreeFast: the next object from the allocCache, or 0. */
static inline uintptr_t next_free_fast(hs_mspan *s)
{
	unsigned bit = hs_ctz64(s->alloc_cache);
	if (bit < 64) {
		unsigned fi = atomic_load_explicit(&s->freeindex, memory_order_relaxed);
		unsigned result = fi + bit;
		if (result < s->nelems) {
			unsigned next = result + 1;
			if (next % 64 == 0 && next != s->nelems)
				return 0;
			s->alloc_cache >>= bit;
			s->alloc_cache >>= 1;
			atomic_store_explicit(&s->freeindex, (uint16_t)next, memory_order_release);
			s->alloc_count++;
			return s->start_addr + result * s->elemsize;
		}
	}
	return 0;
}

/* Go's mcache.nextFree: the slow path, refilling when the span is full; 0 with
 * errno ENOMEM when the heap cannot grow. */
static uintptr_t next_free(hs_mcache *c, hs_span_class sc, hs_mspan **sp)
{
	hs_mspan *s = c->alloc[sc];
	unsigned idx = hs_span_next_free_index(s);
	if (idx == s->nelems) {
		s = hs_mcache_refill(c, sc);
		if (s == NULL) {
			errno = ENOMEM;
			return 0;
		}
		idx = hs_span_next_free_index(s);
	}
	s->alloc_count++;
	*sp = s;
	return s->start_addr + idx * s->elemsize;
}

/* Marks a new large-object span's only object allocated; NULL (ENOMEM) passes through. */
static hs_mspan *claim_large(hs_mcache *c, hs_mspan *s)
{
	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_store_explicit(&s->alloc_bits[0], 1, memory_order_release);
	s->alloc_count = 1;
	hs_stat_inc(&c->stats.large_allocs);
	return s;
}

/* A large object: a span of its own, marked allocated as object 0. */
static void *large_alloc(hs_mcache *c, size_t size, int zero)
{
	if (size > HS_MAX_OBJECT_SIZE) {
		errno = ENOMEM;
		return NULL;
	}
	uintptr_t npages = (size + HS_PAGE_SIZE - 1) >> HS_PAGE_SHIFT;
	hs_mspan *s = hs_mcache_take_large(c, npages);
	if (s == NULL) {
		hs_mcache_tick(c);
		s = hs_mheap_alloc_span(c, npages, hs_make_span_class(0));
	}
	s = claim_large(c, s);
	if (s == NULL)
		return NULL;
	if (zero && s->needzero)
		memset((void *)s->start_addr, 0, size);
	return (void *)s->start_addr;
}

static void *small_alloc(hs_mcache *c, unsigned sizeclass, size_t size, int zero)
{
	hs_span_class sc = hs_make_span_class(sizeclass);
	hs_mspan *s = c->alloc[sc];
	uintptr_t v = next_free_fast(s);
	if (v == 0 && (v = next_free(c, sc, &s)) == 0)
		return NULL;
	if (zero && s->needzero)
		memset((void *)v, 0, size);
	return (void *)v;
}

static void *malloc_internal(size_t size, int zero)
{
	hs_mcache *c = hs_mcache_get();
	if (size == 0)
		size = 1;
	if (size <= HS_MAX_SMALL_SIZE)
		return small_alloc(c, hs_size_to_class(size), size, zero);
	return large_alloc(c, size, zero);
}

/* The malloc event of an object just allocated (p may be NULL: no event); s is
 * p's span where the caller has it, NULL for a lookup. It returns p, so that
 * callers reach it by a tail call and keep nothing live across it. An
 * object-level tracer that has just attached raises malloc's semaphore with
 * the others, and this is where the process first notices: a program can go
 * seconds without a refill, let alone a new span, so the sampler, which takes
 * the attach's snapshot, starts here too. */
__attribute__((noinline)) static void *trace_malloc(void *p, size_t size, hs_mspan *s)
{
	hs_trace_start_sampler();
	if (p != NULL && s == NULL)
		s = hs_span_of((uintptr_t)p);
	if (p != NULL && s != NULL)
		HS_TRACE(malloc, (uintptr_t)p, size, hs_span_class_size(s->spanclass) ? s->spanclass : 0);
	return p;
}

static inline void *traced(void *p, size_t size, hs_mspan *s)
{
	return HS_TRACE_ON(malloc) ? trace_malloc(p, size, s) : p;
}

__attribute__((noinline)) static void *malloc_slow(size_t size)
{
	return traced(malloc_internal(size, 0), size, NULL);
}

/* The fast path's span of class sc has no object left in its allocCache: Go's
 * nextFree, without the general path's checks, which the fast path has made. */
__attribute__((noinline)) static void *malloc_next_free(hs_mcache *c, hs_span_class sc, size_t size)
{
	hs_mspan *s = NULL;
	void *p = (void *)next_free(c, sc, &s);
	return traced(p, size, s);
}

/*
 * Fast path: a thread with an mcache, a small size (1..32768 bytes), and room in
 * the class's span: a table lookup and nextFreeFast, with no call and no
 * register saves (the malloc event, when traced, is a tail call). A full span
 * goes to nextFree; everything else (first use, size 0, large sizes) takes the
 * general path.
 */
void *hs_malloc(size_t size)
{
	hs_mcache *c = hs_tls_mcache;
	if (__builtin_expect(c != NULL && size - 1 < HS_MAX_SMALL_SIZE, 1)) {
		hs_span_class sc = hs_make_span_class(hs_size_to_class(size));
		hs_mspan *s = c->alloc[sc];
		uintptr_t v = next_free_fast(s);
		if (__builtin_expect(v != 0, 1))
			return traced((void *)v, size, s);
		return malloc_next_free(c, sc, size);
	}
	return malloc_slow(size);
}

void *hs_calloc(size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return traced(malloc_internal(total, 1), total, NULL);
}

/* --- free ------------------------------------------------------------------------ */

static const char *state_name(unsigned state)
{
	switch (state) {
	case HS_MSPAN_DEAD: return "dead";
	case HS_MSPAN_IN_USE: return "in use";
	case HS_MSPAN_MANUAL: return "manual";
	default: return "corrupt";
	}
}

/*
 * Reports a bad free like Go's throw: what was wrong, the pointer, and the span's
 * base, state, size class and allocCount. Aborts unless HEAPSCOPE_BADFREE=warn.
 */
static void bad_free(const void *p, const hs_mspan *s, const char *why)
{
	hs_mallocinit(); /* a bad free can come first (the shim): read HEAPSCOPE_BADFREE */
	hs_print("heapscope: bad free of %p: %s\n", p, why);
	if (s != NULL)
		hs_print("heapscope: span base=%#lx npages=%lu state=%s spanclass=%u (size class %u, "
			 "%lu-byte objects) allocCount=%u nelems=%u\n",
			 (unsigned long)s->start_addr, (unsigned long)hs_span_npages(s),
			 state_name(atomic_load_explicit(&s->state, memory_order_relaxed)), s->spanclass,
			 hs_span_class_size(s->spanclass), (unsigned long)s->elemsize, s->alloc_count, s->nelems);
	if (hs_heap.badfree_warn)
		return;
	hs_throw("bad free");
}

/* The span and object index of p, or NULL after reporting why p is no object. */
static hs_mspan *object_of(const void *p, unsigned *idx)
{
	uintptr_t a = (uintptr_t)p;
	hs_mspan *s = hs_span_of(a);
	if (s == NULL) {
		bad_free(p, NULL, "no span holds it (outside the heap, or a large object freed already)");
		return NULL;
	}
	if (atomic_load_explicit(&s->state, memory_order_acquire) != HS_MSPAN_IN_USE) {
		bad_free(p, s, "span in the wrong state");
		return NULL;
	}
	uintptr_t off = a - s->start_addr;
	unsigned i = s->div_mul == 0 ? 0 : (unsigned)(((uint64_t)off * s->div_mul) >> 32);
	if (i >= s->nelems || s->start_addr + i * s->elemsize != a) {
		bad_free(p, s, "interior pointer (not the start of an object)");
		return NULL;
	}
	*idx = i;
	return s;
}

/* The general free: every check, with reports. */
__attribute__((noinline)) static void free_slow(void *p)
{
	unsigned idx;
	hs_mspan *s = object_of(p, &idx);
	if (s == NULL)
		return;
	unsigned w = idx / 64;
	uint64_t bit = UINT64_C(1) << (idx % 64);
	/* freeindex before alloc_bits: see core/mspan.c on the sweep's store order. */
	unsigned fi = atomic_load_explicit(&s->freeindex, memory_order_acquire);
	if (idx >= fi && !(atomic_load_explicit(&s->alloc_bits[w], memory_order_relaxed) & bit)) {
		bad_free(p, s, "object is not allocated (double free, or never returned by malloc)");
		return;
	}
	/* Once the bit is set a sweeper may release the span and its struct may be
	 * reused: read what is needed first, and touch s afterwards only if it is a
	 * large object's span, which no sweeper handles. */
	int large = hs_span_class_size(s->spanclass) == 0;
	uintptr_t bytes = s->elemsize;
	hs_mcache *c = hs_mcache_get();
	hs_mcache *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
	if (owner == c) {
		/* Fast path: our own cached span; only we touch local_free. */
		uint64_t *own = hs_span_local_free(s);
		if ((own[w] | atomic_load_explicit(&hs_span_free_bits(s)[w], memory_order_relaxed)) & bit) {
			bad_free(p, s, "double free");
			return;
		}
		own[w] |= bit;
		HS_TRACE(free, (uintptr_t)p);
		return;
	}
	if (atomic_fetch_or_explicit(&hs_span_free_bits(s)[w], bit, memory_order_release) & bit) {
		bad_free(p, s, "double free");
		return;
	}
	HS_TRACE(free, (uintptr_t)p);
	if (large) {
		hs_stat_inc(&c->stats.large_frees);
		if (!hs_mcache_keep_large(c, s))
			hs_mheap_free_span(s);
		return;
	}
	/* A cached span's owner sweeps it when it next runs out of room; only frees
	 * into spans no mcache holds need a sweep cycle. */
	if (owner == NULL)
		hs_sweep_note_freed(c, bytes);
}

/* The owner's free: a plain or into own, the object's word of local_free; a
 * parked span it empties goes back to the heap. The span being allocated from
 * is never retired, and a malloc/free loop empties it on every free, so that is
 * checked here, not in a call. */
static inline void owner_free(hs_mcache *c, hs_mspan *s, uint64_t *own, uint64_t bit)
{
	*own |= bit;
	if (__builtin_expect(++s->local_nfree == s->alloc_count, 0) && s->listed)
		hs_mcache_retire(c, s);
}

/*
 * The owner frees a valid object of a span of at most UNDO_MAX_OBJECTS objects,
 * all handed out. If it is the object allocated last and the span is the one the
 * mcache allocates from, undo that allocation, so the next malloc reuses it
 * instead of refilling: with so few objects a refill (and its sweep) would
 * otherwise come with nearly every malloc/free pair. Spans of many objects
 * amortize the sweep over their objects and do not need this. allocCache is
 * rebuilt from idx's bitmap word, in which idx is free. own is idx's word of
 * the owner's free bitmap. Out of line to keep the common free short.
 */
#define UNDO_MAX_OBJECTS 8

__attribute__((noinline)) static void free_from_exhausted(hs_mcache *c, hs_mspan *s, unsigned idx, uint64_t *own)
{
	unsigned w = idx / 64;
	uint64_t bit = UINT64_C(1) << (idx % 64);
	uint64_t ab = atomic_load_explicit(&s->alloc_bits[w], memory_order_relaxed);
	if (idx + 1 == s->nelems && !(ab & bit) && c->alloc[s->spanclass] == s) {
		s->alloc_cache = ~ab >> (idx % 64);
		s->alloc_count--;
		s->needzero = 1;
		atomic_store_explicit(&s->freeindex, (uint16_t)idx, memory_order_release);
		return;
	}
	owner_free(c, s, own, bit);
}

/* The owner's free of object idx, checked: fi is the freeindex the checks read. */
static inline void accepted_free(hs_mcache *c, hs_mspan *s, unsigned idx, uint64_t *own, unsigned fi)
{
	if (__builtin_expect(fi == s->nelems && fi <= UNDO_MAX_OBJECTS, 0))
		free_from_exhausted(c, s, idx, own);
	else
		owner_free(c, s, own, UINT64_C(1) << (idx % 64));
}

/* The same after the free event of a, object idx (only for a free the heap
 * accepts). Out of line, so that hs_free, calling nothing but tail calls, saves
 * no registers. */
__attribute__((noinline)) static void traced_free(hs_mcache *c, hs_mspan *s, unsigned idx, uint64_t *own, unsigned fi,
						  uintptr_t a)
{
	hs_trace_start_sampler(); /* as in trace_malloc */
	HS_TRACE(free, a);
	accepted_free(c, s, idx, own, fi);
}

/*
 * Fast path: the owner of the span frees a valid object. The same checks as
 * free_slow, in the same order, but for the span's state, which ownership
 * implies (below); any that does not pass (or another thread's
 * span, a large object, no mcache) goes to free_slow, which checks again and
 * reports. Only the owner touches local_free, so a plain or suffices.
 */
void hs_free(void *p)
{
	uintptr_t a = (uintptr_t)p;
	hs_mspan *s = hs_span_of(a);
	hs_mcache *c = hs_tls_mcache;
	/* A span this thread's mcache owns is in use (an owner lets go before a
	 * span changes state) and all its fields were written by this thread or
	 * taken under a lock: no state check, and plain loads. div_mul is 0 for a
	 * large object's span, which the mcache may own too (its large cache). */
	if (__builtin_expect(s != NULL && c != NULL, 1) &&
	    atomic_load_explicit(&s->owner, memory_order_relaxed) == c && s->div_mul != 0) {
		unsigned idx = (unsigned)(((uint64_t)(a - s->start_addr) * s->div_mul) >> 32);
		if (idx < s->nelems && s->start_addr + idx * s->elemsize == a) {
			unsigned fi = atomic_load_explicit(&s->freeindex, memory_order_relaxed);
			uint64_t bit = UINT64_C(1) << (idx % 64);
			_Atomic uint64_t *ab = s->alloc_bits + idx / 64;
			uintptr_t stride = s->bits_stride;
			_Atomic uint64_t *remote = (_Atomic uint64_t *)((char *)ab + stride);
			uint64_t *own = (uint64_t *)((char *)ab + 2 * stride);
			/* allocated(idx) = its allocation bit or idx < fi (core/heap.h). */
			uint64_t allocated = atomic_load_explicit(ab, memory_order_relaxed) |
					     (uint64_t)(idx < fi) << (idx % 64);
			uint64_t freed = *own | atomic_load_explicit(remote, memory_order_relaxed);
			if ((allocated & ~freed & bit) != 0) {
				if (HS_TRACE_ON(free))
					traced_free(c, s, idx, own, fi, a);
				else
					accepted_free(c, s, idx, own, fi);
				return;
			}
		}
	}
	if (p != NULL)
		free_slow(p);
}

/* --- the rest of the family ----------------------------------------------------------- */

size_t hs_malloc_usable_size(void *p)
{
	if (p == NULL)
		return 0;
	hs_mspan *s = hs_span_of((uintptr_t)p);
	if (s == NULL || atomic_load_explicit(&s->state, memory_order_acquire) != HS_MSPAN_IN_USE)
		return 0;
	uintptr_t off = (uintptr_t)p - s->start_addr;
	return (uintptr_t)p < hs_span_limit(s) ? s->elemsize - off % s->elemsize : 0;
}

/*
 * In place when the new size still belongs to the same size class (or, for a
 * large object, needs the same pages); otherwise move.
 */
void *hs_realloc(void *p, size_t size)
{
	if (p == NULL)
		return hs_malloc(size);
	if (size == 0) {
		hs_free(p);
		return NULL;
	}
	unsigned idx;
	hs_mspan *s = object_of(p, &idx);
	if (s == NULL)
		return NULL;
	unsigned sizeclass = hs_span_class_size(s->spanclass);
	if (sizeclass != 0 && size <= HS_MAX_SMALL_SIZE && hs_size_to_class(size) == sizeclass)
		return p;
	if (sizeclass == 0 && size > HS_MAX_SMALL_SIZE && size <= s->elemsize &&
	    size > s->elemsize - HS_PAGE_SIZE)
		return p;
	void *q = hs_malloc(size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, size < s->elemsize ? size : s->elemsize);
	hs_free(p);
	return q;
}

/*
 * An object aligned to `align` (a power of two). Small: the smallest size class
 * at least `size` whose object size is a multiple of align; every object of such
 * a class is aligned, since spans start on pages. Larger, up to a page of
 * alignment: a large span (page-aligned). Beyond a page: a span found with room
 * for the alignment and allocated at the aligned address.
 */
static void *aligned_alloc_internal(size_t align, size_t size)
{
	if (align == 0 || (align & (align - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if (align <= 8)
		return malloc_internal(size, 0);
	if (size == 0)
		size = 1;
	if (align <= HS_PAGE_SIZE && size <= HS_MAX_SMALL_SIZE) {
		for (unsigned c = hs_size_to_class(size); c < HS_NUM_SIZE_CLASSES; c++) {
			if (hs_class_to_size[c] % align == 0)
				return small_alloc(hs_mcache_get(), c, size, 0);
		}
	}
	if (align <= HS_PAGE_SIZE)
		return large_alloc(hs_mcache_get(), size > HS_MAX_SMALL_SIZE ? size : HS_MAX_SMALL_SIZE + 1, 0);
	if (align > HS_MAX_OBJECT_SIZE || size > HS_MAX_OBJECT_SIZE - align) {
		errno = ENOMEM;
		return NULL;
	}
	uintptr_t npages = (size + HS_PAGE_SIZE - 1) >> HS_PAGE_SHIFT;
	/* The mcache first: getting it initializes the heap on a first call. */
	hs_mcache *c = hs_mcache_get();
	hs_mspan *s = claim_large(c, hs_mheap_alloc_span_aligned(npages, align));
	return s == NULL ? NULL : (void *)s->start_addr;
}

void *hs_aligned_alloc(size_t align, size_t size)
{
	return traced(aligned_alloc_internal(align, size), size, NULL);
}

int hs_posix_memalign(void **out, size_t align, size_t size)
{
	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	int saved = errno;
	void *p = hs_aligned_alloc(align, size);
	if (p == NULL) {
		int err = errno;
		errno = saved;
		return err;
	}
	*out = p;
	return 0;
}

void *hs_memalign(size_t align, size_t size)
{
	return hs_aligned_alloc(align, size);
}

void hs_heap_sweep(void)
{
	hs_mcache_release_all(hs_mcache_get());
	hs_sweep_full_cycle();
}

uint64_t hs_heap_scavenge_all(void)
{
	hs_heap_sweep();
	struct hs_scavenger *v = &hs_heap.scav;
	HS_TRACE(scav_start, atomic_load(&v->goal), atomic_load(&hs_heap.mem_ready), atomic_load(&hs_heap.released),
		 HS_EV_SCAV_ALL);
	uint64_t released = hs_mheap_scavenge(UINTPTR_MAX);
	HS_TRACE(scav_end, atomic_load(&v->goal), atomic_load(&hs_heap.mem_ready), atomic_load(&hs_heap.released),
		 released, atomic_load(&v->cpu_ns));
	return released;
}

void hs_heap_stats(hs_heap_stats_t *out)
{
	hs_mallocinit();
	memset(out, 0, sizeof *out);
	hs_lock(&hs_heap.lock);
	uint64_t grown = hs_heap.pages.in_use.total_bytes;
	out->large_allocs = hs_heap.retired.large_allocs;
	out->large_frees = hs_heap.retired.large_frees;
	out->spans_swept = hs_heap.retired.spans_swept;
	for (hs_mcache *c = hs_heap.mcaches; c != NULL; c = c->next) {
		out->large_allocs += atomic_load_explicit(&c->stats.large_allocs, memory_order_relaxed);
		out->large_frees += atomic_load_explicit(&c->stats.large_frees, memory_order_relaxed);
		out->spans_swept += atomic_load_explicit(&c->stats.spans_swept, memory_order_relaxed);
	}
	hs_unlock(&hs_heap.lock);
	out->in_use = atomic_load(&hs_heap.in_use);
	out->free = grown - out->in_use;
	out->released = atomic_load(&hs_heap.released);
	out->metadata = atomic_load(&hs_heap.meta_stat.bytes);
	out->sys = grown + out->metadata;
	out->pages_in_use = atomic_load(&hs_heap.pages_in_use);
	out->reserved = atomic_load(&hs_heap.mem_reserved);
	out->prepared = atomic_load(&hs_heap.mem_prepared);
	out->ready = atomic_load(&hs_heap.mem_ready);
	out->retained = atomic_load(&hs_heap.mem_ready);
	out->scav_goal = atomic_load(&hs_heap.scav.goal);
	out->memory_limit = hs_heap.scav.memory_limit;
	out->scav_released = atomic_load(&hs_heap.scav.released);
	out->scav_released_last_cycle = atomic_load(&hs_heap.scav.released_last_cycle);
	out->scav_cycles = atomic_load(&hs_heap.scav.cycles);
	out->scav_cpu_ns = atomic_load(&hs_heap.scav.cpu_ns);
	out->scav_assists = atomic_load(&hs_heap.scav.assists);
	out->scav_assist_bytes = atomic_load(&hs_heap.scav.assist_bytes);
	out->sweep_cycles = atomic_load(&hs_heap.sweep_cycles);
	out->spans_swept += atomic_load(&hs_heap.spans_swept);
	out->spans_released = atomic_load(&hs_heap.spans_released);
}
