/*
 * cli/pagetext.c — one character per summary entry or per page: the text
 * pictures of the page allocator that `heapscope demo` draws every frame and
 * `heapscope state` prints for a recorded session (cli/pagetext.h has the
 * legend). The TUI draws the same things with colour (tui/summary.c,
 * tui/chunk.c).
 *
 * A summary entry is shaded by its longest free run only: max is what a
 * first-fit search looks at to decide whether to descend, so a row of shades
 * shows where an allocation of a given size can land.
 */
#include <stdio.h>

#include "pagetext.h"

_Static_assert(HS_PAGETEXT_GRID_COLS * HS_PAGETEXT_GRID_ROWS == 512, "the grid shows one chunk");

char hs_pagetext_shade(unsigned max, unsigned log_pages)
{
	uint64_t cap = UINT64_C(1) << log_pages;
	if (max == 0)
		return '#';
	if (max >= cap)
		return 'o';
	if ((uint64_t)max * 4 < cap)
		return '=';
	if ((uint64_t)max * 2 < cap)
		return '-';
	return '.';
}

char hs_pagetext_page(int allocated, int scavenged)
{
	if (allocated)
		return scavenged ? '!' : '#';
	return scavenged ? ':' : '.';
}

void hs_pagetext_chunk_row(char *out, const uint64_t alloc[8], const uint64_t scav[8], unsigned row, int mark)
{
	for (unsigned col = 0; col < HS_PAGETEXT_GRID_COLS; col++) {
		unsigned i = row * HS_PAGETEXT_GRID_COLS + col;
		int a = (int)(alloc[i / 64] >> (i % 64) & 1), s = (int)(scav[i / 64] >> (i % 64) & 1);
		out[col] = (int)i == mark ? '@' : hs_pagetext_page(a, s);
	}
}

void hs_pagetext_entry_size(char *buf, size_t n, unsigned log_pages, uint64_t page_size)
{
	uint64_t kib = (page_size >> 10) << log_pages;
	if (kib >= 1024 * 1024)
		snprintf(buf, n, "%4llu GiB", (unsigned long long)(kib >> 20));
	else
		snprintf(buf, n, "%4llu MiB", (unsigned long long)(kib >> 10));
}
