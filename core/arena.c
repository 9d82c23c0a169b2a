/*
 * core/arena.c — arenas: reserving address space for the heap and the arena map.
 * Mirrors mheap.sysAlloc and the arena hints of Go's mallocinit (malloc.go).
 * See core/mheap.c for how the heap grows into what is reserved here.
 *
 * The heap's address space is reserved in arenas (64 MiB; 4 MiB on 32-bit),
 * always arena-aligned, so that the arena map can find any heap address's
 * metadata with a shift. On 64-bit, Go asks the OS for addresses from a list of
 * hints, 0x00c0 << 32 | i << 40 for i = 0 .. 0x7f (arm64: 0x0040 << 32 instead).
 * Each hint grows upward, and a hint the OS does not honour is dropped. The
 * result is a heap that starts at 0x00c000000000 and is usually contiguous. On
 * 32-bit, where contiguity matters more, Go hints just above the program; here
 * the single hint is the current program break rounded up to an arena, plus one
 * arena of room for brk. That policy is compiled in only for the 32-bit layout,
 * which cannot run a real heap on this x86_64 machine.
 *
 * HEAPSCOPE_ARENA_HINTS=kernel (an experiment) starts with no hints, so every
 * reservation takes whatever arena-aligned address mmap picks (reserve_anywhere).
 * On Linux that is in the mmap area near the libraries, usually below the
 * previous mapping and with a gap (the over-reservation is trimmed), so arenas
 * are rarely contiguous: the heap switches arenas at each reservation (growing
 * into the rest of the old one first, see grow in core/mheap.c), its in-use
 * ranges are many, a run of pages cannot straddle two reservations, and its
 * addresses follow the kernel's address-space randomization instead of
 * starting at 0x00c000000000.
 *
 * Each arena's heapArena metadata (spans[] and the pageInUse bitmap) is
 * allocated when the arena is reserved and published in the arena map with a
 * release store, so hs_span_of can read it without locks. The arena map itself
 * is one array of 2^arenaL2Bits pointers (32 MiB on amd64), reserved once and
 * touched only where arenas exist; like Go, it is not counted as heap metadata.
 *
 * Locking: heap.lock for everything here.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap.h"

unsigned hs_arena_hint_addrs(uintptr_t *out, unsigned max)
{
	unsigned n = 0;
#if HS_HEAP_ADDR_BITS == 32
	if (max > 0)
		out[n++] = hs_align_up((uintptr_t)sbrk(0), HS_HEAP_ARENA_BYTES) + HS_HEAP_ARENA_BYTES;
#else
#if defined(HS_ARCH_ARM64)
	const uintptr_t low = (uintptr_t)0x0040 << 32;
#else
	const uintptr_t low = (uintptr_t)0x00c0 << 32;
#endif
	for (uintptr_t i = 0; i <= 0x7f && n < max; i++)
		out[n++] = i << 40 | low;
#endif
	return n;
}

/* Builds the hint list in the order hs_arena_hint_addrs gives (first tried
 * first); none under HEAPSCOPE_ARENA_HINTS=kernel (see the essay). */
void hs_arena_init_hints(void)
{
	uintptr_t addrs[128];
	unsigned n = hs_heap.arena_hints_kernel ? 0 : hs_arena_hint_addrs(addrs, 128);
	hs_arena_hint **tail = &hs_heap.arena_hints;
	for (unsigned i = 0; i < n; i++) {
		hs_arena_hint *h = hs_fixalloc_alloc(&hs_heap.hintalloc);
		h->addr = addrs[i];
		*tail = h;
		tail = &h->next;
	}
}

/* [v, v+n) lies inside the heap's address space, so the arena map covers it. */
static int arena_range_ok(uintptr_t v, uintptr_t n)
{
	hs_off_addr off = hs_off(v);
	return off <= HS_MAX_SEARCH_ADDR && n - 1 <= HS_MAX_SEARCH_ADDR - off;
}

static int reserve_at(uintptr_t want, uintptr_t n, uintptr_t *got)
{
	void *p = mmap((void *)want, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	if ((uintptr_t)p != want) {
		munmap(p, n);
		return 0;
	}
	*got = want;
	return 1;
}

/* Any arena-aligned reservation: over-reserve by one arena and trim. */
static int reserve_anywhere(uintptr_t n, uintptr_t *got)
{
	void *p;
	if (hs_sys_reserve(n + HS_HEAP_ARENA_BYTES, &p) != 0)
		return 0;
	uintptr_t v = hs_align_up((uintptr_t)p, HS_HEAP_ARENA_BYTES);
	if (v > (uintptr_t)p)
		munmap(p, v - (uintptr_t)p);
	uintptr_t end = (uintptr_t)p + n + HS_HEAP_ARENA_BYTES;
	if (end > v + n)
		munmap((void *)(v + n), end - (v + n));
	if (!arena_range_ok(v, n)) {
		munmap((void *)v, n);
		return 0;
	}
	*got = v;
	return 1;
}

static int register_arenas(uintptr_t v, uintptr_t n)
{
	_Atomic(hs_heap_arena *) *map = atomic_load_explicit(&hs_heap.arenas, memory_order_relaxed);
	if (map == NULL) {
		void *m;
		if (hs_sys_alloc(sizeof(hs_heap_arena *) << HS_ARENA_L2_BITS, NULL, &m) != 0)
			return 0;
		map = m;
		atomic_store_explicit(&hs_heap.arenas, map, memory_order_release);
	}
	for (uintptr_t a = v; a < v + n; a += HS_HEAP_ARENA_BYTES) {
		void *ha;
		if (hs_sys_alloc(sizeof(hs_heap_arena), &hs_heap.meta_stat, &ha) != 0)
			return 0;
		atomic_store_explicit(&map[hs_arena_index(a)], (hs_heap_arena *)ha, memory_order_release);
	}
	return 1;
}

/*
 * Reserves at least n bytes of arena-aligned address space (Go's sysAlloc) and
 * registers its arenas. *base, *size receive the region, in the Reserved state.
 * Returns 0 on success, ENOMEM when the OS has no address space left.
 */
int hs_arena_sys_alloc(uintptr_t n, uintptr_t *base, uintptr_t *size)
{
	hs_assert_lock_held(&hs_heap.lock);

	n = hs_align_up(n, HS_HEAP_ARENA_BYTES);
	uintptr_t v = 0;
	while (hs_heap.arena_hints != NULL) {
		hs_arena_hint *h = hs_heap.arena_hints;
		uintptr_t p = h->addr;
		if (p + n > p && arena_range_ok(p, n) && reserve_at(p, n, &v)) {
			h->addr = p + n;
			break;
		}
		hs_heap.arena_hints = h->next;
		hs_fixalloc_free(&hs_heap.hintalloc, h);
	}
	if (v == 0 && !reserve_anywhere(n, &v))
		return ENOMEM;
	if (!register_arenas(v, n))
		return ENOMEM;
	atomic_fetch_add_explicit(&hs_heap.mem_reserved, n, memory_order_relaxed);
	HS_TRACE(arena_reserve, v, n);
	*base = v;
	*size = n;
	return 0;
}
