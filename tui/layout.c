/*
 * tui/layout.c — the TUI's pure functions: where each part of the screen goes,
 * how a summary is shaded, how a row of chunks is laid across columns, how a
 * bar is split, and the number formats. No ncurses and no model here, so
 * tui/selftest.c can check every one against a table of cases.
 *
 * See tui/tui.c for the frame and tui/tui.h for the panes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HS_TUI_INTERNAL
#include "tui.h"

/*
 * The screen, top to bottom: a header row (title, heap, position), a tab row
 * naming the panes, the main area, and one status row (the live counters or
 * the replay position, or a prompt). From HS_TUI_SIDE_MIN_COLS columns on, the
 * right HS_TUI_SIDE_COLS columns of the main area show the statistics:
 *
 *   +------------------------------------------------+
 *   | header                                         |
 *   | tabs                                           |
 *   | main                          | side (>= 150)  |
 *   | ...                           |                |
 *   | status                                         |
 *   +------------------------------------------------+
 */
void hs_tui_layout_compute(int rows, int cols, hs_tui_layout *out)
{
	memset(out, 0, sizeof *out);
	if (rows < HS_TUI_MIN_ROWS || cols < HS_TUI_MIN_COLS) {
		out->too_small = 1;
		return;
	}
	out->header = (hs_tui_rect){ 0, 0, 1, cols };
	out->tabs = (hs_tui_rect){ 1, 0, 1, cols };
	out->status = (hs_tui_rect){ rows - 1, 0, 1, cols };
	out->main = (hs_tui_rect){ 2, 0, rows - 3, cols };
	if (cols >= HS_TUI_SIDE_MIN_COLS) {
		out->has_side = 1;
		out->main.w = cols - HS_TUI_SIDE_COLS - 1;
		out->side = (hs_tui_rect){ 2, cols - HS_TUI_SIDE_COLS, rows - 3, HS_TUI_SIDE_COLS };
	}
}

/*
 * Shading by the largest free run relative to what the entry covers: none
 * free, under a quarter, under a half, under all, all. Exact integer
 * comparisons (4*max < cover) so the boundaries are where the legend says.
 */
int hs_tui_shade(uint64_t max, uint64_t cover)
{
	if (max == 0)
		return HS_G_SH_FULL;
	if (max >= cover)
		return HS_G_SH_FREE;
	if (max * 4 < cover)
		return HS_G_SH_Q1;
	if (max * 2 < cover)
		return HS_G_SH_Q2;
	return HS_G_SH_Q3;
}

static uintptr_t div_up(uintptr_t a, uintptr_t b)
{
	return (a + b - 1) / b;
}

/* Columns the segments take at k chunks per column (k >= 1). */
static uintptr_t cols_at(const hs_tui_seg *segs, size_t nsegs, uintptr_t k)
{
	uintptr_t c = 0;
	for (size_t i = 0; i < nsegs; i++)
		c += div_up(segs[i].hi - segs[i].lo, k);
	return c;
}

int hs_tui_colmap(const hs_tui_seg *segs, size_t nsegs, int width, hs_tui_cell *cells, int max)
{
	if (nsegs == 0 || width <= 0 || max <= 0)
		return 0;
	uintptr_t n = 0;
	for (size_t i = 0; i < nsegs; i++)
		n += segs[i].hi - segs[i].lo;
	/* Separators only when they take at most a quarter of the row. */
	int seps = nsegs - 1 <= (size_t)width / 4 ? (int)nsegs - 1 : 0;
	int avail = width - seps;
	if ((uintptr_t)avail < nsegs) {
		/* More segments than columns: one column each for those that fit. */
		seps = 0;
		avail = width;
	}
	int ncells = 0, x = 0;
	if (n <= (uintptr_t)avail) {
		/* Wide cells: every chunk gets cw columns; the leftover goes unused. */
		int cw = (int)((uintptr_t)avail / n);
		for (size_t i = 0; i < nsegs && ncells < max; i++) {
			if (i > 0 && seps > 0 && ncells < max)
				cells[ncells++] = (hs_tui_cell){ x++, 1, segs[i].lo, segs[i].lo };
			for (uintptr_t c = segs[i].lo; c < segs[i].hi && ncells < max; c++) {
				cells[ncells++] = (hs_tui_cell){ x, cw, c, c + 1 };
				x += cw;
			}
		}
		return ncells;
	}
	/* Narrow cells: k chunks a column, the smallest k that fits. */
	uintptr_t k = div_up(n, (uintptr_t)avail);
	while (k < n && cols_at(segs, nsegs, k) > (uintptr_t)avail)
		k++;
	for (size_t i = 0; i < nsegs && ncells < max && x < width; i++) {
		if (i > 0 && seps > 0)
			cells[ncells++] = (hs_tui_cell){ x++, 1, segs[i].lo, segs[i].lo };
		for (uintptr_t c = segs[i].lo; c < segs[i].hi && ncells < max && x < width; c += k) {
			uintptr_t e = c + k < segs[i].hi ? c + k : segs[i].hi;
			cells[ncells++] = (hs_tui_cell){ x++, 1, c, e };
		}
	}
	return ncells;
}

int hs_tui_spark_level(uint64_t v, uint64_t max, int levels)
{
	if (max == 0 || v == 0 || levels <= 1)
		return 0;
	if (v >= max)
		return levels - 1;
	/* Any non-zero value shows at least the first step above empty. */
	int l = (int)((long double)v * (levels - 1) / max + 0.5L);
	return l < 1 ? 1 : l;
}

/*
 * Largest-remainder rounding: each part gets floor(width * part / total)
 * columns, and the columns lost to rounding go to the parts with the largest
 * remainders, so that the widths add up to round(width * sum / total).
 */
void hs_tui_bar_split(const uint64_t *parts, int n, uint64_t total, int width, int *widths)
{
	long double sum = 0, rem[16];
	int used = 0;
	for (int i = 0; i < n; i++)
		sum += (long double)parts[i];
	if (total == 0 || width <= 0 || n > 16) {
		for (int i = 0; i < n; i++)
			widths[i] = 0;
		return;
	}
	if ((long double)total < sum)
		total = (uint64_t)sum;
	for (int i = 0; i < n; i++) {
		long double exact = (long double)width * (long double)parts[i] / (long double)total;
		widths[i] = (int)exact;
		rem[i] = exact - widths[i];
		used += widths[i];
	}
	int want = (int)((long double)width * sum / (long double)total + 0.5L);
	if (want > width)
		want = width;
	while (used < want) {
		int best = -1;
		for (int i = 0; i < n; i++)
			if (parts[i] != 0 && (best < 0 || rem[i] > rem[best]))
				best = i;
		if (best < 0)
			break;
		widths[best]++;
		rem[best] = -1;
		used++;
	}
}

const char *hs_tui_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (v < 1024) {
		snprintf(buf, len, "%u B", (unsigned)v);
		return buf;
	}
	double d = (double)v;
	unsigned u = 0;
	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, d < 10 ? "%.2f %s" : d < 100 ? "%.1f %s" : "%.0f %s", d, unit[u]);
	return buf;
}

const char *hs_tui_count(double v, char *buf, size_t len)
{
	if (v < 0)
		v = 0;
	if (v < 1000)
		snprintf(buf, len, "%.0f", v);
	else if (v < 1e6)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else if (v < 1e9)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else
		snprintf(buf, len, "%.2fG", v / 1e9);
	return buf;
}

int hs_tui_parse_u64(const char *s, uint64_t *out)
{
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == '-' || *s == '+')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	while (isspace((unsigned char)*end))
		end++;
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int hs_tui_parse_seek(const char *s, uint64_t *value, int *is_time)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n >= 40)
		return -1;
	char b[40];
	memcpy(b, s, n);
	b[n] = '\0';
	/* A unit suffix makes it a time. */
	static const struct {
		const char *suffix;
		double ns;
	} units[] = { { "ms", 1e6 }, { "us", 1e3 }, { "ns", 1 }, { "s", 1e9 }, { "m", 60e9 } };
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		size_t k = strlen(units[i].suffix);
		if (n > k && strcmp(b + n - k, units[i].suffix) == 0 && !isalpha((unsigned char)b[n - k - 1])) {
			b[n - k] = '\0';
			char *end;
			errno = 0;
			double d = strtod(b, &end);
			if (errno != 0 || end == b || *end != '\0' || !(d >= 0) || d * units[i].ns > 1.8e19)
				return -1;
			*value = (uint64_t)(d * units[i].ns + 0.5);
			*is_time = 1;
			return 0;
		}
	}
	if (hs_tui_parse_u64(b, value) != 0)
		return -1;
	*is_time = 0;
	return 0;
}
