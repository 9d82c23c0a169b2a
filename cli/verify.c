/*
 * cli/verify.c — `heapscope verify FILE [--session N]`: replays a stored session
 * into a fresh model, checks every digest, and runs the invariant checker after
 * every event (over what the event touched) and in full at every digest. The
 * first bad event is printed with its sequence number and the command exits 1;
 * a clean session exits 0. The file is opened read-only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "store.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: heapscope verify FILE [--session N]\n\n"
		   "Replays a recorded session into the model: checks every digest against the\n"
		   "heap's, runs the invariant checker after every event, and prints the first\n"
		   "bad event. Exit status 0 when the session verifies, 1 when it does not.\n"
		   "The session defaults to the file's last one.\n");
}

static void print_event(const hs_event *e)
{
	const hs_event_info *info = hs_event_lookup(e->kind);
	printf("  seq %" PRIu64 " ts %" PRIu64 " pid %u tid %u %s", e->seq, e->ts, e->pid, e->tid,
	       info != NULL ? info->name : "?");
	for (unsigned i = 0; info != NULL && i < info->nargs; i++)
		printf(" %s=%#" PRIx64, info->args[i], e->arg[i]);
	printf("\n");
}

int hs_cmd_verify(int argc, char **argv)
{
	const char *file = NULL;
	int64_t session = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return HS_EXIT_OK;
		} else if (strcmp(argv[i], "--session") == 0) {
			session = (int64_t)hs_cli_parse_u64("--session", i + 1 < argc ? argv[i + 1] : NULL, 1, INT64_MAX);
			i++;
		} else {
			hs_cli_file_arg("verify", argv[i], &file);
		}
	}
	hs_cli_need_file("verify", file);

	hs_session_info info;
	hs_store *st = hs_cli_open_session(file, &session, &info);

	hs_source *src;
	if (hs_source_open(st, session, 0, &src) != 0)
		hs_cli_usage_error("%s: %s", file, hs_store_error(st));
	hs_model *m = hs_model_new();
	if (m == NULL)
		hs_cli_usage_error("verify: out of memory");
	hs_event e;
	char msg[256];
	int r, bad = 0;
	uint64_t n = 0;
	while ((r = hs_source_next(src, &e)) == 1) {
		n++;
		if (hs_model_apply(m, &e) != 0) {
			printf("verify: session %" PRId64 ": the model diverged at %s\n", session, hs_model_error(m));
			print_event(&e);
			if (hs_model_untrusted_seq(m) != 0)
				printf("  (events were lost just before seq %" PRIu64 ": the model is not trusted from "
				       "there, so this divergence is expected)\n",
				       hs_model_untrusted_seq(m));
			bad = 1;
			break;
		}
		if (hs_model_check(m, e.kind == HS_EV_DIGEST ? NULL : &e, msg, sizeof msg) != 0) {
			printf("verify: session %" PRId64 ": invariant broken after seq %" PRIu64 ": %s\n", session, e.seq,
			       msg);
			print_event(&e);
			bad = 1;
			break;
		}
	}
	if (r < 0) {
		fprintf(stderr, "heapscope: %s: %s\n", file, hs_store_error(st));
		bad = 2;
	}
	if (!bad)
		printf("verify: session %" PRId64 ": %" PRIu64 " events, %" PRIu64 " digests equal, invariants hold%s\n",
		       session, n, hs_model_digests(m),
		       hs_model_untrusted_seq(m) != 0 ? " (though events were lost)" : "");
	hs_source_close(src);
	hs_model_free(m);
	hs_store_close(st);
	return bad == 2 ? HS_EXIT_USAGE : bad ? HS_EXIT_FAIL : HS_EXIT_OK;
}
