/*
 * core/mspan.c — a span's objects: sizing, the allocation and free bitmaps, the
 * allocCache, finding the next free object, and sweeping. Mirrors the mspan
 * methods of Go's mbitmap.go/malloc.go (refillAllocCache, nextFreeIndex) and
 * mgcsweep.go (sweep). See core/heap.h for the invariants and core/mheap.c for
 * the overview.
 *
 * Bitmaps: three of ceil(nelems/64) words (allocation, remote frees, the owner's
 * frees). A span of up to 128 objects keeps them inline, in the cache line after
 * the fields hs_free reads, so a free into a cold span misses once, not twice.
 * Larger ones (up to 1024 objects, class 1's 8-byte objects in one page) take
 * 4, 8 or 16 words each from one block of the bits allocator.
 *
 * Sweeping replaces Go's mark phase: the free bits that hs_free set since the
 * last sweep are taken word by word, the remote ones with an atomic exchange (a
 * free that lands after the exchange waits for the next sweep, so none is lost)
 * and the owner's directly, and cleared from the allocation bits:
 *
 *   alloc_bits := (alloc_bits | objects below freeindex) & ~taken free bits
 *
 * An object in both free bitmaps was freed twice, by two threads; the sweep
 * reports it as a double free.
 *
 * The new allocation bits are stored before freeindex is reset (a release
 * store). A concurrent hs_free reads freeindex first (acquire), so it always sees
 * an allocated object as allocated.
 *
 * Locking: only the span's owner (its mcache, or whoever took it off an mcentral
 * set) calls these; the bits allocator needs heap.bits_lock.
 */
#include <string.h>

#include "heap.h"

void hs_span_init_objects(hs_mspan *s, uintptr_t npages, hs_span_class sc)
{
	unsigned sizeclass = hs_span_class_size(sc);
	s->spanclass = sc;
	if (sizeclass == 0) {
		s->elemsize = npages << HS_PAGE_SHIFT;
		s->nelems = 1;
		s->div_mul = 0;
	} else {
		s->elemsize = hs_class_to_size[sizeclass];
		s->nelems = (uint16_t)((npages << HS_PAGE_SHIFT) / s->elemsize);
		s->div_mul = hs_class_to_divmagic[sizeclass];
	}
	s->alloc_count = 0;
	atomic_store_explicit(&s->freeindex, 0, memory_order_relaxed);

	unsigned words = hs_span_bitmap_words(s), order = 0;
	_Atomic uint64_t *bits;
	if (words <= HS_INLINE_BITS_WORDS) {
		/* Inline, in the span's second cache line: a free touches no other. */
		words = HS_INLINE_BITS_WORDS;
		bits = s->inline_bits;
		for (unsigned k = 0; k < 3 * HS_INLINE_BITS_WORDS; k++)
			atomic_store_explicit(&bits[k], 0, memory_order_relaxed);
	} else {
		while ((1u << order) < words)
			order++;
		words = 1u << order;
		hs_lock(&hs_heap.bits_lock);
		bits = hs_fixalloc_alloc(&hs_heap.bitsalloc[order]);
		hs_unlock(&hs_heap.bits_lock);
	}
	s->bits_stride = (uint8_t)(words * sizeof(uint64_t));
	s->alloc_bits = bits;
	s->alloc_cache = ~UINT64_C(0);
}

void hs_span_release_bits(hs_mspan *s)
{
	if (!hs_span_bits_inline(s)) {
		hs_lock(&hs_heap.bits_lock);
		hs_fixalloc_free(&hs_heap.bitsalloc[hs_ctz64(s->bits_stride / sizeof(uint64_t))], (void *)s->alloc_bits);
		hs_unlock(&hs_heap.bits_lock);
	}
	s->alloc_bits = NULL;
}

/*
 * Advances freeindex to the next free object and returns its index, or nelems
 * when the span is full. Mirrors nextFreeIndex.
 */
unsigned hs_span_next_free_index(hs_mspan *s)
{
	unsigned fi = atomic_load_explicit(&s->freeindex, memory_order_relaxed), n = s->nelems;
	if (fi == n)
		return n;
	unsigned bit = hs_ctz64(s->alloc_cache);
	while (bit == 64) {
		fi = (fi + 64) & ~63u;
		if (fi >= n) {
			atomic_store_explicit(&s->freeindex, (uint16_t)n, memory_order_release);
			return n;
		}
		hs_span_refill_alloc_cache(s, fi / 64);
		bit = hs_ctz64(s->alloc_cache);
	}
	unsigned result = fi + bit;
	if (result >= n) {
		atomic_store_explicit(&s->freeindex, (uint16_t)n, memory_order_release);
		return n;
	}
	s->alloc_cache >>= bit;
	s->alloc_cache >>= 1; /* two shifts: bit + 1 may be 64 */
	fi = result + 1;
	if (fi % 64 == 0 && fi != n)
		hs_span_refill_alloc_cache(s, fi / 64);
	atomic_store_explicit(&s->freeindex, (uint16_t)fi, memory_order_release);
	return result;
}

/* Objects [0, fi) that fall in word w: allocated since the last sweep. */
static uint64_t below_freeindex(unsigned fi, unsigned w)
{
	if (fi >= (w + 1) * 64)
		return ~UINT64_C(0);
	if (fi <= w * 64)
		return 0;
	return (UINT64_C(1) << (fi - w * 64)) - 1;
}

/*
 * Folds the pending frees into the allocation bits (see the top of this file).
 * The caller owns s.
 */
void hs_span_sweep(hs_mspan *s)
{
	unsigned words = hs_span_bitmap_words(s), fi = atomic_load_explicit(&s->freeindex, memory_order_relaxed);
	unsigned freed = s->local_nfree;
	uint64_t any_freed = 0;
	_Atomic uint64_t *remote = hs_span_free_bits(s);
	uint64_t *own = hs_span_local_free(s);
	for (unsigned w = 0; w < words; w++) {
		uint64_t f = atomic_load_explicit(&remote[w], memory_order_relaxed);
		if (f != 0) {
			f = atomic_exchange_explicit(&remote[w], 0, memory_order_acquire);
			freed += hs_popcount64(f);
		}
		uint64_t local = own[w];
		if (local != 0) {
			own[w] = 0;
			if (f & local) {
				hs_print("heapscope: span %#lx: objects freed by two threads: word %u, %#llx\n",
					 (unsigned long)s->start_addr, w, (unsigned long long)(f & local));
				hs_throw("double free");
			}
			f |= local;
		}
		uint64_t a = atomic_load_explicit(&s->alloc_bits[w], memory_order_relaxed) | below_freeindex(fi, w);
		if (f & ~a) {
			hs_print("heapscope: span %#lx word %u: freed %#llx, allocated %#llx\n",
				 (unsigned long)s->start_addr, w, (unsigned long long)f, (unsigned long long)a);
			hs_throw("sweep: a freed object was not allocated");
		}
		atomic_store_explicit(&s->alloc_bits[w], a & ~f, memory_order_relaxed);
		any_freed |= f;
	}
	/* alloc_count is the popcount of the allocated objects (core/heap.h), and the
	 * checks above make every freed bit one of them and no bit counted twice: the
	 * owner's are counted already, in local_nfree, and only the other threads'
	 * need a popcount. */
	unsigned live = s->alloc_count - freed;
	s->alloc_count = (uint16_t)live;
	s->local_nfree = 0;
	if (any_freed != 0)
		s->needzero = 1;
	hs_span_refill_alloc_cache(s, 0);
	atomic_store_explicit(&s->freeindex, 0, memory_order_release);
	HS_TRACE(sweep, s->start_addr, s->spanclass, freed, live);
}
