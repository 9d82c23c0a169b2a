/*
 * store/store.h — sessions of heap events in an SQLite file: the sink that
 * records them, the source that reads them back in order, and the listing.
 *
 * One file holds many sessions (one per recorded run). A session is a row of
 * `sessions` and the events, keyframes and statistics samples that name it;
 * store/schema.c describes every table and why the events are laid out as they
 * are. The recorder (cli/run.c) writes through hs_store_session_begin,
 * hs_store_append, hs_store_keyframe and hs_store_session_end; readers (verify,
 * the TUI, `heapscope sessions` and `query`) open the file HS_STORE_READONLY,
 * which never modifies it, and may do so while a recorder is still writing.
 *
 * Return convention: 0 on success, -1 on failure with the reason in
 * hs_store_error (one line, no "heapscope:" prefix, no newline); the functions
 * that can also answer "nothing there" say so below.
 *
 * Numbers: every 64-bit unsigned value (event arguments, seed, counts) is
 * stored as the int64 with the same bit pattern, so values of 2^63 and above
 * (hashes, some addresses) read negative in SQL; in C they come back exact.
 *
 * Threads: an hs_store and its sources are used by one thread at a time.
 * Distinct hs_store handles, in one process or several, may share a file.
 */
#ifndef HS_STORE_H
#define HS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "heapscope/events.h"

#define HS_STORE_HEAPSCOPE_VERSION "0.1.0"
#define HS_STORE_SCHEMA_VERSION 2

typedef struct hs_store hs_store;
typedef struct sqlite3 sqlite3;

/* hs_store_open flags. Without either, an existing heapscope file is opened
 * for writing; CREATE also makes the file (or an empty one) into a new store. */
enum { HS_STORE_READONLY = 1, HS_STORE_CREATE = 2 };

typedef enum hs_session_status {
	HS_SESSION_RUNNING,
	HS_SESSION_COMPLETE,
	HS_SESSION_CRASHED,	/* the workload died of a signal */
	HS_SESSION_INTERRUPTED, /* stopped by the user, or its recorder died (see hs_store_sessions) */
} hs_session_status;

typedef struct hs_session_info {
	int64_t id;		  /* filled by begin and by the listing */
	const char *command;	  /* workload name or program command line */
	uint64_t seed;
	int64_t pid;		  /* the workload's first pid */
	int64_t recorder_pid;	  /* the recording heapscope process; 0: begin uses getpid() */
	const char *transport;	  /* "ring" or "bpf" */
	const char *level;	  /* "heap" or "objects" */
	const char *config;	  /* JSON object text of heap settings */
	int64_t start_ns, end_ns; /* wall clock, ns since the epoch; end 0 while running;
				     start 0: begin uses the current time */
	hs_session_status status;
	uint64_t nevents, nlost;
	uint64_t wait_ns; /* time producers waited for the recorder */
} hs_session_info;

/*
 * Opens or creates path. On failure returns -1 and writes one line to err
 * (no prefix, no newline): "cannot open: <reason>", "not an SQLite file",
 * "the file is truncated (...)", "the file is corrupt (...)", "schema version N
 * is newer than this heapscope's 2", "schema version 1 is older than this
 * heapscope's 2, ...", "not a heapscope session file", or, for writing only,
 * "the file records <arch> heaps; this heapscope runs <arch>".
 * READONLY never writes the file: it is opened as "file:...?mode=ro" and no
 * PRAGMA that writes is run. Like any reader of a WAL database, SQLite may
 * create the empty -wal and -shm companions beside it when they are missing.
 */
int hs_store_open(const char *path, int flags, hs_store **out, char *err, size_t errlen);
/* Commits pending writes (their errors are lost: call hs_store_commit first to
 * see them) and closes. Every source on s must be closed before. NULL is a no-op. */
void hs_store_close(hs_store *s);
/* The last failure's text; "" when there was none. */
const char *hs_store_error(hs_store *s);
/* The connection, for ad-hoc SQL (`heapscope query`); owned by s. */
sqlite3 *hs_store_db(hs_store *s);

/* --- writing (store/sink.c) ------------------------------------------------- */

/* Inserts a session with status running and commits it; sets info->id. The
 * strings are copied into the file. */
int hs_store_session_begin(hs_store *s, hs_session_info *info);
/*
 * Appends n events of one session. Within a session seq must increase from one
 * appended event to the next (the ring delivers them so; a transport that can
 * reorder merges first): an event whose seq is not above its predecessor's, or
 * is 2^63 or more, is refused and nothing of the call is kept. One writer per
 * session. Events are buffered and written in one transaction, committed once
 * 100 ms have passed since the last commit (CLOCK_MONOTONIC), so a live reader
 * lags by about that much; n = 0 only applies that rule, for an idle recorder.
 * Every STATS event also becomes a row of `samples`. A failure of SQLite rolls
 * back to the last commit.
 */
int hs_store_append(hs_store *s, int64_t session, const hs_event *ev, size_t n);
/* Stores a keyframe (the model's state after event seq) in the open transaction;
 * one already stored at that seq is replaced. */
int hs_store_keyframe(hs_store *s, int64_t session, uint64_t seq, const void *blob, size_t len);
/* Commits everything appended so far. */
int hs_store_commit(hs_store *s);
/* Records status, end_ns (0: now), nevents, nlost and wait_ns, and commits. */
int hs_store_session_end(hs_store *s, const hs_session_info *info);

/* --- reading (store/source.c) ----------------------------------------------- */

/*
 * Calls fn for every session in id order; the strings are valid only during the
 * call. A session whose status is running but whose recorder_pid is not alive
 * (kill(pid, 0) fails with ESRCH, so only recorders of this machine and pid
 * namespace are seen alive) is reported as INTERRUPTED; the file is not changed.
 * While a session has not ended, nevents counts the events stored so far.
 * fn returns 0 to go on; any other value stops the listing and is returned.
 */
int hs_store_sessions(hs_store *s, int (*fn)(const hs_session_info *, void *), void *arg);
/* The first and last seq the session holds (committed so far): 0, 1 for a
 * session with no event, -1 on error. */
int hs_store_session_bounds(hs_store *s, int64_t session, uint64_t *first, uint64_t *last);
/* The id of the file's last session: 0 with *id, 1 if the file holds none, -1 on error. */
int hs_store_last_session(hs_store *s, int64_t *id);
/* The session id, as the listing reports it; -1 with "no session N in FILE" if
 * there is none. The strings stay valid until the next call or hs_store_close. */
int hs_store_session_get(hs_store *s, int64_t id, hs_session_info *out);
/* The keyframe with the largest seq <= seq: returns 0 with *kf_seq and a
 * malloc'd copy of its state in *blob (free it), 1 if there is none, -1 on error. */
int hs_store_keyframe_at(hs_store *s, int64_t session, uint64_t seq, uint64_t *kf_seq, void **blob,
			 size_t *len);

typedef struct hs_source hs_source;
/* Events of session with seq >= from_seq, in seq order, streamed: memory does
 * not grow with the session. A source sees what was committed when it opened. */
int hs_source_open(hs_store *s, int64_t session, uint64_t from_seq, hs_source **out);
/* 1 with the next event in *out, 0 at the end, -1 on error (hs_store_error). */
int hs_source_next(hs_source *src, hs_event *out);
void hs_source_close(hs_source *src);

/* --- store/replay.c ---------------------------------------------------------- */
struct hs_model;
/* The model after the event with sequence number seq (the last at or before
 * it): the nearest keyframe plus the events after it. 0, or -1 with a one-line
 * reason in err. A model that diverges stops where it did (hs_model_error). */
int hs_store_model_at(hs_store *s, int64_t session, uint64_t seq, struct hs_model **out, char *err,
		      size_t errlen);
/* The first event at or after ns nanoseconds into the session (the last event
 * if the session is shorter): 0 with *seq, 1 for an empty session, -1 on error. */
int hs_store_seq_at_time(hs_store *s, int64_t session, uint64_t ns, uint64_t *seq);

/* --- store/writer.c: appending from a thread of its own ---------------------- */
typedef struct hs_store_writer hs_store_writer;
/* The events of one buffer of the writer's. */
#define HS_STORE_WRITER_BATCH 4096
/* Starts the thread; from now until stop, only it uses s. NULL on failure. */
hs_store_writer *hs_store_writer_start(hs_store *s, int64_t session);
/*
 * The buffer (HS_STORE_WRITER_BATCH events) to put the next batch in: the
 * caller's until it queues it, and the same one again until then. Waits while
 * every buffer is queued; NULL once writing failed.
 */
hs_event *hs_store_writer_buffer(hs_store_writer *w);
/* Queues the first n events of that buffer to be appended (n = 0: keeps it).
 * The caller may go on reading them until it asks for its next buffer, and must
 * not write them. -1 once writing failed. */
int hs_store_writer_queue(hs_store_writer *w, size_t n);
/* Queues a keyframe; takes blob (malloc'd) over. */
void hs_store_writer_keyframe(hs_store_writer *w, uint64_t seq, void *blob, size_t len);
int hs_store_writer_failed(hs_store_writer *w);
const char *hs_store_writer_error(hs_store_writer *w);
/* Writes what is queued, stops the thread; 0, or -1 with the first error in err. */
int hs_store_writer_stop(hs_store_writer *w, char *err, size_t errlen);

/* "running", "complete", "crashed", "interrupted". */
const char *hs_session_status_name(hs_session_status status);

#endif /* HS_STORE_H */
