/*
 * cli/workloads.h — the built-in workloads: small programs that heapscope runs on
 * its own heap, in a child process whose heap is traced, so that the TUI and the
 * tests have something to watch. cli/workloads.c explains what each one aims at.
 *
 * A workload calls only the hs_ allocator API (include/heapscope/heapscope.h) and
 * is deterministic: for a given seed each of its threads makes the same sequence
 * of hs_ calls, run after run. Wall time decides only when it stops.
 */
#ifndef HS_WORKLOADS_H
#define HS_WORKLOADS_H

#include <signal.h>
#include <stdint.h>

typedef struct hs_workload_opts {
	uint64_t seed;
	double duration_s;	/* > 0: repeat the workload's pattern until this much wall time
				   passed; 0: one bounded pass (demo: run until *stop) */
	volatile sig_atomic_t *stop; /* may be NULL; once non-zero, the workload frees what it
					holds and returns within about 10 ms */
} hs_workload_opts;

typedef struct hs_workload {
	const char *name;
	const char *summary;	 /* one line */
	const char *description; /* a few lines, '\n'-separated, no trailing newline */
	/* 0, or non-zero after printing one line on stderr if the heap failed
	 * (hs_malloc returned NULL, an object was overwritten while live). */
	int (*run)(const hs_workload_opts *o);
} hs_workload;

/* The workload called name, or NULL if there is none. */
const hs_workload *hs_workload_find(const char *name);

/* Every workload, in the order `heapscope workloads` lists them; *n gets the count. */
const hs_workload *hs_workloads(unsigned *n);

#endif /* HS_WORKLOADS_H */
