/*
 * core/fixalloc.c — see core/fixalloc.h.
 */
#include "fixalloc.h"

#include <string.h>

#include "panic.h"

#define FIXALLOC_BLOCK ((uintptr_t)64 << 10)

void hs_fixalloc_init(hs_fixalloc *f, size_t size, hs_sys_stat *stat)
{
	memset(f, 0, sizeof *f);
	f->size = hs_align_up(size, 16);
	f->stat = stat;
}

void *hs_fixalloc_alloc(hs_fixalloc *f)
{
	void *p;
	if (f->list != NULL) {
		p = f->list;
		f->list = *(void **)p;
	} else {
		if (f->nchunk < f->size) {
			void *block;
			if (hs_sys_alloc(FIXALLOC_BLOCK, f->stat, &block) != 0)
				hs_throw("fixalloc: out of memory");
			f->chunk = (uintptr_t)block;
			f->nchunk = FIXALLOC_BLOCK;
		}
		p = (void *)f->chunk;
		f->chunk += f->size;
		f->nchunk -= f->size;
	}
	memset(p, 0, f->size);
	f->inuse += f->size;
	return p;
}

void hs_fixalloc_free(hs_fixalloc *f, void *p)
{
	f->inuse -= f->size;
	*(void **)p = f->list;
	f->list = p;
}
