/*
 * core/pagealloc_api.c — include/heapscope/pagealloc.h: the metadata-only page
 * allocator as a public API, in the spirit of Go's export_test.go.
 *
 * Each hs_pam owns a page allocator in metadata-only mode, its lock and its
 * statistics. Every entry point validates what it is given (an address from a
 * caller is not trusted: a bad one returns EINVAL rather than faulting), takes the
 * lock, and calls the same core functions the real heap uses. The hs_pam object
 * itself lives in memory from the OS layer, like all heapscope metadata.
 */
#include <errno.h>
#include <string.h>

#include "heapscope/pagealloc.h"
#include "pagealloc.h"

struct hs_pam {
	hs_pagealloc pa;
	hs_mutex lock;
	hs_sys_stat stat;
};

const char *hs_pam_arch(void)
{
	return HS_ARCH_NAME;
}

unsigned hs_pam_heap_addr_bits(void)
{
	return HS_HEAP_ADDR_BITS;
}

uintptr_t hs_pam_arena_base_offset(void)
{
	return HS_ARENA_BASE_OFFSET;
}

unsigned hs_pam_levels(void)
{
	return HS_SUMMARY_LEVELS;
}

unsigned hs_pam_level_bits(unsigned level)
{
	return hs_level_bits(level);
}

unsigned hs_pam_level_log_pages(unsigned level)
{
	return hs_level_log_pages(level);
}

uintptr_t hs_pam_level_entries(unsigned level)
{
	return hs_level_entries(level);
}

uintptr_t hs_pam_page_size(void)
{
	return HS_PAGE_SIZE;
}

unsigned hs_pam_chunk_pages(void)
{
	return HS_PALLOC_CHUNK_PAGES;
}

uintptr_t hs_pam_chunk_bytes(void)
{
	return HS_PALLOC_CHUNK_BYTES;
}

uint64_t hs_pam_chunk_index(uintptr_t addr)
{
	return hs_chunk_index(addr);
}

uintptr_t hs_pam_chunk_base(uint64_t chunk_index)
{
	return hs_chunk_base((hs_chunk_idx)chunk_index);
}

uint64_t hs_pam_level_index(unsigned level, uintptr_t addr)
{
	return hs_off(addr) >> hs_level_shift(level);
}

uintptr_t hs_pam_level_index_base(unsigned level, uint64_t index)
{
	return hs_off_to_addr((uintptr_t)index << hs_level_shift(level));
}

/* [base, base+size) lies inside the address space and does not hold address 0
 * (0 is the failure value of alloc, so its page can never be handed out). */
static int valid_span(uintptr_t base, uintptr_t size)
{
	hs_off_addr off = hs_off(base);
	if (size == 0 || off > HS_MAX_SEARCH_ADDR || size - 1 > HS_MAX_SEARCH_ADDR - off)
		return 0;
	hs_off_addr zero = hs_off(0);
	return !(zero <= HS_MAX_SEARCH_ADDR && zero >= hs_align_down(off, HS_PALLOC_CHUNK_BYTES) &&
		 zero < hs_align_up(off + size, HS_PALLOC_CHUNK_BYTES));
}

/* The chunk-rounded range does not overlap anything grown before. */
static int is_new_range(const hs_pagealloc *pa, uintptr_t base, uintptr_t size)
{
	hs_off_addr lo = hs_align_down(hs_off(base), HS_PALLOC_CHUNK_BYTES);
	hs_off_addr hi = hs_align_up(hs_off(base) + size, HS_PALLOC_CHUNK_BYTES);
	uintptr_t first;
	return !hs_addr_ranges_find_addr_ge(&pa->in_use, lo, &first) || first >= hi;
}

static int grow_locked(hs_pam *p, uintptr_t base, uintptr_t size)
{
	if (!valid_span(base, size) || !is_new_range(&p->pa, base, size))
		return EINVAL;
	hs_pagealloc_grow(&p->pa, base, size);
	return 0;
}

int hs_pam_grow(hs_pam *p, uintptr_t base, uintptr_t size)
{
	hs_lock(&p->lock);
	int err = grow_locked(p, base, size);
	hs_unlock(&p->lock);
	return err;
}

static int valid_bit_ranges(const hs_pam_bit_range *r, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (r[k].i > HS_PALLOC_CHUNK_PAGES || r[k].n > HS_PALLOC_CHUNK_PAGES - r[k].i)
			return 0;
	}
	return 1;
}

/* One chunk of hs_pam_new: grow, then impose the requested bitmaps and resummarize. */
static int init_chunk(hs_pam *p, const hs_pam_chunk_init *ci)
{
	if ((ci->base & (HS_PALLOC_CHUNK_BYTES - 1)) != 0 || !valid_bit_ranges(ci->alloc, ci->nalloc) ||
	    !valid_bit_ranges(ci->scav, ci->nscav))
		return EINVAL;
	int err = grow_locked(p, ci->base, HS_PALLOC_CHUNK_BYTES);
	if (err != 0)
		return err;
	hs_palloc_data *d = hs_pagealloc_chunk_of(&p->pa, hs_chunk_index(ci->base));
	hs_page_bits_clear_all(&d->scavenged);
	for (size_t k = 0; k < ci->nscav; k++) {
		if (ci->scav[k].n != 0)
			hs_page_bits_set_range(&d->scavenged, ci->scav[k].i, ci->scav[k].n);
	}
	for (size_t k = 0; k < ci->nalloc; k++) {
		if (ci->alloc[k].n != 0)
			hs_palloc_data_alloc_range(d, ci->alloc[k].i, ci->alloc[k].n);
	}
	/* As Go's NewPageAlloc: a chunk left with free, unscavenged pages goes into
	 * the scavenger index. */
	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++) {
		if (~d->alloc.w[k] & ~d->scavenged.w[k]) {
			hs_off_addr off = hs_off(ci->base);
			hs_scav_index_mark(&p->pa.scav, off, off + HS_PALLOC_CHUNK_BYTES);
			break;
		}
	}
	hs_pagealloc_update(&p->pa, ci->base, HS_PALLOC_CHUNK_PAGES, 0, 0);
	return 0;
}

/*
 * searchAddr after construction: Go's NewPageAlloc leaves it at the lowest grown
 * chunk even if that chunk is full, which is valid (nothing free lies below it);
 * we do the same.
 */
int hs_pam_new(const hs_pam_chunk_init *chunks, size_t nchunks, hs_pam **out)
{
	void *mem;
	int err = hs_sys_alloc(sizeof(hs_pam), NULL, &mem);
	if (err != 0)
		return err;
	hs_pam *p = mem;
	hs_mutex_init(&p->lock);
	p->stat.bytes = 0;
	err = hs_pagealloc_init(&p->pa, &p->lock, &p->stat, 1);
	if (err != 0) {
		hs_sys_free(mem, sizeof(hs_pam), NULL);
		return err;
	}
	hs_lock(&p->lock);
	for (size_t k = 0; k < nchunks && err == 0; k++)
		err = init_chunk(p, &chunks[k]);
	hs_unlock(&p->lock);
	if (err != 0) {
		hs_pam_destroy(p);
		return err;
	}
	*out = p;
	return 0;
}

void hs_pam_destroy(hs_pam *p)
{
	if (p == NULL)
		return;
	hs_pagealloc_destroy(&p->pa);
	pthread_mutex_destroy(&p->lock.m);
	hs_sys_free(p, sizeof(hs_pam), NULL);
}

uintptr_t hs_pam_alloc(hs_pam *p, uintptr_t npages, uintptr_t *scav)
{
	uintptr_t s = 0, addr = 0;
	if (npages != 0 && npages <= (HS_MAX_SEARCH_ADDR >> HS_PAGE_SHIFT)) {
		hs_lock(&p->lock);
		addr = hs_pagealloc_alloc(&p->pa, npages, &s);
		hs_unlock(&p->lock);
	}
	if (scav != NULL)
		*scav = s;
	return addr;
}

void hs_pam_free(hs_pam *p, uintptr_t base, uintptr_t npages)
{
	hs_lock(&p->lock);
	hs_pagealloc_free(&p->pa, base, npages, 0);
	hs_unlock(&p->lock);
}

hs_pam_page_cache hs_pam_alloc_to_cache(hs_pam *p)
{
	hs_lock(&p->lock);
	hs_page_cache c = hs_pagealloc_alloc_to_cache(&p->pa);
	hs_unlock(&p->lock);
	return (hs_pam_page_cache){ c.base, c.cache, c.scav };
}

uintptr_t hs_pam_cache_alloc(hs_pam_page_cache *c, uintptr_t npages, uintptr_t *scav)
{
	uintptr_t s = 0, addr = 0;
	if (npages >= 1 && npages <= HS_PAGE_CACHE_PAGES) {
		hs_page_cache pc = { c->base, c->cache, c->scav };
		addr = hs_page_cache_alloc(&pc, npages, &s);
		c->cache = pc.cache;
		c->scav = pc.scav;
	}
	if (scav != NULL)
		*scav = s;
	return addr;
}

void hs_pam_cache_flush(hs_pam *p, hs_pam_page_cache *c)
{
	hs_page_cache pc = { c->base, c->cache, c->scav };
	hs_lock(&p->lock);
	hs_page_cache_flush(&pc, &p->pa);
	hs_unlock(&p->lock);
	*c = (hs_pam_page_cache){ 0, 0, 0 };
}

uintptr_t hs_pam_scavenge(hs_pam *p, uintptr_t nbytes)
{
	hs_lock(&p->lock);
	uintptr_t released = hs_pagealloc_scavenge(&p->pa, nbytes, NULL);
	hs_unlock(&p->lock);
	return released;
}

int hs_pam_scav_marked(hs_pam *p, uint64_t chunk_index)
{
	hs_lock(&p->lock);
	int r = hs_scav_index_get(&p->pa.scav, (uintptr_t)chunk_index);
	hs_unlock(&p->lock);
	return r;
}

/* An entry is readable when its block was committed, i.e. it covers grown memory. */
static int entry_grown(const hs_pagealloc *pa, unsigned level, uint64_t index)
{
	if (level >= HS_SUMMARY_LEVELS || index >= hs_level_entries(level))
		return 0;
	hs_off_addr lo = (hs_off_addr)index << hs_level_shift(level);
	hs_off_addr hi = lo + ((hs_off_addr)1 << hs_level_shift(level));
	uintptr_t first;
	return hs_addr_ranges_find_addr_ge(&pa->in_use, lo, &first) && first < hi;
}

int hs_pam_summary(hs_pam *p, unsigned level, uint64_t index, hs_pam_sum *out)
{
	int err = EINVAL;
	hs_lock(&p->lock);
	if (entry_grown(&p->pa, level, index)) {
		hs_palloc_sum s = p->pa.summary[level][index];
		*out = (hs_pam_sum){ hs_palloc_sum_start(s), hs_palloc_sum_max(s), hs_palloc_sum_end(s) };
		err = 0;
	}
	hs_unlock(&p->lock);
	return err;
}

int hs_pam_chunk_bitmaps(hs_pam *p, uint64_t chunk_index, uint64_t alloc[8], uint64_t scav[8])
{
	int err = EINVAL;
	hs_lock(&p->lock);
	if (entry_grown(&p->pa, HS_LEAF_LEVEL, chunk_index)) {
		const hs_palloc_data *d = hs_pagealloc_chunk_of(&p->pa, (hs_chunk_idx)chunk_index);
		memcpy(alloc, d->alloc.w, sizeof d->alloc.w);
		memcpy(scav, d->scavenged.w, sizeof d->scavenged.w);
		err = 0;
	}
	hs_unlock(&p->lock);
	return err;
}

size_t hs_pam_in_use(hs_pam *p, hs_pam_addr_range *out, size_t max)
{
	hs_lock(&p->lock);
	size_t n = p->pa.in_use.len;
	for (size_t k = 0; k < n && k < max; k++)
		out[k] = (hs_pam_addr_range){ hs_off_to_addr(p->pa.in_use.ranges[k].base),
					      hs_off_to_addr(p->pa.in_use.ranges[k].limit) };
	hs_unlock(&p->lock);
	return n;
}

uintptr_t hs_pam_search_addr(hs_pam *p)
{
	hs_lock(&p->lock);
	uintptr_t a = hs_off_to_addr(p->pa.search_off);
	hs_unlock(&p->lock);
	return a;
}

void hs_pam_set_search_addr(hs_pam *p, int on)
{
	hs_lock(&p->lock);
	p->pa.search_addr_off = !on;
	hs_unlock(&p->lock);
}

int hs_pam_exhausted(hs_pam *p)
{
	hs_lock(&p->lock);
	int e = p->pa.search_off == HS_MAX_SEARCH_ADDR;
	hs_unlock(&p->lock);
	return e;
}

uint64_t hs_pam_metadata_bytes(hs_pam *p)
{
	return p->stat.bytes;
}

int hs_pam_check(hs_pam *p, char *msg, size_t msglen)
{
	hs_lock(&p->lock);
	int r = hs_pagealloc_check(&p->pa, msg, msglen);
	hs_unlock(&p->lock);
	return r;
}

hs_pam_sum hs_pam_summarize(const uint64_t bits[8])
{
	hs_palloc_bits b;
	memcpy(b.w, bits, sizeof b.w);
	hs_palloc_sum s = hs_palloc_bits_summarize(&b);
	return (hs_pam_sum){ hs_palloc_sum_start(s), hs_palloc_sum_max(s), hs_palloc_sum_end(s) };
}
