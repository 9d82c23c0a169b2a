/*
 * arch/arm64.h — linux/arm64: 48-bit user addresses starting at zero, so no base
 * offset. Same tree shape as amd64. The physical page may be 4, 16 or 64 KiB on
 * real hardware; the real heap reads it from the kernel, 4 KiB is the default for
 * metadata-only use. Included by arch.h only.
 */
#define HS_ARCH_CONFIG_NAME "linux/arm64"
#define HS_HEAP_ADDR_BITS 48
#define HS_ARENA_BASE_OFFSET ((uintptr_t)0)
#define HS_SUMMARY_LEVELS 5
#define HS_LOG_HEAP_ARENA_BYTES 26 /* 64 MiB */
#define HS_ARENA_L1_BITS 0
#define HS_PALLOC_CHUNKS_L1_BITS 13
#define HS_PHYS_PAGE_SIZE 4096
#define HS_PHYS_HUGE_PAGE_SIZE ((uintptr_t)2 << 20) /* transparent huge pages */
