/*
 * core/sizeclasses.h — the small-object size classes of Go 1.19's heap.
 *
 * Small objects (at most HS_MAX_SMALL_SIZE bytes) are not allocated at their own
 * size. The runtime keeps a fixed menu of 67 object sizes, from 8 bytes to 32 KiB,
 * and a request is served from the smallest size on the menu that can hold it:
 * 33 bytes get a 48-byte slot, 1025 bytes a 1152-byte one. Each class owns spans
 * of a fixed number of 8 KiB pages carved into equal slots, so a span needs only a
 * bitmap to track its objects, any free slot fits any request of that class, and
 * freeing never fragments. The price is the rounding: the unused end of each slot
 * (internal waste) plus the bytes at the end of a span that are too few for one
 * more slot (tail waste). Go's generator chose each class's pages per span so
 * that its tail waste is at most an eighth of the span. Class 0 is not a size:
 * it stands for "large object", which gets whole pages of its own.
 *
 * Size to class. A linear search of the menu would be slow, so two tables answer
 * it in one load. Up to HS_SMALL_SIZE_MAX - 8 bytes, sizes are taken in steps of
 * HS_SMALL_SIZE_DIV: the class of a size is hs_size_to_class8[ceil(size / 8)].
 * Above that the classes are all multiples of HS_LARGE_SIZE_DIV apart, so steps of
 * 128 lose nothing: the class is hs_size_to_class128[ceil((size - 1024) / 128)].
 * Both tables give, for every size in the step they cover, the class whose size is
 * the smallest one >= size. The split at 1024 - 8 rather than 1024 is Go's; a size
 * of 1017..1024 is found in either table with the same result.
 *
 * Object index by multiplication. Given an address inside a span, the collector
 * and the allocator need the index of the object containing it:
 * offset / elemsize. Division is slow and elemsize is not a power of two for most
 * classes, so each class carries divmagic = floor((2^32 - 1) / size) + 1 (that is,
 * ceil(2^32 / size), or exactly 2^32 / size when size is a power of two), and
 *
 *     (offset * divmagic) >> 32  ==  offset / size
 *
 * in 64-bit arithmetic, for every offset a span of that class can produce,
 * 0 <= offset < npages * 8192. Why: write offset = q * size + r with r < size,
 * and divmagic = 2^32 / size + e with 0 <= e < 1. Then
 * offset * divmagic / 2^32 = q + (r + offset * e * size / 2^32) / size, whose
 * floor is q whenever offset * size < 2^32, because then the added term is less
 * than r + 1 <= size. Every class keeps npages * 8192 * size under 2^32 (the
 * largest, class 65, reaches about 52% of it), so the shortcut is exact
 * throughout each span, but not for arbitrary offsets. This is the invariant
 * tests/unit/test_sizeclasses.c proves exhaustively, every class and every
 * offset.
 *
 * The arrays are Go's class_to_size, class_to_allocnpages, class_to_divmagic,
 * size_to_class8 and size_to_class128 (runtime/sizeclasses.go), value for value.
 * Read-only data: no locking.
 */
#ifndef HS_SIZECLASSES_H
#define HS_SIZECLASSES_H

#include <stddef.h>
#include <stdint.h>

#include "../arch/arch.h"

#define HS_NUM_SIZE_CLASSES 68     /* class 0 (large) and classes 1..67 */
#define HS_MAX_SMALL_SIZE 32768    /* largest size served from a size class */
#define HS_SMALL_SIZE_DIV 8        /* step of hs_size_to_class8 */
#define HS_SMALL_SIZE_MAX 1024     /* where hs_size_to_class128 takes over */
#define HS_LARGE_SIZE_DIV 128      /* step of hs_size_to_class128 */

#define HS_SIZE_TO_CLASS8_LEN (HS_SMALL_SIZE_MAX / HS_SMALL_SIZE_DIV + 1)                    /* 129 */
#define HS_SIZE_TO_CLASS128_LEN ((HS_MAX_SMALL_SIZE - HS_SMALL_SIZE_MAX) / HS_LARGE_SIZE_DIV + 1) /* 249 */

/* The tables were computed by Go for 8 KiB pages; spans are npages * 8192 bytes. */
_Static_assert(HS_PAGE_SHIFT == 13, "Go's size classes assume 8 KiB pages");

/* Object size of each class; [0] is 0. */
extern const uint16_t hs_class_to_size[HS_NUM_SIZE_CLASSES];
/* Pages in a span of each class; [0] is 0. */
extern const uint8_t hs_class_to_allocnpages[HS_NUM_SIZE_CLASSES];
/* Reciprocal of each class's size for hs_obj_index; [0] is 0. */
extern const uint32_t hs_class_to_divmagic[HS_NUM_SIZE_CLASSES];
/* [i]: class of a size in (8*(i-1), 8*i]; used for sizes up to 1016. [0] is 0. */
extern const uint8_t hs_size_to_class8[HS_SIZE_TO_CLASS8_LEN];
/* [i]: class of a size in (1024 + 128*(i-1), 1024 + 128*i]; used above 1016. */
extern const uint8_t hs_size_to_class128[HS_SIZE_TO_CLASS128_LEN];

/*
 * hs_size_to_class returns the class serving a request of size bytes: the class
 * whose object size is the smallest one >= size. Requires
 * 0 < size <= HS_MAX_SMALL_SIZE (not checked; size 0 would give class 0).
 * The same two-table lookup as Go's mallocgc.
 */
static inline unsigned hs_size_to_class(size_t size)
{
	if (size <= HS_SMALL_SIZE_MAX - 8)
		return hs_size_to_class8[(size + HS_SMALL_SIZE_DIV - 1) / HS_SMALL_SIZE_DIV];
	return hs_size_to_class128[(size - HS_SMALL_SIZE_MAX + HS_LARGE_SIZE_DIV - 1) / HS_LARGE_SIZE_DIV];
}

/* hs_class_nelems returns the number of objects in a span of class c, 1 <= c < 68. */
static inline unsigned hs_class_nelems(unsigned c)
{
	return (unsigned)(((uint32_t)hs_class_to_allocnpages[c] << HS_PAGE_SHIFT) / hs_class_to_size[c]);
}

/* A span with room free objects of its nelems is worth an mcache allocating
 * from: at least an eighth of it. Fewer would make it refill again within a
 * few allocations (core/mcache.c); reports count such a span's objects as
 * live rather than the span as filling (store/metrics.c). */
static inline int hs_room_worth_taking(unsigned room, unsigned nelems)
{
	return room * 8 >= nelems;
}

/*
 * hs_obj_index returns offset / size for the class whose hs_class_to_divmagic is
 * divmagic, where offset is a byte offset from the start of a span of that class
 * (0 <= offset < npages * 8192). Go's mbitmap.go: (n * divMul) >> 32.
 */
static inline uintptr_t hs_obj_index(uintptr_t offset, uint32_t divmagic)
{
	return (uintptr_t)(((uint64_t)offset * divmagic) >> 32);
}

#endif /* HS_SIZECLASSES_H */
