/*
 * tui/summary.c — the summary levels pane: the page allocator's radix tree,
 * one row per level, over the heap's in-use range. See tui/tui.h.
 *
 * Columns are addresses. The in-use chunks (or, zoomed, those under one
 * entry) are laid across the row by hs_tui_colmap: a chunk per cell or
 * several; every level is drawn over the same cells, so an entry of level l
 * spans the columns of the chunks it covers and its children sit right under
 * it. A cell shows the summary of the entries over its chunks (one entry, or
 * several merged with hs_palloc_sum_merge, Go's mergeSummaries), shaded by its
 * largest free run over the pages it covers (hs_tui_shade); the row below marks
 * an entry that starts (>) or ends (<) with free pages.
 *
 * The cursor is an entry (level, index). Left and right move to the entry of
 * the neighbouring cell, up to the parent, down to the first child in use.
 * Enter zooms: the cursor's entry becomes the root and its chunks fill the
 * row, so its 8 children get an eighth of the width each; at the leaf, Enter
 * opens the chunk. Backspace zooms out one level.
 *
 * Reading summaries: only entries over in-use chunks are read; the arrays are
 * committed there (pageAlloc.grow commits every level over what it grows).
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <string.h>

#include <ncursesw/curses.h>

#define HS_TUI_INTERNAL
#include "tui.h"

#define MAX_SEGS 256
#define MAX_CELLS 1024
#define LABEL_W 8

typedef struct row_ctx {
	hs_tui_seg segs[MAX_SEGS];
	size_t nsegs;
	hs_tui_cell cells[MAX_CELLS];
	int ncells;
	int x; /* screen column of cell x 0 */
} row_ctx;

size_t hs_tui_heap_segs(const hs_model_heap *h, uintptr_t lo, uintptr_t hi, hs_tui_seg *segs, size_t max)
{
	const hs_addr_ranges *r = &h->pages.in_use;
	size_t n = 0;
	for (size_t k = 0; k < r->len && n < max; k++) {
		uintptr_t a = r->ranges[k].base >> HS_LOG_PALLOC_CHUNK_BYTES;
		uintptr_t b = (r->ranges[k].limit + HS_PALLOC_CHUNK_BYTES - 1) >> HS_LOG_PALLOC_CHUNK_BYTES;
		if (a < lo)
			a = lo;
		if (b > hi)
			b = hi;
		if (a >= b)
			continue;
		if (n > 0 && segs[n - 1].hi == a)
			segs[n - 1].hi = b;
		else
			segs[n++] = (hs_tui_seg){ a, b };
	}
	return n;
}

static unsigned shift_of(int level)
{
	return HS_SUMMARY_LEVEL_BITS * (unsigned)(HS_LEAF_LEVEL - level);
}

/* Chunk range [lo, hi) under entry idx of level. */
static void entry_chunks(int level, uintptr_t idx, uintptr_t *lo, uintptr_t *hi)
{
	*lo = idx << shift_of(level);
	*hi = (idx + 1) << shift_of(level);
}

static void layout(hs_tui *t, row_ctx *c)
{
	uintptr_t lo = 0, hi = UINTPTR_MAX;
	if (t->sum_root_level >= 0)
		entry_chunks(t->sum_root_level, t->sum_root_idx, &lo, &hi);
	c->nsegs = hs_tui_heap_segs(t->h, lo, hi, c->segs, MAX_SEGS);
	if (c->nsegs == 0 && t->sum_root_level >= 0) {
		/* The root left the heap (another heap, an earlier time): zoom out. */
		t->sum_root_level = -1;
		c->nsegs = hs_tui_heap_segs(t->h, 0, UINTPTR_MAX, c->segs, MAX_SEGS);
	}
	int w = t->lay.main.w - LABEL_W;
	c->x = t->lay.main.x + LABEL_W;
	c->ncells = hs_tui_colmap(c->segs, c->nsegs, w, c->cells, MAX_CELLS);
}

static int is_sep(const hs_tui_cell *c)
{
	return c->c0 == c->c1;
}

/* The first and last cell showing any chunk of [lo, hi), or -1. */
static int first_cell(const row_ctx *c, uintptr_t lo, uintptr_t hi)
{
	for (int i = 0; i < c->ncells; i++)
		if (!is_sep(&c->cells[i]) && c->cells[i].c0 < hi && c->cells[i].c1 > lo)
			return i;
	return -1;
}

static int last_cell(const row_ctx *c, uintptr_t lo, uintptr_t hi)
{
	for (int i = c->ncells - 1; i >= 0; i--)
		if (!is_sep(&c->cells[i]) && c->cells[i].c0 < hi && c->cells[i].c1 > lo)
			return i;
	return -1;
}

static int min_level(const hs_tui *t)
{
	return t->sum_root_level < 0 ? 0 : t->sum_root_level;
}

/* Puts the cursor back on a shown entry if it is not on one. */
static void fix_cursor(hs_tui *t, const row_ctx *c)
{
	if (c->ncells == 0)
		return;
	if (t->sum_valid && t->sum_level >= min_level(t) && t->sum_level <= HS_LEAF_LEVEL) {
		uintptr_t lo, hi;
		entry_chunks(t->sum_level, t->sum_idx, &lo, &hi);
		if (first_cell(c, lo, hi) >= 0)
			return;
	}
	int i = first_cell(c, 0, UINTPTR_MAX);
	t->sum_level = min_level(t);
	t->sum_idx = c->cells[i].c0 >> shift_of(t->sum_level);
	t->sum_valid = 1;
}

void hs_tui_summary_goto_chunk(hs_tui *t, uintptr_t ci)
{
	t->sum_root_level = -1;
	t->sum_level = HS_LEAF_LEVEL;
	t->sum_idx = ci;
	t->sum_valid = 1;
}

/* The cursor onto the entry (at the cursor's level) of cell i. */
static void cursor_to_cell(hs_tui *t, const row_ctx *c, int i)
{
	if (i < 0 || i >= c->ncells)
		return;
	while (i < c->ncells && is_sep(&c->cells[i]))
		i++;
	if (i < c->ncells)
		t->sum_idx = c->cells[i].c0 >> shift_of(t->sum_level);
}

static void zoom_in(hs_tui *t, row_ctx *c)
{
	if (t->sum_level == HS_LEAF_LEVEL) {
		t->chunk = t->sum_idx;
		t->chunk_valid = 1;
		t->page = -1;
		t->pane = HS_PANE_CHUNKS;
		return;
	}
	t->sum_root_level = t->sum_level;
	t->sum_root_idx = t->sum_idx;
	layout(t, c);
	uintptr_t lo, hi;
	entry_chunks(t->sum_level, t->sum_idx, &lo, &hi);
	int i = first_cell(c, lo, hi);
	t->sum_level++;
	if (i >= 0)
		t->sum_idx = (c->cells[i].c0 > lo ? c->cells[i].c0 : lo) >> shift_of(t->sum_level);
}

static void zoom_out(hs_tui *t)
{
	if (t->sum_root_level < 0) {
		if (t->sum_level > 0) {
			t->sum_level--;
			t->sum_idx >>= HS_SUMMARY_LEVEL_BITS;
		}
		return;
	}
	t->sum_level = t->sum_root_level;
	t->sum_idx = t->sum_root_idx;
	if (t->sum_root_level == 0) {
		t->sum_root_level = -1;
	} else {
		t->sum_root_level--;
		t->sum_root_idx >>= HS_SUMMARY_LEVEL_BITS;
	}
}

int hs_tui_summary_key(hs_tui *t, int action)
{
	if (t->h == NULL)
		return 0;
	row_ctx c;
	layout(t, &c);
	fix_cursor(t, &c);
	if (c.ncells == 0)
		return 0;
	uintptr_t lo, hi;
	entry_chunks(t->sum_level, t->sum_idx, &lo, &hi);
	int first = first_cell(&c, lo, hi), last = last_cell(&c, lo, hi);
	switch (action) {
	case HS_A_LEFT:
		for (int i = first - 1; i >= 0; i--)
			if (!is_sep(&c.cells[i])) {
				cursor_to_cell(t, &c, i);
				break;
			}
		return 1;
	case HS_A_RIGHT:
		cursor_to_cell(t, &c, last + 1);
		return 1;
	case HS_A_PGUP:
		cursor_to_cell(t, &c, first - 8 > 0 ? first - 8 : 0);
		return 1;
	case HS_A_PGDN:
		cursor_to_cell(t, &c, last + 8 < c.ncells ? last + 8 : c.ncells - 1);
		return 1;
	case HS_A_HOME:
		cursor_to_cell(t, &c, 0);
		return 1;
	case HS_A_END:
		cursor_to_cell(t, &c, last_cell(&c, 0, UINTPTR_MAX));
		return 1;
	case HS_A_UP:
		if (t->sum_level > min_level(t)) {
			t->sum_level--;
			t->sum_idx >>= HS_SUMMARY_LEVEL_BITS;
		}
		return 1;
	case HS_A_DOWN:
		if (t->sum_level < HS_LEAF_LEVEL) {
			uintptr_t ch = c.cells[first].c0 > lo ? c.cells[first].c0 : lo;
			t->sum_level++;
			t->sum_idx = ch >> shift_of(t->sum_level);
		}
		return 1;
	case HS_A_ENTER:
		zoom_in(t, &c);
		return 1;
	case HS_A_BACK:
		zoom_out(t);
		return 1;
	}
	return 0;
}

void hs_tui_summary_click(hs_tui *t, uint64_t value, int dbl)
{
	int level = (int)(value >> 56);
	if (level < min_level(t) || level > HS_LEAF_LEVEL)
		return;
	t->sum_level = level;
	t->sum_idx = (uintptr_t)(value & ((UINT64_C(1) << 56) - 1));
	t->sum_valid = 1;
	if (dbl)
		hs_tui_summary_key(t, HS_A_ENTER);
}

/* --- drawing ------------------------------------------------------------------ */

static int shade_color(int g)
{
	switch (g) {
	case HS_G_SH_FULL:
		return HS_C_FULL;
	case HS_G_SH_Q1:
		return HS_C_LOW;
	case HS_G_SH_Q2:
		return HS_C_MID;
	case HS_G_SH_Q3:
		return HS_C_HIGH;
	default:
		return HS_C_FREE;
	}
}

/* The summary of the entries of level l over chunks [c0, c1). */
static hs_palloc_sum cell_sum(const hs_pagealloc *p, int l, uintptr_t c0, uintptr_t c1, uint64_t *cover)
{
	unsigned sh = shift_of(l);
	uintptr_t a = c0 >> sh, b = (c1 - 1) >> sh;
	*cover = (uint64_t)(b - a + 1) << hs_level_log_pages((unsigned)l);
	if (a == b)
		return p->summary[l][a];
	return hs_palloc_sum_merge(&p->summary[l][a], (unsigned)(b - a + 1), hs_level_log_pages((unsigned)l));
}

static const char *size_label(unsigned log_bytes, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	snprintf(buf, len, "%u%c", 1u << (log_bytes % 10), units[log_bytes / 10]);
	return buf;
}

static void draw_level(hs_tui *t, const row_ctx *c, int l, int y, int marks_y)
{
	const hs_pagealloc *p = &t->h->pages;
	char sz[16];
	hs_tui_printf(t, y, t->lay.main.x, LABEL_W, hs_tui_attr(t, HS_C_LABEL), "L%d %s", l,
		      size_label(hs_level_shift((unsigned)l), sz, sizeof sz));
	unsigned sh = shift_of(l);
	uintptr_t clo = 0, chi = 0;
	int cursor_row = l == t->sum_level;
	if (cursor_row)
		entry_chunks(l, t->sum_idx, &clo, &chi);
	for (int i = 0; i < c->ncells; i++) {
		const hs_tui_cell *cell = &c->cells[i];
		int x = c->x + cell->x;
		if (is_sep(cell)) {
			hs_tui_glyph(t, y, x, HS_G_SEP, hs_tui_attr(t, HS_C_DIM));
			continue;
		}
		uint64_t cover;
		hs_palloc_sum s = cell_sum(p, l, cell->c0, cell->c1, &cover);
		int g = hs_tui_shade(hs_palloc_sum_max(s), cover);
		int attr = hs_tui_attr(t, shade_color(g));
		if (cursor_row && cell->c0 < chi && cell->c1 > clo)
			attr = hs_tui_attr(t, HS_C_CURSOR);
		hs_tui_glyphs(t, y, x, g, cell->w, attr);
		hs_tui_region_add(t, y, x, x + cell->w, HS_R_SUMMARY, (uint64_t)l << 56 | (cell->c0 >> sh));
		if (marks_y < 0)
			continue;
		/* Marks: on the first cell of the entry run for start, the last for end. */
		int first = i == 0 || is_sep(&c->cells[i - 1]) || ((c->cells[i - 1].c1 - 1) >> sh) != (cell->c0 >> sh);
		int last = i + 1 == c->ncells || is_sep(&c->cells[i + 1]) || (c->cells[i + 1].c0 >> sh) != ((cell->c1 - 1) >> sh);
		int ms = first && hs_palloc_sum_start(s) > 0, me = last && hs_palloc_sum_end(s) > 0;
		int mattr = hs_tui_attr(t, HS_C_FREE);
		if (ms && me && cell->w == 1)
			hs_tui_glyph(t, marks_y, x, HS_G_MARK_BOTH, mattr);
		else {
			if (ms)
				hs_tui_glyph(t, marks_y, x, HS_G_MARK_START, mattr);
			if (me)
				hs_tui_glyph(t, marks_y, x + cell->w - 1, HS_G_MARK_END, mattr);
		}
	}
}

static void draw_cursor_info(hs_tui *t, const row_ctx *c, int y, int w)
{
	const hs_pagealloc *p = &t->h->pages;
	int l = t->sum_level;
	unsigned shift = hs_level_shift((unsigned)l);
	uintptr_t base = hs_off_to_addr((uintptr_t)t->sum_idx << shift);
	uintptr_t limit = hs_off_to_addr(((uintptr_t)t->sum_idx + 1) << shift);
	uintptr_t lo, hi;
	entry_chunks(l, t->sum_idx, &lo, &hi);
	uintptr_t inuse = 0;
	for (size_t k = 0; k < c->nsegs; k++) {
		uintptr_t a = c->segs[k].lo > lo ? c->segs[k].lo : lo, b = c->segs[k].hi < hi ? c->segs[k].hi : hi;
		if (a < b)
			inuse += b - a;
	}
	hs_palloc_sum s = p->summary[l][t->sum_idx];
	uint64_t cover = (uint64_t)1 << hs_level_log_pages((unsigned)l);
	char sz[24];
	int lab = hs_tui_attr(t, HS_C_LABEL);
	hs_tui_printf(t, y, 0, w, lab, "cursor L%d index %#lx", l, (unsigned long)t->sum_idx);
	hs_tui_printf(t, y + 1, 0, w, 0, "  [%#lx, %#lx)  %s, %lu chunk%s, %lu in use", (unsigned long)base,
		      (unsigned long)limit, hs_tui_bytes((uint64_t)1 << shift, sz, sizeof sz), (unsigned long)(hi - lo),
		      hi - lo == 1 ? "" : "s", (unsigned long)inuse);
	hs_tui_printf(t, y + 2, 0, w, 0, "  start %u  max %u  end %u  of %llu pages  (largest free run %.1f%%)",
		      hs_palloc_sum_start(s), hs_palloc_sum_max(s), hs_palloc_sum_end(s), (unsigned long long)cover,
		      100.0 * hs_palloc_sum_max(s) / (double)cover);
}

static void draw_legend(hs_tui *t, int y, int x, int w)
{
	static const hs_tui_legend_item items[] = { { HS_G_SH_FULL, HS_C_FULL, "full" },	{ HS_G_SH_Q1, HS_C_LOW, "<1/4" },
		      { HS_G_SH_Q2, HS_C_MID, "<1/2" },		{ HS_G_SH_Q3, HS_C_HIGH, "<all" },
		      { HS_G_SH_FREE, HS_C_FREE, "free" },	{ HS_G_MARK_START, HS_C_FREE, "starts free" },
		      { HS_G_MARK_END, HS_C_FREE, "ends free" }, { HS_G_SEP, HS_C_DIM, "gap" } };
	hs_tui_legend(t, y, x, w, items, sizeof items / sizeof items[0]);
}

void hs_tui_summary_draw(hs_tui *t, hs_tui_rect r)
{
	if (t->h == NULL) {
		hs_tui_title(t, r, "Summary levels", "no heap yet: waiting for a process to start");
		return;
	}
	row_ctx c;
	layout(t, &c);
	fix_cursor(t, &c);
	char detail[160];
	uint64_t chunks = 0;
	for (size_t k = 0; k < c.nsegs; k++)
		chunks += c.segs[k].hi - c.segs[k].lo;
	if (t->sum_root_level < 0)
		snprintf(detail, sizeof detail, "whole heap: %llu chunks in %zu range%s   Enter zooms, Bksp out",
			 (unsigned long long)chunks, c.nsegs, c.nsegs == 1 ? "" : "s");
	else
		snprintf(detail, sizeof detail, "zoom L%d index %#lx: %llu chunks in use   Bksp zooms out",
			 t->sum_root_level, (unsigned long)t->sum_root_idx, (unsigned long long)chunks);
	hs_tui_title(t, r, "Summary levels", detail);
	if (c.ncells == 0) {
		hs_tui_text(t, r.y + 2, r.x, r.w, 0, "no chunk in use yet");
		return;
	}
	/* Rows: title, blank, a level row and a marks row per level (when they
	 * fit), blank, two cursor lines, legend. */
	int levels = HS_SUMMARY_LEVELS;
	int marks = r.h >= 2 + 2 * levels + 4;
	int gap = r.h >= 2 + 3 * levels + 5 ? 1 : 0;
	int y = r.y + 2;
	for (int l = 0; l < levels; l++) {
		draw_level(t, &c, l, y, marks ? y + 1 : -1);
		y += 1 + marks + gap;
	}
	if (y + 4 <= r.y + r.h)
		draw_cursor_info(t, &c, y + (y + 4 < r.y + r.h ? 1 : 0), r.w);
	draw_legend(t, r.y + r.h - 1, r.x, r.w);
}
