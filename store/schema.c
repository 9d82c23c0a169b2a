/*
 * store/schema.c — a store file: opening it, deciding whether this build may
 * read (or write) it, and the schema of a new one. See store/store.h for the
 * API; store/sink.c writes the tables, store/source.c reads them.
 *
 * Schema version 2:
 *
 *   meta(key, value)                 schema_version, heapscope_version and the
 *                                    heap's arch constants (arch, heap_addr_bits,
 *                                    arena_base_offset, summary_levels, page_size,
 *                                    chunk_pages), as this build runs them
 *   sessions(id, command, seed, pid, recorder_pid, transport, level, config,
 *            start_ns, end_ns, status, nevents, nlost, wait_ns)
 *   event_rows(id, ts_kind, pid_tid, a0, a1, a2_5)
 *                                    every event, in the order appended, packed
 *                                    (store_impl.h draws the layout); no index
 *   event_args(id, a2, a3, a4, a5)   the arguments a2_5 cannot pack, keyed by the
 *                                    event_rows id of their event
 *   event_ranges(session, first_seq, last_seq, first_row, last_row, ts_base)
 *                                    which ids of event_rows hold which session's
 *                                    events, and the time they are counted from
 *   events                           view: session, seq, ts, pid, tid, kind, a0..a5
 *                                    unpacked
 *   "<name>"                         one view per event kind (span_alloc, malloc, ...):
 *                                    session, seq, ts, pid, tid and the arguments
 *                                    under their names, generated from HS_EVENT_TABLE
 *                                    (one named like those five gets "arg_" before it)
 *   keyframes(session, seq, state)   the model's state after event seq
 *   samples(session, seq, ts, pid, <the stats event's arguments>)
 *                                    one row per STATS event
 *   kinds(kind, name, level, nargs, args)   the event table itself (args: JSON array)
 *
 * Why events are two tables. Ingest must keep up with a heap that emits
 * millions of events a second, and SQLite's cheapest insert is an append to a
 * rowid table under an id it picks itself: no key comparison, no uniqueness
 * probe. Keying each row by (session, seq), as a WITHOUT ROWID table or through
 * an explicit rowid, costs a B-tree descent per row: on this project's 2-core
 * machine, with everything else equal (64 KiB pages, the sink's insert path), a
 * WITHOUT ROWID table took 1.6-1.8 million rows/s where the append took 2.5-2.7
 * million. So event_rows has no key but its id, and event_ranges, a few
 * rows a second, maps each session's seq order onto spans of ids. The `events`
 * view joins them back, ranges outermost (CROSS JOIN fixes that order), so a
 * query naming a session reads only that session's spans. Three invariants,
 * kept by the sink, make the ranges exact:
 *   - the ids one transaction inserts are consecutive (a new id is max(id)+1,
 *     and one connection writes at a time), so a span holds one session's rows;
 *   - within a range, seq and id both step by one: last_seq - first_seq =
 *     last_row - first_row. A seq that skips (events lost on the way) starts a
 *     new range; so does a ts too far from ts_base to pack;
 *   - ranges of a session in first_seq order, each read in id order, give the
 *     session in seq order.
 * id is declared INTEGER PRIMARY KEY so that VACUUM cannot renumber it.
 *
 * Why the rows are packed (version 2). Past the fixed cost of an insert,
 * SQLite's cost grows with the number of columns (each is fetched from the
 * sink's virtual table, copied and encoded): on the 2-core machine, inserting
 * a churn session's events through this path cost about 130 ns a row plus
 * 28 ns a column. Version 1 stored seq, ts, pid, tid, kind and six arguments
 * as eleven columns; version 2 stores five. seq is derived from the range, ts
 * is kept against the range's ts_base beside the kind, pid and tid share a
 * column, and a2..a5 (zero or small in all but a few kinds) share one, with
 * event_args for the rest. docs/PERFORMANCE.md ("The store") has what it
 * gained. The views unpack it all, so SQL sees the same columns as in
 * version 1.
 *
 * Values: integers are stored as int64; unsigned 64-bit ones keep their bit
 * pattern, so digests and seeds of 2^63 and above read negative in SQL
 * (printf('%x', a0) shows the bits). Unused argument slots hold 0.
 *
 * Compatibility: a larger schema_version is refused, not guessed at, and so is
 * a smaller one (version 1's rows are not packed; this build reads only its own
 * layout). Kinds are only ever added (events.h), so opening a file for writing
 * adds the kinds rows and views this build knows and the file lacks; a released
 * kind never changes.
 *
 * Opening for reading never writes: the file is opened "file:...?mode=ro", and
 * when SQLite cannot set up the WAL index beside a read-only file it is reopened
 * immutable — only when no -wal file exists, since then no writer can be active.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heapscope/pagealloc.h"
#include "store_impl.h"

static const char create_sql[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE sessions(id INTEGER PRIMARY KEY, command TEXT, seed INTEGER, pid INTEGER,"
	" recorder_pid INTEGER, transport TEXT, level TEXT, config TEXT, start_ns INTEGER, end_ns INTEGER,"
	" status TEXT NOT NULL, nevents INTEGER, nlost INTEGER, wait_ns INTEGER);"
	/* No declared types: without an affinity to apply, SQLite builds each
	 * record with less work (5-10% of ingest); only the sink writes here, and
	 * always integers (or NULL in a2_5). */
	"CREATE TABLE event_rows(id INTEGER PRIMARY KEY, ts_kind, pid_tid, a0, a1, a2_5);"
	"CREATE TABLE event_args(id INTEGER PRIMARY KEY, a2, a3, a4, a5);"
	"CREATE TABLE event_ranges(session INTEGER NOT NULL, first_seq INTEGER NOT NULL,"
	" last_seq INTEGER NOT NULL, first_row INTEGER NOT NULL, last_row INTEGER NOT NULL,"
	" ts_base INTEGER NOT NULL, PRIMARY KEY(session, first_seq)) WITHOUT ROWID;"
	/* Keyframes are large blobs, and WITHOUT ROWID rows should stay small: a
	 * rowid table and its key's index, at a few rows a session. */
	"CREATE TABLE keyframes(session INTEGER NOT NULL, seq INTEGER NOT NULL, state BLOB NOT NULL,"
	" PRIMARY KEY(session, seq));"
	"CREATE TABLE kinds(kind INTEGER PRIMARY KEY, name TEXT NOT NULL, level TEXT NOT NULL,"
	" nargs INTEGER NOT NULL, args TEXT NOT NULL);";

int hs_store_fail(hs_store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	return -1;
}

int hs_store_sql_fail(hs_store *s, const char *what)
{
	return hs_store_fail(s, "%s: %s", what, sqlite3_errmsg(s->db));
}

const char *hs_store_error(hs_store *s)
{
	return s->err;
}

sqlite3 *hs_store_db(hs_store *s)
{
	return s->db;
}

__attribute__((format(printf, 3, 4))) static int open_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The reason an SQLite call on a file being opened failed. */
static int sql_open_fail(sqlite3 *db, int rc, char *err, size_t errlen)
{
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
		return open_fail(err, errlen, "not an SQLite file");
	case SQLITE_CORRUPT:
		return open_fail(err, errlen, "the file is corrupt (%s)", sqlite3_errmsg(db));
	default: {
		int e = db != NULL ? sqlite3_system_errno(db) : 0;
		return open_fail(err, errlen, "cannot open: %s",
				 e != 0 ? strerror(e) : db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	}
	}
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int wal_in_use(const char *path)
{
	char wal[4096];
	struct stat st;
	if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal)
		return 1;
	return stat(wal, &st) == 0 && st.st_size > 0;
}

/*
 * A cut-off file, caught before SQLite reads a missing page as zeros. The
 * header's page count (offset 28) is valid when the change counter (24) equals
 * version-valid-for (92). It is checked only when no -wal file has content:
 * otherwise pages may live in the WAL, and a checkpoint under way writes page 1
 * before the pages that make the file as long as page 1 says.
 */
static int check_length(const char *path, const unsigned char *h, off_t size, char *err, size_t errlen)
{
	uint32_t page = (uint32_t)h[16] << 8 | h[17];
	uint32_t pages = be32(h + 28);
	if (page == 1)
		page = 65536;
	if (pages == 0 || be32(h + 24) != be32(h + 92) || wal_in_use(path))
		return 0;
	uint64_t want = (uint64_t)pages * page;
	if ((uint64_t)size < want)
		return open_fail(err, errlen, "the file is truncated (%lld of %llu bytes)", (long long)size,
				 (unsigned long long)want);
	return 0;
}

/* What can be told from outside SQLite: missing, a directory, not an SQLite
 * file, truncated. A missing or empty file is fine when creating. */
static int check_file(const char *path, int create, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT && create)
			return 0;
		return open_fail(err, errlen, "cannot open: %s", strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return open_fail(err, errlen, "cannot open: %s", strerror(EISDIR));
	if (st.st_size == 0)
		return 0;
	unsigned char h[100];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return open_fail(err, errlen, "cannot open: %s", strerror(errno));
	ssize_t got = pread(fd, h, sizeof h, 0);
	int e = errno;
	close(fd);
	if (got < 0)
		return open_fail(err, errlen, "cannot open: %s", strerror(e));
	if (got < (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
		return open_fail(err, errlen, "not an SQLite file");
	return check_length(path, h, st.st_size, err, errlen);
}

/* "file:" URI for a read-only open. An absolute path gets the empty authority
 * ("file://" + path) so that one starting with "//" is not taken for a host. */
static char *readonly_uri(const char *path, int immutable)
{
	size_t n = strlen(path);
	char *uri = malloc(3 * n + 32);
	if (uri == NULL)
		return NULL;
	char *p = uri + sprintf(uri, "file:%s", path[0] == '/' ? "//" : "");
	for (const unsigned char *c = (const unsigned char *)path; *c != '\0'; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		    strchr("/._-~", *c) != NULL)
			*p++ = (char)*c;
		else
			p += sprintf(p, "%%%02X", *c);
	}
	strcpy(p, immutable ? "?mode=ro&immutable=1" : "?mode=ro");
	return uri;
}

/*
 * A recorder busy with a fast workload holds the file's write lock for most of
 * each commit interval and lets go for a moment between commits (sink.c).
 * Polling every millisecond finds those moments; SQLite's own back-off, with
 * sleeps growing to 100 ms, can miss them for seconds. Gives up after 10 s.
 */
static int busy_wait(void *arg, int tries)
{
	(void)arg;
	struct timespec ms = { 0, 1000000 };
	if (tries >= 10000)
		return 0;
	nanosleep(&ms, NULL);
	return 1;
}

static int connect_db(hs_store *s, const char *name, int flags, char *err, size_t errlen)
{
	int rc = sqlite3_open_v2(name, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sql_open_fail(s->db, rc, err, errlen);
		sqlite3_close(s->db);
		s->db = NULL;
		return -1;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_handler(s->db, busy_wait, NULL);
	return 0;
}

/* The first integer column of the first row of sql, or dflt if there is no row.
 * Returns an SQLite result code. */
static int query_int(sqlite3 *db, const char *sql, int64_t dflt, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	*out = dflt;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_type(st, 0) == SQLITE_INTEGER ? sqlite3_column_int64(st, 0) : dflt;
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

enum { PROBE_STORE, PROBE_EMPTY };

/*
 * What the open file is: PROBE_STORE (a heapscope store this build reads),
 * PROBE_EMPTY (no tables at all), or -1 with err set; *sqlrc has the SQLite
 * result when that was the failure.
 */
static int probe(sqlite3 *db, int *sqlrc, char *err, size_t errlen)
{
	int64_t tables, marked, version;
	*sqlrc = query_int(db, "SELECT count(*) FROM sqlite_master", 0, &tables);
	if (*sqlrc != SQLITE_OK)
		return sql_open_fail(db, *sqlrc, err, errlen);
	if (tables == 0)
		return PROBE_EMPTY;
	*sqlrc = query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", 0,
			   &marked);
	if (*sqlrc == SQLITE_OK && marked != 0)
		*sqlrc = query_int(db, "SELECT count(*) FROM meta WHERE key = 'heapscope_version'", 0, &marked);
	if (*sqlrc == SQLITE_OK && marked != 0)
		*sqlrc = query_int(db, "SELECT value FROM meta WHERE key = 'schema_version'", 0, &version);
	if (*sqlrc != SQLITE_OK)
		return sql_open_fail(db, *sqlrc, err, errlen);
	if (marked == 0 || version < 1)
		return open_fail(err, errlen, "not a heapscope session file");
	if (version > HS_STORE_SCHEMA_VERSION)
		return open_fail(err, errlen, "schema version %lld is newer than this heapscope's %d",
				 (long long)version, HS_STORE_SCHEMA_VERSION);
	if (version < HS_STORE_SCHEMA_VERSION)
		return open_fail(err, errlen,
				 "schema version %lld is older than this heapscope's %d, which reads only its own;"
				 " record the session again",
				 (long long)version, HS_STORE_SCHEMA_VERSION);
	return PROBE_STORE;
}

static int open_readonly(hs_store *s, char *err, size_t errlen)
{
	for (int immutable = 0; immutable <= 1; immutable++) {
		char *uri = readonly_uri(s->path, immutable);
		if (uri == NULL)
			return open_fail(err, errlen, "out of memory");
		int rc = connect_db(s, uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, err, errlen);
		free(uri);
		if (rc != 0)
			return -1;
		int sqlrc, kind = probe(s->db, &sqlrc, err, errlen);
		if (kind == PROBE_STORE)
			return 0;
		if (kind == PROBE_EMPTY)
			return open_fail(err, errlen, "not a heapscope session file");
		/* No WAL index can be made here; without a -wal file nobody writes. */
		int no_shm = (sqlrc & 0xff) == SQLITE_CANTOPEN || (sqlrc & 0xff) == SQLITE_READONLY;
		if (immutable || !no_shm || wal_in_use(s->path))
			return -1;
		sqlite3_close(s->db);
		s->db = NULL;
	}
	return -1;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* samples: one column per argument of the STATS event, so the two never disagree. */
static int create_samples(sqlite3 *db)
{
	const hs_event_info *stats = hs_event_lookup(HS_EV_STATS);
	sqlite3_str *q = sqlite3_str_new(db);
	sqlite3_str_appendall(q, "CREATE TABLE samples(session INTEGER NOT NULL, seq INTEGER NOT NULL,"
				 " ts INTEGER, pid INTEGER");
	for (unsigned i = 0; i < stats->nargs; i++)
		sqlite3_str_appendf(q, ", \"%w\" INTEGER", stats->args[i]);
	sqlite3_str_appendall(q, ", PRIMARY KEY(session, seq)) WITHOUT ROWID");
	char *sql = sqlite3_str_finish(q);
	int rc = sql != NULL ? exec(db, sql) : SQLITE_NOMEM;
	sqlite3_free(sql);
	return rc;
}

/* One of a2..a5 unpacked: from a2_5's field at shift, width bits wide, or from
 * event_args when a2_5 is NULL (SQLite evaluates the subquery only then). */
static void unpack_arg(sqlite3_str *q, int i, int shift, int bits)
{
	sqlite3_str_appendf(q,
			    ", CASE WHEN e.a2_5 IS NULL THEN (SELECT a%d FROM event_args WHERE id = e.id)"
			    " ELSE (e.a2_5 >> %d) & %lld END AS a%d",
			    i, shift, (long long)((UINT64_C(1) << bits) - 1), i);
}

/* The events view: event_rows unpacked as store_impl.h lays them out. */
static int create_events_view(sqlite3 *db)
{
	sqlite3_str *q = sqlite3_str_new(db);
	sqlite3_str_appendf(q,
			    "CREATE VIEW events AS SELECT r.session AS session,"
			    " r.first_seq + (e.id - r.first_row) AS seq, r.ts_base + (e.ts_kind >> %d) AS ts,"
			    " (e.pid_tid >> 32) & 4294967295 AS pid, e.pid_tid & 4294967295 AS tid,"
			    " e.ts_kind & %d AS kind, e.a0 AS a0, e.a1 AS a1",
			    HS_ROW_KIND_BITS, (1 << HS_ROW_KIND_BITS) - 1);
	unpack_arg(q, 2, 0, HS_ROW_A3_SHIFT);
	unpack_arg(q, 3, HS_ROW_A3_SHIFT, HS_ROW_A4_SHIFT - HS_ROW_A3_SHIFT);
	unpack_arg(q, 4, HS_ROW_A4_SHIFT, HS_ROW_A5_SHIFT - HS_ROW_A4_SHIFT);
	unpack_arg(q, 5, HS_ROW_A5_SHIFT, 64 - HS_ROW_A5_SHIFT);
	sqlite3_str_appendall(q, " FROM event_ranges AS r CROSS JOIN event_rows AS e"
				 " ON e.id BETWEEN r.first_row AND r.last_row");
	char *sql = sqlite3_str_finish(q);
	int rc = sql != NULL ? exec(db, sql) : SQLITE_NOMEM;
	sqlite3_free(sql);
	return rc;
}

static int put_meta(sqlite3_stmt *st, const char *key, const char *text, int64_t value)
{
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (text != NULL)
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 2, value);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int create_meta(sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "INSERT INTO meta VALUES(?, ?)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = put_meta(st, "schema_version", NULL, HS_STORE_SCHEMA_VERSION);
	if (rc == SQLITE_OK)
		rc = put_meta(st, "heapscope_version", HS_STORE_HEAPSCOPE_VERSION, 0);
	if (rc == SQLITE_OK)
		rc = put_meta(st, "arch", hs_pam_arch(), 0);
	if (rc == SQLITE_OK)
		rc = put_meta(st, "heap_addr_bits", NULL, hs_pam_heap_addr_bits());
	if (rc == SQLITE_OK)
		rc = put_meta(st, "arena_base_offset", NULL, (int64_t)hs_pam_arena_base_offset());
	if (rc == SQLITE_OK)
		rc = put_meta(st, "summary_levels", NULL, hs_pam_levels());
	if (rc == SQLITE_OK)
		rc = put_meta(st, "page_size", NULL, (int64_t)hs_pam_page_size());
	if (rc == SQLITE_OK)
		rc = put_meta(st, "chunk_pages", NULL, hs_pam_chunk_pages());
	sqlite3_finalize(st);
	return rc;
}

/* The view of one kind: its arguments under their names. An argument named
 * like a column every view has (proc_start's pid) becomes arg_<name>: SQLite
 * would otherwise call it "pid:1". */
static int create_kind_view(sqlite3 *db, const hs_event_info *k)
{
	static const char *const fixed[] = { "session", "seq", "ts", "pid", "tid" };
	sqlite3_str *q = sqlite3_str_new(db);
	sqlite3_str_appendf(q, "CREATE VIEW IF NOT EXISTS \"%w\" AS SELECT session, seq, ts, pid, tid", k->name);
	for (unsigned i = 0; i < k->nargs; i++) {
		int clash = 0;
		for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++)
			clash |= strcmp(k->args[i], fixed[f]) == 0;
		sqlite3_str_appendf(q, ", a%u AS \"%s%w\"", i, clash ? "arg_" : "", k->args[i]);
	}
	sqlite3_str_appendf(q, " FROM events WHERE kind = %d", (int)k->kind);
	char *sql = sqlite3_str_finish(q);
	int rc = sql != NULL ? exec(db, sql) : SQLITE_NOMEM;
	sqlite3_free(sql);
	return rc;
}

/* kinds rows and views for every kind of this build that the file lacks. */
static int add_kinds(sqlite3 *db)
{
	unsigned n;
	const hs_event_info *all = hs_event_all(&n);
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO kinds VALUES(?, ?, ?, ?, ?)", -1, &st, NULL);
	for (unsigned i = 0; rc == SQLITE_OK && i < n; i++) {
		char args[256] = "[";
		for (unsigned a = 0; a < all[i].nargs; a++)
			snprintf(args + strlen(args), sizeof args - strlen(args), "%s\"%s\"", a ? "," : "",
				 all[i].args[a]);
		strcat(args, "]");
		sqlite3_bind_int(st, 1, (int)all[i].kind);
		sqlite3_bind_text(st, 2, all[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, all[i].level == HS_EVL_OBJECT ? "object" : "heap", -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, (int)all[i].nargs);
		sqlite3_bind_text(st, 5, args, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		rc = rc == SQLITE_DONE ? create_kind_view(db, &all[i]) : rc;
	}
	sqlite3_finalize(st);
	return rc;
}

static int create_schema(sqlite3 *db)
{
	int rc = exec(db, create_sql);
	if (rc == SQLITE_OK)
		rc = create_events_view(db);
	if (rc == SQLITE_OK)
		rc = create_samples(db);
	if (rc == SQLITE_OK)
		rc = create_meta(db);
	return rc;
}

/* A file recorded by another configuration would make its meta lie about the
 * sessions added here. */
static int check_arch(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'arch'", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_open_fail(db, rc, err, errlen);
	rc = sqlite3_step(st);
	const char *arch = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	int bad = arch == NULL || strcmp(arch, hs_pam_arch()) != 0;
	if (bad)
		open_fail(err, errlen, "the file records %s heaps; this heapscope runs %s", arch ? arch : "unknown",
			  hs_pam_arch());
	sqlite3_finalize(st);
	return bad ? -1 : 0;
}

static int set_wal(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_open_fail(db, rc, err, errlen);
	rc = sqlite3_step(st);
	int wal = rc == SQLITE_ROW && sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!wal)
		return open_fail(err, errlen, "cannot use a write-ahead log here (%s)", sqlite3_errmsg(db));
	/* In WAL mode NORMAL syncs only at checkpoints: a commit survives the
	 * recorder being killed (it is in the OS's hands), not a power cut. A
	 * checkpoint every 128 pages (8 MiB) keeps the pause it causes in an append
	 * near 25 ms; SQLite's 1000 pages of 64 KiB stalled appends for 100+ ms.
	 * The recorder's writer thread hands them to a thread of their own
	 * (checkpoint.c). */
	if (exec(db, "PRAGMA synchronous = NORMAL") != SQLITE_OK ||
	    sqlite3_wal_autocheckpoint(db, HS_STORE_WAL_PAGES) != SQLITE_OK)
		return open_fail(err, errlen, "cannot set up the writer: %s", sqlite3_errmsg(db));
	return 0;
}

/* The schema is checked and created under the write lock, so two recorders
 * starting on one new file do not both create it. */
static int open_writable(hs_store *s, int create, char *err, size_t errlen)
{
	if (connect_db(s, s->path, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), err, errlen) != 0)
		return -1;
	/* Applies only to a file that has no page yet (a no-op on any other), and
	 * only outside a transaction. 64 KiB pages measured ~15% faster ingest than
	 * 4 KiB (fewer page splits and WAL frames per row); see sink.c. */
	int rc = exec(s->db, "PRAGMA page_size = 65536");
	if (rc == SQLITE_OK)
		rc = exec(s->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return sql_open_fail(s->db, rc, err, errlen);
	int sqlrc, kind = probe(s->db, &sqlrc, err, errlen);
	if (kind == PROBE_EMPTY && !create)
		kind = open_fail(err, errlen, "not a heapscope session file");
	if (kind == PROBE_STORE && check_arch(s->db, err, errlen) != 0)
		kind = -1;
	if (kind < 0) {
		exec(s->db, "ROLLBACK");
		return -1;
	}
	rc = kind == PROBE_EMPTY ? create_schema(s->db) : SQLITE_OK;
	if (rc == SQLITE_OK)
		rc = add_kinds(s->db);
	if (rc == SQLITE_OK)
		rc = exec(s->db, "COMMIT");
	if (rc != SQLITE_OK) {
		sql_open_fail(s->db, rc, err, errlen);
		exec(s->db, "ROLLBACK");
		return -1;
	}
	if (set_wal(s->db, err, errlen) != 0)
		return -1;
	if (hs_sink_init(s) != 0)
		return open_fail(err, errlen, "%s", s->err);
	return 0;
}

int hs_store_open(const char *path, int flags, hs_store **out, char *err, size_t errlen)
{
	*out = NULL;
	int readonly = (flags & HS_STORE_READONLY) != 0;
	int create = !readonly && (flags & HS_STORE_CREATE) != 0;
	if (check_file(path, create, err, errlen) != 0)
		return -1;
	hs_store *s = calloc(1, sizeof *s);
	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		return open_fail(err, errlen, "out of memory");
	}
	s->readonly = readonly;
	if ((readonly ? open_readonly(s, err, errlen) : open_writable(s, create, err, errlen)) != 0) {
		hs_store_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

void hs_store_close(hs_store *s)
{
	if (s == NULL)
		return;
	hs_sink_free(s);
	sqlite3_close_v2(s->db);
	free(s->strings);
	free(s->path);
	free(s);
}
