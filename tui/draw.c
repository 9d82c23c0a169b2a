/*
 * tui/draw.c — putting glyphs, colours and text on the screen.
 *
 * Every glyph and colour the panes use is a row of a table in tui/tui.h
 * (HS_TUI_GLYPHS, HS_TUI_COLORS); this file turns an id into what the terminal
 * can show. In a UTF-8 locale a glyph is its block, box or braille character,
 * drawn as a wide-character cell; otherwise its ASCII stand-in. With colours a
 * colour id is a colour pair; without (NO_COLOR, or a monochrome terminal) it
 * is the table's monochrome attribute (reverse, bold, dim) so that the cursor,
 * the tabs and errors still stand out.
 *
 * Everything is drawn on stdscr, ncurses' off-screen copy of the terminal;
 * tui/tui.c sends the frame with one doupdate.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include <ncursesw/curses.h>

#define HS_TUI_INTERNAL
#include "tui.h"

typedef struct glyph_def {
	const char *utf8;
	char ascii;
} glyph_def;

static const glyph_def glyphs[HS_G_COUNT] = {
#define HS_TUI_GLYPH_ROW_(ID, u, a, legend) [HS_G_##ID] = { u, a },
	HS_TUI_GLYPHS(HS_TUI_GLYPH_ROW_)
#undef HS_TUI_GLYPH_ROW_
};

/* Wide forms, converted once (the table holds UTF-8 so that it reads plainly). */
static wchar_t wide[HS_G_COUNT];

typedef struct color_def {
	short fg, bg;
	int mono;
} color_def;

static const color_def colors[HS_C_COUNT] = {
#define HS_TUI_COLOR_ROW_(ID, f, b, m) [HS_C_##ID] = { f, b, m },
	HS_TUI_COLORS(HS_TUI_COLOR_ROW_)
#undef HS_TUI_COLOR_ROW_
};

/* Eight sparkline steps above empty: the lower eighth blocks, or ASCII. */
static const wchar_t spark_w[] = L" \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588";
static const char spark_a[] = " _.-~=+*#";

static wchar_t utf8_to_wchar(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	if (p[0] < 0x80)
		return p[0];
	if ((p[0] & 0xe0) == 0xc0)
		return (wchar_t)((p[0] & 0x1f) << 6 | (p[1] & 0x3f));
	if ((p[0] & 0xf0) == 0xe0)
		return (wchar_t)((p[0] & 0x0f) << 12 | (p[1] & 0x3f) << 6 | (p[2] & 0x3f));
	return (wchar_t)((p[0] & 0x07) << 18 | (p[1] & 0x3f) << 12 | (p[2] & 0x3f) << 6 | (p[3] & 0x3f));
}

/* Colours for the size classes of the span page map: a ramp through the
 * 256-colour cube when there is one, else six colours in turn. */
static short class_color(unsigned sc, int colors256)
{
	static const short basic[] = { COLOR_RED, COLOR_GREEN, COLOR_YELLOW, COLOR_BLUE, COLOR_MAGENTA, COLOR_CYAN };
	if (!colors256)
		return basic[sc % 6];
	/* 6x6x6 cube (16..231): walk hue-like around it, skipping dark corners. */
	static const short ramp[] = { 196, 202, 208, 214, 220, 226, 190, 154, 118, 82,	46,  47,  48,  49,
				      50,  51,	45,  39,  33,  27,  21,	 57,  93,  129, 165, 201, 200, 199 };
	return ramp[(sc * 5) % (sizeof ramp / sizeof ramp[0])];
}

void hs_tui_draw_init(hs_tui *t)
{
	for (int g = 0; g < HS_G_COUNT; g++)
		wide[g] = utf8_to_wchar(glyphs[g].utf8);
	if (!t->color)
		return;
	/* -1 is the terminal's own colour, where use_default_colors allowed it. */
	short dfg = t->default_colors ? -1 : COLOR_WHITE, dbg = t->default_colors ? -1 : COLOR_BLACK;
	for (int c = 1; c < HS_C_COUNT; c++)
		init_pair((short)c, colors[c].fg < 0 ? dfg : colors[c].fg, colors[c].bg < 0 ? dbg : colors[c].bg);
	if (COLOR_PAIRS > HS_C_CLASS_BASE + 68)
		for (unsigned sc = 1; sc < 68; sc++)
			init_pair((short)(HS_C_CLASS_BASE + sc), class_color(sc, t->colors256), dbg);
}

int hs_tui_attr(const hs_tui *t, int c)
{
	if (c <= 0 || c >= HS_C_COUNT)
		return 0;
	if (!t->color)
		return colors[c].mono;
	return (int)COLOR_PAIR(c) | (c == HS_C_LABEL || c == HS_C_TAB_ON || c == HS_C_SEARCH ? (int)A_BOLD : 0);
}

int hs_tui_class_attr(const hs_tui *t, unsigned sc)
{
	if (!t->color || sc == 0 || sc >= 68 || COLOR_PAIRS <= HS_C_CLASS_BASE + 68)
		return 0;
	return (int)COLOR_PAIR(HS_C_CLASS_BASE + sc);
}

static int on_screen(const hs_tui *t, int y, int x)
{
	return y >= 0 && y < t->rows && x >= 0 && x < t->cols;
}

void hs_tui_glyph(hs_tui *t, int y, int x, int g, int attr)
{
	if (!on_screen(t, y, x) || g < 0 || g >= HS_G_COUNT)
		return;
	if (t->utf8) {
		cchar_t cc;
		wchar_t w[2] = { wide[g], 0 };
		setcchar(&cc, w, (attr_t)(attr & ~A_COLOR), (short)PAIR_NUMBER(attr), NULL);
		mvadd_wch(y, x, &cc);
	} else {
		mvaddch(y, x, (chtype)(unsigned char)glyphs[g].ascii | (chtype)attr);
	}
}

void hs_tui_glyphs(hs_tui *t, int y, int x, int g, int n, int attr)
{
	for (int i = 0; i < n; i++)
		hs_tui_glyph(t, y, x + i, g, attr);
}

void hs_tui_legend(hs_tui *t, int y, int x, int w, const hs_tui_legend_item *items, size_t n)
{
	int cx = x;
	for (size_t i = 0; i < n; i++) {
		int need = 2 + (int)strlen(items[i].text) + 2;
		if (cx + need > x + w)
			break;
		hs_tui_glyph(t, y, cx, items[i].g, hs_tui_attr(t, items[i].c));
		cx += 2 + hs_tui_text(t, y, cx + 2, need, hs_tui_attr(t, HS_C_DIM), items[i].text) + 2;
	}
}

int hs_tui_text(hs_tui *t, int y, int x, int w, int attr, const char *s)
{
	if (y < 0 || y >= t->rows || x >= t->cols || w <= 0)
		return 0;
	if (x + w > t->cols)
		w = t->cols - x;
	int n = 0;
	attron(attr);
	move(y, x);
	for (; s[n] != '\0' && n < w; n++) {
		unsigned char c = (unsigned char)s[n];
		addch(c >= 0x20 && c < 0x7f ? c : '?');
	}
	attroff(attr);
	return n;
}

int hs_tui_printf(hs_tui *t, int y, int x, int w, int attr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return hs_tui_text(t, y, x, w, attr, buf);
}

void hs_tui_fill(hs_tui *t, int y, int x, int w, int attr)
{
	if (y < 0 || y >= t->rows)
		return;
	if (x + w > t->cols)
		w = t->cols - x;
	if (w <= 0)
		return;
	mvhline(y, x, (chtype)' ' | (chtype)attr, w);
}

void hs_tui_box(hs_tui *t, hs_tui_rect r, int attr, const char *title)
{
	if (r.h < 2 || r.w < 2)
		return;
	hs_tui_glyph(t, r.y, r.x, HS_G_CORNER_TL, attr);
	hs_tui_glyph(t, r.y, r.x + r.w - 1, HS_G_CORNER_TR, attr);
	hs_tui_glyph(t, r.y + r.h - 1, r.x, HS_G_CORNER_BL, attr);
	hs_tui_glyph(t, r.y + r.h - 1, r.x + r.w - 1, HS_G_CORNER_BR, attr);
	hs_tui_glyphs(t, r.y, r.x + 1, HS_G_HBAR, r.w - 2, attr);
	hs_tui_glyphs(t, r.y + r.h - 1, r.x + 1, HS_G_HBAR, r.w - 2, attr);
	for (int i = 1; i < r.h - 1; i++) {
		hs_tui_glyph(t, r.y + i, r.x, HS_G_VBAR, attr);
		hs_tui_glyph(t, r.y + i, r.x + r.w - 1, HS_G_VBAR, attr);
		hs_tui_fill(t, r.y + i, r.x + 1, r.w - 2, 0);
	}
	if (title != NULL)
		hs_tui_printf(t, r.y, r.x + 2, r.w - 4, attr | (int)A_BOLD, " %s ", title);
}

void hs_tui_spark(hs_tui *t, int y, int x, int w, const uint64_t *v, int n, uint64_t max, int attr)
{
	int first = n > w ? n - w : 0;
	for (int i = first; i < n; i++) {
		int l = hs_tui_spark_level(v[i], max, 9);
		int cx = x + (i - first);
		if (!on_screen(t, y, cx))
			continue;
		if (t->utf8) {
			cchar_t cc;
			wchar_t s[2] = { spark_w[l], 0 };
			setcchar(&cc, s, (attr_t)(attr & ~A_COLOR), (short)PAIR_NUMBER(attr), NULL);
			mvadd_wch(y, cx, &cc);
		} else {
			mvaddch(y, cx, (chtype)(unsigned char)spark_a[l] | (chtype)attr);
		}
	}
}

/*
 * Braille: a cell is 2 dots wide and 4 high; dot (col, row) is bit
 * {0,1,2,6} for the left column and {3,4,5,7} for the right, rows top down,
 * added to U+2800. Each sample fills its dot column from the bottom up to its
 * height, an area chart with 4*h vertical steps and 2 samples per column.
 * ASCII: one sample per column, '#' up to its height in h steps.
 */
void hs_tui_plot(hs_tui *t, hs_tui_rect r, const uint64_t *v, int n, uint64_t max, int attr)
{
	if (r.h <= 0 || r.w <= 0)
		return;
	static const unsigned left[4] = { 0x40, 0x04, 0x02, 0x01 }, right[4] = { 0x80, 0x20, 0x10, 0x08 };
	int per = t->utf8 ? 2 : 1, steps = t->utf8 ? 4 * r.h : r.h;
	int cap = r.w * per, first = n > cap ? n - cap : 0;
	for (int cx = 0; cx < r.w; cx++) {
		int hgt[2] = { 0, 0 };
		int have = 0;
		for (int k = 0; k < per; k++) {
			int i = first + cx * per + k;
			if (i < n) {
				hgt[k] = hs_tui_spark_level(v[i], max, steps + 1);
				have = 1;
			}
		}
		if (!have)
			break;
		for (int row = 0; row < r.h; row++) {
			int y = r.y + r.h - 1 - row; /* row 0 is the bottom */
			if (!t->utf8) {
				mvaddch(y, r.x + cx, (chtype)(hgt[0] > row ? '#' : ' ') | (chtype)attr);
				continue;
			}
			unsigned bits = 0;
			for (int d = 0; d < 4; d++) { /* d: dot row from the bottom */
				int level = row * 4 + d + 1;
				if (hgt[0] >= level)
					bits |= left[3 - d];
				if (hgt[1] >= level)
					bits |= right[3 - d];
			}
			cchar_t cc;
			wchar_t s[2] = { (wchar_t)(0x2800 + bits), 0 };
			setcchar(&cc, s, (attr_t)(attr & ~A_COLOR), (short)PAIR_NUMBER(attr), NULL);
			mvadd_wch(y, r.x + cx, &cc);
		}
	}
}

void hs_tui_title(hs_tui *t, hs_tui_rect r, const char *name, const char *detail)
{
	hs_tui_fill(t, r.y, r.x, r.w, 0);
	int n = hs_tui_text(t, r.y, r.x, r.w, hs_tui_attr(t, HS_C_LABEL) | (int)A_BOLD, name);
	if (detail != NULL && n + 2 < r.w)
		hs_tui_text(t, r.y, r.x + n + 2, r.w - n - 2, 0, detail);
}

void hs_tui_region_add(hs_tui *t, int y, int x0, int x1, int kind, uint64_t value)
{
	if (t->nreg < HS_TUI_MAX_REGIONS)
		t->reg[t->nreg++] = (hs_tui_region){ y, x0, x1, kind, value };
}

uint64_t hs_tui_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hs_tui_message(hs_tui *t, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->msg, sizeof t->msg, fmt, ap);
	va_end(ap);
	t->msg_err = err;
	t->msg_until = hs_tui_now_ns() + 5000000000u;
}
