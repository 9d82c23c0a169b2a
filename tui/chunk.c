/*
 * tui/chunk.c — the chunk bitmaps pane: one chunk's 512 pages as a 32x16
 * grid, each page drawn from its two bits (core/pallocbits.h): allocated,
 * free, free and scavenged (released to the OS), and the impossible
 * allocated-and-scavenged, which the checker would report and which is drawn
 * so that it cannot be missed. The page searchAddr points at is marked.
 *
 * The cursor is a page; moving it past the grid's edge moves to the
 * neighbouring in-use chunk, PgUp/PgDn move a chunk at a time, `s` goes to the
 * chunk holding searchAddr. Beside the grid: the chunk's counts, its leaf
 * summary, and the page under the cursor with the span it belongs to.
 * See tui/tui.h.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <string.h>

#include <ncursesw/curses.h>

#define HS_TUI_INTERNAL
#include "sizeclasses.h"
#include "tui.h"

#define GRID_COLS 32
#define GRID_ROWS ((int)HS_PALLOC_CHUNK_PAGES / GRID_COLS) /* 16 */
#define MAX_SEGS 256

_Static_assert(GRID_COLS * GRID_ROWS == HS_PALLOC_CHUNK_PAGES, "the grid shows a whole chunk");

static int in_use(const hs_model_heap *h, uintptr_t ci)
{
	return hs_addr_ranges_contains(&h->pages.in_use, ci << HS_LOG_PALLOC_CHUNK_BYTES);
}

/* The chunk of searchAddr if it is in use, else the first chunk in use. */
static void default_chunk(hs_tui *t)
{
	const hs_pagealloc *p = &t->h->pages;
	hs_tui_seg seg;
	if (p->search_off != HS_MAX_SEARCH_ADDR && in_use(t->h, p->search_off >> HS_LOG_PALLOC_CHUNK_BYTES)) {
		t->chunk = p->search_off >> HS_LOG_PALLOC_CHUNK_BYTES;
		t->chunk_valid = 1;
	} else if (hs_tui_heap_segs(t->h, 0, UINTPTR_MAX, &seg, 1) == 1) {
		t->chunk = seg.lo;
		t->chunk_valid = 1;
	}
}

static void fix_chunk(hs_tui *t)
{
	if (!t->chunk_valid || !in_use(t->h, t->chunk))
		default_chunk(t);
}

/* The in-use chunk dir (+1/-1) from ci, or ci itself at either end. */
static uintptr_t neighbour(const hs_model_heap *h, uintptr_t ci, int dir)
{
	hs_tui_seg segs[MAX_SEGS];
	size_t n = hs_tui_heap_segs(h, 0, UINTPTR_MAX, segs, MAX_SEGS);
	for (size_t k = 0; k < n; k++) {
		if (ci < segs[k].lo || ci >= segs[k].hi)
			continue;
		if (dir > 0)
			return ci + 1 < segs[k].hi ? ci + 1 : k + 1 < n ? segs[k + 1].lo : ci;
		return ci > segs[k].lo ? ci - 1 : k > 0 ? segs[k - 1].hi - 1 : ci;
	}
	return ci;
}

int hs_tui_chunk_goto(hs_tui *t, uintptr_t addr)
{
	if (t->h == NULL || !hs_addr_ranges_contains(&t->h->pages.in_use, hs_off(addr)))
		return -1;
	t->chunk = hs_chunk_index(addr);
	t->chunk_valid = 1;
	t->page = (int)hs_chunk_page_index(addr);
	return 0;
}

/* Moves the page cursor by d pages, crossing into the neighbouring chunk. */
static void move_page(hs_tui *t, int d)
{
	int p = (t->page < 0 ? 0 : t->page) + d;
	if (p < 0) {
		uintptr_t c = neighbour(t->h, t->chunk, -1);
		if (c != t->chunk) {
			t->chunk = c;
			p += HS_PALLOC_CHUNK_PAGES;
		} else {
			p = t->page < 0 ? 0 : t->page;
		}
	} else if (p >= (int)HS_PALLOC_CHUNK_PAGES) {
		uintptr_t c = neighbour(t->h, t->chunk, 1);
		if (c != t->chunk) {
			t->chunk = c;
			p -= HS_PALLOC_CHUNK_PAGES;
		} else {
			p = t->page < 0 ? 0 : t->page;
		}
	}
	t->page = p;
}

int hs_tui_chunk_key(hs_tui *t, int action)
{
	if (t->h == NULL)
		return 0;
	fix_chunk(t);
	if (!t->chunk_valid)
		return 0;
	hs_tui_seg segs[MAX_SEGS];
	size_t n;
	switch (action) {
	case HS_A_LEFT:
		move_page(t, -1);
		return 1;
	case HS_A_RIGHT:
		move_page(t, 1);
		return 1;
	case HS_A_UP:
		move_page(t, -GRID_COLS);
		return 1;
	case HS_A_DOWN:
		move_page(t, GRID_COLS);
		return 1;
	case HS_A_PGUP:
		t->chunk = neighbour(t->h, t->chunk, -1);
		return 1;
	case HS_A_PGDN:
		t->chunk = neighbour(t->h, t->chunk, 1);
		return 1;
	case HS_A_HOME:
	case HS_A_END:
		n = hs_tui_heap_segs(t->h, 0, UINTPTR_MAX, segs, MAX_SEGS);
		if (n > 0)
			t->chunk = action == HS_A_HOME ? segs[0].lo : segs[n - 1].hi - 1;
		return 1;
	case HS_A_SEARCHADDR:
		if (t->h->pages.search_off == HS_MAX_SEARCH_ADDR ||
		    !in_use(t->h, t->h->pages.search_off >> HS_LOG_PALLOC_CHUNK_BYTES)) {
			hs_tui_message(t, 0, "searchAddr is past the heap: no free page");
		} else {
			uintptr_t a = hs_off_to_addr(t->h->pages.search_off);
			t->chunk = hs_chunk_index(a);
			t->page = (int)hs_chunk_page_index(a);
		}
		return 1;
	case HS_A_ENTER: {
		uintptr_t a = hs_chunk_base(t->chunk) + ((uintptr_t)(t->page < 0 ? 0 : t->page) << HS_PAGE_SHIFT);
		if (hs_tui_spans_goto(t, a) == 0)
			t->pane = HS_PANE_SPANS;
		else
			hs_tui_message(t, 0, "page %#lx is in no span", (unsigned long)a);
		return 1;
	}
	case HS_A_BACK:
		hs_tui_summary_goto_chunk(t, t->chunk);
		t->pane = HS_PANE_SUMMARY;
		return 1;
	}
	return 0;
}

/* --- drawing ------------------------------------------------------------------ */

static int page_glyph(const hs_palloc_data *d, unsigned p, int *color)
{
	unsigned a = hs_page_bits_get(&d->alloc, p), s = hs_page_bits_get(&d->scavenged, p);
	if (a && s) {
		*color = HS_C_BAD;
		return HS_G_PG_BAD;
	}
	if (a) {
		*color = HS_C_ALLOC;
		return HS_G_PG_ALLOC;
	}
	if (s) {
		*color = HS_C_SCAV;
		return HS_G_PG_SCAV;
	}
	*color = HS_C_FREE;
	return HS_G_PG_FREE;
}

static const char *span_where(const hs_model_span *s)
{
	static const char *const w[] = { "new", "in an mcache", "partial", "full" };
	if ((s->spanclass >> 1) == 0)
		return "large";
	return s->where < 4 ? w[s->where] : "?";
}

static void draw_info(hs_tui *t, const hs_palloc_data *d, int y, int x, int w, int h)
{
	const hs_pagealloc *p = &t->h->pages;
	uintptr_t base = hs_chunk_base(t->chunk);
	int lab = hs_tui_attr(t, HS_C_LABEL);
	unsigned nalloc = 0, nscav = 0, nbad = 0;
	for (unsigned k = 0; k < HS_PALLOC_CHUNK_WORDS; k++) {
		nalloc += hs_popcount64(d->alloc.w[k]);
		nscav += hs_popcount64(d->scavenged.w[k] & ~d->alloc.w[k]);
		nbad += hs_popcount64(d->scavenged.w[k] & d->alloc.w[k]);
	}
	hs_tui_seg segs[MAX_SEGS];
	size_t n = hs_tui_heap_segs(t->h, 0, UINTPTR_MAX, segs, MAX_SEGS);
	uintptr_t ord = 0, total = 0;
	for (size_t k = 0; k < n; k++) {
		if (t->chunk >= segs[k].hi)
			ord += segs[k].hi - segs[k].lo;
		else if (t->chunk >= segs[k].lo)
			ord += t->chunk - segs[k].lo;
		total += segs[k].hi - segs[k].lo;
	}
	hs_palloc_sum s = p->summary[HS_LEAF_LEVEL][t->chunk];
	int row = 0;
#define LINE(attr, ...)                                                    \
	do {                                                               \
		if (row < h)                                               \
			hs_tui_printf(t, y + row, x, w, attr, __VA_ARGS__); \
		row++;                                                     \
	} while (0)
	LINE(lab, "chunk index %#lx (%lu of %lu in use)", (unsigned long)t->chunk, (unsigned long)ord + 1,
	     (unsigned long)total);
	LINE(0, "[%#lx, %#lx)", (unsigned long)base, (unsigned long)(base + HS_PALLOC_CHUNK_BYTES));
	LINE(0, "allocated %u  free %u  released %u", nalloc, HS_PALLOC_CHUNK_PAGES - nalloc - nscav, nscav);
	if (nbad)
		LINE(hs_tui_attr(t, HS_C_ERR), "%u pages allocated AND scavenged", nbad);
	LINE(0, "summary start %u max %u end %u", hs_palloc_sum_start(s), hs_palloc_sum_max(s), hs_palloc_sum_end(s));
	if (p->search_off == HS_MAX_SEARCH_ADDR)
		LINE(0, "searchAddr: none (heap full)");
	else if ((p->search_off >> HS_LOG_PALLOC_CHUNK_BYTES) == t->chunk)
		LINE(hs_tui_attr(t, HS_C_SEARCH), "searchAddr here, page %u",
		     (unsigned)((p->search_off >> HS_PAGE_SHIFT) & (HS_PALLOC_CHUNK_PAGES - 1)));
	else
		LINE(0, "searchAddr %#lx", (unsigned long)hs_off_to_addr(p->search_off));
	row++;
	if (t->page >= 0) {
		uintptr_t a = base + ((uintptr_t)t->page << HS_PAGE_SHIFT);
		int color;
		int g = page_glyph(d, (unsigned)t->page, &color);
		static const char *const names[HS_G_COUNT] = { [HS_G_PG_ALLOC] = "allocated", [HS_G_PG_FREE] = "free",
							      [HS_G_PG_SCAV] = "free, released",
							      [HS_G_PG_BAD] = "allocated and scavenged!" };
		LINE(lab, "page %d  %#lx", t->page, (unsigned long)a);
		LINE(0, "  %s", names[g]);
		const hs_model_span *sp = hs_model_span_of(t->h, a);
		if (sp != NULL) {
			unsigned c = sp->spanclass >> 1;
			LINE(0, "  span %#lx, %u page%s", (unsigned long)sp->base, sp->npages, sp->npages == 1 ? "" : "s");
			if (c != 0)
				LINE(0, "  class %u (%u B) %s %u/%u", c, hs_class_to_size[c], span_where(sp), sp->alloc_count,
				     hs_class_nelems(c));
			else
				LINE(0, "  large object");
		} else if (hs_page_bits_get(&d->alloc, (unsigned)t->page)) {
			LINE(0, "  in no span (a page cache or the scavenger)");
		}
	} else {
		LINE(hs_tui_attr(t, HS_C_DIM), "arrows: a page; PgUp/PgDn: a chunk");
		LINE(hs_tui_attr(t, HS_C_DIM), "s: searchAddr  Enter: its span");
	}
#undef LINE
}

static void draw_legend(hs_tui *t, int y, int x, int w)
{
	static const hs_tui_legend_item items[] = { { HS_G_PG_ALLOC, HS_C_ALLOC, "allocated" },	{ HS_G_PG_FREE, HS_C_FREE, "free" },
		      { HS_G_PG_SCAV, HS_C_SCAV, "free+scavenged" },	{ HS_G_PG_BAD, HS_C_BAD, "alloc+scav" },
		      { HS_G_PG_SEARCH, HS_C_SEARCH, "searchAddr" } };
	hs_tui_legend(t, y, x, w, items, sizeof items / sizeof items[0]);
}

void hs_tui_chunk_draw(hs_tui *t, hs_tui_rect r)
{
	if (t->h == NULL) {
		hs_tui_title(t, r, "Chunk bitmaps", "no heap yet");
		return;
	}
	fix_chunk(t);
	if (!t->chunk_valid) {
		hs_tui_title(t, r, "Chunk bitmaps", "no chunk in use yet");
		return;
	}
	const hs_palloc_data *d = hs_pagealloc_try_chunk_of(&t->h->pages, t->chunk);
	char detail[96];
	snprintf(detail, sizeof detail, "chunk %#lx: %u pages, 32 x 16", (unsigned long)t->chunk, HS_PALLOC_CHUNK_PAGES);
	hs_tui_title(t, r, "Chunk bitmaps", detail);
	if (d == NULL)
		return;
	/* Two columns a page when there is room beside the grid for the details. */
	int cw = r.w >= 4 + 2 * GRID_COLS + 2 + 36 ? 2 : 1;
	int gx = r.x + 4, gy = r.y + 1 + (r.h >= GRID_ROWS + 3 ? 1 : 0);
	const hs_pagealloc *p = &t->h->pages;
	int search = -1;
	if (p->search_off != HS_MAX_SEARCH_ADDR && (p->search_off >> HS_LOG_PALLOC_CHUNK_BYTES) == t->chunk)
		search = (int)((p->search_off >> HS_PAGE_SHIFT) & (HS_PALLOC_CHUNK_PAGES - 1));
	for (int row = 0; row < GRID_ROWS; row++) {
		int y = gy + row;
		hs_tui_printf(t, y, r.x, 4, hs_tui_attr(t, HS_C_DIM), "%3d", row * GRID_COLS);
		for (int col = 0; col < GRID_COLS; col++) {
			int pg = row * GRID_COLS + col, color;
			int g = page_glyph(d, (unsigned)pg, &color);
			if (pg == search) {
				g = HS_G_PG_SEARCH;
				color = HS_C_SEARCH;
			}
			int attr = hs_tui_attr(t, color);
			if (pg == t->page)
				attr = hs_tui_attr(t, HS_C_CURSOR);
			int x = gx + col * cw;
			hs_tui_glyphs(t, y, x, g, cw, attr);
			hs_tui_region_add(t, y, x, x + cw, HS_R_PAGE, (uint64_t)pg);
		}
	}
	int ix = gx + GRID_COLS * cw + 2;
	draw_info(t, d, gy, ix, r.x + r.w - ix, GRID_ROWS);
	if (gy + GRID_ROWS < r.y + r.h)
		draw_legend(t, r.y + r.h - 1, r.x, r.w);
}
