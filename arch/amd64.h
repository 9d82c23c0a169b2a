/*
 * arch/amd64.h — linux/amd64: 48-bit virtual addresses with the kernel half
 * included through arenaBaseOffset (Go's malloc.go: the hardware address space
 * [-2^47, 2^47) is mapped onto [0, 2^48) by subtracting 0xffff800000000000).
 * User-space addresses therefore land in the upper half of the offset space.
 * Included by arch.h only.
 */
#define HS_ARCH_CONFIG_NAME "linux/amd64"
#define HS_HEAP_ADDR_BITS 48
#define HS_ARENA_BASE_OFFSET ((uintptr_t)0xffff800000000000ull)
#define HS_SUMMARY_LEVELS 5
#define HS_LOG_HEAP_ARENA_BYTES 26 /* 64 MiB */
#define HS_ARENA_L1_BITS 0
#define HS_PALLOC_CHUNKS_L1_BITS 13
#define HS_PHYS_PAGE_SIZE 4096
#define HS_PHYS_HUGE_PAGE_SIZE ((uintptr_t)2 << 20) /* transparent huge pages */
