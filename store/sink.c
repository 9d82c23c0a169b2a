/*
 * store/sink.c — the writer: sessions, events, keyframes and samples into a
 * store file (store/schema.c describes the tables; cli/run.c is the caller).
 *
 * The path of an event. hs_store_append checks its seq against the session's
 * last one, puts it in the open range (see below) and copies it into
 * `pending`; when pending is full, or at a commit, a single INSERT INTO
 * event_rows ... SELECT ... FROM hs_pending moves all of it (each STATS event
 * among it also becomes a samples row, and each event whose a2..a5 do not pack
 * an event_args row). hs_pending is an eponymous virtual table, known only to
 * the writer's connection, whose rows are the events being inserted, packed as
 * store_impl.h lays out a row, one event at a time as SQLite steps to it.
 * Compared with binding parameters per event to a prepared multi-row INSERT,
 * it saves a bind call and the release of the value bound before for every
 * column, and measured 10-15% faster. Fast path: a batch of SINK_BATCH events
 * or more that finds nothing pending is inserted from the caller's array, not
 * copied (the writer thread hands batches of that size).
 *
 * Transactions. One is opened by the first write after a commit: a flush of
 * pending or a keyframe (BEGIN IMMEDIATE, so the write lock is taken at once).
 * It is committed when an append finds that 100 ms have passed since the last
 * commit: a live reader is at most about that far behind, and ten commits a
 * second cost nothing next to the rows. Below 4096 events per interval nothing
 * is written before the commit, so a slow recorder holds the file's one write
 * lock for milliseconds a tenth of a second and another recorder of the same
 * file gets its turn (schema.c's busy handler polls for it). A failure of
 * SQLite rolls the transaction back and forgets what was pending, so the file
 * always holds what was last committed and nothing half-written.
 *
 * The range. `range` is the run of one session's events that becomes one
 * event_ranges row: consecutive seqs in consecutive ids, their ts counted from
 * the range's first (schema.c). It opens with the first event appended after a
 * commit, a change of session, a seq that skips or a ts too far from its base
 * to pack; it ends (flushing pending first, so that its ids are known) at the
 * next of those or at the commit. A lossless session therefore has one range
 * per commit; every loss of events starts another.
 *
 * Measured (test_ingest_rate in tests/unit/test_store_api.c, 5 million
 * synthetic events of mixed kinds appended 4096 at a time, the 2-core machine
 * of docs/PERFORMANCE.md, shared and noisy): see docs/PERFORMANCE.md, "The
 * store"; no append paused more than ~35 ms (checkpoints; schema.c).
 *
 * Invariants (between calls):
 *   pending[0..npending) are session's events, none in the file yet, and the
 *     last npending events of the open range;
 *   range.open => range.first_seq..range.last_seq are session's, consecutive;
 *   range.first_row != 0 => in_txn, and the range's rows so far are
 *     first_row..last_row of event_rows;
 *   have_last => last_seq is the largest seq of session appended (pending included).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_impl.h"

/* 4096 events (320 KiB) per INSERT: the statement's fixed cost is lost in the
 * rows well before that, and the copy stays in the cache's reach. */
#define SINK_BATCH 4096
#define COMMIT_NS (100 * UINT64_C(1000000))

/* The range being filled: open from its first event appended; first_row is 0
 * until a flush has given its first rows their ids. */
typedef struct sink_range {
	int open;
	uint64_t first_seq, last_seq;
	uint64_t ts_base;
	int64_t first_row, last_row;
} sink_range;

struct hs_sink {
	int64_t session; /* whose events pending and range hold; 0: none yet */
	int have_last;
	uint64_t last_seq;
	sink_range range;
	int in_txn;
	uint64_t last_commit_ns;
	sqlite3_stmt *begin, *commit, *rollback, *insert, *args, *put_range, *tail, *sample, *keyframe,
		*new_session, *end_session;
	const hs_event *rows; /* what hs_pending returns: pending, or the caller's events */
	size_t nrows;
	size_t npending;
	hs_event pending[SINK_BATCH];
};

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- hs_pending: the pending array as a table -------------------------------- */

typedef struct pending_vtab {
	sqlite3_vtab base;
	struct hs_sink *k;
} pending_vtab;

typedef struct pending_cursor {
	sqlite3_vtab_cursor base;
	size_t i;
	hs_row row; /* rows[i], packed once for its five columns */
} pending_cursor;

static int pending_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
			   char **err)
{
	(void)argc, (void)argv, (void)err;
	int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(ts_kind, pid_tid, a0, a1, a2_5)");
	if (rc != SQLITE_OK)
		return rc;
	pending_vtab *v = sqlite3_malloc(sizeof *v);
	if (v == NULL)
		return SQLITE_NOMEM;
	memset(v, 0, sizeof *v);
	v->k = aux;
	*out = &v->base;
	return SQLITE_OK;
}

static int pending_disconnect(sqlite3_vtab *v)
{
	sqlite3_free(v);
	return SQLITE_OK;
}

static int pending_best_index(sqlite3_vtab *v, sqlite3_index_info *info)
{
	(void)v;
	info->estimatedCost = SINK_BATCH;
	info->estimatedRows = SINK_BATCH;
	return SQLITE_OK;
}

static int pending_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out)
{
	(void)v;
	pending_cursor *c = sqlite3_malloc(sizeof *c);
	if (c == NULL)
		return SQLITE_NOMEM;
	memset(c, 0, sizeof *c);
	*out = &c->base;
	return SQLITE_OK;
}

static int pending_close(sqlite3_vtab_cursor *c)
{
	sqlite3_free(c);
	return SQLITE_OK;
}

/* Every row belongs to the open range (a new range flushes first). */
static void pending_pack(pending_cursor *c)
{
	const struct hs_sink *k = ((pending_vtab *)c->base.pVtab)->k;
	if (c->i < k->nrows)
		hs_row_encode(&k->rows[c->i], k->range.ts_base, &c->row);
}

static int pending_filter(sqlite3_vtab_cursor *c, int idx, const char *idxstr, int argc, sqlite3_value **argv)
{
	(void)idx, (void)idxstr, (void)argc, (void)argv;
	((pending_cursor *)c)->i = 0;
	pending_pack((pending_cursor *)c);
	return SQLITE_OK;
}

static int pending_next(sqlite3_vtab_cursor *c)
{
	((pending_cursor *)c)->i++;
	pending_pack((pending_cursor *)c);
	return SQLITE_OK;
}

static int pending_eof(sqlite3_vtab_cursor *c)
{
	return ((pending_cursor *)c)->i >= ((pending_vtab *)c->pVtab)->k->nrows;
}

static int pending_column(sqlite3_vtab_cursor *c, sqlite3_context *ctx, int col)
{
	const hs_row *r = &((pending_cursor *)c)->row;
	int64_t v;
	switch (col) {
	case 0: v = r->ts_kind; break;
	case 1: v = r->pid_tid; break;
	case 2: v = r->a0; break;
	case 3: v = r->a1; break;
	default:
		if (r->wide) {
			sqlite3_result_null(ctx);
			return SQLITE_OK;
		}
		v = r->a2_5;
		break;
	}
	sqlite3_result_int64(ctx, v);
	return SQLITE_OK;
}

static int pending_rowid(sqlite3_vtab_cursor *c, sqlite3_int64 *rowid)
{
	*rowid = (sqlite3_int64)((pending_cursor *)c)->i;
	return SQLITE_OK;
}

/* No xCreate: eponymous-only, it exists without a CREATE VIRTUAL TABLE and
 * leaves nothing in the file's schema. */
static const sqlite3_module pending_module = {
	.xConnect = pending_connect,
	.xBestIndex = pending_best_index,
	.xDisconnect = pending_disconnect,
	.xDestroy = pending_disconnect,
	.xOpen = pending_open,
	.xClose = pending_close,
	.xFilter = pending_filter,
	.xNext = pending_next,
	.xEof = pending_eof,
	.xColumn = pending_column,
	.xRowid = pending_rowid,
};

/* --- transactions ------------------------------------------------------------ */

/* Records SQLite's reason, then rolls back to the last commit. */
static int sink_fail(hs_store *s, const char *what)
{
	struct hs_sink *k = s->sink;
	hs_store_sql_fail(s, what);
	if (k->in_txn) {
		sqlite3_step(k->rollback);
		sqlite3_reset(k->rollback);
	}
	k->in_txn = 0;
	k->npending = 0;
	k->range.open = 0;
	k->have_last = 0;
	k->session = 0;
	return -1;
}

static int step_done(hs_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sink_fail(s, what);
}

static int begin(hs_store *s)
{
	struct hs_sink *k = s->sink;
	if (k->in_txn)
		return 0;
	if (step_done(s, k->begin, "begin") != 0)
		return -1;
	k->in_txn = 1;
	return 0;
}

static int put_sample(hs_store *s, const hs_event *e)
{
	struct hs_sink *k = s->sink;
	const hs_event_info *stats = hs_event_lookup(HS_EV_STATS);
	sqlite3_bind_int64(k->sample, 1, k->session);
	sqlite3_bind_int64(k->sample, 2, (int64_t)e->seq);
	sqlite3_bind_int64(k->sample, 3, (int64_t)e->ts);
	sqlite3_bind_int64(k->sample, 4, e->pid);
	for (unsigned i = 0; i < stats->nargs; i++)
		sqlite3_bind_int64(k->sample, 5 + (int)i, (int64_t)e->arg[i]);
	return step_done(s, k->sample, "append");
}

/* The arguments of an event whose a2_5 is NULL, under its event_rows id. */
static int put_args(hs_store *s, int64_t id, const hs_event *e)
{
	struct hs_sink *k = s->sink;
	sqlite3_bind_int64(k->args, 1, id);
	for (int i = 0; i < 4; i++)
		sqlite3_bind_int64(k->args, 2 + i, (int64_t)e->arg[2 + i]);
	return step_done(s, k->args, "append");
}

/* ev[0..n), the range's next events, → event_rows (and samples, and
 * event_args for the wide ones), extending the range by the ids they took. */
static int insert_rows(hs_store *s, const hs_event *ev, size_t n)
{
	struct hs_sink *k = s->sink;
	if (begin(s) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (ev[i].kind == HS_EV_STATS && put_sample(s, &ev[i]) != 0)
			return -1;
	k->rows = ev;
	k->nrows = n;
	int rc = step_done(s, k->insert, "append");
	k->nrows = 0;
	if (rc != 0)
		return -1;
	int64_t last = sqlite3_last_insert_rowid(s->db), first = last - (int64_t)n + 1;
	for (size_t i = 0; i < n; i++)
		if (hs_row_is_wide(&ev[i]) && put_args(s, first + (int64_t)i, &ev[i]) != 0)
			return -1;
	if (k->range.first_row == 0)
		k->range.first_row = first;
	k->range.last_row = last;
	return 0;
}

static int flush(hs_store *s)
{
	struct hs_sink *k = s->sink;
	if (k->npending == 0)
		return 0;
	size_t n = k->npending;
	k->npending = 0;
	return insert_rows(s, k->pending, n);
}

static int put_range_row(hs_store *s)
{
	struct hs_sink *k = s->sink;
	if (!k->range.open)
		return 0;
	sqlite3_bind_int64(k->put_range, 1, k->session);
	sqlite3_bind_int64(k->put_range, 2, (int64_t)k->range.first_seq);
	sqlite3_bind_int64(k->put_range, 3, (int64_t)k->range.last_seq);
	sqlite3_bind_int64(k->put_range, 4, k->range.first_row);
	sqlite3_bind_int64(k->put_range, 5, k->range.last_row);
	sqlite3_bind_int64(k->put_range, 6, (int64_t)k->range.ts_base);
	if (step_done(s, k->put_range, "append") != 0)
		return -1;
	k->range.open = 0;
	return 0;
}

static int continues_range(const sink_range *r, const hs_event *e)
{
	return r->open && e->seq == r->last_seq + 1 && hs_row_ts_fits(e->ts, r->ts_base);
}

/* How many of ev[0..n) (one at least) go into the open range: ends that range
 * first (flushing what it holds) and opens one at ev[0] if ev[0] does not
 * continue it. A range steps seq by one and packs ts against its base. */
static int take_run(hs_store *s, const hs_event *ev, size_t n, size_t *run)
{
	struct hs_sink *k = s->sink;
	if (k->range.open && !continues_range(&k->range, &ev[0]) && (flush(s) != 0 || put_range_row(s) != 0))
		return -1;
	if (!k->range.open)
		k->range = (sink_range){ .open = 1, .first_seq = ev[0].seq, .last_seq = ev[0].seq - 1,
					 .ts_base = ev[0].ts };
	size_t i = 0;
	while (i < n && continues_range(&k->range, &ev[i]))
		k->range.last_seq = ev[i++].seq;
	*run = i;
	return 0;
}

/* Fast path: a whole batch with nothing pending goes in from the caller's
 * array, without a copy. Otherwise it goes through pending. */
static int put_events(hs_store *s, const hs_event *ev, size_t n)
{
	struct hs_sink *k = s->sink;
	while (n > 0) {
		size_t run;
		if (take_run(s, ev, n, &run) != 0)
			return -1;
		if (k->npending == 0 && run >= SINK_BATCH) {
			if (insert_rows(s, ev, run) != 0)
				return -1;
		} else {
			run = run < SINK_BATCH - k->npending ? run : SINK_BATCH - k->npending;
			k->range.last_seq = ev[run - 1].seq;
			memcpy(&k->pending[k->npending], ev, run * sizeof *ev);
			k->npending += run;
			if (k->npending == SINK_BATCH && flush(s) != 0)
				return -1;
		}
		ev += run;
		n -= run;
	}
	return 0;
}

static int commit(hs_store *s)
{
	struct hs_sink *k = s->sink;
	if (flush(s) != 0)
		return -1;
	if (!k->in_txn)
		return 0;
	if (put_range_row(s) != 0 || step_done(s, k->commit, "commit") != 0)
		return -1;
	k->in_txn = 0;
	k->last_commit_ns = clock_ns(CLOCK_MONOTONIC);
	return 0;
}

static int writable(hs_store *s)
{
	return s->sink != NULL ? 0 : hs_store_fail(s, "%s is open read-only", s->path);
}

/* --- events ------------------------------------------------------------------ */

/* Makes session the one pending and range hold, and learns its last seq. */
static int use_session(hs_store *s, int64_t session)
{
	struct hs_sink *k = s->sink;
	if (k->session == session)
		return 0;
	if (flush(s) != 0 || put_range_row(s) != 0)
		return -1;
	sqlite3_bind_int64(k->tail, 1, session);
	int rc = sqlite3_step(k->tail);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(k->tail);
		return sink_fail(s, "append");
	}
	int exists = sqlite3_column_int(k->tail, 0) != 0;
	k->have_last = sqlite3_column_type(k->tail, 1) != SQLITE_NULL;
	k->last_seq = (uint64_t)sqlite3_column_int64(k->tail, 1);
	sqlite3_reset(k->tail);
	if (!exists)
		return hs_store_fail(s, "no session %lld in %s", (long long)session, s->path);
	k->session = session;
	return 0;
}

/* Ranges and the source rely on seq increasing within a session; a seq of 2^63
 * or more would turn negative in the file and break the order there. */
static int check_order(hs_store *s, const hs_event *ev, size_t n)
{
	struct hs_sink *k = s->sink;
	int have = k->have_last;
	uint64_t prev = k->last_seq;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].seq > (uint64_t)INT64_MAX)
			return hs_store_fail(s, "session %lld: seq %llu is beyond the store's range (2^63)",
					     (long long)k->session, (unsigned long long)ev[i].seq);
		if (have && ev[i].seq <= prev)
			return hs_store_fail(s,
					     "session %lld: event seq %llu comes after seq %llu; events must be "
					     "appended in seq order",
					     (long long)k->session, (unsigned long long)ev[i].seq,
					     (unsigned long long)prev);
		have = 1;
		prev = ev[i].seq;
	}
	return 0;
}

int hs_store_append(hs_store *s, int64_t session, const hs_event *ev, size_t n)
{
	if (writable(s) != 0)
		return -1;
	struct hs_sink *k = s->sink;
	if (n > 0) {
		if (use_session(s, session) != 0 || check_order(s, ev, n) != 0)
			return -1;
		if (put_events(s, ev, n) != 0)
			return -1;
		k->have_last = 1;
		k->last_seq = ev[n - 1].seq;
	}
	if (clock_ns(CLOCK_MONOTONIC) - k->last_commit_ns >= COMMIT_NS)
		return commit(s);
	return 0;
}

int hs_store_keyframe(hs_store *s, int64_t session, uint64_t seq, const void *blob, size_t len)
{
	if (writable(s) != 0)
		return -1;
	struct hs_sink *k = s->sink;
	if (seq > (uint64_t)INT64_MAX)
		return hs_store_fail(s, "keyframe: seq %llu is beyond the store's range (2^63)",
				     (unsigned long long)seq);
	if (begin(s) != 0)
		return -1;
	sqlite3_bind_int64(k->keyframe, 1, session);
	sqlite3_bind_int64(k->keyframe, 2, (int64_t)seq);
	if (len == 0)
		sqlite3_bind_zeroblob(k->keyframe, 3, 0);
	else
		sqlite3_bind_blob64(k->keyframe, 3, blob, len, SQLITE_STATIC);
	int rc = step_done(s, k->keyframe, "keyframe");
	sqlite3_clear_bindings(k->keyframe);
	return rc;
}

int hs_store_commit(hs_store *s)
{
	return writable(s) != 0 ? -1 : commit(s);
}

/* --- sessions ---------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int hs_store_session_begin(hs_store *s, hs_session_info *info)
{
	if (writable(s) != 0 || commit(s) != 0)
		return -1;
	struct hs_sink *k = s->sink;
	if (info->recorder_pid == 0)
		info->recorder_pid = getpid();
	if (info->start_ns == 0)
		info->start_ns = (int64_t)clock_ns(CLOCK_REALTIME);
	info->end_ns = 0;
	info->status = HS_SESSION_RUNNING;
	sqlite3_stmt *st = k->new_session;
	bind_text(st, 1, info->command);
	sqlite3_bind_int64(st, 2, (int64_t)info->seed);
	sqlite3_bind_int64(st, 3, info->pid);
	sqlite3_bind_int64(st, 4, info->recorder_pid);
	bind_text(st, 5, info->transport);
	bind_text(st, 6, info->level);
	bind_text(st, 7, info->config);
	sqlite3_bind_int64(st, 8, info->start_ns);
	sqlite3_bind_text(st, 9, hs_session_status_name(HS_SESSION_RUNNING), -1, SQLITE_STATIC);
	if (step_done(s, st, "begin session") != 0)
		return -1;
	info->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int hs_store_session_end(hs_store *s, const hs_session_info *info)
{
	if (writable(s) != 0 || commit(s) != 0)
		return -1;
	sqlite3_stmt *st = s->sink->end_session;
	sqlite3_bind_int64(st, 1, info->id);
	sqlite3_bind_int64(st, 2, info->end_ns != 0 ? info->end_ns : (int64_t)clock_ns(CLOCK_REALTIME));
	sqlite3_bind_text(st, 3, hs_session_status_name(info->status), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)info->nevents);
	sqlite3_bind_int64(st, 5, (int64_t)info->nlost);
	sqlite3_bind_int64(st, 6, (int64_t)info->wait_ns);
	if (step_done(s, st, "end session") != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0)
		return hs_store_fail(s, "no session %lld in %s", (long long)info->id, s->path);
	return 0;
}

/* --- setup ------------------------------------------------------------------- */

/* "INSERT INTO samples VALUES(?, ...)": session, seq, ts, pid and the STATS arguments. */
static char *sample_sql(void)
{
	const hs_event_info *stats = hs_event_lookup(HS_EV_STATS);
	sqlite3_str *q = sqlite3_str_new(NULL);
	sqlite3_str_appendall(q, "INSERT INTO samples VALUES(?, ?, ?, ?");
	for (unsigned i = 0; i < stats->nargs; i++)
		sqlite3_str_appendall(q, ", ?");
	sqlite3_str_appendall(q, ")");
	return sqlite3_str_finish(q);
}

static int prepare(hs_store *s, sqlite3_stmt **st, const char *sql)
{
	if (sql == NULL)
		return hs_store_fail(s, "out of memory");
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return hs_store_sql_fail(s, "cannot prepare the writer");
	return 0;
}

int hs_sink_init(hs_store *s)
{
	struct hs_sink *k = calloc(1, sizeof *k);
	if (k == NULL)
		return hs_store_fail(s, "out of memory");
	s->sink = k;
	k->last_commit_ns = clock_ns(CLOCK_MONOTONIC);
	if (sqlite3_create_module_v2(s->db, "hs_pending", &pending_module, k, NULL) != SQLITE_OK)
		return hs_store_sql_fail(s, "cannot prepare the writer");
	char *sample = sample_sql();
	int rc = prepare(s, &k->begin, "BEGIN IMMEDIATE") || prepare(s, &k->commit, "COMMIT") ||
		 prepare(s, &k->rollback, "ROLLBACK") ||
		 prepare(s, &k->insert,
			 "INSERT INTO event_rows(ts_kind, pid_tid, a0, a1, a2_5)"
			 " SELECT ts_kind, pid_tid, a0, a1, a2_5 FROM hs_pending") ||
		 prepare(s, &k->args, "INSERT INTO event_args VALUES(?, ?, ?, ?, ?)") ||
		 prepare(s, &k->put_range, "INSERT INTO event_ranges VALUES(?, ?, ?, ?, ?, ?)") ||
		 prepare(s, &k->tail,
			 "SELECT (SELECT count(*) FROM sessions WHERE id = ?1), (SELECT last_seq FROM"
			 " event_ranges WHERE session = ?1 ORDER BY first_seq DESC LIMIT 1)") ||
		 prepare(s, &k->sample, sample) ||
		 prepare(s, &k->keyframe, "INSERT OR REPLACE INTO keyframes VALUES(?, ?, ?)") ||
		 prepare(s, &k->new_session,
			 "INSERT INTO sessions(command, seed, pid, recorder_pid, transport, level, config,"
			 " start_ns, end_ns, status, nevents, nlost, wait_ns)"
			 " VALUES(?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, 0, 0)") ||
		 prepare(s, &k->end_session,
			 "UPDATE sessions SET end_ns = ?2, status = ?3, nevents = ?4, nlost = ?5, wait_ns = ?6"
			 " WHERE id = ?1");
	sqlite3_free(sample);
	return rc ? -1 : 0;
}

void hs_sink_free(hs_store *s)
{
	struct hs_sink *k = s->sink;
	if (k == NULL)
		return;
	commit(s);
	sqlite3_stmt **all[] = { &k->begin, &k->commit, &k->rollback, &k->insert,      &k->args,       &k->put_range,
				 &k->tail,  &k->sample, &k->keyframe, &k->new_session, &k->end_session };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(*all[i]);
	free(k);
	s->sink = NULL;
}
