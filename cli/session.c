/*
 * cli/session.c — opening a recorded file for reading, and the session a
 * reading command works on, the same way for every command: read-only, the
 * last session unless one is named, and one line with exit status 2 for a file
 * or a session that is not there (cli/cli.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

hs_store *hs_cli_open_store(const char *file)
{
	char err[512];
	hs_store *st;
	if (hs_store_open(file, HS_STORE_READONLY, &st, err, sizeof err) != 0)
		hs_cli_usage_error("%s: %s", file, err);
	return st;
}

/* Closes st, then exits 2 with "PREFIX: what", what being st's error unless given. */
__attribute__((noreturn)) static void fail(hs_store *st, const char *prefix, const char *what)
{
	char msg[512];
	snprintf(msg, sizeof msg, "%s%s%s", prefix, *prefix != '\0' ? ": " : "", what != NULL ? what : hs_store_error(st));
	hs_store_close(st);
	hs_cli_usage_error("%s", msg);
}

hs_store *hs_cli_open_session(const char *file, int64_t *session, hs_session_info *info)
{
	hs_store *st = hs_cli_open_store(file);
	if (*session < 0) {
		int r = hs_store_last_session(st, session);
		if (r != 0)
			fail(st, file, r > 0 ? "no session in the file" : NULL);
	}
	if (hs_store_session_get(st, *session, info) != 0)
		fail(st, "", NULL);
	return st;
}
