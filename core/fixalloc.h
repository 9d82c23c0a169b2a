/*
 * core/fixalloc.h — a free-list allocator of fixed-size objects: Go's fixalloc
 * (mfixalloc.go). The heap's own structures (mspan, mcache, arena hints, span
 * bitmaps) come from fixallocs, never from malloc, because heapscope's heap *is*
 * malloc when a program runs under the LD_PRELOAD shim.
 *
 * Memory is carved from 64 KiB blocks obtained from the OS layer and is never
 * returned to the OS; freed objects go on a free list and are reused first.
 * Objects are zeroed on allocation.
 *
 * Not thread-safe: every fixalloc is protected by the lock its owner names
 * (heap.lock for all of the heap's).
 */
#ifndef HS_FIXALLOC_H
#define HS_FIXALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "sys.h"

typedef struct hs_fixalloc {
	size_t size;	       /* object size, a multiple of 16 */
	void *list;	       /* free objects, linked through their first word */
	uintptr_t chunk, nchunk; /* the unused tail of the current block */
	uint64_t inuse;	       /* bytes handed out and not freed */
	hs_sys_stat *stat;     /* where block memory is counted */
} hs_fixalloc;

void hs_fixalloc_init(hs_fixalloc *f, size_t size, hs_sys_stat *stat);
void *hs_fixalloc_alloc(hs_fixalloc *f);
void hs_fixalloc_free(hs_fixalloc *f, void *p);

#endif /* HS_FIXALLOC_H */
