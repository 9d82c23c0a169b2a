/*
 * tui/stats.c — the statistics and scavenger panes, and the history behind
 * their sparklines.
 *
 * The model keeps only the last statistics sample of each heap (the stats
 * event's six figures and its ts). The TUI keeps the series: hs_tui_sample,
 * called by every frame and by a seeking controller after each stats event,
 * appends a sample to the heap's ring (HS_TUI_HISTORY of them, about 100 s)
 * whenever the heap's stats_ts has moved, together with the model's event count
 * and the scavenger's counters at that moment. Rates (events/s, bytes released
 * per second, scavenger CPU) are differences between samples over their ts.
 *
 * The RSS bar splits the resident set into: live objects (small-object spans:
 * allocCount x object size, plus large-object spans whole), free slots in those
 * spans ((nelems - allocCount) x size), free pages not yet released (from the
 * bitmaps: neither allocated nor scavenged), heap metadata (the stats event's
 * own figure), and whatever remains (span tails, page caches, the program's
 * own memory). allocCount is as of each span's last event, so the split is as
 * fresh as the sweeps and mcache events that carry it.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <stdlib.h>
#include <string.h>

#include <ncursesw/curses.h>

#define HS_TUI_INTERNAL
#include "tui.h"

/* --- history -------------------------------------------------------------------- */

hs_tui_history *hs_tui_history_of(hs_tui *t, uint32_t pid)
{
	int free_slot = -1;
	for (int i = 0; i < HS_TUI_MAX_HEAPS; i++) {
		if (t->hist[i] != NULL && t->hist[i]->used && t->hist[i]->pid == pid)
			return t->hist[i];
		if (free_slot < 0 && (t->hist[i] == NULL || !t->hist[i]->used))
			free_slot = i;
	}
	if (free_slot < 0)
		return NULL;
	if (t->hist[free_slot] == NULL && (t->hist[free_slot] = calloc(1, sizeof(hs_tui_history))) == NULL)
		return NULL;
	hs_tui_history *h = t->hist[free_slot];
	h->used = 1;
	h->pid = pid;
	h->head = h->n = 0;
	h->last_ts = 0;
	return h;
}

void hs_tui_history_free(hs_tui *t)
{
	for (int i = 0; i < HS_TUI_MAX_HEAPS; i++) {
		free(t->hist[i]);
		t->hist[i] = NULL;
	}
}

void hs_tui_reset_history(hs_tui *t)
{
	for (int i = 0; i < HS_TUI_MAX_HEAPS; i++)
		if (t->hist[i] != NULL)
			t->hist[i]->used = 0;
	t->spans.heap = NULL;
}

void hs_tui_sample(hs_tui *t, hs_model *m)
{
	if (m == NULL)
		return;
	unsigned n = hs_model_nheaps(m);
	for (unsigned i = 0; i < n; i++) {
		const hs_model_heap *h = hs_model_heap_at(m, i);
		if (h->stats_ts == 0)
			continue;
		hs_tui_history *hist = hs_tui_history_of(t, h->pid);
		if (hist == NULL || h->stats_ts == hist->last_ts)
			continue;
		if (h->stats_ts < hist->last_ts)
			hist->head = hist->n = 0; /* time went back: start again */
		hs_tui_point *s = &hist->s[hist->head];
		s->ts = h->stats_ts;
		s->events = hs_model_events(m);
		memcpy(s->stats, h->stats, sizeof s->stats);
		s->scav_released = h->scav_released;
		s->scav_cpu_ns = h->scav_cpu_ns;
		s->scav_goal = h->scav_goal;
		s->scav_retained = h->scav_retained;
		hist->head = (hist->head + 1) % HS_TUI_HISTORY;
		if (hist->n < HS_TUI_HISTORY)
			hist->n++;
		hist->last_ts = h->stats_ts;
	}
}

/* Sample i of the ring, 0 the oldest. */
static const hs_tui_point *at(const hs_tui_history *h, unsigned i)
{
	return &h->s[(h->head + HS_TUI_HISTORY - h->n + i) % HS_TUI_HISTORY];
}

enum { M_IN_USE, M_FREE, M_RELEASED, M_SYS, M_RSS, M_META, M_EVENTS, M_SCAV_RATE, M_SCAV_CPU, M_RETAINED, M_COUNT };

/* Metric k of sample i: a stats figure, or a rate over the interval before it
 * (per second; CPU in hundredths of a percent of one CPU). */
static uint64_t metric(const hs_tui_history *h, unsigned i, int k)
{
	const hs_tui_point *s = at(h, i);
	if (k <= M_META)
		return s->stats[k];
	if (k == M_RETAINED)
		return s->scav_retained;
	if (i == 0)
		return 0;
	const hs_tui_point *p = at(h, i - 1);
	uint64_t dt = s->ts > p->ts ? s->ts - p->ts : 0;
	if (dt == 0)
		return 0;
	uint64_t a = k == M_EVENTS ? s->events : k == M_SCAV_RATE ? s->scav_released : s->scav_cpu_ns;
	uint64_t b = k == M_EVENTS ? p->events : k == M_SCAV_RATE ? p->scav_released : p->scav_cpu_ns;
	if (a < b)
		return 0;
	long double per_s = (long double)(a - b) * 1e9L / (long double)dt;
	return (uint64_t)(k == M_SCAV_CPU ? per_s / 1e9L * 10000.0L : per_s);
}

/* The rate of metric k over about the last second. */
static double recent_rate(const hs_tui_history *h, int k)
{
	if (h == NULL || h->n < 2)
		return 0;
	unsigned last = h->n - 1, j = last;
	while (j > 0 && at(h, last)->ts - at(h, j)->ts < 1000000000u)
		j--;
	const hs_tui_point *s = at(h, last), *p = at(h, j);
	if (s->ts <= p->ts)
		return 0;
	uint64_t a = k == M_EVENTS ? s->events : k == M_SCAV_RATE ? s->scav_released : s->scav_cpu_ns;
	uint64_t b = k == M_EVENTS ? p->events : k == M_SCAV_RATE ? p->scav_released : p->scav_cpu_ns;
	return a < b ? 0 : (double)(a - b) * 1e9 / (double)(s->ts - p->ts);
}

/* The last w values of metric k, oldest first, and their maximum. */
static int series(const hs_tui_history *h, int k, int w, uint64_t *v, uint64_t *max)
{
	*max = 0;
	if (h == NULL || w <= 0)
		return 0;
	unsigned n = h->n < (unsigned)w ? h->n : (unsigned)w;
	for (unsigned i = 0; i < n; i++) {
		v[i] = metric(h, h->n - n + i, k);
		if (v[i] > *max)
			*max = v[i];
	}
	return (int)n;
}

/* --- the RSS bar -------------------------------------------------------------------- */

static uint64_t free_unscavenged_bytes(const hs_model_heap *h)
{
	uint64_t pages = 0;
	hs_tui_seg segs[256];
	size_t n = hs_tui_heap_segs(h, 0, UINTPTR_MAX, segs, 256);
	for (size_t k = 0; k < n; k++)
		for (uintptr_t c = segs[k].lo; c < segs[k].hi; c++) {
			const hs_palloc_data *d = hs_pagealloc_try_chunk_of(&h->pages, c);
			if (d == NULL)
				continue;
			for (unsigned w = 0; w < HS_PALLOC_CHUNK_WORDS; w++)
				pages += hs_popcount64(~d->alloc.w[w] & ~d->scavenged.w[w]);
		}
	return pages << HS_PAGE_SHIFT;
}

static void draw_rss_bar(hs_tui *t, int y, int x, int w, int legend_rows)
{
	static const int glyph[5] = { HS_G_BAR_LIVE, HS_G_BAR_SLOTS, HS_G_BAR_PAGES, HS_G_BAR_META, HS_G_BAR_OTHER };
	static const int color[5] = { HS_C_BAR_LIVE, HS_C_BAR_SLOTS, HS_C_BAR_PAGES, HS_C_BAR_META, HS_C_BAR_OTHER };
	static const char *const name[5] = { "live", "free slots", "free pages", "metadata", "other" };
	const hs_model_heap *h = t->h;
	hs_tui_spans_refresh(t, 0);
	uint64_t part[5];
	part[0] = t->spans.live_bytes + t->spans.large_bytes;
	part[1] = t->spans.slot_bytes;
	part[2] = free_unscavenged_bytes(h);
	part[3] = h->stats[5];
	uint64_t sum = part[0] + part[1] + part[2] + part[3], rss = h->stats[4];
	part[4] = rss > sum ? rss - sum : 0;
	char b[24];
	int n = hs_tui_printf(t, y, x, w, hs_tui_attr(t, HS_C_LABEL), "RSS %s ", hs_tui_bytes(rss, b, sizeof b));
	int bw = w - n - 1;
	if (bw > 2) {
		int widths[5];
		hs_tui_bar_split(part, 5, sum + part[4], bw, widths);
		int cx = x + n;
		hs_tui_glyph(t, y, cx++, HS_G_VBAR, hs_tui_attr(t, HS_C_DIM));
		for (int i = 0; i < 5; i++) {
			hs_tui_glyphs(t, y, cx, glyph[i], widths[i], hs_tui_attr(t, color[i]));
			cx += widths[i];
		}
	}
	/* Legend: as many items a row as fit, over legend_rows rows. */
	int row = 1, cx = x;
	for (int i = 0; i < 5 && row <= legend_rows; i++) {
		char item[48];
		snprintf(item, sizeof item, "%s %s", name[i], hs_tui_bytes(part[i], b, sizeof b));
		int need = 2 + (int)strlen(item) + 2;
		if (cx + need > x + w && cx > x) {
			row++;
			cx = x;
			if (row > legend_rows)
				break;
		}
		hs_tui_glyph(t, y + row, cx, glyph[i], hs_tui_attr(t, color[i]));
		cx += 2 + hs_tui_text(t, y + row, cx + 2, need, 0, item) + 2;
	}
}

/* --- the statistics pane --------------------------------------------------------------- */

static void metric_row(hs_tui *t, const hs_tui_history *hist, int y, int x, int w, const char *label,
		       const char *value, int k)
{
	int lab = hs_tui_attr(t, HS_C_LABEL);
	hs_tui_printf(t, y, x, w, lab, "%-10s", label);
	hs_tui_printf(t, y, x + 10, w - 10, 0, "%11s ", value);
	int sw = w - 23;
	if (sw <= 0 || k < 0)
		return;
	uint64_t v[512], max;
	int n = series(hist, k, sw < 512 ? sw : 512, v, &max);
	hs_tui_spark(t, y, x + 23, sw, v, n, max, hs_tui_attr(t, HS_C_SPARK));
}

void hs_tui_stats_draw(hs_tui *t, hs_tui_rect r, int compact)
{
	if (t->h == NULL) {
		hs_tui_title(t, r, "Statistics", "no heap yet");
		return;
	}
	const hs_model_heap *h = t->h;
	hs_tui_history *hist = hs_tui_history_of(t, h->pid);
	char detail[96] = "no stats sample yet";
	if (h->stats_ts != 0 && hist != NULL && hist->n > 0)
		snprintf(detail, sizeof detail, "pid %u, %u samples (%.1f s)", h->pid, hist->n,
			 (double)(at(hist, hist->n - 1)->ts - at(hist, 0)->ts) / 1e9);
	hs_tui_title(t, r, "Statistics", detail);
	char b[32];
	int y = r.y + (compact ? 1 : 2);
	static const char *const labels[6] = { "in use", "free", "released", "sys", "RSS", "metadata" };
	for (int k = 0; k < 6; k++)
		metric_row(t, hist, y++, r.x, r.w, labels[k], hs_tui_bytes(h->stats[k], b, sizeof b), k);
	double rate = t->live != NULL ? t->live->events_per_s : recent_rate(hist, M_EVENTS);
	char rb[24];
	snprintf(b, sizeof b, "%s/s", hs_tui_count(rate, rb, sizeof rb));
	metric_row(t, hist, y++, r.x, r.w, "events", b, M_EVENTS);
	uint64_t lost = t->live != NULL ? t->live->lost : t->rp != NULL ? t->rp->lost : 0;
	snprintf(b, sizeof b, "%llu", (unsigned long long)lost);
	hs_tui_printf(t, y, r.x, r.w, hs_tui_attr(t, HS_C_LABEL), "%-10s", "lost");
	uint64_t untrusted = t->m != NULL ? hs_model_untrusted_seq(t->m) : 0;
	char why[80] = "";
	if (untrusted != 0)
		snprintf(why, sizeof why, "events lost: the model is not trusted from seq %llu",
			 (unsigned long long)untrusted);
	else if (lost)
		snprintf(why, sizeof why, "events lost: the picture may be incomplete");
	hs_tui_printf(t, y++, r.x + 10, r.w - 10, lost || untrusted ? hs_tui_attr(t, HS_C_ERR) : 0, "%11s %s", b, why);
	y++;
	if (y + 2 < r.y + r.h)
		draw_rss_bar(t, y, r.x, r.w, 2);
	y += 4;
	if (compact || y >= r.y + r.h)
		return;
	char c1[24], c2[24];
	uint64_t chunks = 0;
	hs_tui_seg segs[256];
	size_t n = hs_tui_heap_segs(h, 0, UINTPTR_MAX, segs, 256);
	for (size_t k = 0; k < n; k++)
		chunks += segs[k].hi - segs[k].lo;
	hs_tui_printf(t, y++, r.x, r.w, 0, "spans %zu   chunks %llu (%s grown)   arenas reserved %s", h->nspans,
		      (unsigned long long)chunks, hs_tui_bytes(chunks << HS_LOG_PALLOC_CHUNK_BYTES, c1, sizeof c1),
		      hs_tui_bytes(h->arena_bytes, c2, sizeof c2));
	if (y < r.y + r.h)
		hs_tui_printf(t, y++, r.x, r.w, 0, "mallocs %llu  frees %llu  (%s asked)   digests checked %llu",
			      (unsigned long long)h->mallocs, (unsigned long long)h->frees,
			      hs_tui_bytes(h->malloc_bytes, c1, sizeof c1), (unsigned long long)h->digests_ok);
	if (y < r.y + r.h && h->mallocs == 0)
		hs_tui_text(t, y++, r.x, r.w, hs_tui_attr(t, HS_C_DIM),
			    "(object events are recorded with --events objects)");
}

/* --- the scavenger pane --------------------------------------------------------------- */

void hs_tui_scav_draw(hs_tui *t, hs_tui_rect r)
{
	if (t->h == NULL) {
		hs_tui_title(t, r, "Scavenger", "no heap yet");
		return;
	}
	const hs_model_heap *h = t->h;
	hs_tui_history *hist = hs_tui_history_of(t, h->pid);
	char detail[64], b1[24], b2[24];
	snprintf(detail, sizeof detail, "pid %u, %llu cycles", h->pid, (unsigned long long)h->scav_cycles);
	hs_tui_title(t, r, "Scavenger", detail);
	int lab = hs_tui_attr(t, HS_C_LABEL), y = r.y + 2;
	/* Retained against the goal. */
	hs_tui_printf(t, y, r.x, r.w, lab, "%-10s", "retained");
	int n = 10 + hs_tui_printf(t, y, r.x + 10, r.w - 10, 0, "%11s  goal %s ",
				   hs_tui_bytes(h->scav_retained, b1, sizeof b1), hs_tui_bytes(h->scav_goal, b2, sizeof b2));
	int bw = r.w - n - 8;
	if (bw > 4 && h->scav_goal > 0) {
		uint64_t scale = h->scav_retained > h->scav_goal ? h->scav_retained : h->scav_goal;
		int over = h->scav_retained > h->scav_goal;
		uint64_t parts[2] = { over ? h->scav_goal : h->scav_retained, over ? h->scav_retained - h->scav_goal : 0 };
		int wd[2];
		hs_tui_bar_split(parts, 2, scale, bw, wd);
		hs_tui_glyphs(t, y, r.x + n, HS_G_BAR_LIVE, wd[0], hs_tui_attr(t, HS_C_HIGH));
		hs_tui_glyphs(t, y, r.x + n + wd[0], HS_G_BAR_LIVE, wd[1], hs_tui_attr(t, HS_C_FULL));
		hs_tui_printf(t, y, r.x + n + bw + 1, 7, 0, "%3.0f%%", 100.0 * (double)h->scav_retained / (double)h->scav_goal);
	}
	y++;
	double rel = recent_rate(hist, M_SCAV_RATE);
	char v[32];
	snprintf(v, sizeof v, "%s/s", hs_tui_bytes((uint64_t)rel, b1, sizeof b1));
	metric_row(t, hist, y++, r.x, r.w, "releasing", v, M_SCAV_RATE);
	double cpu = recent_rate(hist, M_SCAV_CPU) / 1e9 * 100.0;
	snprintf(v, sizeof v, "%.2f%% CPU", cpu);
	metric_row(t, hist, y, r.x, r.w, "scavenger", v, M_SCAV_CPU);
	y++;
	hs_tui_printf(t, y++, r.x + 10, r.w - 10, cpu > 1.05 ? hs_tui_attr(t, HS_C_WARN) : hs_tui_attr(t, HS_C_DIM),
		      "%11s  of one CPU; the budget is 1%%", "");
	hs_tui_printf(t, y++, r.x, r.w, 0, "released %s in all, %s released now, %s re-committed",
		      hs_tui_bytes(h->scav_released, b1, sizeof b1), hs_tui_bytes(h->stats[2], b2, sizeof b2),
		      hs_tui_bytes(h->recommitted, v, sizeof v));
	y++;
	/* Retained over time, as tall as the pane allows. */
	int ph = r.y + r.h - y - 1;
	if (ph >= 2 && hist != NULL) {
		if (ph > 12)
			ph = 12;
		uint64_t vals[1024], max;
		int cap = (r.w - 12) * (t->utf8 ? 2 : 1);
		int cnt = series(hist, M_RETAINED, cap < 1024 ? cap : 1024, vals, &max);
		if (max < h->scav_goal)
			max = h->scav_goal;
		hs_tui_printf(t, y, r.x, 12, lab, "retained");
		hs_tui_printf(t, y + 1, r.x, 12, hs_tui_attr(t, HS_C_DIM), "max %s", hs_tui_bytes(max, b1, sizeof b1));
		hs_tui_plot(t, (hs_tui_rect){ y, r.x + 12, ph, r.w - 12 }, vals, cnt, max, hs_tui_attr(t, HS_C_SPARK));
	}
}
