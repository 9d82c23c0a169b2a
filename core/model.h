/*
 * core/model.h — the model: the heap's metadata rebuilt from its events alone.
 *
 * A model holds one replica heap per traced process (a session can hold a
 * program and the children it forks). Each replica is a metadata-only page
 * allocator (core/pagealloc.h in Go's test mode: bitmaps and summaries, no
 * pages), a span table keyed by base address, and the last statistics sample.
 *
 * Replay re-executes rather than copies where it can: a page_alloc event makes
 * the replica run the same first-fit search and compares the base it finds and
 * the scavenged bytes with the record; allocToCache likewise. Any disagreement,
 * an event that does not fit the replica's state (freeing free pages, a span
 * over free pages, a digest that differs), stops the model: hs_model_apply
 * returns -1 and the model keeps the first divergence with its sequence number.
 * Events never make the model abort or crash, whatever a file holds.
 *
 * The views (TUI, `state`, `report`) read replicas through the accessors below
 * and the hs_pagealloc fields directly; nothing else writes them.
 *
 * Not thread-safe: one thread feeds a model and reads it.
 */
#ifndef HS_MODEL_H
#define HS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "heapscope/events.h"
#include "pagealloc.h"

/* Where a span was last seen going (from mcache and mcentral events). */
enum { HS_MODEL_SPAN_NEW = 0, HS_MODEL_SPAN_CACHED = 1, HS_MODEL_SPAN_PARTIAL = 2, HS_MODEL_SPAN_FULL = 3 };

typedef struct hs_model_span {
	uintptr_t base; /* 0: an empty slot of the table */
	uint32_t npages;
	uint16_t spanclass;
	uint16_t alloc_count; /* as of the span's last event */
	uint8_t where;
	uint8_t tomb; /* a removed entry (open addressing) */
} hs_model_span;

typedef struct hs_model_heap {
	uint32_t pid, ppid;
	int ended;
	hs_mutex lock; /* the page allocator wants one; the model is single-threaded */
	hs_sys_stat meta;
	hs_pagealloc pages;
	hs_model_span *spans; /* open-addressing table, power-of-two capacity */
	size_t span_cap, nspans, ntombs;
	uint64_t span_hash; /* sum of hs_trace_span_term over the table */
	uint64_t span_pages;
	uint64_t stats[6]; /* the last stats event's arguments (events.h order) */
	uint64_t stats_ts;
	uint64_t mallocs, frees, malloc_bytes;
	uint64_t scav_released;	 /* bytes released (scav_range) */
	uint64_t scav_goal, scav_retained, scav_cpu_ns, scav_cycles; /* as of the last scav_start/end */
	uint64_t recommitted;	 /* bytes re-committed */
	uint64_t arena_bytes;	 /* reserved */
	uint64_t digests_ok;
	int snapshot;		 /* between snap_begin and snap_end */
	uint64_t snap_groups;	 /* snap_pages applied in the current snapshot */
} hs_model_heap;

typedef struct hs_model hs_model;

hs_model *hs_model_new(void);
void hs_model_free(hs_model *m);

/* Applies one event. 0, or -1 once the model diverged (see hs_model_error). */
int hs_model_apply(hs_model *m, const hs_event *e);
/* The first divergence ("seq N (kind): what"), or NULL. */
const char *hs_model_error(const hs_model *m);
uint64_t hs_model_error_seq(const hs_model *m);

/* Runs the invariant checker over what the event e can have changed (after
 * applying it): the touched chunks and their summaries, the touched span. With
 * e NULL, checks everything: every summary is the merge of its children, every
 * span's pages are allocated, spans do not overlap. 0 or -1 with msg. */
int hs_model_check(hs_model *m, const hs_event *e, char *msg, size_t msglen);

unsigned hs_model_nheaps(const hs_model *m);
hs_model_heap *hs_model_heap_at(hs_model *m, unsigned i);
hs_model_heap *hs_model_heap_of(hs_model *m, uint32_t pid);
uint64_t hs_model_events(const hs_model *m);	/* events applied */
uint64_t hs_model_last_seq(const hs_model *m);
uint64_t hs_model_digests(const hs_model *m); /* digests checked and equal */
/* The seq from which the model cannot be trusted because events were lost
 * just before it (a gap in the sequence numbers, or hs_model_note_loss), or 0. */
uint64_t hs_model_untrusted_seq(const hs_model *m);
/* Events were lost just after the last one applied, without a gap in the
 * sequence numbers (the in-process ring's --lossy drops take no number). */
void hs_model_note_loss(hs_model *m);

/* The span holding addr, or NULL. */
const hs_model_span *hs_model_span_of(const hs_model_heap *h, uintptr_t addr);
/* Calls fn for every span, in no particular order. */
void hs_model_spans(const hs_model_heap *h, void (*fn)(const hs_model_span *, void *), void *arg);

/* Keyframes: the whole model as bytes, and back. save returns a malloc'd buffer
 * (NULL on ENOMEM); load returns a new model or NULL (with a reason in err) for
 * bytes that are not a keyframe of this build's configuration. */
void *hs_model_save(const hs_model *m, size_t *len);
hs_model *hs_model_load(const void *buf, size_t len, char *err, size_t errlen);

#endif /* HS_MODEL_H */
