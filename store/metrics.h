/*
 * store/metrics.h — what `heapscope report` and `heapscope diff` say about a
 * session, computed once, here, in one streaming pass. store/metrics.c has the
 * essay: where each number comes from, how fragmentation and the RSS split are
 * computed, how the series is kept small, and the verdict rules.
 *
 * Return convention: as store.h — 0, or -1 with one line in err (no
 * "heapscope:" prefix, no newline). A model that diverges is not a failure: the
 * pass carries on with what the events themselves say and the divergence is
 * reported in hs_metrics.diverged.
 *
 * Threads: none; an hs_metrics belongs to its caller.
 */
#ifndef HS_METRICS_H
#define HS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

/*
 * Samples kept for the series. A session sampled every 100 ms reaches it after
 * 3.4 minutes; longer ones are decimated (every k-th sample plus the peaks), so
 * the series costs at most (2048 + 16) * sizeof(hs_metrics_sample), about
 * 300 KiB, whatever the session's length.
 */
#define HS_METRICS_MAX_SAMPLES 2048

/* Span classes: size class << 1 | noscan, for size classes 0 (large) .. 67. */
#define HS_METRICS_NSPANCLASS 136

/*
 * One statistics sample (a STATS event of the reported pid) and what the model
 * says at that event. Byte counts unless named otherwise. Equations, when
 * model_ok:
 *   retained   == in_use + free - released
 *   span_bytes == live + slots                    (the model's spans)
 *   unscav     == free - released                 (clamped at 0)
 *   other      == rss - live - slots - unscav - metadata   (signed)
 */
typedef struct hs_metrics_sample {
	uint64_t seq; /* of the STATS event */
	double t;     /* seconds since the session's first event */
	uint64_t in_use, free, released, sys, rss, metadata; /* the STATS arguments */
	uint64_t retained;
	int exit;		  /* taken as the process ended (its proc_end follows) */
	int model_ok;		  /* 0: the model had diverged; the fields below are 0 */
	uint64_t free_pages;	  /* free pages in the chunk bitmaps over the in-use range */
	uint64_t largest_run;	  /* the longest run of free pages, from the summaries */
	double frag;		  /* 1 - largest_run / free_pages; 0 with no free page */
	uint64_t nspans, span_bytes, live, slots;
	uint64_t unscav;
	int64_t other;
} hs_metrics_sample;

/* span_alloc and span_free of one span class. */
typedef struct hs_metrics_class {
	uint64_t allocs, alloc_bytes, frees, free_bytes;
} hs_metrics_class;

typedef struct hs_metrics {
	/* The session row. */
	int64_t session;
	char command[160], status[16], level[16], transport[16];
	uint64_t seed, nevents, nlost;
	int64_t wall_ns; /* end - start, wall clock; 0 while running */

	/* The processes: the report covers pid, the session's first (its pid
	 * column, else the first proc_start); nprocs counts every proc_start. */
	uint32_t pid;
	unsigned nprocs;
	uint64_t events;     /* events read, every pid */
	uint64_t events_pid; /* ... of pid */
	uint64_t first_ts, last_ts; /* ns, every pid */
	double duration;	    /* seconds, (last_ts - first_ts) */

	/* The series: samples[0..nsamples) in seq order, every stride-th of the
	 * nseen samples plus the peaks and the last. */
	hs_metrics_sample *samples;
	size_t nsamples;
	uint64_t nseen;
	unsigned stride;

	/* Whole samples at notable moments (nseen > 0). The peaks of in_use,
	 * retained and rss are over every sample; the others leave out the exit
	 * sample (nrun samples), and peak_live, peak_slots, peak_frag need the
	 * model (nmodel samples): with none they stay zero. */
	hs_metrics_sample first, last, peak_in_use, peak_retained, peak_rss, peak_live, peak_slots, peak_frag,
		peak_unscav;
	uint64_t nrun;	     /* samples but the exit sample */
	uint64_t nmodel;     /* ... with model_ok */
	double frag_mean;    /* over the nmodel samples */
	double slots_mean;   /* mean of slots / span_bytes, likewise */
	double unscav_mean;  /* mean of unscav / retained, over the nrun samples */
	int other_negative;  /* some sample had rss below the heap's share */

	/* Heap growth and spans (events of pid). frag_grows: heap_grow events
	 * at which the model had at least the pages asked for free, but no run
	 * of them long enough: growth that fragmentation of free pages caused. */
	uint64_t page_grows, page_grow_bytes, heap_grows, heap_grow_bytes;
	uint64_t frag_grows, frag_grow_bytes;
	uint64_t span_allocs, span_alloc_bytes, span_frees;
	hs_metrics_class classes[HS_METRICS_NSPANCLASS];

	/* Page allocator calls that take heap.lock to hand pages to an allocating
	 * thread: page_alloc, page_alloc_range and page_cache_alloc events (the
	 * last fills a page cache, from which spans are then made without the
	 * lock); cache_allocs counts those. */
	uint64_t page_allocs_locked, cache_allocs;

	/* The scavenger: its releases are the scav_range events that end one of
	 * its scav_takes. Large spans released as they are freed (core/mheap.c)
	 * emit scav_range without a take: freed_released. cpu_ns is cumulative in
	 * the heap: the last scav_end's. */
	uint64_t scav_released, scav_ranges, scav_cycles, scav_cpu_ns, recommit_bytes;
	uint64_t freed_released, freed_released_ranges;

	/* Object events (level objects). */
	uint64_t mallocs, frees, malloc_bytes;

	/* The model. */
	uint64_t digests;
	int diverged;
	uint64_t diverge_seq;
	char diverge[320];
} hs_metrics;

/*
 * Reads session (-1: the file's last) of st from its first event into a fresh
 * model and fills *out, which hs_metrics_free releases (also after a failure).
 * Failures: the session does not exist, the store cannot be read, out of
 * memory.
 */
int hs_metrics_compute(hs_store *st, int64_t session, hs_metrics *out, char *err, size_t errlen);
void hs_metrics_free(hs_metrics *m);

/* The file's last session id, or -1 with "the file holds no session". */
int hs_metrics_last_session(hs_store *st, int64_t *id, char *err, size_t errlen);

/* --- the verdict ---------------------------------------------------------- */

/* What dominates; the rules are in store/metrics.c. */
typedef enum hs_verdict_kind {
	HS_VERDICT_NONE,	  /* no samples, or nothing stands out */
	HS_VERDICT_GROWTH,	  /* live data grows: a leak or a growing working set */
	HS_VERDICT_FRAGMENTATION, /* in-use spans are mostly free slots */
	HS_VERDICT_RETAINED,	  /* free pages held, not released */
} hs_verdict_kind;

/* "growth", "fragmentation", "retained", "none". */
const char *hs_verdict_name(hs_verdict_kind k);

/* Writes the one-line verdict (no newline) into buf; returns its kind. */
hs_verdict_kind hs_metrics_verdict(const hs_metrics *m, char *buf, size_t len);

/* --- formatting shared by report and diff ---------------------------------- */

/* "0 B", "812 B", "3.4 KiB", "64.0 MiB", "1.25 GiB". */
const char *hs_metrics_fmt_bytes(uint64_t n, char *buf, size_t len);
/* s as a JSON string literal (quotes included); invalid UTF-8 becomes U+FFFD. */
void hs_metrics_json_string(FILE *f, const char *s);
/* A JSON number, or null for NaN and infinities. */
void hs_metrics_json_double(FILE *f, double v);

#endif /* HS_METRICS_H */
