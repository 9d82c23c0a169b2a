/*
 * cli/cmd_store.c — the store from the command line: `heapscope sessions FILE`
 * lists the recorded sessions, `heapscope query FILE SQL` runs read-only SQL
 * over the tables and views store/schema.c describes.
 *
 * Both open the file HS_STORE_READONLY, so neither can change it, even while a
 * recorder appends to it. A file that cannot be read (missing, not SQLite,
 * not heapscope, a newer schema) is one line "heapscope: FILE: reason" and
 * exit status 2, like every other bad input (cli/cli.h).
 *
 * query checks every statement before running any: one that does not prepare,
 * or that would write (sqlite3_stmt_readonly), stops the command with nothing
 * printed. Rows stream: the text table sizes its columns from the first
 * TABLE_SAMPLE rows and prints the rest with those widths (longer cells push
 * the line out rather than being cut); CSV and JSON never buffer a row. CSV
 * quotes as RFC 4180 does but ends lines with LF, not CRLF, so that `tail`,
 * `cut` and `read` see clean values.
 */
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "store.h"

/* Enough rows to size columns the way a reader expects, few enough that the
 * first line comes at once and memory stays small. */
#define TABLE_SAMPLE 1000
#define COMMAND_WIDTH 40

static void *xmalloc(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);
	if (p == NULL)
		hs_cli_usage_error("out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

/* SQLite counts ATTACH as read-only, yet it opens (even creates) another file:
 * query reads FILE and nothing else. */
static int deny_attach(void *arg, int action, const char *a, const char *b, const char *c, const char *d)
{
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	if (action == SQLITE_ATTACH || action == SQLITE_DETACH) {
		*(int *)arg = 1;
		return SQLITE_DENY;
	}
	return SQLITE_OK;
}

/* Terminal columns of a UTF-8 string, counting each code point as one. */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s != '\0'; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void print_cell(const char *text, size_t width, int right, int last)
{
	size_t w = text_width(text), pad = w < width ? width - w : 0;
	if (right)
		printf("%*s%s", (int)pad, "", text);
	else
		printf("%s%*s", text, last ? 0 : (int)pad, "");
	if (!last)
		fputs("  ", stdout);
}

/* --- sessions ---------------------------------------------------------------- */

enum { S_ID, S_STATUS, S_COMMAND, S_SEED, S_PID, S_EVENTS, S_LOST, S_DURATION, S_TRANSPORT, S_LEVEL, S_START, S_NCOLS };

static const char *const session_header[S_NCOLS] = { "ID",	 "STATUS",   "COMMAND",	  "SEED",
						     "PID",	 "EVENTS",   "LOST",	  "DURATION",
						     "TRANSPORT", "LEVEL",    "START" };
static const int session_right[S_NCOLS] = { [S_ID] = 1, [S_SEED] = 1, [S_PID] = 1, [S_EVENTS] = 1,
					    [S_LOST] = 1, [S_DURATION] = 1 };

typedef struct session_rows {
	char *(*cells)[S_NCOLS];
	size_t n, cap;
} session_rows;

static void sessions_usage(FILE *f)
{
	fprintf(f, "usage: heapscope sessions FILE\n\n"
		   "Lists the sessions recorded in FILE, one per line: id, status, command, seed,\n"
		   "the workload's pid, events stored, events lost, duration, transport, level and\n"
		   "start time (local). A session whose recorder died before ending it shows as\n"
		   "interrupted. The file is opened read-only.\n");
}

static void format_duration(char *buf, size_t n, int64_t ns)
{
	double s = (double)ns / 1e9;
	if (ns < 0)
		snprintf(buf, n, "-");
	else if (s < 60)
		snprintf(buf, n, "%.1fs", s);
	else if (s < 3600)
		snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Cuts s to width columns, the last three "...". More than width code points
 * leave room for the dots where the cut falls. */
static void shorten(char *s, size_t width)
{
	if (text_width(s) <= width)
		return;
	size_t w = 0, i = 0;
	for (; s[i] != '\0'; i++) {
		if (((unsigned char)s[i] & 0xc0) == 0x80)
			continue;
		if (w == width - 3)
			break;
		w++;
	}
	strcpy(s + i, "...");
}

static int collect_session(const hs_session_info *info, void *arg)
{
	session_rows *rows = arg;
	if (rows->n == rows->cap) {
		rows->cap = rows->cap ? 2 * rows->cap : 16;
		rows->cells = realloc(rows->cells, rows->cap * sizeof *rows->cells);
		if (rows->cells == NULL)
			hs_cli_usage_error("out of memory");
	}
	char **c = rows->cells[rows->n++], buf[64];
	snprintf(buf, sizeof buf, "%" PRId64, info->id);
	c[S_ID] = xstrdup(buf);
	c[S_STATUS] = xstrdup(hs_session_status_name(info->status));
	c[S_COMMAND] = xstrdup(info->command != NULL ? info->command : "-");
	shorten(c[S_COMMAND], COMMAND_WIDTH);
	snprintf(buf, sizeof buf, "%" PRIu64, info->seed);
	c[S_SEED] = xstrdup(buf);
	snprintf(buf, sizeof buf, "%" PRId64, info->pid);
	c[S_PID] = xstrdup(buf);
	snprintf(buf, sizeof buf, "%" PRIu64, info->nevents);
	c[S_EVENTS] = xstrdup(buf);
	snprintf(buf, sizeof buf, "%" PRIu64, info->nlost);
	c[S_LOST] = xstrdup(buf);
	int64_t end = info->end_ns != 0 ? info->end_ns : info->status == HS_SESSION_RUNNING ? wall_ns() : 0;
	format_duration(buf, sizeof buf, end != 0 && info->start_ns != 0 ? end - info->start_ns : -1);
	c[S_DURATION] = xstrdup(buf);
	c[S_TRANSPORT] = xstrdup(info->transport != NULL ? info->transport : "-");
	c[S_LEVEL] = xstrdup(info->level != NULL ? info->level : "-");
	time_t t = (time_t)(info->start_ns / 1000000000);
	struct tm tm;
	if (info->start_ns == 0 || localtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(buf, sizeof buf, "-");
	c[S_START] = xstrdup(buf);
	return 0;
}

int hs_cmd_sessions(int argc, char **argv)
{
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			sessions_usage(stdout);
			return HS_EXIT_OK;
		} else {
			hs_cli_file_arg("sessions", argv[i], &file);
		}
	}
	hs_cli_need_file("sessions", file);

	hs_store *st = hs_cli_open_store(file);
	session_rows rows = { 0 };
	if (hs_store_sessions(st, collect_session, &rows) != 0)
		hs_cli_usage_error("%s: %s", file, hs_store_error(st));
	hs_store_close(st);

	size_t width[S_NCOLS];
	for (int c = 0; c < S_NCOLS; c++) {
		width[c] = text_width(session_header[c]);
		for (size_t r = 0; r < rows.n; r++)
			if (text_width(rows.cells[r][c]) > width[c])
				width[c] = text_width(rows.cells[r][c]);
	}
	for (int c = 0; c < S_NCOLS; c++)
		print_cell(session_header[c], width[c], session_right[c], c == S_NCOLS - 1);
	putchar('\n');
	for (size_t r = 0; r < rows.n; r++) {
		for (int c = 0; c < S_NCOLS; c++) {
			print_cell(rows.cells[r][c], width[c], session_right[c], c == S_NCOLS - 1);
			free(rows.cells[r][c]);
		}
		putchar('\n');
	}
	free(rows.cells);
	return HS_EXIT_OK;
}

/* --- query: the three output formats ------------------------------------------ */

typedef enum { OUT_TABLE, OUT_CSV, OUT_JSON } out_format;

static void query_usage(FILE *f)
{
	fprintf(f, "usage: heapscope query FILE SQL [--csv | --json]\n\n"
		   "Runs the statements in SQL against FILE, opened read-only; a statement that\n"
		   "would write is refused before anything runs. Output is a text table by default,\n"
		   "--csv gives RFC 4180 CSV, --json an array of objects (one per statement that\n"
		   "returns rows). Blobs print as hex.\n\n"
		   "Tables and views: sessions, events (session, seq, ts, pid, tid, kind, a0..a5),\n"
		   "one view per event kind with its arguments named (SELECT * FROM span_alloc),\n"
		   "samples, keyframes, kinds (the event table), meta. 64-bit unsigned values\n"
		   "keep their bits, so values of 2^63 and more read negative.\n\n"
		   "  --csv    comma-separated values (RFC 4180 quoting), a header line first\n"
		   "  --json   JSON: numbers as numbers, NULL as null, blobs as hex strings\n"
		   "  --help   this text\n");
}

static void put_hex(const unsigned char *p, int n)
{
	for (int i = 0; i < n; i++)
		printf("%02x", p[i]);
}

/* A cell as the text table shows it: one line, blobs short. */
static char *table_cell(sqlite3_stmt *st, int i)
{
	char buf[64];
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		return xstrdup("NULL");
	case SQLITE_INTEGER:
		snprintf(buf, sizeof buf, "%lld", (long long)sqlite3_column_int64(st, i));
		return xstrdup(buf);
	case SQLITE_BLOB: {
		const unsigned char *b = sqlite3_column_blob(st, i);
		int n = sqlite3_column_bytes(st, i);
		if (n > 16) {
			snprintf(buf, sizeof buf, "<blob, %d bytes>", n);
			return xstrdup(buf);
		}
		char *out = xmalloc(2 * (size_t)n + 4), *p = out + sprintf(out, "x'");
		for (int k = 0; k < n; k++)
			p += sprintf(p, "%02x", b[k]);
		strcpy(p, "'");
		return out;
	}
	default: { /* text, and reals as SQLite renders them */
		const char *t = (const char *)sqlite3_column_text(st, i);
		int n = sqlite3_column_bytes(st, i);
		char *out = xmalloc(2 * (size_t)n + 1), *p = out;
		for (int k = 0; k < n; k++) {
			unsigned char c = (unsigned char)t[k];
			if (c == '\n' || c == '\t' || c == '\r') {
				*p++ = '\\';
				*p++ = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
			} else {
				*p++ = c < 0x20 ? '?' : (char)c;
			}
		}
		*p = '\0';
		return out;
	}
	}
}

typedef struct text_table {
	int ncols;
	size_t *width;
	int *right; /* every sampled value is a number */
	char **sample; /* TABLE_SAMPLE rows of ncols cells */
	size_t nsample;
	int started; /* the header and the sample are out */
} text_table;

static void table_row(const text_table *t, char **cells)
{
	for (int c = 0; c < t->ncols; c++)
		print_cell(cells[c], t->width[c], t->right[c], c == t->ncols - 1);
	putchar('\n');
}

/* Sizes the columns from the header and the sample, prints both. */
static void table_start(text_table *t, sqlite3_stmt *st)
{
	t->started = 1;
	for (int c = 0; c < t->ncols; c++) {
		t->width[c] = text_width(sqlite3_column_name(st, c));
		for (size_t r = 0; r < t->nsample; r++)
			if (text_width(t->sample[r * t->ncols + c]) > t->width[c])
				t->width[c] = text_width(t->sample[r * t->ncols + c]);
	}
	for (int c = 0; c < t->ncols; c++)
		print_cell(sqlite3_column_name(st, c), t->width[c], t->right[c], c == t->ncols - 1);
	putchar('\n');
	for (int c = 0; c < t->ncols; c++) {
		for (size_t k = 0; k < t->width[c]; k++)
			putchar('-');
		if (c != t->ncols - 1)
			fputs("  ", stdout);
	}
	putchar('\n');
	for (size_t r = 0; r < t->nsample; r++) {
		table_row(t, &t->sample[r * t->ncols]);
		for (int c = 0; c < t->ncols; c++)
			free(t->sample[r * t->ncols + c]);
	}
}

static void csv_field(const char *s, size_t n)
{
	if (strcspn(s, ",\"\r\n") >= n) {
		fwrite(s, 1, n, stdout);
		return;
	}
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			putchar('"');
		putchar(s[i]);
	}
	putchar('"');
}

static void csv_cell(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		break;
	case SQLITE_INTEGER:
		printf("%lld", (long long)sqlite3_column_int64(st, i));
		break;
	case SQLITE_BLOB:
		put_hex(sqlite3_column_blob(st, i), sqlite3_column_bytes(st, i));
		break;
	default: {
		const char *t = (const char *)sqlite3_column_text(st, i);
		csv_field(t, (size_t)sqlite3_column_bytes(st, i));
	}
	}
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, UTF-16 surrogates and code points above U+10FFFF. */
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
	    (c == 0xf4 && s[1] >= 0x90))
		return 0;
	return len;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD. */
static void json_string(const unsigned char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			putchar('\\');
			putchar(c);
			i++;
		} else if (c < 0x20) {
			const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : c == '\b' ? "\\b"
					: c == '\f' ? "\\f" : NULL;
			if (esc != NULL)
				fputs(esc, stdout);
			else
				printf("\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			putchar(c);
			i++;
		} else {
			size_t len = utf8_len(s + i, n - i);
			if (len == 0) {
				fputs("\\ufffd", stdout);
				i++;
			} else {
				fwrite(s + i, 1, len, stdout);
				i += len;
			}
		}
	}
	putchar('"');
}

static void json_cell(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		fputs("null", stdout);
		break;
	case SQLITE_INTEGER:
		printf("%lld", (long long)sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		if (!isfinite(sqlite3_column_double(st, i)))
			fputs("null", stdout);
		else /* SQLite's shortest round-tripping form, which JSON accepts */
			fputs((const char *)sqlite3_column_text(st, i), stdout);
		break;
	case SQLITE_BLOB:
		putchar('"');
		put_hex(sqlite3_column_blob(st, i), sqlite3_column_bytes(st, i));
		putchar('"');
		break;
	default:
		json_string(sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
	}
}

static void query_fail(sqlite3 *db)
{
	hs_cli_usage_error("query: %s", sqlite3_errmsg(db));
}

/* Steps st to the end, printing its rows in format. */
static void run_statement(sqlite3 *db, sqlite3_stmt *st, out_format format)
{
	int ncols = sqlite3_column_count(st), rc;
	text_table t = { .ncols = ncols };
	if (format == OUT_TABLE && ncols > 0) {
		t.width = xmalloc((size_t)ncols * sizeof *t.width);
		t.right = xmalloc((size_t)ncols * sizeof *t.right);
		t.sample = xmalloc((size_t)ncols * TABLE_SAMPLE * sizeof *t.sample);
		for (int c = 0; c < ncols; c++)
			t.right[c] = 1;
	}
	if (format == OUT_CSV && ncols > 0) {
		for (int c = 0; c < ncols; c++) {
			const char *name = sqlite3_column_name(st, c);
			if (c)
				putchar(',');
			csv_field(name, strlen(name));
		}
		putchar('\n');
	}
	if (format == OUT_JSON && ncols > 0)
		putchar('[');
	uint64_t nrows = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (ncols == 0)
			continue;
		if (format == OUT_TABLE && !t.started) {
			char **cells = &t.sample[t.nsample++ * (size_t)ncols];
			for (int c = 0; c < ncols; c++) {
				int type = sqlite3_column_type(st, c);
				t.right[c] &= type == SQLITE_NULL || type == SQLITE_INTEGER || type == SQLITE_FLOAT;
				cells[c] = table_cell(st, c);
			}
			if (t.nsample == TABLE_SAMPLE)
				table_start(&t, st);
		} else if (format == OUT_TABLE) {
			/* the first sample row's slots, free again, hold this row */
			for (int c = 0; c < ncols; c++)
				t.sample[c] = table_cell(st, c);
			table_row(&t, t.sample);
			for (int c = 0; c < ncols; c++)
				free(t.sample[c]);
		} else if (format == OUT_CSV) {
			for (int c = 0; c < ncols; c++) {
				if (c)
					putchar(',');
				csv_cell(st, c);
			}
			putchar('\n');
		} else {
			fputs(nrows ? ",\n {" : "\n {", stdout);
			for (int c = 0; c < ncols; c++) {
				const char *name = sqlite3_column_name(st, c);
				if (c)
					fputs(", ", stdout);
				json_string((const unsigned char *)name, strlen(name));
				fputs(": ", stdout);
				json_cell(st, c);
			}
			putchar('}');
		}
		nrows++;
	}
	if (rc != SQLITE_DONE)
		query_fail(db);
	if (format == OUT_TABLE && ncols > 0) {
		if (!t.started)
			table_start(&t, st);
		free(t.width);
		free(t.right);
		free(t.sample);
	}
	if (format == OUT_JSON && ncols > 0)
		fputs(nrows ? "\n]\n" : "]\n", stdout);
}

/* A word that starts with '-' and has no blank is an option; SQL opening
 * with a "--" comment has a line break after it. */
static int is_option(const char *a)
{
	return a[0] == '-' && a[1] != '\0' && strpbrk(a, " \t\r\n") == NULL;
}

int hs_cmd_query(int argc, char **argv)
{
	const char *file = NULL, *sql = NULL;
	out_format format = OUT_TABLE;
	int csv = 0, json = 0, options_done = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!options_done && strcmp(a, "--") == 0) {
			options_done = 1;
		} else if (!options_done && is_option(a)) {
			if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
				query_usage(stdout);
				return HS_EXIT_OK;
			} else if (strcmp(a, "--csv") == 0) {
				csv = 1;
			} else if (strcmp(a, "--json") == 0) {
				json = 1;
			} else {
				hs_cli_usage_error("query: unknown option '%s' (see 'heapscope query --help')", a);
			}
		} else if (file == NULL) {
			file = a;
		} else if (sql == NULL) {
			sql = a;
		} else {
			hs_cli_usage_error("query: FILE and one SQL argument only (quote the SQL)");
		}
	}
	if (file == NULL || sql == NULL)
		hs_cli_usage_error("query: needs FILE and SQL (see 'heapscope query --help')");
	if (csv && json)
		hs_cli_usage_error("query: --csv and --json exclude each other");
	format = csv ? OUT_CSV : json ? OUT_JSON : OUT_TABLE;

	hs_store *store = hs_cli_open_store(file);
	sqlite3 *db = hs_store_db(store);
	int attach = 0;
	sqlite3_set_authorizer(db, deny_attach, &attach);
	sqlite3_stmt **stmts = NULL;
	size_t n = 0;
	for (const char *rest = sql; *rest != '\0';) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, rest, -1, &st, &rest) != SQLITE_OK) {
			if (attach)
				hs_cli_usage_error("query: refusing ATTACH and DETACH (only FILE is read)");
			query_fail(db);
		}
		if (st == NULL) /* only blanks or a comment */
			continue;
		if (!sqlite3_stmt_readonly(st))
			hs_cli_usage_error("query: refusing a statement that writes (the file is opened read-only)");
		stmts = realloc(stmts, (n + 1) * sizeof *stmts);
		if (stmts == NULL)
			hs_cli_usage_error("out of memory");
		stmts[n++] = st;
	}
	if (n == 0)
		hs_cli_usage_error("query: no SQL statement in '%s'", sql);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && format == OUT_TABLE && sqlite3_column_count(stmts[i]) > 0)
			putchar('\n');
		run_statement(db, stmts[i], format);
		sqlite3_finalize(stmts[i]);
	}
	free(stmts);
	hs_store_close(store);
	return HS_EXIT_OK;
}
