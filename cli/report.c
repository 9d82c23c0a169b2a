/*
 * cli/report.c — `heapscope report FILE [--session N] [--format text|json|html]
 * [-o OUT]`: one session, summed up. The numbers come from store/metrics.c (one
 * streaming pass; its essay says how each is computed); this file only lays
 * them out, three ways:
 *
 *   text  a summary for a terminal: the verdict line ("is it a leak or
 *         fragmentation?"), peaks, where RSS goes at peak RSS, heap growth by
 *         span class, the scavenger, and a compact table of the series;
 *   json  everything, every kept sample, for scripts (one object);
 *   html  one self-contained page: the summary and inline SVG charts of the
 *         series (heap, the RSS split stacked, fragmentation); no script, no
 *         external asset.
 *
 * The file is opened HS_STORE_READONLY; bad input is one line "heapscope: ..."
 * and exit status 2 (cli/cli.h). docs/reports.md describes every figure.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "metrics.h"
#include "sizeclasses.h"
#include "store.h"

/* Rows of the text report's series table: enough to see the shape. */
#define TEXT_ROWS 24
/* Span classes listed in the growth table. */
#define TOP_CLASSES 12

typedef enum { FMT_TEXT, FMT_JSON, FMT_HTML } report_format;

static void usage(FILE *f)
{
	fprintf(f, "usage: heapscope report FILE [--session N] [--format text|json|html] [-o OUT]\n\n"
		   "Replays one recorded session and sums it up: peak in-use, retained and RSS;\n"
		   "heap growth by span class; fragmentation of free pages over time (1 - largest\n"
		   "free run / free pages); free slots in spans; the scavenger's work; and where\n"
		   "RSS goes (live objects, free slots in in-use spans, free pages not released,\n"
		   "heap metadata, the rest), with a verdict: is it a leak or fragmentation?\n"
		   "The file is opened read-only. docs/reports.md explains every figure.\n\n"
		   "  --session N    the session to report (default: the file's last)\n"
		   "  --format F     text (default), json (everything, machine-readable) or html\n"
		   "                 (a self-contained page with SVG charts)\n"
		   "  -o OUT         write the report to OUT instead of standard output\n"
		   "  --help         this text\n");
}

static const char *mb(uint64_t n, char *buf, size_t len)
{
	return hs_metrics_fmt_bytes(n, buf, len);
}

static double mib(uint64_t n)
{
	return (double)n / (1024.0 * 1024.0);
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole != 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

static uint64_t clamp0(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0;
}

/* The classes with span_alloc events, by bytes allocated, then frees. */
static size_t top_classes(const hs_metrics *m, unsigned *out, size_t max)
{
	size_t n = 0;
	for (unsigned c = 0; c < HS_METRICS_NSPANCLASS; c++)
		if (m->classes[c].allocs != 0 || m->classes[c].frees != 0)
			out[n++] = c;
	for (size_t i = 1; i < n; i++) { /* insertion sort: at most 136 */
		unsigned c = out[i];
		size_t j = i;
		while (j > 0 && (m->classes[out[j - 1]].alloc_bytes < m->classes[c].alloc_bytes ||
				 (m->classes[out[j - 1]].alloc_bytes == m->classes[c].alloc_bytes &&
				  m->classes[out[j - 1]].frees < m->classes[c].frees))) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = c;
	}
	return n < max ? n : max;
}

/* Object size of a span class ("large" for class 0) in buf; its size in *size_out. */
static const char *class_size(unsigned spanclass, unsigned *size_out, char *buf, size_t len)
{
	unsigned c = spanclass >> 1;
	*size_out = c < HS_NUM_SIZE_CLASSES ? hs_class_to_size[c] : 0;
	if (c == 0)
		snprintf(buf, len, "large");
	else
		snprintf(buf, len, "%u B", *size_out);
	return buf;
}

/* --- text ------------------------------------------------------------------------ */

static void text_header(FILE *f, const char *file, const hs_metrics *m)
{
	fprintf(f, "heapscope report: %s, session %" PRId64 " (%s, seed %" PRIu64 ", %s, level %s, %s)\n", file,
		m->session, m->command, m->seed, m->status, m->level, m->transport);
	fprintf(f, "process %u: %" PRIu64 " events of %" PRIu64 " read, %" PRIu64 " lost; %.2f s; %" PRIu64
		   " statistics samples",
		m->pid, m->events_pid, m->events, m->nlost, m->duration, m->nseen);
	if (m->nprocs > 1)
		fprintf(f, "; %u processes traced, this report covers the first", m->nprocs);
	fprintf(f, "\n");
	if (m->diverged)
		fprintf(f, "model: diverged at %s; figures from the model (live, free slots, fragmentation) stop at "
			   "seq %" PRIu64 "\n",
			m->diverge, m->diverge_seq);
	else
		fprintf(f, "model: %" PRIu64 " digests checked, all equal to the heap's\n", m->digests);
}

static void text_peak(FILE *f, const char *what, uint64_t v, const hs_metrics_sample *s)
{
	char b[32];
	fprintf(f, "  %-24s %10s  (%" PRIu64 " bytes)  at t=%.2fs\n", what, mb(v, b, sizeof b), v, s->t);
}

/* One row of the RSS split: the part at each of n moments, with its share of RSS. */
static void text_split_row(FILE *f, const char *what, const uint64_t *v, const hs_metrics_sample *const *at,
			   size_t n)
{
	char b[32];
	fprintf(f, "  %-28s", what);
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %10s %5.1f%%", mb(v[i], b, sizeof b), pct(v[i], at[i]->rss));
	fputc('\n', f);
}

/* Where RSS goes at peak in-use and at peak RSS (once if they are one sample). */
static void text_split(FILE *f, const hs_metrics *m)
{
	const hs_metrics_sample *at[2] = { &m->peak_in_use, &m->peak_rss };
	size_t n = m->peak_in_use.seq == m->peak_rss.seq ? 1 : 2;
	char b[32], head[2][64];
	for (size_t i = 0; i < n; i++)
		snprintf(head[i], sizeof head[i], "%s t=%.2fs", i == 0 ? "peak in-use" : "peak RSS", at[i]->t);
	fprintf(f, "\nwhere RSS goes\n  %-28s", "");
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %17s", head[i]);
	fputc('\n', f);
	uint64_t v[2];
#define ROW_(label, expr)                                    \
	do {                                                 \
		for (size_t i = 0; i < n; i++)               \
			v[i] = (expr);                       \
		text_split_row(f, label, v, at, n);          \
	} while (0)
	if (at[0]->model_ok && at[n - 1]->model_ok) {
		ROW_("live objects", at[i]->live);
		ROW_("free slots in in-use spans", at[i]->slots);
	} else {
		ROW_("in-use spans", at[i]->in_use);
	}
	ROW_("free pages not released", at[i]->unscav);
	ROW_("heap metadata", at[i]->metadata);
	ROW_("other (rest of the process)", clamp0(at[i]->other));
	ROW_("= RSS", at[i]->rss);
#undef ROW_
	for (size_t i = 0; i < n; i++)
		if (at[i]->other < 0)
			fprintf(f, "  (at %s the heap's share exceeds RSS by %s: free pages never touched are not "
				   "resident; other shows 0)\n",
				head[i], mb((uint64_t)-at[i]->other, b, sizeof b));
	if (m->other_negative && at[0]->other >= 0 && at[n - 1]->other >= 0)
		fprintf(f, "  (at some samples the heap's share exceeds RSS; other is clamped at 0 there)\n");
}

static void text_classes(FILE *f, const hs_metrics *m)
{
	unsigned top[HS_METRICS_NSPANCLASS];
	size_t n = top_classes(m, top, TOP_CLASSES), total = top_classes(m, top, HS_METRICS_NSPANCLASS);
	n = n < total ? n : total;
	char b[32], sz[32];
	fprintf(f, "\nheap growth by span class (span_alloc; %zu of %zu classes, by bytes)\n", n, total);
	if (n == 0) {
		fprintf(f, "  (no spans)\n");
		return;
	}
	fprintf(f, "  %9s %5s %8s %8s %10s %8s %8s\n", "spanclass", "class", "object", "allocs", "bytes", "frees",
		"churn");
	for (size_t i = 0; i < n; i++) {
		const hs_metrics_class *c = &m->classes[top[i]];
		unsigned size;
		fprintf(f, "  %9u %5u %8s %8" PRIu64 " %10s %8" PRIu64 " %8" PRIu64 "\n", top[i], top[i] >> 1,
			class_size(top[i], &size, sz, sizeof sz), c->allocs, mb(c->alloc_bytes, b, sizeof b), c->frees,
			c->allocs + c->frees);
	}
}

static void text_series(FILE *f, const hs_metrics *m)
{
	size_t n = m->nsamples, step = (n + TEXT_ROWS - 1) / TEXT_ROWS;
	step = step ? step : 1;
	fprintf(f, "\nseries: %" PRIu64 " samples", m->nseen);
	if (m->stride > 1)
		fprintf(f, ", %zu kept (1 in %u and the peaks)", n, m->stride);
	if (step > 1)
		fprintf(f, "; 1 in %zu shown and the last", step);
	fprintf(f, " (MiB; frag = 1 - largest free run / free pages)\n");
	fprintf(f, "  %8s %8s %8s %8s %8s %8s %8s %6s %8s %5s\n", "t (s)", "in-use", "retained", "rss", "live",
		"slots", "unscav", "meta", "other", "frag");
	for (size_t i = 0; i < n; i++) {
		if (i % step != 0 && i + 1 != n)
			continue;
		const hs_metrics_sample *s = &m->samples[i];
		fprintf(f, "  %8.2f %8.1f %8.1f %8.1f ", s->t, mib(s->in_use), mib(s->retained), mib(s->rss));
		if (s->model_ok)
			fprintf(f, "%8.1f %8.1f ", mib(s->live), mib(s->slots));
		else
			fprintf(f, "%8s %8s ", "-", "-");
		fprintf(f, "%8.1f %6.1f %8.1f ", mib(s->unscav), mib(s->metadata), mib(clamp0(s->other)));
		if (s->model_ok)
			fprintf(f, "%4.0f%%", 100 * s->frag);
		else
			fprintf(f, "%5s", "-");
		fputs(s->exit ? "  at exit\n" : "\n", f);
	}
}

static void report_text(FILE *f, const char *file, const hs_metrics *m)
{
	char v[1024], b[32], b2[32], b3[32];
	text_header(f, file, m);
	hs_metrics_verdict(m, v, sizeof v);
	fprintf(f, "verdict: %s\n", v);
	if (m->nseen == 0) {
		fprintf(f, "\n(no statistics samples: the session has no stats event for process %u)\n", m->pid);
	} else {
		fprintf(f, "\npeaks (live, free slots and free pages not released: before exit)\n");
		text_peak(f, "in-use", m->peak_in_use.in_use, &m->peak_in_use);
		text_peak(f, "retained", m->peak_retained.retained, &m->peak_retained);
		text_peak(f, "RSS", m->peak_rss.rss, &m->peak_rss);
		if (m->nmodel != 0) {
			text_peak(f, "live objects", m->peak_live.live, &m->peak_live);
			text_peak(f, "free slots in spans", m->peak_slots.slots, &m->peak_slots);
		}
		if (m->nrun != 0)
			text_peak(f, "free pages not released", m->peak_unscav.unscav, &m->peak_unscav);
		const hs_metrics_sample *l = &m->last;
		fprintf(f, "final (t=%.2fs%s): in-use %s, retained %s, RSS %s\n", l->t, l->exit ? ", at exit" : "",
			mb(l->in_use, b, sizeof b), mb(l->retained, b2, sizeof b2), mb(l->rss, b3, sizeof b3));
		text_split(f, m);
		fprintf(f, "\nfragmentation of free pages (1 - largest free run / free pages):");
		if (m->nrun == 0)
			fprintf(f, " no sample before exit\n");
		else if (m->nmodel == 0)
			fprintf(f, " unknown (the model diverged)\n");
		else
			fprintf(f, " mean %.0f%%, max %.0f%% at t=%.2fs (largest run %" PRIu64 " of %" PRIu64
				   " free pages)\n",
				100 * m->frag_mean, 100 * m->peak_frag.frag, m->peak_frag.t, m->peak_frag.largest_run,
				m->peak_frag.free_pages);
		if (m->nmodel != 0)
			fprintf(f, "free slots in in-use spans: mean %.0f%% of span bytes; at peak in-use %.0f%% (%s)\n",
				100 * m->slots_mean, pct(m->peak_in_use.slots, m->peak_in_use.span_bytes),
				mb(m->peak_in_use.slots, b, sizeof b));
		if (m->nrun != 0)
			fprintf(f, "free pages not released: mean %.0f%% of retained\n", 100 * m->unscav_mean);
	}
	fprintf(f, "heap growth: %" PRIu64 " page_grow events, %s (heap_grow: %" PRIu64 ", %s)\n", m->page_grows,
		mb(m->page_grow_bytes, b, sizeof b), m->heap_grows, mb(m->heap_grow_bytes, b2, sizeof b2));
	if (m->frag_grows != 0)
		fprintf(f, "  of which %" PRIu64 " grows (%s) while enough pages were free, but in no run long enough\n",
			m->frag_grows, mb(m->frag_grow_bytes, b, sizeof b));
	fprintf(f, "spans: %" PRIu64 " allocated (%s), %" PRIu64 " freed\n", m->span_allocs,
		mb(m->span_alloc_bytes, b, sizeof b), m->span_frees);
	fprintf(f, "page allocator: %" PRIu64 " allocations under heap.lock (%" PRIu64 " of them 64-page blocks for "
		   "page caches)\n",
		m->page_allocs_locked, m->cache_allocs);
	fprintf(f, "scavenger: %s released in %" PRIu64 " ranges, %" PRIu64 " cycles, %.1f ms CPU; %s recommitted\n",
		mb(m->scav_released, b, sizeof b), m->scav_ranges, m->scav_cycles, (double)m->scav_cpu_ns / 1e6,
		mb(m->recommit_bytes, b2, sizeof b2));
	if (m->freed_released_ranges != 0)
		fprintf(f, "released as freed: %s of large spans in %" PRIu64 " range%s\n",
			mb(m->freed_released, b, sizeof b), m->freed_released_ranges,
			m->freed_released_ranges == 1 ? "" : "s");
	if (m->mallocs != 0 || m->frees != 0)
		fprintf(f, "objects: %" PRIu64 " mallocs (%s asked), %" PRIu64 " frees\n", m->mallocs,
			mb(m->malloc_bytes, b, sizeof b), m->frees);
	text_classes(f, m);
	if (m->nseen != 0)
		text_series(f, m);
}

/* --- json ------------------------------------------------------------------------ */

static void json_sample(FILE *f, const hs_metrics_sample *s)
{
	fprintf(f, "{\"seq\": %" PRIu64 ", \"t\": ", s->seq);
	hs_metrics_json_double(f, s->t);
	fprintf(f,
		", \"in_use\": %" PRIu64 ", \"free\": %" PRIu64 ", \"released\": %" PRIu64 ", \"sys\": %" PRIu64
		", \"rss\": %" PRIu64 ", \"metadata\": %" PRIu64 ", \"retained\": %" PRIu64 ", \"unscavenged\": %" PRIu64
		", \"other\": %" PRId64 ", \"exit\": %s, \"model\": %s",
		s->in_use, s->free, s->released, s->sys, s->rss, s->metadata, s->retained, s->unscav, s->other,
		s->exit ? "true" : "false", s->model_ok ? "true" : "false");
	if (s->model_ok) {
		fprintf(f,
			", \"free_pages\": %" PRIu64 ", \"largest_free_run\": %" PRIu64 ", \"fragmentation\": ",
			s->free_pages, s->largest_run);
		hs_metrics_json_double(f, s->frag);
		fprintf(f, ", \"spans\": %" PRIu64 ", \"span_bytes\": %" PRIu64 ", \"live\": %" PRIu64
			   ", \"free_slots\": %" PRIu64,
			s->nspans, s->span_bytes, s->live, s->slots);
	} else {
		fputs(", \"free_pages\": null, \"largest_free_run\": null, \"fragmentation\": null, \"spans\": null, "
		      "\"span_bytes\": null, \"live\": null, \"free_slots\": null",
		      f);
	}
	fputc('}', f);
}

static void json_peak(FILE *f, const char *name, const hs_metrics_sample *s, int have, int last)
{
	fprintf(f, "    \"%s\": ", name);
	if (have)
		json_sample(f, s);
	else
		fputs("null", f);
	fputs(last ? "\n" : ",\n", f);
}

static void report_json(FILE *f, const char *file, const hs_metrics *m)
{
	char v[1024];
	hs_verdict_kind k = hs_metrics_verdict(m, v, sizeof v);
	int have = m->nseen != 0, model = m->nmodel != 0;
	fputs("{\n  \"file\": ", f);
	hs_metrics_json_string(f, file);
	fprintf(f, ",\n  \"session\": {\"id\": %" PRId64 ", \"command\": ", m->session);
	hs_metrics_json_string(f, m->command);
	fprintf(f, ", \"seed\": %" PRIu64 ", \"status\": ", m->seed);
	hs_metrics_json_string(f, m->status);
	fputs(", \"level\": ", f);
	hs_metrics_json_string(f, m->level);
	fputs(", \"transport\": ", f);
	hs_metrics_json_string(f, m->transport);
	fprintf(f, ", \"events\": %" PRIu64 ", \"lost\": %" PRIu64 ", \"wall_seconds\": ", m->nevents, m->nlost);
	hs_metrics_json_double(f, (double)m->wall_ns / 1e9);
	fprintf(f, "},\n  \"pid\": %u,\n  \"processes\": %u,\n  \"events_read\": %" PRIu64 ",\n  \"events_pid\": %" PRIu64
		   ",\n  \"duration_seconds\": ",
		m->pid, m->nprocs, m->events, m->events_pid);
	hs_metrics_json_double(f, m->duration);
	fprintf(f, ",\n  \"model\": {\"digests\": %" PRIu64 ", \"diverged\": %s, \"divergence\": ", m->digests,
		m->diverged ? "true" : "false");
	if (m->diverged) {
		hs_metrics_json_string(f, m->diverge);
		fprintf(f, ", \"divergence_seq\": %" PRIu64 "},\n", m->diverge_seq);
	} else {
		fputs("null, \"divergence_seq\": null},\n", f);
	}
	fputs("  \"verdict\": {\"kind\": ", f);
	hs_metrics_json_string(f, hs_verdict_name(k));
	fputs(", \"text\": ", f);
	hs_metrics_json_string(f, v);
	fputs("},\n  \"peaks\": {\n", f);
	json_peak(f, "in_use", &m->peak_in_use, have, 0);
	json_peak(f, "retained", &m->peak_retained, have, 0);
	json_peak(f, "rss", &m->peak_rss, have, 0);
	json_peak(f, "unscavenged", &m->peak_unscav, have, 0);
	json_peak(f, "live", &m->peak_live, model, 0);
	json_peak(f, "free_slots", &m->peak_slots, model, 0);
	json_peak(f, "fragmentation", &m->peak_frag, model, 1);
	fputs("  },\n  \"first\": ", f);
	if (have)
		json_sample(f, &m->first);
	else
		fputs("null", f);
	fputs(",\n  \"final\": ", f);
	if (have)
		json_sample(f, &m->last);
	else
		fputs("null", f);
	fputs(",\n  \"means\": {\"fragmentation\": ", f);
	if (model)
		hs_metrics_json_double(f, m->frag_mean);
	else
		fputs("null", f);
	fputs(", \"free_slot_share\": ", f);
	if (model)
		hs_metrics_json_double(f, m->slots_mean);
	else
		fputs("null", f);
	fputs(", \"unscavenged_share\": ", f);
	hs_metrics_json_double(f, m->unscav_mean);
	fprintf(f, "},\n  \"other_clamped\": %s,\n", m->other_negative ? "true" : "false");
	fprintf(f,
		"  \"growth\": {\"page_grow_events\": %" PRIu64 ", \"page_grow_bytes\": %" PRIu64
		", \"heap_grow_events\": %" PRIu64 ", \"heap_grow_bytes\": %" PRIu64
		", \"fragmented_grow_events\": %" PRIu64 ", \"fragmented_grow_bytes\": %" PRIu64 "},\n",
		m->page_grows, m->page_grow_bytes, m->heap_grows, m->heap_grow_bytes, m->frag_grows,
		m->frag_grow_bytes);
	fprintf(f, "  \"spans\": {\"allocs\": %" PRIu64 ", \"alloc_bytes\": %" PRIu64 ", \"frees\": %" PRIu64 "},\n",
		m->span_allocs, m->span_alloc_bytes, m->span_frees);
	fprintf(f, "  \"page_allocator\": {\"allocs_under_heap_lock\": %" PRIu64 ", \"page_cache_blocks\": %" PRIu64
		   "},\n",
		m->page_allocs_locked, m->cache_allocs);
	fprintf(f,
		"  \"scavenger\": {\"released_bytes\": %" PRIu64 ", \"ranges\": %" PRIu64 ", \"cycles\": %" PRIu64
		", \"cpu_ns\": %" PRIu64 ", \"recommitted_bytes\": %" PRIu64 ", \"released_as_freed_bytes\": %" PRIu64
		", \"released_as_freed_ranges\": %" PRIu64 "},\n",
		m->scav_released, m->scav_ranges, m->scav_cycles, m->scav_cpu_ns, m->recommit_bytes, m->freed_released,
		m->freed_released_ranges);
	fprintf(f, "  \"objects\": {\"mallocs\": %" PRIu64 ", \"frees\": %" PRIu64 ", \"malloc_bytes\": %" PRIu64
		   "},\n",
		m->mallocs, m->frees, m->malloc_bytes);
	unsigned top[HS_METRICS_NSPANCLASS];
	size_t n = top_classes(m, top, HS_METRICS_NSPANCLASS);
	fputs("  \"classes\": [", f);
	for (size_t i = 0; i < n; i++) {
		const hs_metrics_class *c = &m->classes[top[i]];
		unsigned size;
		char sz[32];
		class_size(top[i], &size, sz, sizeof sz);
		fprintf(f,
			"%s\n    {\"spanclass\": %u, \"size_class\": %u, \"object_size\": %u, \"noscan\": %s, \"allocs\": "
			"%" PRIu64 ", \"alloc_bytes\": %" PRIu64 ", \"frees\": %" PRIu64 ", \"free_bytes\": %" PRIu64
			", \"churn\": %" PRIu64 "}",
			i ? "," : "", top[i], top[i] >> 1, size, top[i] & 1 ? "true" : "false", c->allocs, c->alloc_bytes,
			c->frees, c->free_bytes, c->allocs + c->frees);
	}
	fprintf(f, "%s],\n  \"series\": {\"seen\": %" PRIu64 ", \"kept\": %zu, \"stride\": %u, \"samples\": [",
		n ? "\n  " : "", m->nseen, m->nsamples, m->stride);
	for (size_t i = 0; i < m->nsamples; i++) {
		fputs(i ? ",\n    " : "\n    ", f);
		json_sample(f, &m->samples[i]);
	}
	fputs(m->nsamples ? "\n  ]}\n}\n" : "]}\n}\n", f);
}

/* --- html ------------------------------------------------------------------------ */

static void html_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* What a chart plots from a sample. */
typedef enum {
	F_IN_USE, F_RETAINED, F_RSS, F_LIVE, F_SLOTS, F_UNSCAV, F_META, F_OTHER, F_FRAG, F_SLOT_SHARE, F_RELEASED
} field;

static double value(const hs_metrics_sample *s, field k)
{
	switch (k) {
	case F_IN_USE:
		return mib(s->in_use);
	case F_RETAINED:
		return mib(s->retained);
	case F_RSS:
		return mib(s->rss);
	case F_LIVE:
		return s->model_ok ? mib(s->live) : NAN;
	case F_SLOTS:
		return s->model_ok ? mib(s->slots) : NAN;
	case F_UNSCAV:
		return mib(s->unscav);
	case F_META:
		return mib(s->metadata);
	case F_OTHER:
		return mib(clamp0(s->other));
	case F_FRAG:
		return s->model_ok ? 100 * s->frag : NAN;
	case F_SLOT_SHARE:
		return s->model_ok ? pct(s->slots, s->span_bytes) : NAN;
	case F_RELEASED:
		return mib(s->released);
	}
	return NAN;
}

typedef struct line {
	const char *label, *color;
	field k;
	int dashed; /* drawn dashed: it may lie on another line */
} line;

/* Chart geometry: the SVG's size and the plot area inside it. */
enum { CW = 880, CH = 300, PL = 64, PR = 16, PT = 34, PB = 36 };

/* A round step (1, 2 or 5 times a power of ten) giving about five ticks up to
 * max > 0. Without libm: the command does not link it. */
static double nice_step(double max)
{
	double raw = max / 5, p = 1;
	while (p * 10 <= raw)
		p *= 10;
	while (p > raw)
		p /= 10;
	double r = raw / p;
	return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * p;
}

/* max rounded up to a whole number of steps, 1 for an empty chart. */
static double axis_max(double max)
{
	if (!(max > 0))
		return 1;
	double step = nice_step(max), n = (double)(uint64_t)(max / step);
	return (n * step < max ? n + 1 : n) * step;
}

static double px(double t, double tmax)
{
	return PL + (tmax > 0 ? t / tmax : 0) * (CW - PL - PR);
}

static double py(double v, double vmax)
{
	return CH - PB - (vmax > 0 ? v / vmax : 0) * (CH - PT - PB);
}

static void axes(FILE *f, double tmax, double vmax, const char *unit)
{
	double step = nice_step(vmax);
	for (double v = 0; v <= vmax * 1.0001; v += step) {
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>", PL, py(v, vmax), CW - PR,
			py(v, vmax));
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"yl\">%g%s</text>\n", PL - 6, py(v, vmax) + 4, v, unit);
	}
	double ts = tmax > 0 ? nice_step(tmax) : 1;
	for (double t = 0; t <= tmax * 1.0001; t += ts)
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">%gs</text>\n", px(t, tmax), CH - PB + 16, t);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", PL, CH - PB, CW - PR, CH - PB);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", PL, PT, PL, CH - PB);
}

static void legend(FILE *f, const line *lines, size_t n)
{
	int x = PL;
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "<rect x=\"%d\" y=\"10\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, lines[i].color);
		fprintf(f, "<text x=\"%d\" y=\"20\" class=\"lg\">", x + 16);
		html_text(f, lines[i].label);
		fputs("</text>", f);
		x += 24 + 7 * (int)strlen(lines[i].label);
	}
	fputc('\n', f);
}

static void chart_begin(FILE *f, const char *title)
{
	fputs("<h2>", f);
	html_text(f, title);
	fprintf(f, "</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		   "role=\"img\"><title>",
		CW, CH, CW, CH);
	html_text(f, title);
	fputs("</title>\n", f);
}

/* One polyline per field; a sample without the figure ends the line there. */
static void line_chart(FILE *f, const hs_metrics *m, const char *title, const line *lines, size_t nl, const char *unit,
		       double vmin_max)
{
	double tmax = m->last.t, vmax = vmin_max;
	for (size_t i = 0; i < m->nsamples; i++)
		for (size_t k = 0; k < nl; k++) {
			double v = value(&m->samples[i], lines[k].k);
			if (isfinite(v) && v > vmax)
				vmax = v;
		}
	vmax = axis_max(vmax);
	chart_begin(f, title);
	axes(f, tmax, vmax, unit);
	for (size_t k = 0; k < nl; k++) {
		int open = 0;
		for (size_t i = 0; i < m->nsamples; i++) {
			double v = value(&m->samples[i], lines[k].k);
			if (!isfinite(v)) {
				if (open)
					fputs("\"/>\n", f);
				open = 0;
				continue;
			}
			if (!open)
				fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"",
					lines[k].color, lines[k].dashed ? " stroke-dasharray=\"5 3\"" : "");
			fprintf(f, "%.1f,%.1f ", px(m->samples[i].t, tmax), py(v, vmax));
			open = 1;
		}
		if (open)
			fputs("\"/>\n", f);
	}
	legend(f, lines, nl);
	fputs("</svg>\n", f);
}

/* Stacked areas of the RSS split, with RSS itself as a line on top. */
static void split_chart(FILE *f, const hs_metrics *m)
{
	static const line layers[] = {
		{ "live objects", "#2e7d32", F_LIVE, 0 },	     { "free slots in spans", "#f9a825", F_SLOTS, 0 },
		{ "free pages not released", "#ef6c00", F_UNSCAV, 0 }, { "heap metadata", "#6a1b9a", F_META, 0 },
		{ "other", "#90a4ae", F_OTHER, 0 },
	};
	enum { NL = sizeof layers / sizeof layers[0] };
	double tmax = m->last.t, vmax = 0;
	for (size_t i = 0; i < m->nsamples; i++) {
		double sum = 0;
		for (size_t k = 0; k < NL; k++) {
			double v = value(&m->samples[i], layers[k].k);
			sum += isfinite(v) ? v : 0;
		}
		double r = value(&m->samples[i], F_RSS);
		vmax = sum > vmax ? sum : vmax;
		vmax = r > vmax ? r : vmax;
	}
	vmax = axis_max(vmax);
	chart_begin(f, "Where RSS goes (stacked, MiB)");
	axes(f, tmax, vmax, "");
	for (size_t k = 0; k < NL; k++) {
		fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.85\" points=\"", layers[k].color);
		for (size_t i = 0; i < m->nsamples; i++) { /* the layer's top, left to right */
			double top = 0;
			for (size_t j = 0; j <= k; j++) {
				double v = value(&m->samples[i], layers[j].k);
				top += isfinite(v) ? v : 0;
			}
			fprintf(f, "%.1f,%.1f ", px(m->samples[i].t, tmax), py(top, vmax));
		}
		for (size_t i = m->nsamples; i-- > 0;) { /* its bottom, right to left */
			double bottom = 0;
			for (size_t j = 0; j < k; j++) {
				double v = value(&m->samples[i], layers[j].k);
				bottom += isfinite(v) ? v : 0;
			}
			fprintf(f, "%.1f,%.1f ", px(m->samples[i].t, tmax), py(bottom, vmax));
		}
		fputs("\"/>\n", f);
	}
	fputs("<polyline fill=\"none\" stroke=\"#000\" stroke-width=\"1.2\" stroke-dasharray=\"4 3\" points=\"", f);
	for (size_t i = 0; i < m->nsamples; i++)
		fprintf(f, "%.1f,%.1f ", px(m->samples[i].t, tmax), py(value(&m->samples[i], F_RSS), vmax));
	fputs("\"/>\n", f);
	line all[NL + 1];
	memcpy(all, layers, sizeof layers);
	all[NL] = (line){ "RSS (dashed)", "#000", F_RSS, 1 };
	legend(f, all, NL + 1);
	fputs("</svg>\n", f);
}

static void html_row(FILE *f, const char *what, const char *value_text)
{
	fputs("<tr><th>", f);
	html_text(f, what);
	fputs("</th><td>", f);
	html_text(f, value_text);
	fputs("</td></tr>\n", f);
}

static void report_html(FILE *f, const char *file, const hs_metrics *m)
{
	char v[1024], buf[256], b[32], b2[32];
	hs_verdict_kind k = hs_metrics_verdict(m, v, sizeof v);
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>heapscope report: ", f);
	html_text(f, file);
	fprintf(f, " session %" PRId64 "</title>\n", m->session);
	fputs("<style>\nbody{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:920px;color:#222}\n"
	      "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\n"
	      "table{border-collapse:collapse;margin:.5em 0}th,td{padding:2px 10px;text-align:left}\n"
	      "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
	      "tr:nth-child(even){background:#f4f4f4}\n"
	      ".verdict{padding:.6em 1em;border-left:4px solid #c62828;background:#fff3f0}\n"
	      ".verdict.none{border-color:#2e7d32;background:#f0fff2}\n"
	      "svg{background:#fff;border:1px solid #ddd}\n"
	      ".grid{stroke:#eee}.axis{stroke:#888}.yl{font-size:11px;text-anchor:end;fill:#555}\n"
	      ".xl{font-size:11px;text-anchor:middle;fill:#555}.lg{font-size:12px;fill:#333}\n"
	      "</style></head><body>\n<h1>heapscope report: ",
	      f);
	html_text(f, file);
	fprintf(f, ", session %" PRId64 "</h1>\n<p class=\"verdict %s\"><b>verdict:</b> ", m->session,
		k == HS_VERDICT_NONE ? "none" : hs_verdict_name(k));
	html_text(f, v);
	fputs("</p>\n<table>\n", f);
	snprintf(buf, sizeof buf, "%s (seed %" PRIu64 ", %s, level %s, %s)", m->command, m->seed, m->status, m->level,
		 m->transport);
	html_row(f, "session", buf);
	snprintf(buf, sizeof buf, "%u (%u traced, this report covers the first); %" PRIu64 " of %" PRIu64 " events",
		 m->pid, m->nprocs, m->events_pid, m->events);
	html_row(f, "process", buf);
	snprintf(buf, sizeof buf, "%.2f s, %" PRIu64 " samples, %" PRIu64 " events lost", m->duration, m->nseen,
		 m->nlost);
	html_row(f, "duration", buf);
	if (m->diverged)
		snprintf(buf, sizeof buf, "diverged at %.200s", m->diverge);
	else
		snprintf(buf, sizeof buf, "%" PRIu64 " digests checked, all equal", m->digests);
	html_row(f, "model", buf);
	if (m->nseen != 0) {
		snprintf(buf, sizeof buf, "%s at %.2fs", mb(m->peak_in_use.in_use, b, sizeof b), m->peak_in_use.t);
		html_row(f, "peak in-use", buf);
		snprintf(buf, sizeof buf, "%s at %.2fs", mb(m->peak_retained.retained, b, sizeof b), m->peak_retained.t);
		html_row(f, "peak retained", buf);
		snprintf(buf, sizeof buf, "%s at %.2fs", mb(m->peak_rss.rss, b, sizeof b), m->peak_rss.t);
		html_row(f, "peak RSS", buf);
		if (m->nmodel != 0) {
			snprintf(buf, sizeof buf, "%s at %.2fs", mb(m->peak_live.live, b, sizeof b), m->peak_live.t);
			html_row(f, "peak live objects", buf);
			snprintf(buf, sizeof buf, "mean %.0f%%, max %.0f%% at %.2fs", 100 * m->frag_mean,
				 100 * m->peak_frag.frag, m->peak_frag.t);
			html_row(f, "fragmentation of free pages", buf);
		}
	}
	snprintf(buf, sizeof buf, "%" PRIu64 " page_grow events, %s", m->page_grows,
		 mb(m->page_grow_bytes, b, sizeof b));
	html_row(f, "heap growth", buf);
	snprintf(buf, sizeof buf, "%s released in %" PRIu64 " ranges, %" PRIu64 " cycles, %.1f ms CPU",
		 mb(m->scav_released, b, sizeof b), m->scav_ranges, m->scav_cycles, (double)m->scav_cpu_ns / 1e6);
	html_row(f, "scavenger", buf);
	snprintf(buf, sizeof buf, "%s in %" PRIu64 " ranges", mb(m->freed_released, b, sizeof b),
		 m->freed_released_ranges);
	html_row(f, "released as freed", buf);
	snprintf(buf, sizeof buf, "%" PRIu64 " allocations under heap.lock (%" PRIu64 " page-cache blocks)",
		 m->page_allocs_locked, m->cache_allocs);
	html_row(f, "page allocator", buf);
	snprintf(buf, sizeof buf, "%" PRIu64 " allocated (%s), %" PRIu64 " freed", m->span_allocs,
		 mb(m->span_alloc_bytes, b2, sizeof b2), m->span_frees);
	html_row(f, "spans", buf);
	fputs("</table>\n", f);

	if (m->nsamples != 0) {
		static const line heap[] = { { "in-use", "#1565c0", F_IN_USE, 0 },
					     { "retained", "#ef6c00", F_RETAINED, 0 },
					     { "RSS", "#000", F_RSS, 0 },
					     { "live objects (dashed)", "#2e7d32", F_LIVE, 1 } };
		static const line frag[] = { { "fragmentation of free pages", "#c62828", F_FRAG, 0 },
					     { "free slots / span bytes", "#f9a825", F_SLOT_SHARE, 0 } };
		line_chart(f, m, "Heap over time (MiB)", heap, sizeof heap / sizeof heap[0], "", 0);
		split_chart(f, m);
		line_chart(f, m, "Fragmentation (%)", frag, sizeof frag / sizeof frag[0], "%", 100);
	}

	unsigned top[HS_METRICS_NSPANCLASS];
	size_t n = top_classes(m, top, TOP_CLASSES);
	fputs("<h2>Heap growth by span class</h2>\n<table><tr><th>spanclass</th><th>class</th><th>object</th>"
	      "<th>allocs</th><th>bytes</th><th>frees</th><th>churn</th></tr>\n",
	      f);
	for (size_t i = 0; i < n; i++) {
		const hs_metrics_class *c = &m->classes[top[i]];
		unsigned size;
		char sz[32];
		fprintf(f,
			"<tr><td class=\"n\">%u</td><td class=\"n\">%u</td><td class=\"n\">%s</td><td class=\"n\">%" PRIu64
			"</td><td class=\"n\">%s</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64 "</td></tr>\n",
			top[i], top[i] >> 1, class_size(top[i], &size, sz, sizeof sz), c->allocs,
			mb(c->alloc_bytes, b, sizeof b), c->frees, c->allocs + c->frees);
	}
	fputs("</table>\n<p>Figures and rules: docs/reports.md. Generated by heapscope " HS_VERSION ".</p>\n"
	      "</body></html>\n",
	      f);
}

/* --- the command ----------------------------------------------------------------- */

static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int hs_cmd_report(int argc, char **argv)
{
	const char *file = NULL, *out = NULL;
	int64_t session = -1;
	report_format format = FMT_TEXT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return HS_EXIT_OK;
		} else if (strcmp(a, "--session") == 0) {
			session = (int64_t)hs_cli_parse_u64("--session", next, 1, INT64_MAX);
			i++;
		} else if (strcmp(a, "--format") == 0) {
			if (next == NULL)
				hs_cli_usage_error("report: option --format needs a value (text, json or html)");
			if (strcmp(next, "text") == 0)
				format = FMT_TEXT;
			else if (strcmp(next, "json") == 0)
				format = FMT_JSON;
			else if (strcmp(next, "html") == 0)
				format = FMT_HTML;
			else
				hs_cli_usage_error("report: --format '%s': choose text, json or html", next);
			i++;
		} else if (strcmp(a, "-o") == 0) {
			if (next == NULL || next[0] == '\0')
				hs_cli_usage_error("report: option -o needs a file name");
			out = next;
			i++;
		} else {
			hs_cli_file_arg("report", a, &file);
		}
	}
	hs_cli_need_file("report", file);
	if (out != NULL && same_file(out, file))
		hs_cli_usage_error("report: -o %s would overwrite the session file", out);

	char err[512];
	hs_store *st = hs_cli_open_store(file);
	hs_metrics m;
	int failed = hs_metrics_compute(st, session, &m, err, sizeof err) != 0;
	hs_store_close(st);
	if (failed) {
		hs_metrics_free(&m);
		hs_cli_usage_error("%s: %s", file, err);
	}

	FILE *f = stdout;
	if (out != NULL && (f = fopen(out, "w")) == NULL)
		hs_cli_usage_error("report: cannot write %s: %s", out, strerror(errno));
	if (format == FMT_JSON)
		report_json(f, file, &m);
	else if (format == FMT_HTML)
		report_html(f, file, &m);
	else
		report_text(f, file, &m);
	hs_metrics_free(&m);
	int bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad)
		hs_cli_usage_error("report: cannot write %s", out != NULL ? out : "standard output");
	return HS_EXIT_OK;
}
