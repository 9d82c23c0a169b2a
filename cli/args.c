/*
 * cli/args.c — option values and usage errors for every subcommand (cli/cli.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void hs_cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("heapscope: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(HS_EXIT_USAGE);
}

uint64_t hs_cli_parse_u64(const char *option, const char *value, uint64_t min, uint64_t max)
{
	char *end;
	if (value == NULL)
		hs_cli_usage_error("option %s needs a value", option);
	errno = 0;
	unsigned long long v = strtoull(value, &end, 0);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-')
		hs_cli_usage_error("option %s: '%s' is not a number", option, value);
	if (v < min || v > max)
		hs_cli_usage_error("option %s: %llu is outside [%llu, %llu]", option, v,
				   (unsigned long long)min, (unsigned long long)max);
	return v;
}

const char *hs_cli_string(const char *option, const char *value)
{
	if (value == NULL)
		hs_cli_usage_error("option %s needs a value", option);
	return value;
}

int hs_cli_wants_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

void hs_cli_file_arg(const char *cmd, const char *arg, const char **file)
{
	if (arg[0] == '-' && arg[1] != '\0')
		hs_cli_usage_error("%s: unknown option '%s' (see 'heapscope %s --help')", cmd, arg, cmd);
	if (*file != NULL)
		hs_cli_usage_error("%s: one FILE only (see 'heapscope %s --help')", cmd, cmd);
	*file = arg;
}

const char *hs_cli_need_file(const char *cmd, const char *file)
{
	if (file == NULL)
		hs_cli_usage_error("%s: which FILE? (see 'heapscope %s --help')", cmd, cmd);
	return file;
}
