/*
 * store/store_impl.h — what the store's three files share, and nothing that
 * leaves store/: the handle's layout and the helpers that set its error text.
 * See store/schema.c for the file format.
 */
#ifndef HS_STORE_IMPL_H
#define HS_STORE_IMPL_H

#include <sqlite3.h>

#include "store.h"

struct hs_sink;

struct hs_store {
	sqlite3 *db;
	char *path;
	int readonly;
	struct hs_sink *sink; /* the writer's state; NULL when read-only */
	char *strings;	      /* hs_store_session_get's copies of the strings */
	char err[512];
};

/* schema.c */
/* Sets the error text; returns -1 so that a failure path is one statement. */
__attribute__((format(printf, 2, 3))) int hs_store_fail(hs_store *s, const char *fmt, ...);
/* ... as "what: <SQLite's message>". */
int hs_store_sql_fail(hs_store *s, const char *what);

/* sink.c */
/* Prepares the writer's statements; called once by hs_store_open for writing. */
int hs_sink_init(hs_store *s);
/* Commits what is pending and releases the writer's state. */
void hs_sink_free(hs_store *s);

#endif /* HS_STORE_IMPL_H */
