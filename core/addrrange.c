/*
 * core/addrrange.c — see core/addrrange.h.
 *
 * Lookups are binary searches over the sorted array; add is a binary search plus
 * a memmove, which is fine because ranges are added only when the heap grows
 * (a few hundred times in the life of a large process) and usually merge.
 */
#include "addrrange.h"

#include <string.h>

#include "panic.h"

void hs_addr_ranges_init(hs_addr_ranges *a, hs_sys_stat *stat)
{
	memset(a, 0, sizeof *a);
	a->sys_stat = stat;
}

void hs_addr_ranges_destroy(hs_addr_ranges *a)
{
	if (a->ranges != NULL)
		hs_sys_free(a->ranges, a->cap * sizeof *a->ranges, a->sys_stat);
	memset(a, 0, sizeof *a);
}

size_t hs_addr_ranges_find_succ(const hs_addr_ranges *a, uintptr_t addr)
{
	size_t lo = 0, hi = a->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->ranges[mid].base > addr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int hs_addr_ranges_find_addr_ge(const hs_addr_ranges *a, uintptr_t addr, uintptr_t *out)
{
	size_t i = hs_addr_ranges_find_succ(a, addr);
	if (i > 0 && addr < a->ranges[i - 1].limit) {
		*out = addr;
		return 1;
	}
	if (i < a->len) {
		*out = a->ranges[i].base;
		return 1;
	}
	return 0;
}

int hs_addr_ranges_contains(const hs_addr_ranges *a, uintptr_t addr)
{
	size_t i = hs_addr_ranges_find_succ(a, addr);
	return i > 0 && addr < a->ranges[i - 1].limit;
}

static void grow_storage(hs_addr_ranges *a)
{
	size_t ncap = a->cap == 0 ? 4096 / sizeof *a->ranges : a->cap * 2;
	void *p;
	if (hs_sys_alloc(ncap * sizeof *a->ranges, a->sys_stat, &p) != 0)
		hs_throw("addrRanges: out of memory");
	if (a->len > 0)
		memcpy(p, a->ranges, a->len * sizeof *a->ranges);
	if (a->ranges != NULL)
		hs_sys_free(a->ranges, a->cap * sizeof *a->ranges, a->sys_stat);
	a->ranges = p;
	a->cap = ncap;
}

void hs_addr_ranges_add(hs_addr_ranges *a, hs_addr_range r)
{
	if (r.base >= r.limit) {
		hs_print("heapscope: range = [%#lx, %#lx)\n", (unsigned long)r.base,
			 (unsigned long)r.limit);
		hs_throw("addrRanges: adding an empty range");
	}
	size_t i = hs_addr_ranges_find_succ(a, r.base);
	int touch_prev = i > 0 && a->ranges[i - 1].limit >= r.base;
	int touch_next = i < a->len && r.limit >= a->ranges[i].base;
	if ((i > 0 && a->ranges[i - 1].limit > r.base) || (i < a->len && r.limit > a->ranges[i].base)) {
		hs_print("heapscope: range = [%#lx, %#lx)\n", (unsigned long)r.base,
			 (unsigned long)r.limit);
		hs_throw("addrRanges: range overlaps an existing one");
	}
	a->total_bytes += r.limit - r.base;
	if (touch_prev && touch_next) {
		a->ranges[i - 1].limit = a->ranges[i].limit;
		memmove(&a->ranges[i], &a->ranges[i + 1], (a->len - i - 1) * sizeof *a->ranges);
		a->len--;
	} else if (touch_prev) {
		a->ranges[i - 1].limit = r.limit;
	} else if (touch_next) {
		a->ranges[i].base = r.base;
	} else {
		if (a->len == a->cap)
			grow_storage(a);
		memmove(&a->ranges[i + 1], &a->ranges[i], (a->len - i) * sizeof *a->ranges);
		a->ranges[i] = r;
		a->len++;
	}
}

hs_addr_range hs_addr_range_subtract(hs_addr_range a, hs_addr_range b)
{
	if (b.base <= a.base && a.limit <= b.limit) {
		a.limit = a.base;
	} else if (a.base < b.base && b.limit < a.limit) {
		hs_print("heapscope: a = [%#lx, %#lx), b = [%#lx, %#lx)\n", (unsigned long)a.base,
			 (unsigned long)a.limit, (unsigned long)b.base, (unsigned long)b.limit);
		hs_throw("addrRange: subtracting a range strictly inside another");
	} else if (b.limit < a.limit && a.base < b.limit) {
		a.base = b.limit;
	} else if (a.base < b.base && b.base < a.limit) {
		a.limit = b.base;
	}
	return a;
}
