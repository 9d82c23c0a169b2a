/*
 * core/scavindex.c — see core/scavindex.h.
 */
#include "scavindex.h"

#include <string.h>

#include "../arch/arch.h"
#include "../arch/bits.h"
#include "panic.h"

#define INDEX_BYTES ((((uintptr_t)1 << (HS_HEAP_ADDR_BITS - HS_LOG_PALLOC_CHUNK_BYTES)) + 7) / 8)

int hs_scav_index_init(hs_scav_index *s, uintptr_t meta_page)
{
	memset(s, 0, sizeof *s);
	s->meta_page = meta_page;
	void *r;
	int err = hs_sys_reserve(hs_align_up(INDEX_BYTES, meta_page), &r);
	if (err != 0)
		return err;
	s->chunks = r;
	s->min_heap_byte = UINTPTR_MAX;
	return 0;
}

void hs_scav_index_destroy(hs_scav_index *s)
{
	if (s->chunks != NULL)
		hs_sys_free(s->chunks, hs_align_up(INDEX_BYTES, s->meta_page), NULL);
	memset(s, 0, sizeof *s);
}

uintptr_t hs_scav_index_grow(hs_scav_index *s, uintptr_t base, uintptr_t limit, hs_sys_stat *stat)
{
	uintptr_t ci0 = base >> HS_LOG_PALLOC_CHUNK_BYTES, ci1 = limit >> HS_LOG_PALLOC_CHUNK_BYTES;
	uintptr_t need_min = hs_align_down(ci0 / 8, s->meta_page);
	uintptr_t need_max = hs_align_up((ci1 + 7) / 8, s->meta_page);
	uintptr_t committed = 0;

	if (ci0 / 8 < s->min_heap_byte)
		s->min_heap_byte = ci0 / 8;
	/* Commit what [need_min, need_max) adds to [min, max); the committed range
	 * stays one interval, as in Go (the bitmap is small: 1 byte per 32 MiB). */
	if (s->max == 0) {
		if (hs_sys_map(s->chunks + need_min, need_max - need_min, stat) != 0)
			hs_throw("scavengeIndex: cannot commit");
		s->min = need_min;
		s->max = need_max;
		return need_max - need_min;
	}
	if (need_min < s->min) {
		if (hs_sys_map(s->chunks + need_min, s->min - need_min, stat) != 0)
			hs_throw("scavengeIndex: cannot commit");
		committed += s->min - need_min;
		s->min = need_min;
	}
	if (need_max > s->max) {
		if (hs_sys_map(s->chunks + s->max, need_max - s->max, stat) != 0)
			hs_throw("scavengeIndex: cannot commit");
		committed += need_max - s->max;
		s->max = need_max;
	}
	return committed;
}

void hs_scav_index_mark(hs_scav_index *s, uintptr_t base, uintptr_t limit)
{
	uintptr_t first = base >> HS_LOG_PALLOC_CHUNK_BYTES;
	uintptr_t last = (limit - HS_PAGE_SIZE) >> HS_LOG_PALLOC_CHUNK_BYTES;
	for (uintptr_t ci = first; ci <= last; ci++)
		s->chunks[ci / 8] |= (uint8_t)(1u << (ci % 8));
	uintptr_t top = limit - HS_PAGE_SIZE;
	if (!s->has_search || s->search_off < top) {
		s->search_off = top;
		s->has_search = 1;
	}
}

void hs_scav_index_clear(hs_scav_index *s, uintptr_t ci)
{
	s->chunks[ci / 8] &= (uint8_t) ~(1u << (ci % 8));
}

int hs_scav_index_get(const hs_scav_index *s, uintptr_t ci)
{
	uintptr_t byte = ci / 8;
	if (s->max == 0 || byte < s->min || byte >= s->max)
		return 0;
	return (s->chunks[byte] >> (ci % 8)) & 1;
}

int hs_scav_index_find(hs_scav_index *s, uintptr_t *ci, unsigned *page)
{
	if (!s->has_search)
		return 0;
	uintptr_t search_ci = s->search_off >> HS_LOG_PALLOC_CHUNK_BYTES;
	/* Bits above search_ci in its own byte are clear (the invariant), so the
	 * highest set bit of a byte is the chunk to take. */
	for (uintptr_t i = search_ci / 8 + 1; i-- > s->min_heap_byte;) {
		uint8_t b = s->chunks[i];
		if (b == 0)
			continue;
		uintptr_t found = i * 8 + (63 - hs_clz64(b));
		*ci = found;
		if (found == search_ci) {
			*page = (unsigned)((s->search_off & (HS_PALLOC_CHUNK_BYTES - 1)) >> HS_PAGE_SHIFT);
		} else {
			*page = HS_PALLOC_CHUNK_PAGES - 1;
			s->search_off = ((found + 1) << HS_LOG_PALLOC_CHUNK_BYTES) - HS_PAGE_SIZE;
		}
		return 1;
	}
	s->has_search = 0;
	return 0;
}
