/*
 * tests/unit/test_store_api.c — the store (store/store.h) on real SQLite files in a
 * fresh temporary directory per test: the schema and its meta values, reopening
 * to append a session, every way a file can be refused (missing, not SQLite,
 * truncated, corrupt, not heapscope, a newer schema), a round trip of every
 * event kind with arguments of 2^63 and above, the per-kind views and samples
 * read back through plain SQL, keyframe lookup, the 100 ms commit seen by a
 * second reader, the seq-order rule, the writer thread's buffers, a recorder
 * killed mid-session, and a reader that must leave the file's bytes and mtime
 * as they were.
 *
 * Expected values come from the test's own events and from the event table
 * and arch functions the schema is specified against; SQL checks go through a
 * separate sqlite3 connection, not through the store.
 *
 * test_ingest_rate prints the sink's throughput (never asserted): set
 * HS_STORE_BENCH_EVENTS (default 1000000) for a longer run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapscope/pagealloc.h"
#include "store.h"

#define HIGH UINT64_C(0x8000000000000000)

typedef struct fixture {
	char dir[64];
	char path[128];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	/* A template mkdtemp fills in, under $TMPDIR as other tools would. */
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(f->dir, sizeof f->dir, "%s/hs_store_test_XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof f->dir || mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/s.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *e;
	char p[512];
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

static hs_store *open_ok(const char *path, int flags)
{
	char err[256] = "";
	hs_store *s = NULL;
	int rc = hs_store_open(path, flags, &s, err, sizeof err);
	if (rc != 0)
		fail_msg("hs_store_open(%s, %d): %s", path, flags, err);
	assert_non_null(s);
	return s;
}

/* The error text of an open that must fail. */
static const char *open_err(const char *path, int flags)
{
	static char err[256];
	hs_store *s = (hs_store *)1;
	err[0] = '\0';
	assert_int_equal(hs_store_open(path, flags, &s, err, sizeof err), -1);
	assert_null(s);
	assert_null(strchr(err, '\n'));
	return err;
}

static int64_t begin(hs_store *s, const char *command)
{
	hs_session_info info = { .command = command, .seed = HIGH | 7, .pid = 4242, .transport = "ring",
				 .level = "objects", .config = "{\"ring_slots\": 1024}" };
	if (hs_store_session_begin(s, &info) != 0)
		fail_msg("session_begin: %s", hs_store_error(s));
	assert_true(info.id > 0);
	return info.id;
}

static hs_event event(uint64_t seq, unsigned kind, uint64_t a0, uint64_t a1)
{
	hs_event e;
	memset(&e, 0, sizeof e);
	e.seq = seq;
	e.ts = 1000000000 + seq * 10;
	e.pid = 77;
	e.tid = 78;
	e.kind = (uint16_t)kind;
	e.arg[0] = a0;
	e.arg[1] = a1;
	return e;
}

static void append_ok(hs_store *s, int64_t session, const hs_event *ev, size_t n)
{
	if (hs_store_append(s, session, ev, n) != 0)
		fail_msg("append: %s", hs_store_error(s));
}

/* Every event of session from from_seq, through a source. */
static size_t read_all(hs_store *s, int64_t session, uint64_t from_seq, hs_event *out, size_t max)
{
	hs_source *src;
	if (hs_source_open(s, session, from_seq, &src) != 0)
		fail_msg("source_open: %s", hs_store_error(s));
	size_t n = 0;
	hs_event e;
	int r;
	while ((r = hs_source_next(src, &e)) == 1) {
		if (n < max)
			out[n] = e;
		n++;
	}
	if (r != 0)
		fail_msg("source_next: %s", hs_store_error(s));
	hs_source_close(src);
	return n;
}

static sqlite3 *sql_open(const char *path)
{
	sqlite3 *db;
	char uri[256];
	snprintf(uri, sizeof uri, "file:%s?mode=ro", path);
	assert_int_equal(sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL), SQLITE_OK);
	return db;
}

/* The single integer sql yields. */
static int64_t sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void sql_text(sqlite3 *db, const char *sql, char *out, size_t n)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static void sql_exec_rw(const char *path, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* A file's bytes (FNV-1a), length and mtime. */
typedef struct file_sig {
	uint64_t hash;
	off_t size;
	struct timespec mtime;
} file_sig;

static file_sig signature(const char *path)
{
	file_sig sig = { UINT64_C(0xcbf29ce484222325), 0, { 0, 0 } };
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	sig.size = st.st_size;
	sig.mtime = st.st_mtim;
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	int c;
	while ((c = getc(f)) != EOF)
		sig.hash = (sig.hash ^ (uint64_t)c) * UINT64_C(0x100000001b3);
	fclose(f);
	return sig;
}

static void assert_same_file(const char *path, file_sig before)
{
	file_sig after = signature(path);
	assert_int_equal(after.hash, before.hash);
	assert_int_equal(after.size, before.size);
	assert_int_equal(after.mtime.tv_sec, before.mtime.tv_sec);
	assert_int_equal(after.mtime.tv_nsec, before.mtime.tv_nsec);
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

/* A closed store holding one session of n events (malloc/free pairs). */
static void make_store(const char *path, size_t n)
{
	hs_store *s = open_ok(path, HS_STORE_CREATE);
	int64_t id = begin(s, "make_store");
	hs_event *ev = malloc(n * sizeof *ev);
	for (size_t i = 0; i < n; i++)
		ev[i] = event(i + 1, i % 2 ? HS_EV_FREE : HS_EV_MALLOC, 0xc000000000 + (i / 2) * 16, 16);
	append_ok(s, id, ev, n);
	free(ev);
	hs_session_info info = { .id = id, .status = HS_SESSION_COMPLETE, .nevents = n };
	assert_int_equal(hs_store_session_end(s, &info), 0);
	hs_store_close(s);
}

/* --- the schema ------------------------------------------------------------- */

static void test_schema_and_meta(void **state)
{
	fixture *f = *state;
	hs_store_close(open_ok(f->path, HS_STORE_CREATE));

	sqlite3 *db = sql_open(f->path);
	char text[128];
	assert_int_equal(sql_int(db, "SELECT value FROM meta WHERE key = 'schema_version'"), HS_STORE_SCHEMA_VERSION);
	sql_text(db, "SELECT value FROM meta WHERE key = 'heapscope_version'", text, sizeof text);
	assert_string_equal(text, HS_STORE_HEAPSCOPE_VERSION);
	sql_text(db, "SELECT value FROM meta WHERE key = 'arch'", text, sizeof text);
	assert_string_equal(text, hs_pam_arch());
	assert_int_equal(sql_int(db, "SELECT value FROM meta WHERE key = 'heap_addr_bits'"), hs_pam_heap_addr_bits());
	assert_int_equal(sql_int(db, "SELECT value FROM meta WHERE key = 'arena_base_offset'"),
			 (int64_t)hs_pam_arena_base_offset());
	assert_int_equal(sql_int(db, "SELECT value FROM meta WHERE key = 'summary_levels'"), hs_pam_levels());
	assert_int_equal(sql_int(db, "SELECT value FROM meta WHERE key = 'page_size'"), hs_pam_page_size());
	assert_int_equal(sql_int(db, "SELECT value FROM meta WHERE key = 'chunk_pages'"), hs_pam_chunk_pages());
	sql_text(db, "PRAGMA journal_mode", text, sizeof text);
	assert_string_equal(text, "wal");

	const char *tables[] = { "meta",      "sessions", "event_rows", "event_args",
				 "event_ranges", "keyframes", "samples",    "kinds" };
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		char *q = sqlite3_mprintf("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = %Q",
					  tables[i]);
		assert_int_equal(sql_int(db, q), 1);
		sqlite3_free(q);
	}
	unsigned n;
	const hs_event_info *all = hs_event_all(&n);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM kinds"), n);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'view'"), n + 1);
	for (unsigned i = 0; i < n; i++) {
		char *q = sqlite3_mprintf("SELECT count(*) FROM kinds WHERE kind = %d AND name = %Q AND nargs = %u"
					  " AND level = %Q AND json_array_length(args) = nargs",
					  (int)all[i].kind, all[i].name, all[i].nargs,
					  all[i].level == HS_EVL_OBJECT ? "object" : "heap");
		assert_int_equal(sql_int(db, q), 1);
		sqlite3_free(q);
	}
	sqlite3_close(db);
}

static int collect_ids(const hs_session_info *info, void *arg)
{
	int64_t *ids = arg;
	ids[++ids[0]] = info->id;
	ids[9 + ids[0]] = info->status;
	return 0;
}

static void test_reopen_appends_a_session(void **state)
{
	fixture *f = *state;
	make_store(f->path, 10);

	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "second");
	assert_int_equal(id, 2);
	hs_event e = event(1, HS_EV_MALLOC, 1, 2);
	append_ok(s, id, &e, 1);
	hs_store_close(s);

	s = open_ok(f->path, HS_STORE_READONLY);
	int64_t ids[20] = { 0 };
	assert_int_equal(hs_store_sessions(s, collect_ids, ids), 0);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 1);
	assert_int_equal(ids[2], 2);
	assert_int_equal(ids[10], HS_SESSION_COMPLETE);
	assert_int_equal(ids[11], HS_SESSION_RUNNING); /* its recorder, this process, is alive */

	hs_session_info info;
	assert_int_equal(hs_store_session_get(s, 2, &info), 0);
	assert_string_equal(info.command, "second");
	assert_string_equal(info.transport, "ring");
	assert_string_equal(info.level, "objects");
	assert_string_equal(info.config, "{\"ring_slots\": 1024}");
	assert_int_equal(info.seed, HIGH | 7);
	assert_int_equal(info.pid, 4242);
	assert_int_equal(info.recorder_pid, getpid());
	assert_int_equal(info.nevents, 1); /* not ended: what is stored */
	assert_true(info.start_ns > 0);
	assert_int_equal(info.end_ns, 0);
	assert_int_equal(hs_store_session_get(s, 1, &info), 0);
	assert_int_equal(info.nevents, 10);
	assert_true(info.end_ns >= info.start_ns);

	assert_int_equal(hs_store_session_get(s, 9, &info), -1);
	char want[256];
	snprintf(want, sizeof want, "no session 9 in %s", f->path);
	assert_string_equal(hs_store_error(s), want);
	hs_source *src;
	assert_int_equal(hs_source_open(s, 9, 0, &src), -1);
	assert_string_equal(hs_store_error(s), want);
	hs_store_close(s);
}

/* --- files that are refused --------------------------------------------------- */

static void test_newer_schema_refused(void **state)
{
	fixture *f = *state;
	make_store(f->path, 10);
	sql_exec_rw(f->path, "UPDATE meta SET value = 3 WHERE key = 'schema_version'");
	file_sig before = signature(f->path);
	assert_string_equal(open_err(f->path, HS_STORE_READONLY), "schema version 3 is newer than this heapscope's 2");
	assert_string_equal(open_err(f->path, HS_STORE_CREATE), "schema version 3 is newer than this heapscope's 2");
	assert_same_file(f->path, before);
}

/* Version 1 stored events unpacked: refused, with what to do about it. */
static void test_older_schema_refused(void **state)
{
	fixture *f = *state;
	make_store(f->path, 10);
	sql_exec_rw(f->path, "UPDATE meta SET value = 1 WHERE key = 'schema_version'");
	file_sig before = signature(f->path);
	const char *want = "schema version 1 is older than this heapscope's 2, which reads only its own; record "
			   "the session again";
	assert_string_equal(open_err(f->path, HS_STORE_READONLY), want);
	assert_string_equal(open_err(f->path, HS_STORE_CREATE), want);
	assert_same_file(f->path, before);
}

static void test_other_arch_not_appended(void **state)
{
	fixture *f = *state;
	make_store(f->path, 10);
	sql_exec_rw(f->path, "UPDATE meta SET value = 'plan9/mips' WHERE key = 'arch'");
	char want[128];
	snprintf(want, sizeof want, "the file records plan9/mips heaps; this heapscope runs %s", hs_pam_arch());
	assert_string_equal(open_err(f->path, HS_STORE_CREATE), want);
	hs_store_close(open_ok(f->path, HS_STORE_READONLY)); /* reading is fine */
}

static void test_not_sqlite_refused(void **state)
{
	fixture *f = *state;
	unsigned char junk[8192];
	uint64_t x = 0x9e3779b97f4a7c15;
	for (size_t i = 0; i < sizeof junk; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		junk[i] = (unsigned char)x;
	}
	write_file(f->path, junk, sizeof junk);
	file_sig before = signature(f->path);
	assert_string_equal(open_err(f->path, HS_STORE_READONLY), "not an SQLite file");
	assert_string_equal(open_err(f->path, HS_STORE_CREATE), "not an SQLite file");
	assert_same_file(f->path, before);
	write_file(f->path, "SQLite", 6);
	assert_string_equal(open_err(f->path, HS_STORE_READONLY), "not an SQLite file");
}

static void test_not_heapscope_refused(void **state)
{
	fixture *f = *state;
	sql_exec_rw(f->path, "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
	file_sig before = signature(f->path);
	assert_string_equal(open_err(f->path, HS_STORE_READONLY), "not a heapscope session file");
	assert_string_equal(open_err(f->path, HS_STORE_CREATE), "not a heapscope session file");
	assert_string_equal(open_err(f->path, 0), "not a heapscope session file");
	assert_same_file(f->path, before);

	write_file(f->path, "", 0);
	assert_string_equal(open_err(f->path, HS_STORE_READONLY), "not a heapscope session file");
	assert_string_equal(open_err(f->path, 0), "not a heapscope session file");
}

static void test_missing_file_refused(void **state)
{
	fixture *f = *state;
	assert_string_equal(open_err(f->path, HS_STORE_READONLY), "cannot open: No such file or directory");
	assert_string_equal(open_err(f->path, 0), "cannot open: No such file or directory");
	assert_string_equal(open_err(f->dir, HS_STORE_READONLY), "cannot open: Is a directory");
	assert_string_equal(open_err(f->dir, HS_STORE_CREATE), "cannot open: Is a directory");
}

static void copy_prefix(const char *from, const char *to, off_t n)
{
	FILE *in = fopen(from, "rb");
	assert_non_null(in);
	char *buf = malloc((size_t)n);
	assert_int_equal(fread(buf, 1, (size_t)n, in), (size_t)n);
	fclose(in);
	write_file(to, buf, (size_t)n);
	free(buf);
}

static void test_truncated_and_corrupt_files(void **state)
{
	fixture *f = *state;
	make_store(f->path, 20000);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(st.st_size > 16 * 4096);

	char cut[160];
	snprintf(cut, sizeof cut, "%s/cut.db", f->dir);
	copy_prefix(f->path, cut, st.st_size / 2);
	const char *err = open_err(cut, HS_STORE_READONLY);
	assert_true(strncmp(err, "the file is truncated (", 23) == 0);
	assert_true(strncmp(open_err(cut, 0), "the file is truncated (", 23) == 0);

	/* Garbage over the middle of the event rows, header intact: either the open
	 * or the read must fail cleanly. */
	char bad[160];
	snprintf(bad, sizeof bad, "%s/bad.db", f->dir);
	copy_prefix(f->path, bad, st.st_size);
	int fd = open(bad, O_WRONLY);
	assert_true(fd >= 0);
	char junk[4096];
	memset(junk, 0xa5, sizeof junk);
	for (off_t off = st.st_size / 4; off < st.st_size * 3 / 4; off += (off_t)sizeof junk)
		assert_int_equal(pwrite(fd, junk, sizeof junk, off), (ssize_t)sizeof junk);
	close(fd);
	char msg[256];
	hs_store *s;
	if (hs_store_open(bad, HS_STORE_READONLY, &s, msg, sizeof msg) != 0) {
		assert_true(strlen(msg) > 0);
		return;
	}
	hs_source *src;
	int r = hs_source_open(s, 1, 0, &src);
	if (r == 0) {
		hs_event e;
		while ((r = hs_source_next(src, &e)) == 1)
			;
		hs_source_close(src);
	}
	assert_int_equal(r, -1);
	assert_true(strlen(hs_store_error(s)) > 0);
	hs_store_close(s);
}

/* --- events ------------------------------------------------------------------- */

/* One event per kind, every field distinct, arguments on both sides of 2^63. */
static size_t every_kind(hs_event *ev)
{
	unsigned n;
	const hs_event_info *all = hs_event_all(&n);
	for (unsigned i = 0; i < n; i++) {
		hs_event *e = &ev[i];
		memset(e, 0, sizeof *e);
		e->seq = 5 + 3 * i;
		e->ts = HIGH - 1 - i;
		e->pid = 1000 + i;
		e->tid = UINT32_MAX - i;
		e->kind = (uint16_t)all[i].kind;
		for (unsigned a = 0; a < all[i].nargs; a++)
			e->arg[a] = (a % 2 ? HIGH : 0) + 0xc000000000 + 0x100 * i + a;
	}
	return n;
}

static void test_round_trip_every_kind(void **state)
{
	fixture *f = *state;
	hs_event ev[HS_EV_KIND_LIMIT], back[HS_EV_KIND_LIMIT];
	size_t n = every_kind(ev);
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "kinds");
	append_ok(s, id, ev, n);
	assert_int_equal(hs_store_commit(s), 0);
	assert_int_equal(read_all(s, id, 0, back, n), n);
	hs_store_close(s);

	s = open_ok(f->path, HS_STORE_READONLY);
	memset(back, 0xee, sizeof back);
	assert_int_equal(read_all(s, id, 0, back, n), n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(back[i].seq, ev[i].seq);
		assert_int_equal(back[i].ts, ev[i].ts);
		assert_int_equal(back[i].pid, ev[i].pid);
		assert_int_equal(back[i].tid, ev[i].tid);
		assert_int_equal(back[i].kind, ev[i].kind);
		assert_int_equal(back[i].flags, 0);
		assert_int_equal(back[i].reserved, 0);
		for (int a = 0; a < HS_EVENT_MAX_ARGS; a++)
			assert_int_equal(back[i].arg[a], ev[i].arg[a]);
	}
	/* From a seq between two events: the later one first. */
	assert_int_equal(read_all(s, id, ev[3].seq - 1, back, n), n - 3);
	assert_int_equal(back[0].seq, ev[3].seq);
	assert_int_equal(read_all(s, id, ev[n - 1].seq + 1, back, n), 0);
	assert_int_equal(read_all(s, id, UINT64_MAX, back, n), 0);
	hs_store_close(s);
}

static void test_kind_views(void **state)
{
	fixture *f = *state;
	hs_event ev[HS_EV_KIND_LIMIT];
	size_t n = every_kind(ev);
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "views");
	append_ok(s, id, ev, n);
	hs_store_close(s);

	sqlite3 *db = sql_open(f->path);
	unsigned nk;
	const hs_event_info *all = hs_event_all(&nk);
	const char *fixed[] = { "session", "seq", "ts", "pid", "tid" };
	for (unsigned i = 0; i < nk; i++) {
		char *q = sqlite3_mprintf("SELECT * FROM \"%w\"", all[i].name);
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
		sqlite3_free(q);
		assert_int_equal(sqlite3_column_count(st), 5 + (int)all[i].nargs);
		for (int c = 0; c < 5; c++)
			assert_string_equal(sqlite3_column_name(st, c), fixed[c]);
		for (unsigned a = 0; a < all[i].nargs; a++) {
			char want[64];
			int clash = 0;
			for (int c = 0; c < 5; c++)
				clash |= strcmp(all[i].args[a], fixed[c]) == 0;
			snprintf(want, sizeof want, "%s%s", clash ? "arg_" : "", all[i].args[a]);
			assert_string_equal(sqlite3_column_name(st, 5 + (int)a), want);
		}
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int64(st, 0), id);
		assert_int_equal(sqlite3_column_int64(st, 1), (int64_t)ev[i].seq);
		assert_int_equal(sqlite3_column_int64(st, 2), (int64_t)ev[i].ts);
		assert_int_equal(sqlite3_column_int64(st, 3), ev[i].pid);
		assert_int_equal(sqlite3_column_int64(st, 4), ev[i].tid);
		for (unsigned a = 0; a < all[i].nargs; a++)
			assert_int_equal(sqlite3_column_int64(st, 5 + (int)a), (int64_t)ev[i].arg[a]);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
	}
	assert_int_equal(sql_int(db, "SELECT count(*) FROM events"), n);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM events WHERE a1 < 0"), /* bit 63 set */
			 sql_int(db, "SELECT count(*) FROM kinds WHERE nargs >= 2"));
	sqlite3_close(db);
}

/*
 * Every field at the edges of its packed place (store_impl.h): a2..a5 just
 * inside and just outside their fields, pid and tid at 0 and 2^32-1, a kind
 * no table names, and ts jumps that must start a new range (2^47 from the
 * base, across int64's wrap) beside ones that must not, with a seq gap. The
 * source and the events view both give every value back.
 */
static void test_packing_edges(void **state)
{
	fixture *f = *state;
	const uint64_t far = UINT64_C(1) << 47;
	struct {
		uint64_t seq, ts;
		uint64_t a2, a3, a4, a5;
	} t[] = {
		{ 1, 1000, UINT32_MAX, UINT16_MAX, 255, 255 },	/* range 1 */
		{ 2, 1000 + far - 1, 0, 0, 0, 0 },
		{ 3, 1000 - (far - 1), UINT64_C(1) << 32, 0, 0, 0 }, /* wide: seqs 3 to 8 */
		{ 4, 1000 + far, 0, 1 << 16, 0, 0 },		      /* range 2: too far */
		{ 6, 5, 0, 0, 256, 0 },				      /* range 3: seq gap */
		{ 7, HIGH + 10, 0, 0, 0, 256 },			      /* range 4 */
		{ 8, HIGH - 10, HIGH, HIGH, HIGH, HIGH },	      /* range 5: int64 overflow */
		{ 9, UINT64_MAX, 7, 0, 0, 0 },			      /* range 6 */
		{ 10, 0, 0, 0, 0, 0 },
	};
	enum { N = sizeof t / sizeof t[0] };
	hs_event ev[N], back[N];
	for (size_t i = 0; i < N; i++) {
		ev[i] = event(t[i].seq, i == 4 ? UINT16_MAX : HS_EV_SPAN_ALLOC, HIGH + i, UINT64_MAX - i);
		ev[i].ts = t[i].ts;
		ev[i].pid = i % 2 ? UINT32_MAX : 0;
		ev[i].tid = i % 2 ? 0 : UINT32_MAX;
		ev[i].arg[2] = t[i].a2, ev[i].arg[3] = t[i].a3, ev[i].arg[4] = t[i].a4, ev[i].arg[5] = t[i].a5;
	}
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "edges");
	append_ok(s, id, ev, N);
	hs_store_close(s);

	s = open_ok(f->path, HS_STORE_READONLY);
	assert_int_equal(read_all(s, id, 0, back, N), N);
	assert_memory_equal(back, ev, sizeof ev);
	assert_int_equal(read_all(s, id, 7, back, N), N - 5);
	assert_memory_equal(back, &ev[5], (N - 5) * sizeof ev[0]);
	hs_store_close(s);

	sqlite3 *db = sql_open(f->path);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM event_ranges"), 6);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM event_args"), 5);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT seq, ts, pid, tid, kind, a0, a1, a2, a3, a4, a5 FROM events"
					    " ORDER BY seq",
					    -1, &st, NULL),
			 SQLITE_OK);
	size_t rows = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_true(rows < N);
		const hs_event *e = &ev[rows++];
		int64_t want[] = { (int64_t)e->seq,    (int64_t)e->ts,	   e->pid,	      e->tid,
				   e->kind,	       (int64_t)e->arg[0], (int64_t)e->arg[1], (int64_t)e->arg[2],
				   (int64_t)e->arg[3], (int64_t)e->arg[4], (int64_t)e->arg[5] };
		for (int c = 0; c < (int)(sizeof want / sizeof want[0]); c++)
			if (sqlite3_column_type(st, c) != SQLITE_INTEGER || sqlite3_column_int64(st, c) != want[c])
				fail_msg("seq %llu, column %d", (unsigned long long)e->seq, c);
	}
	assert_int_equal(rows, N);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Batches large enough to go in without a copy, after a few pending events and
 * with seq gaps inside them: every event back in order, one range per gap. */
static void test_large_batches_with_gaps(void **state)
{
	fixture *f = *state;
	enum { N = 20000 };
	hs_event *ev = malloc(N * sizeof *ev), *back = malloc(N * sizeof *back);
	uint64_t seq = 1;
	for (size_t i = 0; i < N; i++) {
		seq += i == 3010 || i == 9000 || i == 9001 ? 5 : 1;
		ev[i] = event(seq, i % 2 ? HS_EV_FREE : HS_EV_MALLOC, 0xc000000000 + i * 16, i);
	}
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "gaps");
	append_ok(s, id, ev, 10);
	append_ok(s, id, ev + 10, 5000);
	append_ok(s, id, ev + 5010, 8192);
	append_ok(s, id, ev + 13202, N - 13202);
	hs_store_close(s);

	s = open_ok(f->path, HS_STORE_READONLY);
	assert_int_equal(read_all(s, id, 0, back, N), N);
	assert_memory_equal(back, ev, N * sizeof *ev);
	assert_int_equal(read_all(s, id, ev[9000].seq - 1, back, N), N - 9000);
	assert_int_equal(back[0].seq, ev[9000].seq);
	hs_store_close(s);
	sqlite3 *db = sql_open(f->path);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM event_ranges"), 4);
	sqlite3_close(db);
	free(ev);
	free(back);
}

static void test_samples_from_stats(void **state)
{
	fixture *f = *state;
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "samples");
	hs_event ev[4] = { event(1, HS_EV_MALLOC, 1, 2), event(2, HS_EV_STATS, 0, 0), event(3, HS_EV_FREE, 1, 0),
			   event(4, HS_EV_STATS, 0, 0) };
	for (int a = 0; a < 6; a++) {
		ev[1].arg[a] = 100 + (uint64_t)a;
		ev[3].arg[a] = 200 + (uint64_t)a;
	}
	ev[3].arg[5] = HIGH + 5;
	append_ok(s, id, ev, 4);
	hs_store_close(s);

	sqlite3 *db = sql_open(f->path);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM samples"), 2);
	/* The columns are the STATS event's arguments, by name. */
	const hs_event_info *stats = hs_event_lookup(HS_EV_STATS);
	assert_int_equal(stats->nargs, 6);
	char *q = sqlite3_mprintf("SELECT session, seq, ts, pid, \"%w\", \"%w\", \"%w\", \"%w\", \"%w\", \"%w\""
				  " FROM samples ORDER BY seq",
				  stats->args[0], stats->args[1], stats->args[2], stats->args[3], stats->args[4],
				  stats->args[5]);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	sqlite3_free(q);
	assert_string_equal(stats->args[0], "in_use"); /* the first five as specified */
	assert_string_equal(stats->args[4], "rss");
	for (int r = 0; r < 2; r++) {
		const hs_event *e = &ev[1 + 2 * r];
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int64(st, 0), id);
		assert_int_equal(sqlite3_column_int64(st, 1), (int64_t)e->seq);
		assert_int_equal(sqlite3_column_int64(st, 2), (int64_t)e->ts);
		assert_int_equal(sqlite3_column_int64(st, 3), e->pid);
		for (int a = 0; a < 6; a++)
			assert_int_equal(sqlite3_column_int64(st, 4 + a), (int64_t)e->arg[a]);
	}
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_keyframe_at(void **state)
{
	fixture *f = *state;
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t a = begin(s, "a"), b = begin(s, "b");
	const char *states[] = { "state@100", "state@200", "state@300" };
	for (int i = 0; i < 3; i++)
		assert_int_equal(hs_store_keyframe(s, a, 100 * (uint64_t)(i + 1), states[i], strlen(states[i])), 0);
	assert_int_equal(hs_store_keyframe(s, b, 150, "b@150", 5), 0);
	assert_int_equal(hs_store_keyframe(s, b, 160, "stale", 5), 0);
	/* A second keyframe at one seq replaces the first (the model's state
	 * after an event is one state); it must not fail the transaction. */
	assert_int_equal(hs_store_keyframe(s, b, 160, NULL, 0), 0);
	hs_store_close(s);

	s = open_ok(f->path, HS_STORE_READONLY);
	static const struct {
		int64_t session;
		uint64_t seq;
		int rc;
		uint64_t kf;
		const char *state;
	} cases[] = {
		{ 1, 99, 1, 0, NULL },		{ 1, 100, 0, 100, "state@100" }, { 1, 250, 0, 200, "state@200" },
		{ 1, 300, 0, 300, "state@300" }, { 1, UINT64_MAX, 0, 300, "state@300" },
		{ 2, 149, 1, 0, NULL },		{ 2, 155, 0, 150, "b@150" },	  { 2, 1000, 0, 160, "" },
		{ 3, 1000, 1, 0, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t kf = 0;
		void *blob = NULL;
		size_t len = 0;
		assert_int_equal(hs_store_keyframe_at(s, cases[i].session, cases[i].seq, &kf, &blob, &len), cases[i].rc);
		if (cases[i].rc != 0)
			continue;
		assert_int_equal(kf, cases[i].kf);
		assert_int_equal(len, strlen(cases[i].state));
		assert_memory_equal(blob, cases[i].state, len);
		free(blob);
	}
	hs_store_close(s);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_commit_after_100ms_is_visible(void **state)
{
	fixture *f = *state;
	hs_store *w = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(w, "live"); /* begin commits: the 100 ms start now */
	uint64_t t0 = mono_ms();
	hs_event ev[100];
	for (int i = 0; i < 100; i++)
		ev[i] = event(1 + (uint64_t)i, HS_EV_MALLOC, (uint64_t)i, 16);
	append_ok(w, id, ev, 100);

	hs_store *r = open_ok(f->path, HS_STORE_READONLY);
	size_t seen = read_all(r, id, 0, NULL, 0);
	if (mono_ms() - t0 < 50)
		assert_int_equal(seen, 0); /* buffered, not yet committed */

	struct timespec pause = { 0, 120 * 1000000 };
	nanosleep(&pause, NULL);
	hs_event more = event(101, HS_EV_FREE, 0, 0);
	append_ok(w, id, &more, 1); /* 120 ms after the last commit: this commits */
	assert_int_equal(read_all(r, id, 0, NULL, 0), 101);
	hs_session_info info;
	assert_int_equal(hs_store_session_get(r, id, &info), 0);
	assert_int_equal(info.status, HS_SESSION_RUNNING);
	assert_int_equal(info.nevents, 101);
	hs_store_close(r);
	hs_store_close(w);
}

/* A source read to its end, still open, holds no snapshot (the TUI follows a
 * live session so): the writer's later commits are seen. Its last event is a
 * stats event, whose arguments are read from event_args. */
static void test_finished_source_sees_later_commits(void **state)
{
	fixture *f = *state;
	hs_store *w = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(w, "follow");
	hs_event ev[2] = { event(1, HS_EV_MALLOC, 1, 16), event(2, HS_EV_STATS, HIGH, HIGH) };
	ev[1].arg[2] = HIGH;
	append_ok(w, id, ev, 2);
	assert_int_equal(hs_store_commit(w), 0);

	hs_store *r = open_ok(f->path, HS_STORE_READONLY);
	hs_source *src;
	hs_event e;
	assert_int_equal(hs_source_open(r, id, 0, &src), 0);
	assert_int_equal(hs_source_next(src, &e), 1);
	assert_int_equal(hs_source_next(src, &e), 1);
	assert_int_equal(e.arg[2], HIGH);
	assert_int_equal(hs_source_next(src, &e), 0);

	hs_session_info info = { .id = id, .status = HS_SESSION_COMPLETE, .nevents = 2 };
	assert_int_equal(hs_store_session_end(w, &info), 0);
	assert_int_equal(hs_store_session_get(r, id, &info), 0);
	assert_int_equal(info.status, HS_SESSION_COMPLETE);
	hs_source_close(src);
	hs_store_close(r);
	hs_store_close(w);
}

static void test_seq_order_enforced(void **state)
{
	fixture *f = *state;
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "order");
	hs_event e5 = event(5, HS_EV_MALLOC, 1, 1);
	append_ok(s, id, &e5, 1);
	assert_int_equal(hs_store_append(s, id, &e5, 1), -1);
	assert_non_null(strstr(hs_store_error(s), "event seq 5 comes after seq 5"));
	hs_event e3 = event(3, HS_EV_MALLOC, 1, 1);
	assert_int_equal(hs_store_append(s, id, &e3, 1), -1);
	/* A refused call keeps none of its events. */
	hs_event bad[3] = { event(6, HS_EV_MALLOC, 1, 1), event(7, HS_EV_MALLOC, 1, 1), event(6, HS_EV_FREE, 1, 1) };
	assert_int_equal(hs_store_append(s, id, bad, 3), -1);
	hs_event high = event(HIGH, HS_EV_FREE, 0, 0);
	assert_int_equal(hs_store_append(s, id, &high, 1), -1);
	assert_non_null(strstr(hs_store_error(s), "beyond the store's range"));
	assert_int_equal(hs_store_keyframe(s, id, HIGH, "x", 1), -1);
	append_ok(s, id, bad, 2);
	assert_int_equal(hs_store_append(s, 99, bad, 1), -1);
	char want[256];
	snprintf(want, sizeof want, "no session 99 in %s", f->path);
	assert_string_equal(hs_store_error(s), want);
	assert_int_equal(hs_store_commit(s), 0);
	hs_event back[8];
	assert_int_equal(read_all(s, id, 0, back, 8), 3);
	assert_int_equal(back[0].seq, 5);
	assert_int_equal(back[1].seq, 6);
	assert_int_equal(back[2].seq, 7);
	hs_store_close(s);
}

/* A mixed object-level stream: mallocs at rising addresses and frees of recent
 * ones, spans and sweeps now and then, a STATS sample every 100,000 events. */
static void synthetic(hs_event *e, uint64_t seq, uint64_t *rng, uint64_t *addr)
{
	*rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
	uint64_t r = *rng;
	memset(e, 0, sizeof *e);
	e->seq = seq;
	e->ts = 5000000000 + seq * 150 + r % 100;
	e->pid = 31337;
	e->tid = 31337 + (uint32_t)(r >> 60);
	unsigned pick = (unsigned)(r % 100);
	if (seq % 100000 == 0) {
		e->kind = HS_EV_STATS;
		for (int a = 0; a < 6; a++)
			e->arg[a] = *addr - 0xc000000000 + (uint64_t)a * 4096;
	} else if (pick < 45) {
		e->kind = HS_EV_MALLOC;
		e->arg[0] = *addr;
		e->arg[1] = 16 + (r >> 8) % 1024;
		e->arg[2] = (r >> 20) % 136;
		*addr += 16 + ((r >> 32) % 8) * 16;
	} else if (pick < 90) {
		e->kind = HS_EV_FREE;
		e->arg[0] = *addr - ((r >> 8) % 65536) * 16;
	} else if (pick < 95) {
		e->kind = HS_EV_SPAN_ALLOC;
		e->arg[0] = *addr & ~UINT64_C(8191);
		e->arg[1] = 1 + (r >> 8) % 4;
		e->arg[2] = (r >> 16) % 136;
		e->arg[3] = HS_EV_SPAN_IN_USE;
	} else {
		e->kind = HS_EV_SWEEP;
		e->arg[0] = *addr & ~UINT64_C(8191);
		e->arg[1] = (r >> 8) % 136;
		e->arg[2] = (r >> 16) % 100;
		e->arg[3] = (r >> 24) % 100;
	}
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/*
 * Through the writer thread, whose checkpoints another thread takes
 * (store/checkpoint.c), the -wal file must not grow with the session: the log
 * is rewound every few tens of MiB. 4 million events make a file of about
 * 120 MiB; without the rewinding the log would be as large.
 */
static void test_writer_log_stays_bounded(void **state)
{
	fixture *f = *state;
	enum { TOTAL = 4000000 };
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "long");
	hs_store_writer *w = hs_store_writer_start(s, id);
	assert_non_null(w);
	uint64_t rng = 0x9e3779b97f4a7c15, addr = 0xc000000000;
	for (uint64_t seq = 1; seq <= TOTAL;) {
		hs_event *buf = hs_store_writer_buffer(w);
		size_t n = 0;
		for (; n < HS_STORE_WRITER_BATCH && seq <= TOTAL; n++, seq++)
			synthetic(&buf[n], seq, &rng, &addr);
		assert_int_equal(hs_store_writer_queue(w, n), 0);
	}
	char wal[200];
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	off_t log = file_size(wal);
	assert_int_equal(hs_store_writer_stop(w, NULL, 0), 0);
	hs_store_close(s);
	off_t db = file_size(f->path);
	if (log * 5 > db * 3)
		fail_msg("the -wal file reached %lld bytes for a file of %lld", (long long)log, (long long)db);
}

/*
 * The writer thread: batches read into its buffers and queued, a batch queued
 * empty (kept for the next), keyframes between, more batches than it has
 * buffers; everything arrives in order once stopped.
 */
static void test_writer_thread(void **state)
{
	fixture *f = *state;
	enum { BATCHES = 40, PER = 1000 };
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "writer");
	hs_store_writer *w = hs_store_writer_start(s, id);
	assert_non_null(w);
	uint64_t seq = 1;
	for (int b = 0; b < BATCHES; b++) {
		hs_event *buf = hs_store_writer_buffer(w);
		assert_non_null(buf);
		assert_ptr_equal(hs_store_writer_buffer(w), buf); /* the same until queued */
		assert_int_equal(hs_store_writer_queue(w, 0), 0);
		assert_ptr_equal(hs_store_writer_buffer(w), buf);
		for (int i = 0; i < PER; i++, seq++)
			buf[i] = event(seq, i % 2 ? HS_EV_FREE : HS_EV_MALLOC, seq, (uint64_t)b);
		assert_int_equal(hs_store_writer_queue(w, PER), 0);
		if (b % 10 == 9) {
			uint64_t *blob = malloc(sizeof *blob);
			*blob = seq - 1;
			hs_store_writer_keyframe(w, seq - 1, blob, sizeof *blob);
		}
	}
	char err[256] = "";
	assert_int_equal(hs_store_writer_stop(w, err, sizeof err), 0);
	hs_store_close(s);

	s = open_ok(f->path, HS_STORE_READONLY);
	hs_event *back = malloc(BATCHES * PER * sizeof *back);
	assert_int_equal(read_all(s, id, 0, back, BATCHES * PER), BATCHES * PER);
	for (uint64_t i = 0; i < BATCHES * PER; i++) {
		assert_int_equal(back[i].seq, i + 1);
		assert_int_equal(back[i].arg[0], i + 1);
		assert_int_equal(back[i].arg[1], i / PER);
	}
	free(back);
	uint64_t kf;
	void *blob;
	size_t len;
	assert_int_equal(hs_store_keyframe_at(s, id, UINT64_MAX, &kf, &blob, &len), 0);
	assert_int_equal(kf, BATCHES * PER);
	assert_int_equal(len, sizeof(uint64_t));
	assert_int_equal(*(uint64_t *)blob, BATCHES * PER);
	free(blob);
	hs_store_close(s);
}

/* Two sessions written alternately through one store, with commits between:
 * each source sees its own session only, in order, across several ranges. */
static void test_interleaved_sessions(void **state)
{
	fixture *f = *state;
	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t a = begin(s, "a"), b = begin(s, "b");
	uint64_t seq_a = 0, seq_b = 1000;
	for (int round = 0; round < 6; round++) {
		static hs_event ev[5000];
		size_t n = round % 2 ? 5000 : 7; /* more than one flush of the sink, and fewer */
		for (size_t i = 0; i < n; i++) {
			seq_a++;
			ev[i] = event(seq_a, HS_EV_MALLOC, seq_a, 1);
		}
		append_ok(s, a, ev, n);
		for (size_t i = 0; i < 3; i++) {
			seq_b += 2;
			ev[i] = event(seq_b, HS_EV_FREE, seq_b, 0);
		}
		append_ok(s, b, ev, 3);
		if (round % 3 == 2)
			assert_int_equal(hs_store_commit(s), 0);
	}
	hs_store_close(s);

	s = open_ok(f->path, HS_STORE_READONLY);
	static hs_event back[20000];
	size_t n = read_all(s, a, 0, back, 20000);
	assert_int_equal(n, seq_a);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(back[i].seq, i + 1);
		assert_int_equal(back[i].arg[0], i + 1);
	}
	n = read_all(s, b, 0, back, 20000);
	assert_int_equal(n, 18);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(back[i].seq, 1002 + 2 * i);
	assert_int_equal(read_all(s, a, 5010, back, 20000), seq_a - 5009);
	assert_int_equal(back[0].seq, 5010);
	assert_int_equal(read_all(s, b, 1011, back, 20000), 13);
	assert_int_equal(back[0].seq, 1012);
	hs_store_close(s);
}

/* The child is a recorder that dies without ending its session. */
static void test_killed_recorder_is_interrupted(void **state)
{
	fixture *f = *state;
	fflush(NULL);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char err[256];
		hs_store *s;
		if (hs_store_open(f->path, HS_STORE_CREATE, &s, err, sizeof err) != 0)
			_exit(10);
		hs_session_info info = { .command = "doomed", .transport = "ring", .level = "heap" };
		if (hs_store_session_begin(s, &info) != 0)
			_exit(11);
		hs_event ev[400];
		for (int batch = 0; batch < 3; batch++) {
			for (int i = 0; i < 400; i++)
				ev[i] = event((uint64_t)(batch * 400 + i + 1), HS_EV_MALLOC, (uint64_t)i, 8);
			if (hs_store_append(s, info.id, ev, 400) != 0 || hs_store_commit(s) != 0)
				_exit(12);
		}
		ev[0] = event(2000, HS_EV_FREE, 0, 0); /* appended, never committed */
		if (hs_store_append(s, info.id, ev, 1) != 0)
			_exit(13);
		raise(SIGKILL);
		_exit(14);
	}
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	hs_store *s = open_ok(f->path, HS_STORE_READONLY);
	hs_session_info info;
	assert_int_equal(hs_store_session_get(s, 1, &info), 0);
	assert_int_equal(info.status, HS_SESSION_INTERRUPTED);
	assert_int_equal(info.recorder_pid, child);
	assert_int_equal(info.nevents, 1200);
	assert_string_equal(hs_session_status_name(info.status), "interrupted");
	static hs_event back[2000];
	assert_int_equal(read_all(s, 1, 0, back, 2000), 1200);
	for (size_t i = 0; i < 1200; i++)
		assert_int_equal(back[i].seq, i + 1);
	hs_store_close(s);

	/* The file on disk still says running: only the listing knows better. */
	sqlite3 *db = sql_open(f->path);
	char text[32];
	sql_text(db, "SELECT status FROM sessions WHERE id = 1", text, sizeof text);
	assert_string_equal(text, "running");
	sqlite3_close(db);
}

/* Two recorders create one new file at once and append to it side by side,
 * committing every four batches and pausing a millisecond (as a recorder does
 * while its model catches up), so that their transactions interleave: each
 * session must still read back whole, in order, with none of the other's rows. */
static void test_two_recorders_one_file(void **state)
{
	fixture *f = *state;
	enum { PER_CHILD = 100000, BATCH = 4096 };
	pid_t kids[2];
	fflush(NULL);
	for (int c = 0; c < 2; c++) {
		kids[c] = fork();
		assert_true(kids[c] >= 0);
		if (kids[c] != 0)
			continue;
		char err[256];
		hs_store *s;
		if (hs_store_open(f->path, HS_STORE_CREATE, &s, err, sizeof err) != 0) {
			fprintf(stderr, "child %d: %s\n", c, err);
			_exit(10);
		}
		hs_session_info info = { .command = c ? "one" : "zero" };
		if (hs_store_session_begin(s, &info) != 0)
			_exit(11);
		static hs_event ev[BATCH];
		for (uint64_t seq = 1, batch = 0; seq <= PER_CHILD; batch++) {
			size_t n = 0;
			for (; n < BATCH && seq <= PER_CHILD; n++, seq++)
				ev[n] = event(seq, HS_EV_MALLOC, (uint64_t)c, seq);
			if (hs_store_append(s, info.id, ev, n) != 0 || (batch % 4 == 3 && hs_store_commit(s) != 0)) {
				fprintf(stderr, "child %d: %s\n", c, hs_store_error(s));
				_exit(12);
			}
			struct timespec ms = { 0, 1000000 };
			nanosleep(&ms, NULL);
		}
		info.status = HS_SESSION_COMPLETE;
		info.nevents = PER_CHILD;
		if (hs_store_session_end(s, &info) != 0)
			_exit(13);
		hs_store_close(s);
		_exit(0);
	}
	for (int c = 0; c < 2; c++) {
		int status;
		assert_int_equal(waitpid(kids[c], &status, 0), kids[c]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	hs_store *s = open_ok(f->path, HS_STORE_READONLY);
	for (int64_t id = 1; id <= 2; id++) {
		hs_session_info info;
		assert_int_equal(hs_store_session_get(s, id, &info), 0);
		assert_int_equal(info.status, HS_SESSION_COMPLETE);
		uint64_t who = strcmp(info.command, "one") == 0;
		hs_source *src;
		assert_int_equal(hs_source_open(s, id, 0, &src), 0);
		hs_event e;
		uint64_t n = 0;
		while (hs_source_next(src, &e) == 1) {
			n++;
			if (e.seq != n || e.arg[0] != who || e.arg[1] != n)
				fail_msg("session %lld: event %llu is seq %llu from child %llu", (long long)id,
					 (unsigned long long)n, (unsigned long long)e.seq, (unsigned long long)e.arg[0]);
		}
		assert_string_equal(hs_store_error(s), "");
		hs_source_close(src);
		assert_int_equal(n, PER_CHILD);
	}
	hs_store_close(s);
}

/* A reader without write access to the directory: SQLite cannot make the WAL
 * index beside the file, so the store reopens it immutable (no -wal exists). */
static void test_read_in_unwritable_directory(void **state)
{
	fixture *f = *state;
	make_store(f->path, 100);
	assert_int_equal(chmod(f->path, 0444), 0);
	assert_int_equal(chmod(f->dir, getuid() == 0 ? 0755 : 0555), 0);
	fflush(NULL);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* root writes anywhere: read as nobody, in a directory root owns */
		if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(10);
		char err[256];
		hs_store *s;
		if (hs_store_open(f->path, HS_STORE_READONLY, &s, err, sizeof err) != 0) {
			fprintf(stderr, "%s\n", err);
			_exit(11);
		}
		hs_event back[128];
		hs_source *src;
		size_t n = 0;
		if (hs_source_open(s, 1, 0, &src) != 0)
			_exit(12);
		while (n < 128 && hs_source_next(src, &back[n]) == 1)
			n++;
		hs_source_close(src);
		hs_store_close(s);
		_exit(n == 100 ? 0 : 13);
	}
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(chmod(f->dir, 0700), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	char wal[200];
	struct stat st;
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	assert_int_not_equal(stat(wal, &st), 0);
}

static int count_sessions(const hs_session_info *info, void *arg)
{
	(void)info;
	++*(int *)arg;
	return 0;
}

static void test_reader_leaves_the_file_alone(void **state)
{
	fixture *f = *state;
	make_store(f->path, 5000);
	hs_store *w = open_ok(f->path, 0);
	assert_int_equal(hs_store_keyframe(w, 1, 10, "kf", 2), 0);
	hs_store_close(w);
	file_sig before = signature(f->path);
	struct timespec pause = { 0, 20 * 1000000 }; /* so that a write would move the mtime */
	nanosleep(&pause, NULL);

	hs_store *s = open_ok(f->path, HS_STORE_READONLY);
	int n = 0;
	assert_int_equal(hs_store_sessions(s, count_sessions, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(read_all(s, 1, 0, NULL, 0), 5000);
	uint64_t kf;
	void *blob;
	size_t len;
	assert_int_equal(hs_store_keyframe_at(s, 1, 100, &kf, &blob, &len), 0);
	free(blob);
	hs_event e = event(9000, HS_EV_FREE, 0, 0);
	assert_int_equal(hs_store_append(s, 1, &e, 1), -1);
	assert_non_null(strstr(hs_store_error(s), "is open read-only"));
	assert_int_equal(hs_store_keyframe(s, 1, 20, "x", 1), -1);
	assert_int_equal(hs_store_commit(s), -1);
	hs_session_info info = { .command = "x" };
	assert_int_equal(hs_store_session_begin(s, &info), -1);
	assert_int_equal(hs_store_session_end(s, &info), -1);
	/* Even raw SQL on the connection cannot write. */
	assert_int_not_equal(sqlite3_exec(hs_store_db(s), "DELETE FROM sessions", NULL, NULL, NULL), SQLITE_OK);
	hs_store_close(s);
	assert_same_file(f->path, before);
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(hs_session_status_name(HS_SESSION_RUNNING), "running");
	assert_string_equal(hs_session_status_name(HS_SESSION_COMPLETE), "complete");
	assert_string_equal(hs_session_status_name(HS_SESSION_CRASHED), "crashed");
	assert_string_equal(hs_session_status_name(HS_SESSION_INTERRUPTED), "interrupted");
}

/* --- throughput (printed, not asserted) ----------------------------------------- */

static void test_ingest_rate(void **state)
{
	fixture *f = *state;
	const char *env = getenv("HS_STORE_BENCH_EVENTS");
	uint64_t total = env != NULL ? strtoull(env, NULL, 0) : 1000000;
	enum { BATCH = 4096 }; /* what cli/run.c drains from the ring at once */
	hs_event *buf = malloc(BATCH * sizeof *buf);
	uint64_t rng = 0x2545f4914f6cdd1d, addr = 0xc000000000;

	hs_store *s = open_ok(f->path, HS_STORE_CREATE);
	int64_t id = begin(s, "ingest");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t seq = 1; seq <= total;) {
		size_t n = 0;
		for (; n < BATCH && seq <= total; n++, seq++)
			synthetic(&buf[n], seq, &rng, &addr);
		append_ok(s, id, buf, n);
	}
	hs_session_info info = { .id = id, .status = HS_SESSION_COMPLETE, .nevents = total };
	assert_int_equal(hs_store_session_end(s, &info), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	char wal[200];
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	off_t live_bytes = file_size(f->path) + file_size(wal);
	hs_store_close(s);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	off_t bytes = file_size(f->path);
	printf("ingest: %llu events in %.3f s = %.2f M events/s; file %.1f bytes/event"
	       " (%.1f with the WAL before close)\n",
	       (unsigned long long)total, secs, (double)total / secs / 1e6, (double)bytes / (double)total,
	       (double)live_bytes / (double)total);
	free(buf);

	s = open_ok(f->path, HS_STORE_READONLY);
	int n = 0;
	assert_int_equal(hs_store_sessions(s, count_sessions, &n), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(read_all(s, id, 0, NULL, 0), total);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("source: %llu events in %.3f s = %.2f M events/s\n", (unsigned long long)total, secs,
	       (double)total / secs / 1e6);
	hs_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_and_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_appends_a_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_arch_not_appended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_sqlite_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_heapscope_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_corrupt_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_every_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kind_views, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packing_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_batches_with_gaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_samples_from_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyframe_at, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_after_100ms_is_visible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finished_source_sees_later_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_order_enforced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_log_stays_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_recorder_is_interrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_recorders_one_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_in_unwritable_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_leaves_the_file_alone, setup, teardown),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test_setup_teardown(test_ingest_rate, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
