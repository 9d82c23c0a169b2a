/*
 * core/sys.h — the OS memory layer: Go's four states of address space.
 *
 * Mirrors the sys* functions of Go's malloc.go / mem_linux.go. A region of
 * address space is in one of four states:
 *
 *   None      unreserved; the OS may hand it to anyone.
 *   Reserved  owned by heapscope, PROT_NONE; touching it faults. Costs no memory.
 *   Prepared  accessible to the kernel's accounting but not meant to be touched
 *             yet; on Linux the same as Ready. Released pages go back here.
 *   Ready     may be read and written.
 *
 *   None --reserve--> Reserved --map--> Prepared --used--> Ready
 *     ^                                     ^                 |
 *     +------------- free (any state) ------+---- unused -----+
 *   None --alloc--> Ready  (for metadata that is needed at once)
 *
 * Bytes are counted in a caller-supplied hs_sys_stat (Go's sysMemStat): map and
 * alloc add, free subtracts what the caller says was counted. The stat is updated
 * atomically so that statistics can be read without the heap lock.
 *
 * Return convention: functions that can fail return 0 or an errno value and write
 * results through out-parameters; the rest cannot fail or throw.
 *
 * Reserved memory is made accessible with mprotect rather than by mapping over it,
 * so committing a page twice keeps its contents; the counting is the caller's
 * job, exactly as in Go.
 */
#ifndef HS_SYS_H
#define HS_SYS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hs_sys_stat {
	_Atomic uint64_t bytes;
} hs_sys_stat;

int hs_sys_reserve(size_t n, void **out);
int hs_sys_map(void *v, size_t n, hs_sys_stat *stat);
void hs_sys_used(void *v, size_t n);
/* Ready -> Prepared. lazy: MADV_FREE (the kernel reclaims the pages when it
 * needs memory) instead of MADV_DONTNEED (they go at once). */
void hs_sys_unused(void *v, size_t n, int lazy);
int hs_sys_alloc(size_t n, hs_sys_stat *stat, void **out);
void hs_sys_free(void *v, size_t n, hs_sys_stat *stat);

/* The running kernel's page size (4 KiB on x86_64). */
size_t hs_sys_phys_page_size(void);

/*
 * Stores the n bytes at src into dst, writing only the words that differ.
 * Static storage (.bss) starts out as the kernel's shared zero page: reading it
 * costs no memory, but writing a page, even with zeros, makes it resident. The
 * heap singleton is about 90 KiB, mostly the page allocator's chunk map and the
 * mcentrals, of which a small program uses a few pages; initializing it this
 * way keeps the rest out of the program's RSS. dst, src and n are multiples of
 * the word size; src == NULL stores zeros.
 */
static inline void hs_store_lazily(void *dst, const void *src, size_t n)
{
	uintptr_t *d = dst;
	const uintptr_t *s = src;
	for (size_t i = 0; i < n / sizeof *d; i++) {
		uintptr_t v = s != NULL ? s[i] : 0;
		if (d[i] != v)
			d[i] = v;
	}
}

static inline uintptr_t hs_align_up(uintptr_t x, uintptr_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline uintptr_t hs_align_down(uintptr_t x, uintptr_t a)
{
	return x & ~(a - 1);
}

#endif /* HS_SYS_H */
