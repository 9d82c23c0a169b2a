/*
 * arch/32bit.h — a 32-bit address space (linux/386, linux/arm): 4 summary levels,
 * a root of two entries of 2 GiB each, 4 MiB arenas, and a chunk map with no first
 * level (its single second level is 1024 entries, 128 KiB). On a 64-bit host this
 * configuration is only usable in the page allocator's metadata-only mode, where
 * addresses are simulated; the real heap refuses it. Included by arch.h only.
 */
#define HS_ARCH_CONFIG_NAME "32-bit"
#define HS_HEAP_ADDR_BITS 32
#define HS_ARENA_BASE_OFFSET ((uintptr_t)0)
#define HS_SUMMARY_LEVELS 4
#define HS_LOG_HEAP_ARENA_BYTES 22 /* 4 MiB */
#define HS_ARENA_L1_BITS 0
#define HS_PALLOC_CHUNKS_L1_BITS 0
#define HS_PHYS_PAGE_SIZE 4096
#define HS_PHYS_HUGE_PAGE_SIZE ((uintptr_t)4 << 20) /* large pages of a 32-bit layout */
