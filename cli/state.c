/*
 * cli/state.c — `heapscope state FILE [--session N] [--at SEQ|TIME] [--pid P]`:
 * the heap's metadata at one point of a recorded session, as text.
 *
 * The point is the model after event SEQ (the last event at or before it, when
 * a lossy session skipped it), or after the first event at or after TIME into
 * the session (TIME counts from the session's first event: "1.5s", "200ms");
 * the default is the session's last event. The model is rebuilt by
 * hs_store_model_at (store/replay.c): the nearest keyframe at or before the
 * point, then the events after it, so the cost does not depend on where in the
 * session the point lies. What is printed is a function of the model alone
 * (and of the two events that give the times), never of the keyframe it
 * started from: the output with keyframes equals the output of a replay from
 * the session's first event, which tests/cli/store.sh checks.
 *
 * For each replica heap (one per traced process; --pid picks one):
 *   - the last statistics sample and what the model itself counts (pages,
 *     spans, objects, scavenger);
 *   - every summary level over the in-use ranges: one shade per entry
 *     (cli/pagetext.h), 64 to a row, then start/max/end of every entry of a
 *     small level, or of the entries that are neither full nor wholly free of
 *     a large one (a full or free entry is told by its shade alone);
 *   - the chunk bitmaps of every chunk in use, in address order, two 32x16
 *     grids side by side, searchAddr marked; a run of chunks whose pages are
 *     all allocated, all free or all free and scavenged is one line instead
 *     (--chunks N stops after the first N chunks);
 *   - the spans in address order (--no-spans leaves them out).
 * Lines stay within 80 columns for addresses of up to 12 hex digits.
 *
 * TIME is matched against the events' ts, which follows seq closely but not
 * strictly (docs/events.md: threads' buffered events), so in a multi-threaded
 * session the seq found can be off by as much as the threads' stamps disagree.
 *
 * The times come from two events read through a source (the session's first,
 * and the one the model stopped at); the session's seq bounds from
 * event_ranges, one index probe at each end (store/schema.c). Everything
 * else is read from the model: its replica page allocator's fields directly
 * (core/pagealloc.h), its spans through hs_model_spans.
 *
 * Exit status: 0; 1 when the model diverged before the point (the header says
 * where, and the dump shows the replica as it stood); 2 for bad input, with
 * one line on stderr: a file that cannot be read, an unknown session or pid,
 * an empty session, a SEQ outside the session's events or a TIME beyond its
 * end (the message gives the valid range), an --at that is neither. The file is
 * opened read-only (store/store.h).
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "pagetext.h"
#include "sizeclasses.h"
#include "store.h"

#define SHADE_ROW 64	 /* summary entries per shaded row */
#define LIST_ALL 8	 /* a level of at most this many entries lists them all */
#define LINE_WIDTH 78	 /* where a list of entries wraps */
#define ALL_CHUNKS UINT64_MAX

typedef struct state_opts {
	const char *file;
	int64_t session; /* -1: the file's last */
	const char *at;	 /* NULL: the session's end */
	int64_t pid;	 /* -1: every heap */
	uint64_t chunks; /* chunk grids to draw */
	int no_spans;
} state_opts;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: heapscope state FILE [--session N] [--at SEQ|TIME] [--pid P] [--chunks N]\n"
		"                            [--no-spans]\n\n"
		"Rebuilds the heap's metadata at one point of a recorded session (the nearest\n"
		"keyframe, then the events after it) and prints it: statistics, every summary\n"
		"level over the in-use ranges, the chunk bitmaps, the spans. The file is opened\n"
		"read-only. Exit status 1 if the model diverged before that point.\n\n"
		"  --session N   the session (default: the file's last)\n"
		"  --at SEQ      after the event with sequence number SEQ (default: the last)\n"
		"  --at TIME     after the first event at or after TIME into the session, a\n"
		"                number with a unit: 1.5s, 250ms\n"
		"  --pid P       only the heap of process P (default: every traced process)\n"
		"  --chunks N    draw the bitmaps of the first N chunks in use (default: all)\n"
		"  --no-spans    leave out the span list\n"
		"  --help        this text\n\n"
		"Summary entries, by their longest free run:\n%s\n"
		"Pages of a chunk:\n%s\n",
		HS_PAGETEXT_SHADE_LEGEND, HS_PAGETEXT_PAGE_LEGEND);
}

static state_opts parse_opts(int argc, char **argv)
{
	state_opts o = { .session = -1, .pid = -1, .chunks = ALL_CHUNKS };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(HS_EXIT_OK);
		} else if (strcmp(a, "--session") == 0) {
			o.session = (int64_t)hs_cli_parse_u64(a, v, 1, INT64_MAX), i++;
		} else if (strcmp(a, "--at") == 0) {
			if (v == NULL)
				hs_cli_usage_error("option --at needs a value");
			o.at = v, i++;
		} else if (strcmp(a, "--pid") == 0) {
			o.pid = (int64_t)hs_cli_parse_u64(a, v, 1, UINT32_MAX), i++;
		} else if (strcmp(a, "--chunks") == 0) {
			o.chunks = hs_cli_parse_u64(a, v, 0, UINT64_MAX), i++;
		} else if (strcmp(a, "--no-spans") == 0) {
			o.no_spans = 1;
		} else {
			hs_cli_file_arg("state", a, &o.file);
		}
	}
	hs_cli_need_file("state", o.file);
	return o;
}

/* --- the point -------------------------------------------------------------- */

typedef struct point {
	int is_time;
	uint64_t value; /* a seq, or nanoseconds into the session */
} point;

__attribute__((noreturn)) static void bad_at(const char *v)
{
	hs_cli_usage_error("option --at: '%s' is neither a sequence number nor a time (like 1.5s or 250ms)", v);
}

/* "123" is a seq; "1.5s" and "250ms" are times: digits and at most one dot,
 * then the unit (strtod alone would also take a sign, "inf", "nan", hex and
 * exponents). Anything else exits 2. */
static point parse_at(const char *v)
{
	point p = { 0, 0 };
	size_t n = strlen(v);
	size_t unit = n >= 2 && strcmp(v + n - 2, "ms") == 0 ? 2 : n >= 1 && v[n - 1] == 's' ? 1 : 0;
	size_t digits = 0, dots = 0;
	for (size_t i = 0; i < n - unit; i++) {
		if (v[i] >= '0' && v[i] <= '9')
			digits++;
		else if (v[i] == '.' && unit != 0)
			dots++;
		else
			bad_at(v);
	}
	if (digits == 0 || dots > 1)
		bad_at(v);
	if (unit == 0) {
		p.value = hs_cli_parse_u64("--at", v, 0, INT64_MAX);
		return p;
	}
	double x = strtod(v, NULL) * (unit == 2 ? 1e6 : 1e9);
	if (!(x >= 0) || x > 9e18)
		bad_at(v);
	p.is_time = 1;
	p.value = (uint64_t)(x + 0.5);
	return p;
}

/* The first event with seq >= seq: 0, 1 if there is none, -1 on error. */
static int event_from(hs_store *st, int64_t session, uint64_t seq, hs_event *e)
{
	hs_source *src;
	if (hs_source_open(st, session, seq, &src) != 0)
		return -1;
	int r = hs_source_next(src, e);
	hs_source_close(src);
	return r == 1 ? 0 : r == 0 ? 1 : -1;
}

/* --- formatting ------------------------------------------------------------- */

static void fmt_bytes(char *buf, size_t n, uint64_t b)
{
	if (b < 1024)
		snprintf(buf, n, "%" PRIu64 " B", b);
	else if (b < 1024 * 1024)
		snprintf(buf, n, "%.1f KiB", (double)b / 1024);
	else if (b < UINT64_C(1) << 30)
		snprintf(buf, n, "%.1f MiB", (double)b / (1024 * 1024));
	else
		snprintf(buf, n, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

/* A line built piece by piece and printed without trailing blanks. */
typedef struct line {
	char buf[256];
	size_t len;
} line;

static void line_put(line *l, const char *s, size_t n)
{
	if (n > sizeof l->buf - 1 - l->len)
		n = sizeof l->buf - 1 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void line_pad(line *l, size_t col)
{
	while (l->len < col && l->len < sizeof l->buf - 1)
		l->buf[l->len++] = ' ';
}

static void line_end(line *l)
{
	while (l->len > 0 && l->buf[l->len - 1] == ' ')
		l->len--;
	printf("%.*s\n", (int)l->len, l->buf);
	l->len = 0;
}

/* --- statistics --------------------------------------------------------------- */

typedef struct page_counts {
	uint64_t chunks, allocated, free, scavenged; /* scavenged: free and scavenged */
} page_counts;

static page_counts count_pages(const hs_pagealloc *p)
{
	page_counts c = { 0, 0, 0, 0 };
	for (size_t k = 0; k < p->in_use.len; k++) {
		for (hs_off_addr o = p->in_use.ranges[k].base; o < p->in_use.ranges[k].limit; o += HS_PALLOC_CHUNK_BYTES) {
			const hs_palloc_data *d = hs_pagealloc_try_chunk_of(p, o >> HS_LOG_PALLOC_CHUNK_BYTES);
			if (d == NULL)
				continue;
			c.chunks++;
			for (unsigned w = 0; w < 8; w++) {
				c.allocated += (uint64_t)__builtin_popcountll(d->alloc.w[w]);
				c.scavenged += (uint64_t)__builtin_popcountll(~d->alloc.w[w] & d->scavenged.w[w]);
			}
		}
	}
	c.free = c.chunks * HS_PALLOC_CHUNK_PAGES - c.allocated;
	return c;
}

typedef struct span_list {
	hs_model_span *s;
	size_t n, cap;
	uint64_t pages;
} span_list;

static void collect_span(const hs_model_span *s, void *arg)
{
	span_list *l = arg;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->s = realloc(l->s, l->cap * sizeof *l->s);
		if (l->s == NULL)
			hs_cli_usage_error("state: out of memory");
	}
	l->s[l->n++] = *s;
	l->pages += s->npages;
}

static int by_base(const void *x, const void *y)
{
	uintptr_t a = ((const hs_model_span *)x)->base, b = ((const hs_model_span *)y)->base;
	return a < b ? -1 : a > b;
}

static span_list sorted_spans(const hs_model_heap *h)
{
	span_list l = { NULL, 0, 0, 0 };
	hs_model_spans(h, collect_span, &l);
	if (l.n > 1)
		qsort(l.s, l.n, sizeof *l.s, by_base);
	return l;
}

static void print_stats(const hs_model_heap *h, uint64_t t0, const span_list *spans)
{
	static const char *const names[6] = { "in use", "free", "released", "mapped", "rss", "metadata" };
	char b[32];
	if (h->stats_ts == 0) {
		printf("statistics: no sample yet\n");
	} else {
		printf("statistics, the last sample (%.3f s):\n", secs(h->stats_ts > t0 ? h->stats_ts - t0 : 0));
		for (int i = 0; i < 6; i++) {
			fmt_bytes(b, sizeof b, h->stats[i]);
			printf("%s%-9s %10s%s", i % 3 == 0 ? "  " : "   ", names[i], b, i % 3 == 2 ? "\n" : "");
		}
	}
	const hs_pagealloc *p = &h->pages;
	page_counts c = count_pages(p);
	fmt_bytes(b, sizeof b, (uint64_t)p->in_use.total_bytes);
	printf("page allocator: %s in %zu range%s, %" PRIu64 " chunks\n", b, p->in_use.len,
	       p->in_use.len == 1 ? "" : "s", c.chunks);
	printf("  pages: %" PRIu64 " allocated, %" PRIu64 " free (%" PRIu64 " of them scavenged)\n", c.allocated,
	       c.free, c.scavenged);
	if (p->search_off == HS_MAX_SEARCH_ADDR)
		printf("  searchAddr: none (no free page)\n");
	else
		printf("  searchAddr: %#lx\n", (unsigned long)hs_off_to_addr(p->search_off));
	line ln = { .len = 0 };
	line_put(&ln, "  in use:", 9);
	for (size_t k = 0; k < p->in_use.len; k++) {
		char r[64];
		int w = snprintf(r, sizeof r, " [%#lx, %#lx)", (unsigned long)hs_off_to_addr(p->in_use.ranges[k].base),
				 (unsigned long)hs_off_to_addr(p->in_use.ranges[k].limit));
		if (ln.len + (size_t)w > LINE_WIDTH) {
			line_end(&ln);
			line_put(&ln, "         ", 9);
		}
		line_put(&ln, r, (size_t)w);
	}
	line_end(&ln);
	fmt_bytes(b, sizeof b, spans->pages << HS_PAGE_SHIFT);
	printf("spans: %zu over %" PRIu64 " pages (%s)\n", spans->n, spans->pages, b);
	if (h->mallocs != 0 || h->frees != 0) {
		fmt_bytes(b, sizeof b, h->malloc_bytes);
		printf("objects: %" PRIu64 " mallocs (%s asked), %" PRIu64 " frees\n", h->mallocs, b, h->frees);
	}
	char rel[32], rec[32];
	fmt_bytes(rel, sizeof rel, h->scav_released);
	fmt_bytes(rec, sizeof rec, h->recommitted);
	printf("scavenger: %" PRIu64 " cycles, %s released, %s re-committed\n", h->scav_cycles, rel, rec);
}

/* --- summary levels ------------------------------------------------------------ */

static hs_palloc_sum summary_at(const hs_pagealloc *p, unsigned l, uintptr_t i)
{
	return p->summary[l][i];
}

/* Entries [lo, hi) of level l that range k covers and no range before it
 * did (two ranges can share an entry of a high level); *done is one past the
 * last entry shown so far, 0 before the first range. 0 if there are none. */
static int level_span(const hs_pagealloc *p, size_t k, unsigned l, uintptr_t *lo, uintptr_t *hi, uintptr_t *done)
{
	*lo = p->in_use.ranges[k].base >> hs_level_shift(l);
	*hi = ((p->in_use.ranges[k].limit - 1) >> hs_level_shift(l)) + 1;
	if (*lo < *done)
		*lo = *done;
	if (*lo >= *hi)
		return 0;
	*done = *hi;
	return 1;
}

static int trivial(hs_palloc_sum s, unsigned l)
{
	unsigned max = hs_palloc_sum_max(s);
	return max == 0 || (uint64_t)max >= UINT64_C(1) << hs_level_log_pages(l);
}

static void print_level(const hs_pagealloc *p, unsigned l)
{
	uint64_t n = 0, mixed = 0;
	uintptr_t lo, hi, done = 0;
	for (size_t k = 0; k < p->in_use.len; k++) {
		if (!level_span(p, k, l, &lo, &hi, &done))
			continue;
		n += hi - lo;
		for (uintptr_t i = lo; i < hi; i++)
			mixed += !trivial(summary_at(p, l, i), l);
	}
	char size[16];
	hs_pagetext_entry_size(size, sizeof size, hs_level_log_pages(l), HS_PAGE_SIZE);
	printf("  L%u (%s) %" PRIu64 " entr%s", l, size, n, n == 1 ? "y" : "ies");
	if (n > LIST_ALL)
		printf(", %" PRIu64 " neither full nor free", mixed);
	putchar('\n');
	line ln = { .len = 0 };
	done = 0;
	for (size_t k = 0; k < p->in_use.len; k++) {
		if (!level_span(p, k, l, &lo, &hi, &done))
			continue;
		for (uintptr_t i = lo; i < hi; i += SHADE_ROW) {
			char head[32];
			int w = snprintf(head, sizeof head, "  %#12lx ", (unsigned long)hs_off_to_addr(i << hs_level_shift(l)));
			line_put(&ln, head, (size_t)w);
			for (uintptr_t j = i; j < hi && j < i + SHADE_ROW; j++) {
				char c = hs_pagetext_shade(hs_palloc_sum_max(summary_at(p, l, j)), hs_level_log_pages(l));
				line_put(&ln, &c, 1);
			}
			line_end(&ln);
		}
	}
	/* start/max/end, packed into lines */
	done = 0;
	for (size_t k = 0; k < p->in_use.len; k++) {
		if (!level_span(p, k, l, &lo, &hi, &done))
			continue;
		for (uintptr_t i = lo; i < hi; i++) {
			hs_palloc_sum s = summary_at(p, l, i);
			if (n > LIST_ALL && trivial(s, l))
				continue;
			char cell[80];
			int w = snprintf(cell, sizeof cell, "%#lx %u/%u/%u", (unsigned long)hs_off_to_addr(i << hs_level_shift(l)),
					 hs_palloc_sum_start(s), hs_palloc_sum_max(s), hs_palloc_sum_end(s));
			if (ln.len != 0 && ln.len + 3 + (size_t)w > LINE_WIDTH)
				line_end(&ln);
			line_put(&ln, ln.len == 0 ? "      " : "   ", ln.len == 0 ? 6 : 3);
			line_put(&ln, cell, (size_t)w);
		}
	}
	if (ln.len != 0)
		line_end(&ln);
}

static void print_levels(const hs_pagealloc *p)
{
	printf("\nsummary levels over the in-use ranges: a shade per entry, %d to a row, then\n"
	       "start/max/end (free pages at its start, the longest run, at its end) of each\n"
	       "entry, or only of those neither full nor free when a level has more than %d:\n",
	       SHADE_ROW, LIST_ALL);
	puts(HS_PAGETEXT_SHADE_LEGEND);
	for (unsigned l = 0; l < HS_SUMMARY_LEVELS; l++)
		print_level(p, l);
}

/* --- chunk bitmaps ------------------------------------------------------------- */

typedef struct chunk_view {
	uintptr_t base;
	const hs_palloc_data *d;
	int mark; /* searchAddr's page, or HS_PAGETEXT_NO_MARK */
} chunk_view;

#define GRID_GAP 3
#define GRID_LEFT 6 /* "  480 " */

static void print_chunk_pair(const chunk_view *c, unsigned n)
{
	line ln = { .len = 0 };
	char text[64];
	for (unsigned k = 0; k < n; k++) {
		line_pad(&ln, GRID_LEFT + k * (HS_PAGETEXT_GRID_COLS + GRID_GAP));
		int w = snprintf(text, sizeof text, "chunk %#lx%s", (unsigned long)c[k].base,
				 c[k].mark != HS_PAGETEXT_NO_MARK ? " @search" : "");
		line_put(&ln, text, (size_t)w);
	}
	line_end(&ln);
	for (unsigned k = 0; k < n; k++) {
		unsigned al = 0, sc = 0;
		for (unsigned w = 0; w < 8; w++) {
			al += (unsigned)__builtin_popcountll(c[k].d->alloc.w[w]);
			sc += (unsigned)__builtin_popcountll(~c[k].d->alloc.w[w] & c[k].d->scavenged.w[w]);
		}
		line_pad(&ln, GRID_LEFT + k * (HS_PAGETEXT_GRID_COLS + GRID_GAP));
		int w = snprintf(text, sizeof text, "alloc %u, free %u (scav %u)", al, HS_PALLOC_CHUNK_PAGES - al, sc);
		line_put(&ln, text, (size_t)w);
	}
	line_end(&ln);
	for (unsigned row = 0; row < HS_PAGETEXT_GRID_ROWS; row++) {
		int w = snprintf(text, sizeof text, "%5u ", row * HS_PAGETEXT_GRID_COLS);
		line_put(&ln, text, (size_t)w);
		for (unsigned k = 0; k < n; k++) {
			char grid[HS_PAGETEXT_GRID_COLS];
			hs_pagetext_chunk_row(grid, c[k].d->alloc.w, c[k].d->scavenged.w, row, c[k].mark);
			line_pad(&ln, GRID_LEFT + k * (HS_PAGETEXT_GRID_COLS + GRID_GAP));
			line_put(&ln, grid, HS_PAGETEXT_GRID_COLS);
		}
		line_end(&ln);
	}
}

/* A chunk whose pages are all in one state: 'o' all free, ':' all free and
 * scavenged, '#' all allocated; 0 for any other. */
static char uniform(const hs_palloc_data *d)
{
	int al = 1, fr = 1, sc = 1;
	for (unsigned w = 0; w < 8; w++) {
		al &= d->alloc.w[w] == UINT64_MAX && d->scavenged.w[w] == 0;
		fr &= d->alloc.w[w] == 0 && d->scavenged.w[w] == 0;
		sc &= d->alloc.w[w] == 0 && d->scavenged.w[w] == UINT64_MAX;
	}
	return al ? '#' : fr ? 'o' : sc ? ':' : 0;
}

/* What print_chunks has seen but not printed yet: up to two grids, or a run of
 * uniform chunks of one kind (never both). */
typedef struct chunk_queue {
	chunk_view pair[2];
	unsigned n;
	uintptr_t run_base, run_limit;
	char run_kind;
} chunk_queue;

static void flush_chunks(chunk_queue *q)
{
	static const struct {
		char kind;
		const char *what;
	} kinds[] = { { '#', "all allocated" }, { 'o', "all free" }, { ':', "all free, scavenged" } };
	if (q->n != 0)
		print_chunk_pair(q->pair, q->n);
	q->n = 0;
	if (q->run_kind == 0)
		return;
	const char *what = "";
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (kinds[i].kind == q->run_kind)
			what = kinds[i].what;
	uint64_t n = (q->run_limit - q->run_base) / HS_PALLOC_CHUNK_BYTES;
	if (n == 1)
		printf("      chunk %#lx: %s\n", (unsigned long)q->run_base, what);
	else
		printf("      chunks [%#lx, %#lx): %" PRIu64 " chunks %s\n", (unsigned long)q->run_base,
		       (unsigned long)q->run_limit, n, what);
	q->run_kind = 0;
}

/*
 * The chunks in use in address order: two grids side by side; a run of
 * chunks whose pages are all in one state (and that hold no searchAddr) is
 * one line instead.
 */
static void print_chunks(const hs_pagealloc *p, uint64_t limit)
{
	uint64_t total = count_pages(p).chunks, shown = 0;
	printf("\nchunk bitmaps, %d pages a row; a run of chunks whose pages are all alike is\n"
	       "one line:\n",
	       HS_PAGETEXT_GRID_COLS);
	puts(HS_PAGETEXT_PAGE_LEGEND);
	hs_chunk_idx search_ci = p->search_off >> HS_LOG_PALLOC_CHUNK_BYTES;
	chunk_queue q = { .n = 0, .run_kind = 0 };
	for (size_t k = 0; k < p->in_use.len && shown < limit; k++) {
		for (hs_off_addr o = p->in_use.ranges[k].base; o < p->in_use.ranges[k].limit && shown < limit;
		     o += HS_PALLOC_CHUNK_BYTES) {
			hs_chunk_idx ci = o >> HS_LOG_PALLOC_CHUNK_BYTES;
			const hs_palloc_data *d = hs_pagealloc_try_chunk_of(p, ci);
			if (d == NULL)
				continue;
			shown++;
			uintptr_t base = hs_chunk_base(ci);
			int marked = p->search_off != HS_MAX_SEARCH_ADDR && ci == search_ci;
			char kind = marked ? 0 : uniform(d);
			if (kind != 0) {
				if (q.run_kind == kind && q.run_limit == base) {
					q.run_limit += HS_PALLOC_CHUNK_BYTES;
					continue;
				}
				flush_chunks(&q);
				q.run_kind = kind;
				q.run_base = base;
				q.run_limit = base + HS_PALLOC_CHUNK_BYTES;
				continue;
			}
			if (q.run_kind != 0)
				flush_chunks(&q);
			int mark = marked ? (int)((p->search_off >> HS_PAGE_SHIFT) & (HS_PALLOC_CHUNK_PAGES - 1))
					  : HS_PAGETEXT_NO_MARK;
			q.pair[q.n++] = (chunk_view){ base, d, mark };
			if (q.n == 2)
				flush_chunks(&q);
		}
	}
	flush_chunks(&q);
	if (shown < total)
		printf("  (%" PRIu64 " of %" PRIu64 " chunks shown; --chunks N shows more)\n", shown, total);
}

/* --- spans --------------------------------------------------------------------- */

static const char *where_name(unsigned where)
{
	static const char *const names[] = {
		[HS_MODEL_SPAN_NEW] = "new",
		[HS_MODEL_SPAN_CACHED] = "mcache",
		[HS_MODEL_SPAN_PARTIAL] = "partial",
		[HS_MODEL_SPAN_FULL] = "full",
	};
	return where < sizeof names / sizeof names[0] ? names[where] : "?";
}

static void print_spans(const span_list *l)
{
	printf("\nspans by address (%zu); ALLOC and WHERE as of each span's last event\n"
	       "(span_alloc, mcache refill or flush, mcentral move, sweep):\n",
	       l->n);
	printf("  %14s %6s %5s %8s %13s  %s\n", "BASE", "PAGES", "CLASS", "OBJSIZE", "ALLOC/NELEMS", "WHERE");
	for (size_t i = 0; i < l->n; i++) {
		const hs_model_span *s = &l->s[i];
		unsigned sc = s->spanclass >> 1;
		char cls[16], size[24], occ[32];
		if (sc == 0) {
			snprintf(cls, sizeof cls, "large");
			snprintf(size, sizeof size, "%" PRIu64, (uint64_t)s->npages << HS_PAGE_SHIFT);
			snprintf(occ, sizeof occ, "-");
		} else if (sc < HS_NUM_SIZE_CLASSES) {
			snprintf(cls, sizeof cls, "%u", sc);
			snprintf(size, sizeof size, "%u", hs_class_to_size[sc]);
			snprintf(occ, sizeof occ, "%u/%u", s->alloc_count,
				 (unsigned)(((uint64_t)s->npages << HS_PAGE_SHIFT) / hs_class_to_size[sc]));
		} else {
			snprintf(cls, sizeof cls, "?%u", s->spanclass);
			snprintf(size, sizeof size, "-");
			snprintf(occ, sizeof occ, "%u/-", s->alloc_count);
		}
		printf("  %#14lx %6u %5s %8s %13s  %s\n", (unsigned long)s->base, s->npages, cls, size, occ,
		       where_name(s->where));
	}
}

/* --- the command ----------------------------------------------------------------- */

static void print_heap(hs_model_heap *h, const state_opts *o, uint64_t t0)
{
	printf("\n== heap of pid %u", h->pid);
	if (h->ppid != 0)
		printf(" (parent %u)", h->ppid);
	printf("%s ==\n", h->ended ? ", ended" : "");
	span_list spans = sorted_spans(h);
	print_stats(h, t0, &spans);
	print_levels(&h->pages);
	if (o->chunks != 0)
		print_chunks(&h->pages, o->chunks);
	if (!o->no_spans)
		print_spans(&spans);
	free(spans.s);
}

__attribute__((noreturn)) static void no_such_pid(hs_model *m, int64_t pid, uint64_t seq)
{
	char pids[256] = "";
	size_t n = 0;
	for (unsigned i = 0; i < hs_model_nheaps(m) && n < sizeof pids - 16; i++)
		n += (size_t)snprintf(pids + n, sizeof pids - n, "%s%u", i ? ", " : "", hs_model_heap_at(m, i)->pid);
	hs_cli_usage_error("state: no heap of pid %" PRId64 " at seq %" PRIu64 " (heaps: %s)", pid, seq,
			   n != 0 ? pids : "none");
}

__attribute__((noreturn)) static void store_fail(const char *file, hs_store *st)
{
	hs_cli_usage_error("%s: %s", file, hs_store_error(st));
}

int hs_cmd_state(int argc, char **argv)
{
	state_opts o = parse_opts(argc, argv);
	point at = { 0, 0 };
	if (o.at != NULL)
		at = parse_at(o.at);

	char err[512];
	hs_session_info info;
	hs_store *st = hs_cli_open_session(o.file, &o.session, &info);

	uint64_t first, last;
	int r = hs_store_session_bounds(st, o.session, &first, &last);
	if (r < 0)
		hs_cli_usage_error("%s: %s", o.file, sqlite3_errmsg(hs_store_db(st)));
	if (r > 0)
		hs_cli_usage_error("state: session %" PRId64 " has no events", o.session);
	hs_event e0, e1, e;
	if (event_from(st, o.session, first, &e0) != 0 || event_from(st, o.session, last, &e1) != 0)
		store_fail(o.file, st);
	uint64_t seq = last, span_ns = e1.ts > e0.ts ? e1.ts - e0.ts : 0;
	if (o.at != NULL && !at.is_time) {
		if (at.value < first || at.value > last)
			hs_cli_usage_error("state: seq %" PRIu64 " is outside session %" PRId64 "'s events (seq %" PRIu64
					   " to %" PRIu64 ")",
					   at.value, o.session, first, last);
		seq = at.value;
	} else if (o.at != NULL) {
		if (at.value > span_ns)
			hs_cli_usage_error("state: %s is beyond session %" PRId64 "'s end (its events span 0 to %.6f s)",
					   o.at, o.session, secs(span_ns));
		if (hs_store_seq_at_time(st, o.session, at.value, &seq) != 0)
			store_fail(o.file, st);
	}

	hs_model *m;
	if (hs_store_model_at(st, o.session, seq, &m, err, sizeof err) != 0)
		hs_cli_usage_error("%s: %s", o.file, err);
	uint64_t applied_seq = hs_model_last_seq(m);
	if (o.pid >= 0 && hs_model_heap_of(m, (uint32_t)o.pid) == NULL)
		no_such_pid(m, o.pid, applied_seq);
	if (event_from(st, o.session, applied_seq, &e) != 0)
		store_fail(o.file, st);

	printf("heapscope state of %s\n", o.file);
	printf("session %" PRId64 ": %s, seed %" PRIu64 ", pid %" PRId64 ", %s, %s level\n", o.session, info.command != NULL ? info.command : "-", info.seed, info.pid,
	       hs_session_status_name(info.status), info.level != NULL ? info.level : "-");
	printf("at seq %" PRIu64 " of %" PRIu64 "..%" PRIu64 ", %.3f s into the session (of %.3f s)\n", applied_seq, first,
	       last, secs(e.ts > e0.ts ? e.ts - e0.ts : 0), secs(span_ns));
	const char *diverged = hs_model_error(m);
	if (applied_seq != seq)
		printf("  (asked for seq %" PRIu64 ": %s)\n", seq,
		       diverged != NULL ? "the model stopped where it diverged" : "not in the session, the last event before it");
	printf("events applied: %" PRIu64 ", digests checked equal: %" PRIu64 ", heaps: %u\n", hs_model_events(m),
	       hs_model_digests(m), hs_model_nheaps(m));
	if (diverged != NULL)
		printf("DIVERGED: the model stopped at %s\n", diverged);

	for (unsigned i = 0; i < hs_model_nheaps(m); i++) {
		hs_model_heap *h = hs_model_heap_at(m, i);
		if (o.pid < 0 || h->pid == (uint64_t)o.pid)
			print_heap(h, &o, e0.ts);
	}
	hs_model_free(m);
	hs_store_close(st);
	return diverged != NULL ? HS_EXIT_FAIL : HS_EXIT_OK;
}
