/*
 * cli/settings.h — the heap's settings for experiments, as `heapscope run` and
 * `heapscope replay-workload` take them (docs/regressions.md).
 *
 * The heap reads each setting once, from an environment variable, when it
 * initializes (include/heapscope/heapscope.h). The recorder resolves every
 * setting before it starts the workload — its flag, else the variable it
 * inherited, else the default — checks it, and hands the workload all seven
 * in canonical form, so what the heap runs with is exactly what the session's
 * config records. A value that does not parse, from a flag or from the
 * environment, is a usage error (one line, exit 2): a heap that silently fell
 * back to its default would make the record lie.
 *
 * One table lists them (HS_SETTINGS_TABLE: flag, variable, JSON key, kind,
 * range or choices, default, help); parsing, --help, the child's environment
 * and the JSON are generated from it. The defaults are the heap's own (core/
 * scavenger.c, core/mheap.c); a change there must change them here.
 *
 * Threads: none; an hs_settings belongs to its caller.
 */
#ifndef HS_SETTINGS_H
#define HS_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

typedef enum hs_setting_kind {
	HS_SETTING_DECIMAL, /* a non-negative decimal number in [lo, hi] */
	HS_SETTING_INTEGER, /* digits, in [lo, hi] */
	HS_SETTING_BYTES,   /* digits with an optional KiB, MiB or GiB suffix */
	HS_SETTING_CHOICE,  /* one of choices ("on|off": 1 and 0 are accepted too) */
} hs_setting_kind;

/* X(ID, flag, variable, JSON key, kind, lo, hi, choices, default, metavar,
 *   help: at most 50 columns, for --help) */
#define HS_SETTINGS_TABLE(X)                                                                           \
	X(SCAVENGER_BUDGET, "scavenger-budget", "HEAPSCOPE_SCAVENGER_BUDGET", "scavenger_budget",        \
	  HS_SETTING_DECIMAL, 0, 100, NULL, "1", "PCT", "the scavenger's CPU budget, % of all CPUs; 0: off") \
	X(SCAVENGER_RETAIN, "scavenger-retain", "HEAPSCOPE_SCAVENGER_RETAIN", "scavenger_retain",        \
	  HS_SETTING_INTEGER, 100, 100000, NULL, "110", "PCT", "retained goal, % of the recent peak in use") \
	X(MEMORY_LIMIT, "memory-limit", "HEAPSCOPE_MEMORY_LIMIT", "memory_limit", HS_SETTING_BYTES, 0, 0, \
	  NULL, "0", "BYTES", "limit on retained memory and metadata; 0: none")                           \
	X(SWEEP_TRIGGER, "sweep-trigger", "HEAPSCOPE_SWEEP_TRIGGER", "sweep_trigger", HS_SETTING_BYTES,   \
	  0, 0, NULL, "0", "BYTES", "bytes freed per sweep cycle; 0: in-use/4, >= 4 MiB")                 \
	X(PAGE_CACHE, "page-cache", "HEAPSCOPE_PAGE_CACHE", "page_cache", HS_SETTING_CHOICE, 0, 0,       \
	  "on|off", "on", "on|off", "the page cache; off: every span under heap.lock")                    \
	X(SEARCH_ADDR, "search-addr", "HEAPSCOPE_SEARCH_ADDR", "search_addr", HS_SETTING_CHOICE, 0, 0,   \
	  "on|off", "on", "on|off", "searchAddr; off: every search from the root")                        \
	X(ARENA_HINTS, "arena-hints", "HEAPSCOPE_ARENA_HINTS", "arena_hints", HS_SETTING_CHOICE, 0, 0,   \
	  "go|kernel", "go", "go|kernel", "go: Go's hint addresses; kernel: mmap chooses")

#define HS_SETTING_ID_(ID, ...) HS_SETTING_##ID,
enum { HS_SETTINGS_TABLE(HS_SETTING_ID_) HS_NSETTINGS };
#undef HS_SETTING_ID_

/* The settings' effective values, canonical (what the heap is given), and
 * where each came from: "flag", "environment" or "default". */
typedef struct hs_settings {
	char value[HS_NSETTINGS][24];
	const char *from[HS_NSETTINGS];
} hs_settings;

/* Before the options: nothing set. */
void hs_settings_begin(hs_settings *s);
/* arg is one of the settings' flags (--NAME): sets it from value and returns
 * 1; a bad or missing value exits 2 with "CMD: --NAME ...". 0 for any other arg. */
int hs_settings_flag(hs_settings *s, const char *cmd, const char *arg, const char *value);
/* After the options: every setting without a flag from its variable or its
 * default; a bad variable exits 2 with "CMD: VARIABLE='...' ...". */
void hs_settings_finish(hs_settings *s, const char *cmd);

/* The --help lines of the flags. */
void hs_settings_usage(FILE *f);
/* Puts every setting into the environment (the workload's, after fork):
 * 0, or -1 if setenv fails. */
int hs_settings_export(const hs_settings *s);
/* {"scavenger_budget": {"value": 1, "from": "default"}, ...} into buf; the
 * length written, or len or more if it did not fit. */
size_t hs_settings_json(const hs_settings *s, char *buf, size_t len);

#endif /* HS_SETTINGS_H */
