/*
 * core/addrrange.h — addrRange and addrRanges: sorted sets of address ranges.
 *
 * Mirrors Go's mranges.go. The page allocator keeps the ranges of address space
 * it has been grown into (`inUse`); the scavenger will keep ranges it has yet to
 * visit. Ranges live in the offset address space (see core/pagealloc.h:
 * hs_off_addr), so integer order is address order.
 *
 * Invariants of an hs_addr_ranges:
 *   ranges[i].base < ranges[i].limit                      (no empty range)
 *   ranges[i].limit < ranges[i+1].base                    (sorted, disjoint and
 *                                                          never adjacent: add merges)
 *   total_bytes == sum of (limit - base)
 *
 * Storage comes from the OS layer (never from malloc) and doubles as needed.
 * Locking: owned by its page allocator; protected by heap.lock.
 */
#ifndef HS_ADDRRANGE_H
#define HS_ADDRRANGE_H

#include <stddef.h>
#include <stdint.h>

#include "sys.h"

/* [base, limit), offset address space. */
typedef struct hs_addr_range {
	uintptr_t base, limit;
} hs_addr_range;

typedef struct hs_addr_ranges {
	hs_addr_range *ranges;
	size_t len, cap;
	uintptr_t total_bytes;
	hs_sys_stat *sys_stat; /* where the array's own memory is counted */
} hs_addr_ranges;

void hs_addr_ranges_init(hs_addr_ranges *a, hs_sys_stat *stat);
void hs_addr_ranges_destroy(hs_addr_ranges *a);

/* Index of the first range whose base is > addr (len if none). Mirrors findSucc. */
size_t hs_addr_ranges_find_succ(const hs_addr_ranges *a, uintptr_t addr);

/*
 * The smallest address >= addr inside some range, in *out; returns 0 if there is
 * none. Mirrors findAddrGreaterEqual.
 */
int hs_addr_ranges_find_addr_ge(const hs_addr_ranges *a, uintptr_t addr, uintptr_t *out);

int hs_addr_ranges_contains(const hs_addr_ranges *a, uintptr_t addr);

/*
 * Adds r, which must not overlap any range already present; merges it with a
 * neighbour it touches. Throws on overlap or an empty range. Mirrors add.
 */
void hs_addr_ranges_add(hs_addr_ranges *a, hs_addr_range r);

/*
 * a minus b, where b must not lie strictly inside a (that would leave two
 * pieces). Mirrors addrRange.subtract.
 */
hs_addr_range hs_addr_range_subtract(hs_addr_range a, hs_addr_range b);

#endif /* HS_ADDRRANGE_H */
