/*
 * cli/pagetext.h — the page allocator drawn as plain text, shared by
 * `heapscope demo` (a live hs_pam) and `heapscope state` (a model's replica
 * heap). See cli/pagetext.c.
 *
 * Two pictures, both one character per thing:
 *
 *   a summary entry, shaded by its longest free run (its max) against the
 *   pages it covers (1 << log_pages):
 *     '#' no free page   '=' max < 1/4   '-' max < 1/2   '.' max < all   'o' wholly free
 *
 *   a page of a chunk, from its two bits (core/pallocbits.h):
 *     '#' allocated   '.' free   ':' free and scavenged   '!' allocated and
 *     scavenged (impossible; the checker reports it)   '@' the marked page
 *     (searchAddr), drawn over whatever the page is
 *
 * A chunk's 512 pages are a grid of HS_PAGETEXT_GRID_ROWS rows of
 * HS_PAGETEXT_GRID_COLS pages; bit i of word w of a bitmap is page 64w + i.
 * Pure functions of their arguments: no locking.
 */
#ifndef HS_PAGETEXT_H
#define HS_PAGETEXT_H

#include <stddef.h>
#include <stdint.h>

#define HS_PAGETEXT_GRID_COLS 32
#define HS_PAGETEXT_GRID_ROWS 16 /* 16 * 32 == 512 pages, one chunk */
#define HS_PAGETEXT_NO_MARK (-1)

/* The legends, as lines of at most 80 columns (no final newline). */
#define HS_PAGETEXT_SHADE_LEGEND                                                              \
	"  '#' no free page   '=' longest free run < 1/4 of the entry   '-' < 1/2\n"           \
	"  '.' < all          'o' wholly free"
#define HS_PAGETEXT_PAGE_LEGEND                                                               \
	"  '#' allocated   '.' free   ':' free and scavenged   '@' searchAddr\n"                 \
	"  '!' allocated and scavenged (invalid: the checker reports it)"

/* The shade of a summary entry whose longest free run is max pages, of an entry
 * covering 1 << log_pages pages. */
char hs_pagetext_shade(unsigned max, unsigned log_pages);

/* The character of one page: its bits in the allocation and scavenged bitmaps. */
char hs_pagetext_page(int allocated, int scavenged);

/* Row `row` (0 .. HS_PAGETEXT_GRID_ROWS-1) of a chunk's grid into out[0 ..
 * HS_PAGETEXT_GRID_COLS) (no terminating NUL); mark is a page index (0..511) to
 * draw as '@', or HS_PAGETEXT_NO_MARK. */
void hs_pagetext_chunk_row(char *out, const uint64_t alloc[8], const uint64_t scav[8], unsigned row, int mark);

/* The address space one summary entry covers, as "%4llu MiB" or "%4llu GiB"
 * (page_size-byte pages, 1 << log_pages of them). */
void hs_pagetext_entry_size(char *buf, size_t n, unsigned log_pages, uint64_t page_size);

#endif /* HS_PAGETEXT_H */
