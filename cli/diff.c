/*
 * cli/diff.c — `heapscope diff FILE A B` and `heapscope diff FILE_A[:N]
 * FILE_B[:M]`: two sessions side by side, for a regression hunt.
 *
 * Each session is summed up by store/metrics.c (one streaming pass each, one
 * after the other, so memory is that of one pass plus two small results). The
 * figures that matter for a regression — peak and final retained, peak in-use
 * and RSS, heap growth, fragmentation, the scavenger's work, span churn of the
 * busiest classes, page allocations under heap.lock, duration and events —
 * are listed with the absolute and the
 * relative change from A to B, largest relative change first; the first line
 * names the largest. The order is by the relative change measured from at
 * least a floor — 1 MiB for bytes, 1 point for a share, 1 ms, 1 for counts —
 * so that 0.1% -> 0.2% of something does not lead as "+100%"; a figure that
 * was 0 in A shows as "new" (its relative change is infinite) and sorts by its
 * size over the floor. Equal keys keep the order of the table below, which
 * puts what a user asks about first (retained before the scavenger's
 * counters, and so on).
 *
 * The files are opened HS_STORE_READONLY; bad input is one line
 * "heapscope: ..." and exit status 2.
 */
#include <inttypes.h>
#include <math.h> /* INFINITY, isinf: macros */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "metrics.h"
#include "sizeclasses.h"
#include "store.h"

/* Span classes with their own churn row: the busiest of either session. */
#define CHURN_CLASSES 5
#define MAX_METRICS (32 + CHURN_CLASSES)

typedef enum { U_BYTES, U_COUNT, U_SHARE, U_SECONDS } unit;

typedef struct metric {
	char name[64];
	unit unit;
	double a, b;
	double rel;   /* (b - a) / a; +-INFINITY when a is 0 and b is not */
	double key;   /* |b - a| / max(|a|, floor): the sort key */
	size_t order; /* place in the table: ties keep it */
} metric;

typedef struct side {
	const char *file;
	int64_t session; /* -1: the file's last */
	hs_metrics m;
	char verdict[1024];
} side;

static void usage(FILE *f)
{
	fprintf(f, "usage: heapscope diff FILE A B [--json]\n"
		   "       heapscope diff FILE_A[:N] FILE_B[:M] [--json]\n\n"
		   "Compares two recorded sessions: sessions A and B of one FILE, or the last\n"
		   "session of each of two files (FILE:N picks session N). For each figure that\n"
		   "matters for a regression (peak and final retained, peak in-use and RSS, heap\n"
		   "growth, fragmentation, scavenger work, span churn of the busiest classes, page\n"
		   "allocations under heap.lock, duration, events) prints A, B, the change and the\n"
		   "relative change, largest relative change first; the first line names the\n"
		   "largest. The files are opened read-only. docs/reports.md explains every\n"
		   "figure; docs/regressions.md walks through a regression hunt.\n\n"
		   "  --json   the comparison as JSON\n"
		   "  --help   this text\n");
}

/* --- the table of figures --------------------------------------------------------- */

/* |x|, without libm (the command does not link it). */
static double absd(double x)
{
	return x < 0 ? -x : x;
}

static void add(metric *t, size_t *n, const char *name, unit u, double a, double b)
{
	metric *x = &t[(*n)];
	snprintf(x->name, sizeof x->name, "%s", name);
	x->unit = u;
	x->a = a;
	x->b = b;
	x->order = (*n)++;
	if (a == b)
		x->rel = 0;
	else if (a == 0)
		x->rel = b > a ? INFINITY : -INFINITY;
	else
		x->rel = (b - a) / absd(a);
	/* Below these, a change is noise: 0.1% -> 0.2% of a share is not "+100%". */
	double floor = u == U_BYTES ? 1048576.0 : u == U_SHARE ? 0.01 : u == U_SECONDS ? 0.001 : 1.0;
	x->key = absd(b - a) / (absd(a) > floor ? absd(a) : floor);
}

static uint64_t churn(const hs_metrics *m, unsigned c)
{
	return m->classes[c].allocs + m->classes[c].frees;
}

static uint64_t churn_max(const hs_metrics *a, const hs_metrics *b, unsigned c)
{
	return churn(a, c) > churn(b, c) ? churn(a, c) : churn(b, c);
}

/* The span classes with the most churn in either session, busiest first (ties:
 * the lower class first). */
static size_t busiest(const hs_metrics *a, const hs_metrics *b, unsigned *out, size_t max)
{
	unsigned all[HS_METRICS_NSPANCLASS];
	size_t n = 0;
	for (unsigned c = 0; c < HS_METRICS_NSPANCLASS; c++) {
		if (churn_max(a, b, c) == 0)
			continue;
		size_t j = n++;
		while (j > 0 && churn_max(a, b, all[j - 1]) < churn_max(a, b, c)) {
			all[j] = all[j - 1];
			j--;
		}
		all[j] = c;
	}
	n = n < max ? n : max;
	memcpy(out, all, n * sizeof *out);
	return n;
}

static size_t build(const hs_metrics *a, const hs_metrics *b, metric *t)
{
	size_t n = 0;
	int model = a->nmodel != 0 && b->nmodel != 0;
#define D(x) ((double)(x))
	add(t, &n, "peak retained", U_BYTES, D(a->peak_retained.retained), D(b->peak_retained.retained));
	add(t, &n, "final retained", U_BYTES, D(a->last.retained), D(b->last.retained));
	add(t, &n, "scavenger released", U_BYTES, D(a->scav_released), D(b->scav_released));
	add(t, &n, "released as freed (large spans)", U_BYTES, D(a->freed_released), D(b->freed_released));
	add(t, &n, "peak in-use", U_BYTES, D(a->peak_in_use.in_use), D(b->peak_in_use.in_use));
	add(t, &n, "peak RSS", U_BYTES, D(a->peak_rss.rss), D(b->peak_rss.rss));
	add(t, &n, "final RSS", U_BYTES, D(a->last.rss), D(b->last.rss));
	add(t, &n, "peak free pages not released", U_BYTES, D(a->peak_unscav.unscav), D(b->peak_unscav.unscav));
	add(t, &n, "mean free pages not released", U_SHARE, a->unscav_mean, b->unscav_mean);
	if (model) {
		add(t, &n, "peak live objects", U_BYTES, D(a->peak_live.live), D(b->peak_live.live));
		add(t, &n, "peak free slots in spans", U_BYTES, D(a->peak_slots.slots), D(b->peak_slots.slots));
		add(t, &n, "mean free slot share", U_SHARE, a->slots_mean, b->slots_mean);
		add(t, &n, "mean fragmentation", U_SHARE, a->frag_mean, b->frag_mean);
		add(t, &n, "max fragmentation", U_SHARE, a->peak_frag.frag, b->peak_frag.frag);
	}
	add(t, &n, "heap growth", U_BYTES, D(a->page_grow_bytes), D(b->page_grow_bytes));
	add(t, &n, "heap growth events", U_COUNT, D(a->page_grows), D(b->page_grows));
	add(t, &n, "growth with free pages scattered", U_BYTES, D(a->frag_grow_bytes), D(b->frag_grow_bytes));
	add(t, &n, "scavenger cycles", U_COUNT, D(a->scav_cycles), D(b->scav_cycles));
	add(t, &n, "scavenger CPU", U_SECONDS, D(a->scav_cpu_ns) / 1e9, D(b->scav_cpu_ns) / 1e9);
	add(t, &n, "re-committed", U_BYTES, D(a->recommit_bytes), D(b->recommit_bytes));
	add(t, &n, "spans allocated", U_COUNT, D(a->span_allocs), D(b->span_allocs));
	add(t, &n, "spans freed", U_COUNT, D(a->span_frees), D(b->span_frees));
	add(t, &n, "page allocations under heap.lock", U_COUNT, D(a->page_allocs_locked), D(b->page_allocs_locked));
	unsigned top[CHURN_CLASSES];
	size_t k = busiest(a, b, top, CHURN_CLASSES);
	for (size_t i = 0; i < k; i++) {
		char name[64];
		unsigned c = top[i] >> 1;
		if (c == 0)
			snprintf(name, sizeof name, "span churn, spanclass %u (large)", top[i]);
		else
			snprintf(name, sizeof name, "span churn, spanclass %u (%u B)", top[i], hs_class_to_size[c]);
		add(t, &n, name, U_COUNT, D(churn(a, top[i])), D(churn(b, top[i])));
	}
	add(t, &n, "duration", U_SECONDS, a->duration, b->duration);
	add(t, &n, "events", U_COUNT, D(a->events), D(b->events));
	add(t, &n, "events lost", U_COUNT, D(a->nlost), D(b->nlost));
	add(t, &n, "mallocs", U_COUNT, D(a->mallocs), D(b->mallocs));
#undef D
	return n;
}

/* Largest relative change first, measured from at least a floor (1 MiB,
 * 1 point of a share, 1 ms, 1) so that tiny figures do not lead; ties in table
 * order. */
static int before(const metric *x, const metric *y)
{
	if (x->key != y->key)
		return x->key > y->key;
	return x->order < y->order;
}

static void sort(metric *t, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		metric x = t[i];
		size_t j = i;
		while (j > 0 && before(&x, &t[j - 1])) {
			t[j] = t[j - 1];
			j--;
		}
		t[j] = x;
	}
}

/* --- text ----------------------------------------------------------------------------- */

static const char *fmt_value(const metric *x, double v, char *buf, size_t len)
{
	switch (x->unit) {
	case U_BYTES:
		return hs_metrics_fmt_bytes((uint64_t)(v > 0 ? v : 0), buf, len);
	case U_COUNT:
		snprintf(buf, len, "%.0f", v);
		return buf;
	case U_SHARE:
		snprintf(buf, len, "%.1f%%", 100 * v);
		return buf;
	case U_SECONDS:
		snprintf(buf, len, v < 0.1 ? "%.1f ms" : "%.2f s", v < 0.1 ? v * 1e3 : v);
		return buf;
	}
	return "?";
}

static const char *fmt_change(const metric *x, char *buf, size_t len)
{
	double d = x->b - x->a;
	char v[32];
	switch (x->unit) {
	case U_BYTES:
		snprintf(buf, len, "%s%s", d < 0 ? "-" : "+", hs_metrics_fmt_bytes((uint64_t)absd(d), v, sizeof v));
		return buf;
	case U_COUNT:
		snprintf(buf, len, "%+.0f", d);
		return buf;
	case U_SHARE:
		snprintf(buf, len, "%+.1f pts", 100 * d);
		return buf;
	case U_SECONDS:
		snprintf(buf, len, absd(d) < 0.1 ? "%+.1f ms" : "%+.2f s", absd(d) < 0.1 ? d * 1e3 : d);
		return buf;
	}
	return "?";
}

static const char *fmt_rel(const metric *x, char *buf, size_t len)
{
	if (isinf(x->rel))
		snprintf(buf, len, x->rel > 0 ? "new" : "gone");
	else if (x->rel == 0)
		snprintf(buf, len, "=");
	else if (x->key < absd(x->rel)) /* from below the floor: shown, not ranked by it */
		snprintf(buf, len, absd(x->rel) < 0.1 ? "(%+.1f%%)" : "(%+.0f%%)", 100 * x->rel);
	else
		snprintf(buf, len, absd(x->rel) < 0.1 ? "%+.1f%%" : "%+.0f%%", 100 * x->rel);
	return buf;
}

static void describe(FILE *f, const char *label, const side *s)
{
	fprintf(f, "%s: %s session %" PRId64 " (%s, seed %" PRIu64 ", %s, level %s, %" PRIu64 " events)\n", label,
		s->file, s->m.session, s->m.command, s->m.seed, s->m.status, s->m.level, s->m.events);
}

static void diff_text(FILE *f, const side *a, const side *b, const metric *t, size_t n)
{
	char va[32], vb[32], ch[48], rel[32];
	if (n == 0 || t[0].key == 0)
		fprintf(f, "largest change: none (every figure below is equal)\n");
	else
		fprintf(f, "largest change: %s %s (%s \u2192 %s)\n", t[0].name, fmt_rel(&t[0], rel, sizeof rel),
			fmt_value(&t[0], t[0].a, va, sizeof va), fmt_value(&t[0], t[0].b, vb, sizeof vb));
	describe(f, "A", a);
	describe(f, "B", b);
	fprintf(f, "\n  %-40s %12s %12s %14s %9s\n", "figure", "A", "B", "change", "relative");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-40s %12s %12s %14s %9s\n", t[i].name, fmt_value(&t[i], t[i].a, va, sizeof va),
			fmt_value(&t[i], t[i].b, vb, sizeof vb), fmt_change(&t[i], ch, sizeof ch),
			fmt_rel(&t[i], rel, sizeof rel));
	fprintf(f, "\nverdict A: %s\nverdict B: %s\n", a->verdict, b->verdict);
	for (int i = 0; i < 2; i++) {
		const side *s = i == 0 ? a : b;
		if (s->m.diverged)
			fprintf(f, "note: the model diverged on %s at %s; figures from it stop there\n", i == 0 ? "A" : "B",
				s->m.diverge);
		if (s->m.nprocs > 1)
			fprintf(f, "note: %s traced %u processes; these figures are the first's (pid %u)\n",
				i == 0 ? "A" : "B", s->m.nprocs, s->m.pid);
	}
}

/* --- json ----------------------------------------------------------------------------- */

static const char *unit_name(unit u)
{
	return u == U_BYTES ? "bytes" : u == U_COUNT ? "count" : u == U_SHARE ? "share" : "seconds";
}

static void json_side(FILE *f, const char *key, const side *s)
{
	fprintf(f, "  \"%s\": {\"file\": ", key);
	hs_metrics_json_string(f, s->file);
	fprintf(f, ", \"session\": %" PRId64 ", \"command\": ", s->m.session);
	hs_metrics_json_string(f, s->m.command);
	fprintf(f, ", \"seed\": %" PRIu64 ", \"status\": ", s->m.seed);
	hs_metrics_json_string(f, s->m.status);
	fprintf(f, ", \"pid\": %u, \"processes\": %u, \"diverged\": %s, \"verdict\": ", s->m.pid, s->m.nprocs,
		s->m.diverged ? "true" : "false");
	hs_metrics_json_string(f, s->verdict);
	fputs("},\n", f);
}

static void json_metric(FILE *f, const metric *x)
{
	fputs("{\"name\": ", f);
	hs_metrics_json_string(f, x->name);
	fprintf(f, ", \"unit\": \"%s\", \"a\": ", unit_name(x->unit));
	hs_metrics_json_double(f, x->a);
	fputs(", \"b\": ", f);
	hs_metrics_json_double(f, x->b);
	fputs(", \"change\": ", f);
	hs_metrics_json_double(f, x->b - x->a);
	fputs(", \"relative\": ", f);
	hs_metrics_json_double(f, x->rel); /* null when from zero */
	fprintf(f, ", \"from_zero\": %s}", isinf(x->rel) ? "true" : "false");
}

static void diff_json(FILE *f, const side *a, const side *b, const metric *t, size_t n)
{
	fputs("{\n", f);
	json_side(f, "a", a);
	json_side(f, "b", b);
	fputs("  \"largest\": ", f);
	if (n == 0 || t[0].key == 0)
		fputs("null", f);
	else
		json_metric(f, &t[0]);
	fputs(",\n  \"metrics\": [", f);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",\n    " : "\n    ", f);
		json_metric(f, &t[i]);
	}
	fputs(n ? "\n  ]\n}\n" : "]\n}\n", f);
}

/* --- the command ------------------------------------------------------------------------ */

/* FILE or FILE:N: the whole argument when it names a file, else split at the
 * last ':' if digits follow it. */
static void parse_spec(const char *arg, side *s, char *path, size_t len)
{
	struct stat st;
	const char *colon = strrchr(arg, ':');
	s->session = -1;
	if (stat(arg, &st) == 0 || colon == NULL || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		snprintf(path, len, "%s", arg);
	} else {
		if ((size_t)(colon - arg) >= len)
			hs_cli_usage_error("diff: file name too long: %s", arg);
		memcpy(path, arg, (size_t)(colon - arg));
		path[colon - arg] = '\0';
		s->session = (int64_t)hs_cli_parse_u64("session", colon + 1, 1, INT64_MAX);
	}
	s->file = path;
}

static void compute(side *s)
{
	char err[512];
	hs_store *st = hs_cli_open_store(s->file);
	int failed = hs_metrics_compute(st, s->session, &s->m, err, sizeof err) != 0;
	hs_store_close(st);
	if (failed) {
		hs_metrics_free(&s->m);
		hs_cli_usage_error("%s: %s", s->file, err);
	}
	hs_metrics_verdict(&s->m, s->verdict, sizeof s->verdict);
	/* the series is not compared: keep only the sums */
	hs_metrics_free(&s->m);
}

int hs_cmd_diff(int argc, char **argv)
{
	const char *pos[3];
	int npos = 0, json = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return HS_EXIT_OK;
		} else if (strcmp(a, "--json") == 0) {
			json = 1;
		} else if (a[0] == '-' && a[1] != '\0') {
			hs_cli_usage_error("diff: unknown option '%s' (see 'heapscope diff --help')", a);
		} else if (npos == 3) {
			hs_cli_usage_error("diff: too many arguments (see 'heapscope diff --help')");
		} else {
			pos[npos++] = a;
		}
	}
	if (npos < 2)
		hs_cli_usage_error("diff: needs FILE A B or FILE_A FILE_B (see 'heapscope diff --help')");

	static side a, b;
	char pa[4096], pb[4096];
	if (npos == 3) {
		a.file = b.file = pos[0];
		a.session = (int64_t)hs_cli_parse_u64("session A", pos[1], 1, INT64_MAX);
		b.session = (int64_t)hs_cli_parse_u64("session B", pos[2], 1, INT64_MAX);
	} else {
		parse_spec(pos[0], &a, pa, sizeof pa);
		parse_spec(pos[1], &b, pb, sizeof pb);
	}
	compute(&a);
	compute(&b);

	metric t[MAX_METRICS];
	size_t n = build(&a.m, &b.m, t);
	sort(t, n);
	if (json)
		diff_json(stdout, &a, &b, t, n);
	else
		diff_text(stdout, &a, &b, t, n);
	if (fflush(stdout) != 0 || ferror(stdout))
		hs_cli_usage_error("diff: cannot write standard output");
	return HS_EXIT_OK;
}
