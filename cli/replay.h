/*
 * cli/replay.h — replaying a recorded workload: the input that
 * `heapscope replay-workload` (cli/replay.c) extracts from a session and the
 * replay workload (cli/replay_run.c) executes on the traced heap, recorded by
 * `heapscope run`'s recorder like any workload. docs/regressions.md tells the
 * story; cli/replay.c has the essay.
 *
 * The input is a memfd named by HEAPSCOPE_REPLAY_FD in the recorder and the
 * workload (the descriptor is inherited across fork and exec):
 *
 *   +-----------------------+  offset 0
 *   | hs_replay_header      |
 *   +-----------------------+  sizeof(hs_replay_header)
 *   | hs_replay_op[nops]    |  in the order they are to run
 *   +-----------------------+  end of the file
 *
 * Invariants the workload checks before it trusts the bytes (they come from
 * outside the process): the magic; the file is exactly the header and nops
 * operations; every op's thread < nthreads and slot < nslots; times never
 * decrease; a malloc's slot is empty and a free's slot full when it runs.
 */
#ifndef HS_REPLAY_H
#define HS_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "workloads.h"

#define HS_REPLAY_MAGIC "HSRPLAY1"
#define HS_REPLAY_FD_ENV "HEAPSCOPE_REPLAY_FD"
#define HS_REPLAY_NO_THREAD UINT32_MAX

typedef struct hs_replay_header {
	char magic[8];	      /* HS_REPLAY_MAGIC, no terminator */
	uint32_t nthreads;    /* recorded threads with operations: replay threads */
	uint32_t main_thread; /* the thread whose tid is the process's pid, or HS_REPLAY_NO_THREAD */
	uint64_t nops;
	uint64_t nslots;      /* object slots: at most this many objects live at once */
	uint64_t end_ns;      /* the recorded process's last event, ns after its first */
	uint64_t pid;	      /* the recorded process */
	int64_t session;
	uint64_t seed;	      /* the recorded session's */
	uint64_t mallocs, frees;
	uint64_t skipped_frees; /* frees of addresses the trace never allocated */
	uint64_t unfreed;	/* objects the trace never frees */
	char file[512];		/* the recording, NUL-terminated (truncated if longer) */
} hs_replay_header;

enum { HS_REPLAY_MALLOC = 1, HS_REPLAY_FREE = 2 };

/* One operation, 32 bytes. */
typedef struct hs_replay_op {
	uint64_t t;	 /* virtual time: ns after the recorded process's first event */
	uint64_t size;	 /* malloc: the size asked for; free: 0 */
	uint32_t slot;	 /* malloc puts its object here; free frees the object here */
	uint32_t thread; /* the replay thread that runs it, < nthreads */
	uint32_t kind;	 /* HS_REPLAY_MALLOC or HS_REPLAY_FREE */
	uint32_t pad;
} hs_replay_op;

_Static_assert(sizeof(hs_replay_op) == 32, "replay ops are 32 bytes");

/* The replay workload (cli/replay_run.c). Not in `heapscope workloads`'s
 * list: it has nothing to run without an input. */
extern const hs_workload hs_replay_workload;

/* Maps the input named by HEAPSCOPE_REPLAY_FD read-only after checking its
 * header and size: the header, or NULL with a one-line reason in err. *len
 * receives the mapping's length (munmap it). */
const hs_replay_header *hs_replay_map(size_t *len, char *err, size_t errlen);

/* For the recorder: when HEAPSCOPE_REPLAY_FD names an input, the session's
 * command ("replay FILE:N") and a JSON object describing the input; 0, or -1
 * when there is no valid input. */
int hs_replay_describe(char *command, size_t clen, char *json, size_t jlen);

#endif /* HS_REPLAY_H */
