/*
 * store/replay.c — the model at any point of a stored session.
 *
 * The model after event SEQ is the nearest keyframe at or before SEQ, loaded,
 * plus the events after it up to SEQ applied in order; with no keyframe, the
 * events from the session's start. The recorder saves a keyframe every 100,000
 * events, so a seek applies at most that many, whatever the session's length.
 *
 * Times: a session's time runs from its first event's timestamp. The samples
 * table (one row per stats event, every 100 ms) brackets a time to within one
 * sample; the events from that sample on are read to find the first at or
 * after the time.
 */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"
#include "sqlite3.h"
#include "store.h"

int hs_store_model_at(hs_store *s, int64_t session, uint64_t seq, hs_model **out, char *err, size_t errlen)
{
	uint64_t kf_seq = 0;
	void *blob = NULL;
	size_t len = 0;
	hs_model *m = NULL;
	int r = hs_store_keyframe_at(s, session, seq, &kf_seq, &blob, &len);
	if (r < 0) {
		snprintf(err, errlen, "%s", hs_store_error(s));
		return -1;
	}
	if (r == 0) {
		char why[160];
		m = hs_model_load(blob, len, why, sizeof why);
		if (m == NULL) {
			snprintf(err, errlen, "keyframe at seq %llu: %s", (unsigned long long)kf_seq, why);
			free(blob);
			return -1;
		}
	}
	free(blob);
	if (m == NULL && (m = hs_model_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	hs_source *src;
	if (hs_source_open(s, session, r == 0 ? kf_seq + 1 : 0, &src) != 0) {
		snprintf(err, errlen, "%s", hs_store_error(s));
		hs_model_free(m);
		return -1;
	}
	hs_event e;
	while ((r = hs_source_next(src, &e)) == 1 && e.seq <= seq) {
		if (hs_model_apply(m, &e) != 0)
			break;
	}
	hs_source_close(src);
	if (r < 0) {
		snprintf(err, errlen, "%s", hs_store_error(s));
		hs_model_free(m);
		return -1;
	}
	*out = m;
	return 0;
}

/* One integer from a one-row query with two bound integers; 1 if no row or NULL. */
static int query_u64(hs_store *s, const char *sql, int64_t a, int64_t b, uint64_t *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(hs_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	int r = sqlite3_step(st);
	int got = r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
	if (got)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? !got : -1;
}

int hs_store_seq_at_time(hs_store *s, int64_t session, uint64_t ns, uint64_t *seq)
{
	hs_source *src;
	hs_event e;
	if (hs_source_open(s, session, 0, &src) != 0)
		return -1;
	int r = hs_source_next(src, &e);
	hs_source_close(src);
	if (r != 1)
		return r < 0 ? -1 : 1;
	uint64_t t = e.ts + ns, from = 0;
	if (query_u64(s, "SELECT max(seq) FROM samples WHERE session = ?1 AND ts <= ?2", session, (int64_t)t,
		      &from) < 0)
		return -1;
	if (hs_source_open(s, session, from, &src) != 0)
		return -1;
	uint64_t last = from;
	while ((r = hs_source_next(src, &e)) == 1 && e.ts < t)
		last = e.seq;
	hs_source_close(src);
	if (r < 0)
		return -1;
	*seq = r == 1 ? e.seq : last;
	return 0;
}
