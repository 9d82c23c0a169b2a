/*
 * tui/spans.c — the spans pane: the page map of one arena coloured by span
 * state and size class, and every span in address order with its state,
 * class, pages and allocCount/nelems, filtered by state or class.
 *
 * The model keeps spans in a hash table (core/model.h); the pane works from a
 * sorted copy (hs_tui_span_cache) rebuilt when the model has moved on, at most
 * four times a second while it keeps moving (live), so that a frame with a
 * hundred thousand spans does not sort them every 50 ms. The same pass sums
 * what the statistics pane's RSS bar needs: bytes of live objects and of free
 * slots in small-object spans, and bytes of large-object spans.
 *
 * A span's state is where its last event put it: new (just made, not filed),
 * in an mcache, partial or full in its mcentral (HS_MODEL_SPAN_*); spans of
 * class 0 hold one large object. Pages allocated in no span belong to a
 * page cache or to the scavenger between taking and releasing them.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <stdlib.h>
#include <string.h>

#include <ncursesw/curses.h>

#define HS_TUI_INTERNAL
#include "sizeclasses.h"
#include "tui.h"

#define REFRESH_NS 250000000u
#define MAX_SEGS 256
#define CHUNKS_PER_ARENA (HS_HEAP_ARENA_BYTES >> HS_LOG_PALLOC_CHUNK_BYTES)

/* Page kinds of the page map, in the order ties are broken. */
enum { PK_NONE, PK_FREE, PK_SCAV, PK_NOSPAN, PK_NEW, PK_CACHED, PK_PARTIAL, PK_FULL, PK_LARGE, PK_COUNT };

static const char *const filter_names[HS_SF_COUNT] = { "all", "new", "cached", "partial", "full", "large" };

static unsigned span_size_class(const hs_model_span *s)
{
	return (unsigned)s->spanclass >> 1;
}

static int span_kind(const hs_model_span *s)
{
	if (span_size_class(s) == 0)
		return PK_LARGE;
	switch (s->where) {
	case HS_MODEL_SPAN_CACHED:
		return PK_CACHED;
	case HS_MODEL_SPAN_PARTIAL:
		return PK_PARTIAL;
	case HS_MODEL_SPAN_FULL:
		return PK_FULL;
	default:
		return PK_NEW;
	}
}

static const char *kind_name(int k)
{
	static const char *const n[PK_COUNT] = { "-", "free", "released", "no span", "new", "cached", "partial",
						 "full", "large" };
	return n[k];
}

static int passes(const hs_tui *t, const hs_model_span *s)
{
	static const int want[HS_SF_COUNT] = { -1, PK_NEW, PK_CACHED, PK_PARTIAL, PK_FULL, PK_LARGE };
	if (t->span_filter_state != HS_SF_ALL && span_kind(s) != want[t->span_filter_state])
		return 0;
	return t->span_filter_class < 0 || (int)span_size_class(s) == t->span_filter_class;
}

/* --- the sorted copy ------------------------------------------------------------ */

typedef struct collect {
	hs_tui_span_cache *c;
} collect;

static void collect_one(const hs_model_span *s, void *arg)
{
	hs_tui_span_cache *c = ((collect *)arg)->c;
	if (c->n < c->cap)
		c->v[c->n++] = *s;
}

static int cmp_base(const void *x, const void *y)
{
	uintptr_t a = ((const hs_model_span *)x)->base, b = ((const hs_model_span *)y)->base;
	return a < b ? -1 : a > b;
}

/* Radix sort by page number, 16 bits a pass, over the bits that differ; a
 * comparison sort below a few thousand spans, where clearing the counts
 * would cost more than sorting. */
static void sort_spans(hs_model_span *v, size_t n, hs_model_span *tmp)
{
	if (n < 4096) {
		qsort(v, n, sizeof *v, cmp_base);
		return;
	}
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (size_t i = 0; i < n; i++) {
		uintptr_t p = v[i].base >> HS_PAGE_SHIFT;
		lo = p < lo ? p : lo;
		hi = p > hi ? p : hi;
	}
	static size_t count[1 << 16];
	hs_model_span *src = v, *dst = tmp;
	for (unsigned shift = 0; shift < 64 && ((hi - lo) >> shift) != 0; shift += 16) {
		memset(count, 0, sizeof count);
		for (size_t i = 0; i < n; i++)
			count[(((src[i].base >> HS_PAGE_SHIFT) - lo) >> shift) & 0xffff]++;
		size_t sum = 0;
		for (size_t k = 0; k < (1 << 16); k++) {
			size_t c = count[k];
			count[k] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(((src[i].base >> HS_PAGE_SHIFT) - lo) >> shift) & 0xffff]++] = src[i];
		hs_model_span *x = src;
		src = dst;
		dst = x;
	}
	if (src != v)
		memcpy(v, src, n * sizeof *v);
}

static void refilter(hs_tui *t)
{
	hs_tui_span_cache *c = &t->spans;
	if (c->fcap < c->n + 1) {
		size_t *f = realloc(c->filtered, (c->n + 1) * sizeof *f);
		if (f == NULL) {
			c->nfiltered = 0;
			return;
		}
		c->filtered = f;
		c->fcap = c->n + 1;
	}
	c->nfiltered = 0;
	for (size_t i = 0; i < c->n; i++)
		if (passes(t, &c->v[i]))
			c->filtered[c->nfiltered++] = i;
	c->filter_state = t->span_filter_state;
	c->filter_class = t->span_filter_class;
	/* Keep the selection on the same span, or the next one by address. */
	size_t lo = 0, hi = c->nfiltered;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->v[c->filtered[mid]].base < t->span_sel_base)
			lo = mid + 1;
		else
			hi = mid;
	}
	t->span_sel = lo < c->nfiltered ? lo : c->nfiltered > 0 ? c->nfiltered - 1 : 0;
	if (c->nfiltered > 0)
		t->span_sel_base = c->v[c->filtered[t->span_sel]].base;
}

void hs_tui_spans_refresh(hs_tui *t, int force)
{
	hs_tui_span_cache *c = &t->spans;
	if (t->h == NULL)
		return;
	uint64_t ev = hs_model_events(t->m), now = hs_tui_now_ns();
	int stale = c->heap != t->h || c->events != ev;
	if (stale && !force && c->heap == t->h && now - c->built_ns < REFRESH_NS)
		stale = 0;
	if (stale) {
		size_t want = t->h->nspans;
		if (c->cap < want || c->cap > 4 * want + 4096) {
			size_t ncap = want + want / 4 + 1024;
			hs_model_span *v = realloc(c->v, 2 * ncap * sizeof *v); /* second half: the sort's buffer */
			if (v == NULL)
				return;
			c->v = v;
			c->cap = ncap;
		}
		c->n = 0;
		collect k = { c };
		hs_model_spans(t->h, collect_one, &k);
		sort_spans(c->v, c->n, c->v + c->cap);
		c->live_bytes = c->slot_bytes = c->large_bytes = 0;
		for (size_t i = 0; i < c->n; i++) {
			const hs_model_span *s = &c->v[i];
			unsigned sc = span_size_class(s);
			if (sc == 0 || sc >= HS_NUM_SIZE_CLASSES) {
				c->large_bytes += (uint64_t)s->npages << HS_PAGE_SHIFT;
				continue;
			}
			uint64_t size = hs_class_to_size[sc], nelems = hs_class_nelems(sc);
			uint64_t used = s->alloc_count < nelems ? s->alloc_count : nelems;
			c->live_bytes += used * size;
			c->slot_bytes += (nelems - used) * size;
		}
		c->heap = t->h;
		c->events = ev;
		c->built_ns = now;
		refilter(t);
	} else if (c->filter_state != t->span_filter_state || c->filter_class != t->span_filter_class) {
		refilter(t);
	}
}

void hs_tui_spans_free(hs_tui *t)
{
	free(t->spans.v);
	free(t->spans.filtered);
	memset(&t->spans, 0, sizeof t->spans);
}

const hs_model_span *hs_tui_span_at(hs_tui *t, uintptr_t addr)
{
	return t->h != NULL ? hs_model_span_of(t->h, addr) : NULL;
}

void hs_tui_spans_select(hs_tui *t, size_t i)
{
	hs_tui_span_cache *c = &t->spans;
	if (c->nfiltered == 0)
		return;
	if (i >= c->nfiltered)
		i = c->nfiltered - 1;
	t->span_sel = i;
	t->span_sel_base = c->v[c->filtered[i]].base;
	t->arena = t->span_sel_base >> HS_LOG_HEAP_ARENA_BYTES;
	t->arena_valid = 1;
}

int hs_tui_spans_goto(hs_tui *t, uintptr_t addr)
{
	const hs_model_span *s = hs_tui_span_at(t, addr);
	if (s == NULL)
		return -1;
	if (!passes(t, s)) {
		t->span_filter_state = HS_SF_ALL;
		t->span_filter_class = -1;
	}
	t->span_sel_base = s->base;
	hs_tui_spans_refresh(t, 1);
	refilter(t);
	hs_tui_spans_select(t, t->span_sel);
	return 0;
}

/* The arenas over the heap's in-use chunks, ascending; returns how many. */
static size_t arenas(const hs_model_heap *h, uintptr_t *out, size_t max)
{
	hs_tui_seg segs[MAX_SEGS];
	size_t n = hs_tui_heap_segs(h, 0, UINTPTR_MAX, segs, MAX_SEGS), k = 0;
	for (size_t i = 0; i < n; i++) {
		uintptr_t a = hs_chunk_base(segs[i].lo) >> HS_LOG_HEAP_ARENA_BYTES;
		uintptr_t b = (hs_chunk_base(segs[i].hi - 1)) >> HS_LOG_HEAP_ARENA_BYTES;
		for (uintptr_t x = a; x <= b && k < max; x++)
			if (k == 0 || out[k - 1] != x)
				out[k++] = x;
	}
	return k;
}

int hs_tui_spans_key(hs_tui *t, int action)
{
	if (t->h == NULL)
		return 0;
	hs_tui_spans_refresh(t, 0);
	hs_tui_span_cache *c = &t->spans;
	int page = t->lay.main.h / 2 > 1 ? t->lay.main.h / 2 : 1;
	switch (action) {
	case HS_A_UP:
		hs_tui_spans_select(t, t->span_sel > 0 ? t->span_sel - 1 : 0);
		return 1;
	case HS_A_DOWN:
		hs_tui_spans_select(t, t->span_sel + 1);
		return 1;
	case HS_A_PGUP:
		hs_tui_spans_select(t, t->span_sel > (size_t)page ? t->span_sel - (size_t)page : 0);
		return 1;
	case HS_A_PGDN:
		hs_tui_spans_select(t, t->span_sel + (size_t)page);
		return 1;
	case HS_A_HOME:
		hs_tui_spans_select(t, 0);
		return 1;
	case HS_A_END:
		hs_tui_spans_select(t, c->nfiltered > 0 ? c->nfiltered - 1 : 0);
		return 1;
	case HS_A_LEFT:
	case HS_A_RIGHT: {
		uintptr_t list[4096];
		size_t n = arenas(t->h, list, 4096), i = 0;
		if (n == 0)
			return 1;
		while (i < n && list[i] < t->arena)
			i++;
		if (action == HS_A_RIGHT)
			i = i < n && list[i] == t->arena ? i + 1 : i;
		else
			i = i > 0 ? i - 1 : 0;
		if (i >= n)
			i = n - 1;
		t->arena = list[i];
		t->arena_valid = 1;
		/* The selection follows: the first shown span in the arena. */
		uintptr_t base = list[i] << HS_LOG_HEAP_ARENA_BYTES;
		for (size_t k = 0; k < c->nfiltered; k++) {
			uintptr_t b = c->v[c->filtered[k]].base;
			if (b >= base && b < base + HS_HEAP_ARENA_BYTES) {
				t->span_sel = k;
				t->span_sel_base = b;
				break;
			}
		}
		return 1;
	}
	case HS_A_ENTER:
		if (c->nfiltered > 0 && hs_tui_chunk_goto(t, c->v[c->filtered[t->span_sel]].base) == 0)
			t->pane = HS_PANE_CHUNKS;
		return 1;
	case HS_A_FILTER_STATE:
		t->span_filter_state = (t->span_filter_state + 1) % HS_SF_COUNT;
		return 1;
	case HS_A_BACK:
		t->span_filter_state = HS_SF_ALL;
		t->span_filter_class = -1;
		return 1;
	}
	return 0;
}

/* --- drawing -------------------------------------------------------------------- */

static int kind_glyph(int k)
{
	static const int g[PK_COUNT] = { HS_G_BLANK,  HS_G_PG_FREE,   HS_G_PG_SCAV,    HS_G_SP_NOSPAN, HS_G_SP_NEW,
					 HS_G_SP_CACHED, HS_G_SP_PARTIAL, HS_G_SP_FULL, HS_G_SP_LARGE };
	return g[k];
}

static int kind_attr(const hs_tui *t, int k, unsigned sc)
{
	switch (k) {
	case PK_FREE:
		return hs_tui_attr(t, HS_C_FREE);
	case PK_SCAV:
		return hs_tui_attr(t, HS_C_SCAV);
	case PK_NOSPAN:
		return hs_tui_attr(t, HS_C_WARN);
	case PK_LARGE:
		return hs_tui_attr(t, HS_C_LABEL);
	case PK_NONE:
		return 0;
	default:
		return hs_tui_class_attr(t, sc);
	}
}

/* Page kinds and classes of one arena: bitmaps first, then spans over them. */
static void arena_pages(hs_tui *t, uintptr_t arena, uint8_t *kind, uint8_t *cls, uint8_t *sel)
{
	uintptr_t base = arena << HS_LOG_HEAP_ARENA_BYTES, limit = base + HS_HEAP_ARENA_BYTES;
	memset(kind, PK_NONE, HS_PAGES_PER_ARENA);
	memset(cls, 0, HS_PAGES_PER_ARENA);
	memset(sel, 0, HS_PAGES_PER_ARENA);
	for (uintptr_t k = 0; k < CHUNKS_PER_ARENA; k++) {
		uintptr_t a = base + (k << HS_LOG_PALLOC_CHUNK_BYTES);
		if (!hs_addr_ranges_contains(&t->h->pages.in_use, hs_off(a)))
			continue;
		const hs_palloc_data *d = hs_pagealloc_try_chunk_of(&t->h->pages, hs_chunk_index(a));
		if (d == NULL)
			continue;
		for (unsigned p = 0; p < HS_PALLOC_CHUNK_PAGES; p++) {
			uint8_t v = hs_page_bits_get(&d->alloc, p) ? PK_NOSPAN
				    : hs_page_bits_get(&d->scavenged, p) ? PK_SCAV
									  : PK_FREE;
			kind[k * HS_PALLOC_CHUNK_PAGES + p] = v;
		}
	}
	const hs_tui_span_cache *c = &t->spans;
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->v[mid].base < base)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0)
		lo--; /* a span from the arena before may reach in */
	for (size_t i = lo; i < c->n && c->v[i].base < limit; i++) {
		const hs_model_span *s = &c->v[i];
		uintptr_t sb = s->base, se = s->base + ((uintptr_t)s->npages << HS_PAGE_SHIFT);
		if (se <= base)
			continue;
		if (sb < base)
			sb = base;
		if (se > limit)
			se = limit;
		int k = span_kind(s), on = s->base == t->span_sel_base;
		for (uintptr_t a = sb; a < se; a += HS_PAGE_SIZE) {
			size_t p = (a - base) >> HS_PAGE_SHIFT;
			kind[p] = (uint8_t)k;
			cls[p] = (uint8_t)span_size_class(s);
			sel[p] = (uint8_t)on;
		}
	}
}

static void draw_map(hs_tui *t, int y, int x, int w, int rows)
{
	static uint8_t kind[HS_PAGES_PER_ARENA], cls[HS_PAGES_PER_ARENA], sel[HS_PAGES_PER_ARENA];
	arena_pages(t, t->arena, kind, cls, sel);
	int label = 13;
	int cols = 1;
	while ((uintptr_t)(cols * 2) * (uintptr_t)rows <= HS_PAGES_PER_ARENA && cols * 2 <= w - label)
		cols *= 2;
	size_t per = HS_PAGES_PER_ARENA / ((size_t)rows * (size_t)cols);
	uintptr_t base = t->arena << HS_LOG_HEAP_ARENA_BYTES;
	for (int r = 0; r < rows; r++) {
		hs_tui_printf(t, y + r, x, label, hs_tui_attr(t, HS_C_DIM), "%#lx",
			      (unsigned long)(base + ((uintptr_t)r * (uintptr_t)cols * per << HS_PAGE_SHIFT)));
		for (int c = 0; c < cols; c++) {
			size_t p0 = ((size_t)r * (size_t)cols + (size_t)c) * per;
			unsigned count[PK_COUNT] = { 0 };
			int best = PK_NONE, on = 0;
			for (size_t p = p0; p < p0 + per; p++) {
				count[kind[p]]++;
				on |= sel[p];
			}
			for (int k = 0; k < PK_COUNT; k++)
				if (count[k] > count[best])
					best = k;
			unsigned sc = 0;
			for (size_t p = p0; p < p0 + per; p++)
				if (kind[p] == best) {
					sc = cls[p];
					break;
				}
			int attr = kind_attr(t, best, sc) | (on ? (int)A_REVERSE : 0);
			int cx = x + label + c;
			hs_tui_glyph(t, y + r, cx, kind_glyph(best), attr);
			hs_tui_region_add(t, y + r, cx, cx + 1, HS_R_CHUNK_ROW, base + (p0 << HS_PAGE_SHIFT));
		}
	}
}

static void draw_legend(hs_tui *t, int y, int x, int w)
{
	static const int items[] = { PK_FULL, PK_PARTIAL, PK_CACHED, PK_NEW, PK_LARGE, PK_NOSPAN, PK_FREE, PK_SCAV };
	int cx = x;
	for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
		const char *name = kind_name(items[i]);
		int need = 2 + (int)strlen(name) + 1;
		if (cx + need > x + w)
			break;
		hs_tui_glyph(t, y, cx, kind_glyph(items[i]), kind_attr(t, items[i], 5));
		cx += 2 + hs_tui_text(t, y, cx + 2, need, hs_tui_attr(t, HS_C_DIM), name) + 1;
	}
}

static void draw_row(hs_tui *t, const hs_model_span *s, int y, int x, int w, int selected)
{
	unsigned sc = span_size_class(s);
	int attr = selected ? hs_tui_attr(t, HS_C_CURSOR) : 0;
	if (selected)
		hs_tui_fill(t, y, x, w, attr);
	char size[16] = "-", occ[24] = "1/1";
	unsigned nelems = 1, count = 1;
	if (sc != 0 && sc < HS_NUM_SIZE_CLASSES) {
		nelems = hs_class_nelems(sc);
		count = s->alloc_count;
		snprintf(size, sizeof size, "%u", hs_class_to_size[sc]);
		snprintf(occ, sizeof occ, "%u/%u", count, nelems);
	}
	int n = hs_tui_printf(t, y, x, w, attr, "%c %#14lx %6u %5u %6s %-8s %11s ", selected ? '>' : ' ',
			      (unsigned long)s->base, s->npages, sc, size, kind_name(span_kind(s)), occ);
	int bw = w - n > 20 ? 20 : w - n;
	if (bw <= 2)
		return;
	int full = (int)((uint64_t)(count < nelems ? count : nelems) * (uint64_t)bw / nelems);
	/* Colour pairs do not combine: the selected row keeps the cursor's. */
	hs_tui_glyphs(t, y, x + n, HS_G_BAR_LIVE, full, selected ? attr : hs_tui_class_attr(t, sc));
	hs_tui_glyphs(t, y, x + n + full, HS_G_PG_FREE, bw - full, selected ? attr : hs_tui_attr(t, HS_C_DIM));
}

void hs_tui_spans_draw(hs_tui *t, hs_tui_rect r)
{
	if (t->h == NULL) {
		hs_tui_title(t, r, "Spans", "no heap yet");
		return;
	}
	hs_tui_spans_refresh(t, 0);
	hs_tui_span_cache *c = &t->spans;
	if (!t->arena_valid) {
		uintptr_t list[1];
		if (c->nfiltered > 0)
			hs_tui_spans_select(t, t->span_sel);
		else if (arenas(t->h, list, 1) == 1) {
			t->arena = list[0];
			t->arena_valid = 1;
		}
	}
	char detail[200], cls[16] = "all";
	if (t->span_filter_class >= 0)
		snprintf(cls, sizeof cls, "%d", t->span_filter_class);
	uintptr_t abase = t->arena << HS_LOG_HEAP_ARENA_BYTES;
	snprintf(detail, sizeof detail, "%zu spans, %zu shown (state %s, class %s)   arena [%#lx, %#lx)", c->n,
		 c->nfiltered, filter_names[t->span_filter_state], cls, (unsigned long)abase,
		 (unsigned long)(abase + HS_HEAP_ARENA_BYTES));
	hs_tui_title(t, r, "Spans", detail);
	/* Map rows: a chunk a row when there is room, else two or four. */
	int rows = CHUNKS_PER_ARENA;
	while (rows > 2 && r.h < rows + 12)
		rows /= 2;
	int y = r.y + 1;
	if (t->arena_valid)
		draw_map(t, y, r.x, r.w, rows);
	y += rows;
	draw_legend(t, y, r.x, r.w);
	y++;
	hs_tui_printf(t, y, r.x, r.w, hs_tui_attr(t, HS_C_LABEL), "  %14s %6s %5s %6s %-8s %11s  %s", "base", "pages",
		      "class", "size", "state", "alloc/nelem", "occupancy");
	y++;
	int list_h = r.y + r.h - 1 - y;
	if (list_h < 1)
		return;
	if (t->span_sel < t->span_top)
		t->span_top = t->span_sel;
	if (t->span_sel >= t->span_top + (size_t)list_h)
		t->span_top = t->span_sel - (size_t)list_h + 1;
	if (t->span_top + (size_t)list_h > c->nfiltered)
		t->span_top = c->nfiltered > (size_t)list_h ? c->nfiltered - (size_t)list_h : 0;
	for (int i = 0; i < list_h && t->span_top + (size_t)i < c->nfiltered; i++) {
		size_t k = t->span_top + (size_t)i;
		draw_row(t, &c->v[c->filtered[k]], y + i, r.x, r.w, k == t->span_sel);
		hs_tui_region_add(t, y + i, r.x, r.x + r.w, HS_R_SPAN_ROW, k);
	}
	if (c->nfiltered == 0)
		hs_tui_text(t, y, r.x + 2, r.w - 2, hs_tui_attr(t, HS_C_DIM), "no span matches the filter");
	hs_tui_text(t, r.y + r.h - 1, r.x, r.w, hs_tui_attr(t, HS_C_DIM),
		    "up/down: span  left/right: arena  f: state  c: class  Bksp: no filter  Enter: its chunk");
}
