/*
 * arch/arch.h — the address-space layout the heap is built for.
 *
 * Go fixes its heap layout per GOOS/GOARCH in malloc.go and mpagealloc_64bit.go /
 * mpagealloc_32bit.go. heapscope does the same at compile time: exactly one of
 * HS_ARCH_AMD64, HS_ARCH_ARM64 or HS_ARCH_32BIT selects a configuration header
 * that defines the primary constants below; everything else here is derived from
 * them. The host build uses the configuration of the machine it runs on; the tests
 * build the page allocator once per configuration (its metadata-only mode does not
 * need the addresses to be real), so a 32-bit layout is exercised on x86_64.
 *
 * Primary constants (per configuration):
 *   HS_HEAP_ADDR_BITS        bits of address the heap may use (Go's heapAddrBits)
 *   HS_ARENA_BASE_OFFSET     Go's arenaBaseOffset: subtracting it maps the usable
 *                            address range onto [0, 1<<HS_HEAP_ADDR_BITS)
 *   HS_SUMMARY_LEVELS        levels of the page allocator's radix tree
 *   HS_LOG_HEAP_ARENA_BYTES  log2 of an arena (64 MiB or 4 MiB)
 *   HS_ARENA_L1_BITS         bits of arena index in the arena map's first level
 *   HS_PALLOC_CHUNKS_L1_BITS bits of chunk index in the chunk map's first level
 *   HS_PHYS_PAGE_SIZE        the OS page size the layout assumes (the real heap
 *                            reads the running kernel's value; this is the default
 *                            for metadata-only use)
 *   HS_PHYS_HUGE_PAGE_SIZE   the huge page the scavenger avoids breaking up
 *
 * The derived constants keep Go's names (lower-cased with the hs_ prefix dropped
 * in prose): pageSize, pallocChunkPages, summaryL0Bits, levelShift, ...; each is
 * checked by a _Static_assert where a wrong value would silently corrupt the tree.
 */
#ifndef HS_ARCH_H
#define HS_ARCH_H

#include <stdint.h>

#if !defined(HS_ARCH_AMD64) && !defined(HS_ARCH_ARM64) && !defined(HS_ARCH_32BIT)
#if defined(__x86_64__)
#define HS_ARCH_AMD64 1
#elif defined(__aarch64__)
#define HS_ARCH_ARM64 1
#elif UINTPTR_MAX == 0xffffffffu
#define HS_ARCH_32BIT 1
#else
#error "heapscope: no arch configuration for this target; define HS_ARCH_AMD64, HS_ARCH_ARM64 or HS_ARCH_32BIT"
#endif
#endif

#if (defined(HS_ARCH_AMD64) + defined(HS_ARCH_ARM64) + defined(HS_ARCH_32BIT)) != 1
#error "heapscope: define exactly one of HS_ARCH_AMD64, HS_ARCH_ARM64, HS_ARCH_32BIT"
#endif

#if defined(HS_ARCH_AMD64)
#include "amd64.h"
#elif defined(HS_ARCH_ARM64)
#include "arm64.h"
#else
#include "32bit.h"
#endif

/* Go's pageSize: the unit of the page allocator, independent of the OS page. */
#define HS_PAGE_SHIFT 13
#define HS_PAGE_SIZE ((uintptr_t)1 << HS_PAGE_SHIFT) /* 8 KiB */

/*
 * A chunk is the unit the page allocator grows by and the leaf of its radix tree:
 * 512 pages, one 512-bit bitmap, 4 MiB of address space.
 */
#define HS_LOG_PALLOC_CHUNK_PAGES 9
#define HS_PALLOC_CHUNK_PAGES (1u << HS_LOG_PALLOC_CHUNK_PAGES) /* 512 */
#define HS_LOG_PALLOC_CHUNK_BYTES (HS_LOG_PALLOC_CHUNK_PAGES + HS_PAGE_SHIFT) /* 22 */
#define HS_PALLOC_CHUNK_BYTES ((uintptr_t)1 << HS_LOG_PALLOC_CHUNK_BYTES) /* 4 MiB */

/*
 * Radix bits per level below the root. Eight 8-byte children fill one 64-byte cache
 * line, and on 64-bit the 21-bit fields of a summary fit four such levels above a
 * chunk exactly. The root takes whatever address bits remain:
 *
 *   summaryL0Bits + (summaryLevels-1)*summaryLevelBits + logPallocChunkBytes == heapAddrBits
 */
#define HS_SUMMARY_LEVEL_BITS 3
#define HS_SUMMARY_L0_BITS \
	(HS_HEAP_ADDR_BITS - HS_LOG_PALLOC_CHUNK_BYTES - (HS_SUMMARY_LEVELS - 1) * HS_SUMMARY_LEVEL_BITS)
/* Bits of chunk index below the chunk map's first level (13 on 48-bit, 10 on 32-bit). */
#define HS_PALLOC_CHUNKS_L2_BITS (HS_HEAP_ADDR_BITS - HS_LOG_PALLOC_CHUNK_BYTES - HS_PALLOC_CHUNKS_L1_BITS)

/* Largest value a packed summary field can hold: 2^21 pages on 64-bit, 2^18 on 32-bit. */
#define HS_LOG_MAX_PACKED_VALUE \
	(HS_LOG_PALLOC_CHUNK_PAGES + (HS_SUMMARY_LEVELS - 1) * HS_SUMMARY_LEVEL_BITS)
#define HS_MAX_PACKED_VALUE ((uint64_t)1 << HS_LOG_MAX_PACKED_VALUE)

/* Arenas: the unit the heap reserves address space in (issue 3 builds on these). */
#define HS_HEAP_ARENA_BYTES ((uintptr_t)1 << HS_LOG_HEAP_ARENA_BYTES)
#define HS_ARENA_L2_BITS (HS_HEAP_ADDR_BITS - HS_LOG_HEAP_ARENA_BYTES - HS_ARENA_L1_BITS)
#define HS_PAGES_PER_ARENA (HS_HEAP_ARENA_BYTES / HS_PAGE_SIZE)

/* Pages per physical page (at least 1) and per huge page: the scavenger's units. */
#define HS_MIN_SCAV_PAGES (HS_PHYS_PAGE_SIZE > HS_PAGE_SIZE ? HS_PHYS_PAGE_SIZE / HS_PAGE_SIZE : 1)
#define HS_PAGES_PER_HUGE_PAGE (HS_PHYS_HUGE_PAGE_SIZE / HS_PAGE_SIZE)

/* Number of distinct addresses in the offset address space, minus one. */
#define HS_MAX_OFF_ADDR_INDEX ((uint64_t)(((uint64_t)1 << HS_HEAP_ADDR_BITS) - 1))

_Static_assert(HS_SUMMARY_L0_BITS >= 0, "summary levels do not fit in heapAddrBits");
_Static_assert(HS_PALLOC_CHUNKS_L2_BITS > 0, "chunk map second level is empty");
_Static_assert(HS_LOG_HEAP_ARENA_BYTES >= HS_LOG_PALLOC_CHUNK_BYTES,
	       "an arena must hold whole chunks");
/* The root must be able to say "entirely free": 1<<levelLogPages[0] must be packable. */
_Static_assert(HS_LOG_PALLOC_CHUNK_PAGES + (HS_SUMMARY_LEVELS - 1) * HS_SUMMARY_LEVEL_BITS <=
		       HS_LOG_MAX_PACKED_VALUE,
	       "root level max pages does not fit in a summary");
_Static_assert(3 * HS_LOG_MAX_PACKED_VALUE < 64, "pallocSum fields overlap the flag bit");

/* The name of the configuration, as recorded in sessions and printed by --version. */
#define HS_ARCH_NAME HS_ARCH_CONFIG_NAME

#endif /* HS_ARCH_H */
