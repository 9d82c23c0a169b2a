/*
 * cli/cli.h — what the heapscope command's subcommands share: the entry point
 * each one implements, and the option parsing helpers that give every bad
 * argument the same one-line error and exit status 2.
 */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stdint.h>

#include "store.h"

#define HS_VERSION "0.1.0"

/* Exit statuses: 0 success, 1 the command ran and found a problem, 2 bad usage or input. */
enum { HS_EXIT_OK = 0, HS_EXIT_FAIL = 1, HS_EXIT_USAGE = 2 };

/* Prints "heapscope: <message>" on stderr and exits with status 2. */
__attribute__((noreturn, format(printf, 1, 2))) void hs_cli_usage_error(const char *fmt, ...);

/* Parses an unsigned integer option value (decimal or 0x hex) in [min, max], or
 * exits with a message naming the option. */
uint64_t hs_cli_parse_u64(const char *option, const char *value, uint64_t min, uint64_t max);

/* A string option's value, or exit 2 with "option OPTION needs a value". */
const char *hs_cli_string(const char *option, const char *value);
/* --help or -h. */
int hs_cli_wants_help(const char *arg);
/* A word no option of command cmd took: its FILE, once; a word starting with
 * '-' (but "-" alone) is an unknown option. Exits 2 with one line otherwise. */
void hs_cli_file_arg(const char *cmd, const char *arg, const char **file);
/* After the words: the FILE, or exit 2 with "cmd: which FILE? ...". */
const char *hs_cli_need_file(const char *cmd, const char *file);

/* cli/session.c: FILE opened read-only, or exit 2 with one line; with a
 * session (-1: the file's last, written back) and its row in *info. */
hs_store *hs_cli_open_store(const char *file);
hs_store *hs_cli_open_session(const char *file, int64_t *session, hs_session_info *info);

int hs_cmd_attach(int argc, char **argv);
int hs_cmd_demo(int argc, char **argv);
int hs_cmd_diff(int argc, char **argv);
int hs_cmd_sessions(int argc, char **argv);
int hs_cmd_query(int argc, char **argv);
int hs_cmd_replay_workload(int argc, char **argv);
int hs_cmd_report(int argc, char **argv);
int hs_cmd_run(int argc, char **argv);
int hs_cmd_state(int argc, char **argv);
int hs_cmd_verify(int argc, char **argv);
int hs_cmd_view(int argc, char **argv);
int hs_cmd_workloads(int argc, char **argv);

#endif /* HS_CLI_H */
