/*
 * store/source.c — reading a store back: the sessions, one session's events
 * in seq order from any seq, and the keyframe a replay starts from. Readers are
 * verify, the TUI's replay and `heapscope sessions`; they usually open the file
 * read-only, often while a recorder is still appending to it.
 *
 * A source is two statements stepped in step: the session's event_ranges in
 * first_seq order (their primary key), and for each range the span of
 * event_rows ids it names, in id order (schema.c explains why that is seq
 * order), starting at the id of the first seq wanted (a range maps seq to id
 * one to one). A third statement fetches the event_args row of the few events
 * whose a2..a5 did not pack. SQLite walks the B-trees without sorting or
 * materializing anything, so memory does not grow with the session, and
 * starting at seq S skips the ranges that end before S without reading their
 * rows. A source reads the snapshot of its first step; a live reader that
 * wants newer events opens a new source after the last seq it has. Rows are
 * unpacked by hs_row_decode (store_impl.h).
 *
 * The file is input from outside: every row a source returns is checked (all
 * fields integers, or a2_5 NULL with its event_args row there), and so is
 * every range: as many seqs as ids, seqs increasing from one range to the
 * next, and its ids all there, consecutive, up to its last one. A page SQLite
 * reads as garbage can make a scan end early without an error; the ids catch
 * that. A bad row or range is an error, never an event with made-up fields or
 * a session silently cut short.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

static const char *const status_names[] = {
	[HS_SESSION_RUNNING] = "running",
	[HS_SESSION_COMPLETE] = "complete",
	[HS_SESSION_CRASHED] = "crashed",
	[HS_SESSION_INTERRUPTED] = "interrupted",
};

#define NSTATUS (sizeof status_names / sizeof status_names[0])

const char *hs_session_status_name(hs_session_status status)
{
	return (unsigned)status < NSTATUS ? status_names[status] : "unknown";
}

static int parse_status(const char *text, hs_session_status *out)
{
	for (unsigned i = 0; text != NULL && i < NSTATUS; i++) {
		if (strcmp(text, status_names[i]) == 0) {
			*out = (hs_session_status)i;
			return 0;
		}
	}
	return -1;
}

/* --- sessions ---------------------------------------------------------------- */

#define SESSION_SELECT                                                                                     \
	"SELECT id, command, seed, pid, recorder_pid, transport, level, config, start_ns, end_ns, status,"  \
	" nevents, nlost, wait_ns FROM sessions"

/* kill(pid, 0) fails with ESRCH only when there is no such process; EPERM means
 * it exists under another user. pid <= 0 would name a process group. */
static int alive(int64_t pid)
{
	if (pid <= 0 || pid > INT_MAX)
		return 0;
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* What a session that has not ended holds so far: its recorder writes the
 * count only at the end. Ranges are a few a second, so this is cheap. */
static int stored_events(hs_store *s, int64_t id, uint64_t *n)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT coalesce(sum(last_row - first_row + 1), 0) FROM event_ranges WHERE session = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return hs_store_sql_fail(s, "sessions");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	*n = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : hs_store_sql_fail(s, "sessions");
}

static const char *text_column(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static int read_session(hs_store *s, sqlite3_stmt *st, hs_session_info *info)
{
	memset(info, 0, sizeof *info);
	info->id = sqlite3_column_int64(st, 0);
	info->command = text_column(st, 1);
	info->seed = (uint64_t)sqlite3_column_int64(st, 2);
	info->pid = sqlite3_column_int64(st, 3);
	info->recorder_pid = sqlite3_column_int64(st, 4);
	info->transport = text_column(st, 5);
	info->level = text_column(st, 6);
	info->config = text_column(st, 7);
	info->start_ns = sqlite3_column_int64(st, 8);
	info->end_ns = sqlite3_column_int64(st, 9);
	info->nevents = (uint64_t)sqlite3_column_int64(st, 11);
	info->nlost = (uint64_t)sqlite3_column_int64(st, 12);
	info->wait_ns = (uint64_t)sqlite3_column_int64(st, 13);
	const char *status = text_column(st, 10);
	if (parse_status(status, &info->status) != 0)
		return hs_store_fail(s, "session %lld has an unknown status '%s'", (long long)info->id,
				     status != NULL ? status : "");
	if (info->status != HS_SESSION_RUNNING)
		return 0;
	if (!alive(info->recorder_pid))
		info->status = HS_SESSION_INTERRUPTED;
	return stored_events(s, info->id, &info->nevents);
}

int hs_store_sessions(hs_store *s, int (*fn)(const hs_session_info *, void *), void *arg)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, SESSION_SELECT " ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return hs_store_sql_fail(s, "sessions");
	int rc, r = 0;
	hs_session_info info;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (read_session(s, st, &info) != 0) {
			sqlite3_finalize(st);
			return -1;
		}
		r = fn(&info, arg);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = hs_store_sql_fail(s, "sessions");
	sqlite3_finalize(st);
	return r;
}

/* Copies info's strings into one block that s keeps until the next call. */
static int keep_strings(hs_store *s, hs_session_info *info)
{
	const char **fields[] = { &info->command, &info->transport, &info->level, &info->config };
	size_t total = 0;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		total += *fields[i] != NULL ? strlen(*fields[i]) + 1 : 0;
	char *block = malloc(total + 1);
	if (block == NULL)
		return hs_store_fail(s, "out of memory");
	char *p = block;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		if (*fields[i] == NULL)
			continue;
		size_t n = strlen(*fields[i]) + 1;
		memcpy(p, *fields[i], n);
		*fields[i] = p;
		p += n;
	}
	free(s->strings);
	s->strings = block;
	return 0;
}

static int last_cb(const hs_session_info *info, void *arg)
{
	*(int64_t *)arg = info->id;
	return 0;
}

int hs_store_last_session(hs_store *s, int64_t *id)
{
	*id = -1;
	if (hs_store_sessions(s, last_cb, id) != 0)
		return -1;
	return *id < 0;
}

/* event_ranges is keyed by (session, first_seq): both ends are one index probe each. */
int hs_store_session_bounds(hs_store *s, int64_t session, uint64_t *first, uint64_t *last)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT (SELECT first_seq FROM event_ranges WHERE session = ?1 ORDER BY first_seq LIMIT 1),"
			       " (SELECT last_seq FROM event_ranges WHERE session = ?1 ORDER BY first_seq DESC LIMIT 1)",
			       -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(q, 1, session);
	int rc = sqlite3_step(q), r = -1;
	if (rc == SQLITE_ROW) {
		r = sqlite3_column_type(q, 0) == SQLITE_NULL || sqlite3_column_type(q, 1) == SQLITE_NULL;
		*first = (uint64_t)sqlite3_column_int64(q, 0);
		*last = (uint64_t)sqlite3_column_int64(q, 1);
	}
	sqlite3_finalize(q);
	return r;
}

int hs_store_session_get(hs_store *s, int64_t id, hs_session_info *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, SESSION_SELECT " WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return hs_store_sql_fail(s, "sessions");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int r;
	if (rc == SQLITE_ROW)
		r = read_session(s, st, out) != 0 || keep_strings(s, out) != 0 ? -1 : 0;
	else if (rc == SQLITE_DONE)
		r = hs_store_fail(s, "no session %lld in %s", (long long)id, s->path);
	else
		r = hs_store_sql_fail(s, "sessions");
	sqlite3_finalize(st);
	return r;
}

/* --- keyframes --------------------------------------------------------------- */

int hs_store_keyframe_at(hs_store *s, int64_t session, uint64_t seq, uint64_t *kf_seq, void **blob,
			 size_t *len)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT seq, state FROM keyframes WHERE session = ? AND seq <= ?"
			       " ORDER BY seq DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return hs_store_sql_fail(s, "keyframe");
	sqlite3_bind_int64(st, 1, session);
	sqlite3_bind_int64(st, 2, seq > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)seq);
	int rc = sqlite3_step(st), r = 1;
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || sqlite3_column_int64(st, 0) < 0 ||
		    sqlite3_column_type(st, 1) != SQLITE_BLOB) {
			r = hs_store_fail(s, "session %lld: a malformed keyframe (the file is corrupt)",
					  (long long)session);
		} else {
			size_t n = (size_t)sqlite3_column_bytes(st, 1);
			void *copy = malloc(n != 0 ? n : 1);
			if (copy == NULL) {
				r = hs_store_fail(s, "out of memory");
			} else {
				if (n != 0)
					memcpy(copy, sqlite3_column_blob(st, 1), n);
				*kf_seq = (uint64_t)sqlite3_column_int64(st, 0);
				*blob = copy;
				*len = n;
				r = 0;
			}
		}
	} else if (rc != SQLITE_DONE) {
		r = hs_store_sql_fail(s, "keyframe");
	}
	sqlite3_finalize(st);
	return r;
}

/* --- events ------------------------------------------------------------------ */

struct hs_source {
	hs_store *s;
	sqlite3_stmt *ranges, *rows, *args;
	int64_t session, from_seq;
	int done;
	int in_range;	      /* rows is bound to the current range */
	int64_t first_row;    /* the current range's span, as event_ranges says */
	int64_t last_row;
	int64_t next_row;     /* the id the next row must have */
	int64_t first_seq;    /* the current range's, at first_row */
	uint64_t ts_base;
	int have_prev;
	uint64_t prev;
};

static int malformed(hs_source *src, const char *what)
{
	src->done = 1;
	if (src->have_prev)
		return hs_store_fail(src->s, "session %lld: the events after seq %llu %s (the file is corrupt)",
				     (long long)src->session, (unsigned long long)src->prev, what);
	return hs_store_fail(src->s, "session %lld: its first events %s (the file is corrupt)",
			     (long long)src->session, what);
}

static int source_sql_fail(hs_source *src)
{
	src->done = 1;
	return hs_store_sql_fail(src->s, "source");
}

static int session_exists(hs_store *s, int64_t session)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM sessions WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return hs_store_sql_fail(s, "source");
	sqlite3_bind_int64(st, 1, session);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return hs_store_fail(s, "no session %lld in %s", (long long)session, s->path);
	return hs_store_sql_fail(s, "source");
}

int hs_source_open(hs_store *s, int64_t session, uint64_t from_seq, hs_source **out)
{
	*out = NULL;
	if (session_exists(s, session) != 0)
		return -1;
	hs_source *src = calloc(1, sizeof *src);
	if (src == NULL)
		return hs_store_fail(s, "out of memory");
	src->s = s;
	src->session = session;
	/* Stored seqs are below 2^63 (the sink refuses others). */
	src->done = from_seq > (uint64_t)INT64_MAX;
	src->from_seq = src->done ? 0 : (int64_t)from_seq;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT first_seq, last_seq, first_row, last_row, ts_base FROM event_ranges"
			       " WHERE session = ? AND last_seq >= ? ORDER BY first_seq",
			       -1, &src->ranges, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db,
			       "SELECT id, ts_kind, pid_tid, a0, a1, a2_5 FROM event_rows"
			       " WHERE id BETWEEN ? AND ? ORDER BY id",
			       -1, &src->rows, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT a2, a3, a4, a5 FROM event_args WHERE id = ?", -1, &src->args,
			       NULL) != SQLITE_OK) {
		hs_store_sql_fail(s, "source");
		hs_source_close(src);
		return -1;
	}
	sqlite3_bind_int64(src->ranges, 1, session);
	sqlite3_bind_int64(src->ranges, 2, src->from_seq);
	*out = src;
	return 0;
}

/* Binds rows to the next range; 1 if there is one, 0 at the end, -1 on error. */
static int next_range(hs_source *src)
{
	int rc = sqlite3_step(src->ranges);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return source_sql_fail(src);
	for (int i = 0; i < 5; i++)
		if (sqlite3_column_type(src->ranges, i) != SQLITE_INTEGER)
			return malformed(src, "have a malformed range");
	int64_t first_seq = sqlite3_column_int64(src->ranges, 0), last_seq = sqlite3_column_int64(src->ranges, 1);
	src->first_row = sqlite3_column_int64(src->ranges, 2);
	src->last_row = sqlite3_column_int64(src->ranges, 3);
	src->ts_base = (uint64_t)sqlite3_column_int64(src->ranges, 4);
	/* Within a range seq and id step together; ranges follow in seq order. */
	if (first_seq < 0 || first_seq > last_seq || src->first_row < 1 || src->first_row > src->last_row ||
	    src->last_row - src->first_row != last_seq - first_seq ||
	    (src->have_prev && (uint64_t)first_seq <= src->prev))
		return malformed(src, "have a malformed range");
	src->first_seq = first_seq;
	/* Start at from_seq's row rather than read the range from its first. */
	src->next_row = src->first_row + (src->from_seq > first_seq ? src->from_seq - first_seq : 0);
	sqlite3_reset(src->rows);
	sqlite3_bind_int64(src->rows, 1, src->next_row);
	sqlite3_bind_int64(src->rows, 2, src->last_row);
	src->in_range = 1;
	return 1;
}

/* a2..a5 of the event at id from event_args, checked. The statement is reset
 * before returning: left on its row it would hold the reader's snapshot. */
static int take_args(hs_source *src, int64_t id, uint64_t wide[4])
{
	sqlite3_stmt *st = src->args;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), ints = rc == SQLITE_ROW;
	for (int i = 0; ints && i < 4; i++) {
		ints = sqlite3_column_type(st, i) == SQLITE_INTEGER;
		wide[i] = (uint64_t)sqlite3_column_int64(st, i);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return malformed(src, "are missing arguments");
	if (rc != SQLITE_ROW)
		return source_sql_fail(src);
	return ints ? 1 : malformed(src, "hold a field that is not an integer");
}

/* The row rows is on, checked, into *out. */
static int take_row(hs_source *src, hs_event *out)
{
	sqlite3_stmt *st = src->rows;
	for (int i = 0; i < 5; i++)
		if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
			return malformed(src, "hold a field that is not an integer");
	int64_t id = sqlite3_column_int64(st, 0);
	/* A range's ids are consecutive: a gap is a row the file lost. */
	if (id != src->next_row)
		return malformed(src, "are missing rows");
	hs_row row = { .ts_kind = sqlite3_column_int64(st, 1),
		       .pid_tid = sqlite3_column_int64(st, 2),
		       .a0 = sqlite3_column_int64(st, 3),
		       .a1 = sqlite3_column_int64(st, 4),
		       .a2_5 = sqlite3_column_int64(st, 5),
		       .wide = sqlite3_column_type(st, 5) == SQLITE_NULL };
	uint64_t wide[4] = { 0 };
	if (!row.wide && sqlite3_column_type(st, 5) != SQLITE_INTEGER)
		return malformed(src, "hold a field that is not an integer");
	if (row.wide && take_args(src, id, wide) != 1)
		return -1;
	src->next_row = id + 1;
	hs_row_decode(&row, (uint64_t)(src->first_seq + (id - src->first_row)), src->ts_base, wide, out);
	src->have_prev = 1;
	src->prev = out->seq;
	return 1;
}

int hs_source_next(hs_source *src, hs_event *out)
{
	while (!src->done) {
		if (!src->in_range) {
			int r = next_range(src);
			if (r <= 0) {
				src->done = 1;
				return r;
			}
		}
		int rc = sqlite3_step(src->rows);
		if (rc == SQLITE_ROW)
			return take_row(src, out);
		if (rc != SQLITE_DONE)
			return source_sql_fail(src);
		/* A range ends on its last row, and holds one at least: its last seq
		 * is >= from_seq, or it would not have been selected. */
		if (src->next_row != src->last_row + 1)
			return malformed(src, "are missing rows");
		src->in_range = 0;
	}
	return 0;
}

void hs_source_close(hs_source *src)
{
	if (src == NULL)
		return;
	sqlite3_finalize(src->ranges);
	sqlite3_finalize(src->rows);
	sqlite3_finalize(src->args);
	free(src);
}
