/*
 * cli/heapscope.c — the heapscope command: dispatches to a subcommand.
 *
 * Subcommands are listed once, in the table below, with their one-line help;
 * `heapscope --help` prints the table and `heapscope CMD --help` the command's
 * own usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "heapscope/pagealloc.h"

typedef struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} command;

static const command commands[] = {
	{ "demo", hs_cmd_demo, "watch Go's page allocator (metadata-only) under a phased workload" },
	{ "sessions", hs_cmd_sessions, "list the sessions recorded in a file" },
	{ "query", hs_cmd_query, "run read-only SQL over a recorded file (text, CSV or JSON)" },
	{ "report", hs_cmd_report, "sum up a session: peaks, growth, fragmentation, where RSS goes" },
	{ "diff", hs_cmd_diff, "compare two sessions: the largest relative changes first" },
	{ "run", hs_cmd_run, "run a workload on the traced heap and record its events" },
	{ "attach", hs_cmd_attach, "record a process already running on heapscope's heap (eBPF)" },
	{ "replay-workload", hs_cmd_replay_workload, "re-run a recorded malloc/free trace on this heap, recorded" },
	{ "state", hs_cmd_state, "the heap's metadata at any point of a recorded session, as text" },
	{ "verify", hs_cmd_verify, "replay a recorded session into the model and check it" },
	{ "view", hs_cmd_view, "open a recorded session in the TUI (replay, seek, follow)" },
	{ "workloads", hs_cmd_workloads, "list the built-in workloads" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: heapscope [--version] [--help] COMMAND [ARGS...]\n\n"
		   "heapscope is Go's runtime heap rebuilt in C, with its insides made visible.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'heapscope COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return HS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return HS_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("heapscope %s (%s, heapAddrBits %u, %u summary levels)\n", HS_VERSION, hs_pam_arch(),
		       hs_pam_heap_addr_bits(), hs_pam_levels());
		return HS_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	hs_cli_usage_error("unknown command '%s' (see 'heapscope --help')", argv[1]);
}
