/*
 * cli/settings.c — the heap's settings for experiments (cli/settings.h): the
 * parsers that turn a flag or an inherited variable into the canonical value
 * the workload's heap is given, the --help lines and the session's JSON.
 *
 * Canonical values are what the heap's own readers parse to the same setting
 * (core/scavenger.c, core/mheap.c): a percentage as printf's %g, a byte count
 * in decimal bytes, a choice by its name. They are also valid JSON numbers,
 * so the config records them as they were passed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "settings.h"

typedef struct setting {
	const char *flag, *env, *key;
	hs_setting_kind kind;
	double lo, hi;
	const char *choices, *def, *metavar, *help;
} setting;

#define HS_SETTING_ROW_(ID, flag, env, key, kind, lo, hi, choices, def, metavar, help) \
	{ flag, env, key, kind, lo, hi, choices, def, metavar, help },
static const setting table[HS_NSETTINGS] = { HS_SETTINGS_TABLE(HS_SETTING_ROW_) };
#undef HS_SETTING_ROW_

/* Digits with at most one point among them, starting with a digit. */
static int decimal_ok(const char *v)
{
	size_t n = strspn(v, "0123456789");
	if (n == 0)
		return 0;
	if (v[n] == '.')
		n += 1 + strspn(v + n + 1, "0123456789");
	return v[n] == '\0';
}

/* The byte count v (the heap's syntax: digits, then nothing, KiB, MiB or GiB)
 * in *out; 0 if it is not one or does not fit in 63 bits. */
static int bytes_ok(const char *v, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = { { "", 0 }, { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 } };
	size_t n = strspn(v, "0123456789");
	if (n == 0 || n > 19)
		return 0;
	errno = 0;
	uint64_t x = strtoull(v, NULL, 10);
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(v + n, units[i].suffix) == 0) {
			if (errno != 0 || x > (UINT64_C(1) << (63 - units[i].shift)))
				return 0;
			*out = x << units[i].shift;
			return 1;
		}
	}
	return 0;
}

/* The choice v names (1 and 0 stand for on and off), or NULL. */
static const char *choice_of(const setting *t, const char *v)
{
	int onoff = strcmp(t->choices, "on|off") == 0;
	if (onoff && strcmp(v, "1") == 0)
		return "on";
	if (onoff && strcmp(v, "0") == 0)
		return "off";
	size_t len = strlen(v);
	for (const char *c = t->choices; *c != '\0';) {
		size_t n = strcspn(c, "|");
		if (n == len && strncmp(c, v, n) == 0)
			return v;
		c += n + (c[n] == '|');
	}
	return NULL;
}

/* Writes setting t's canonical form of v into out; 0 if v is not a value of t. */
static int canonical(const setting *t, const char *v, char *out, size_t len)
{
	uint64_t bytes;
	const char *c;
	switch (t->kind) {
	case HS_SETTING_DECIMAL:
		if (!decimal_ok(v) || strtod(v, NULL) < t->lo || strtod(v, NULL) > t->hi)
			return 0;
		snprintf(out, len, "%g", strtod(v, NULL));
		return 1;
	case HS_SETTING_INTEGER:
		if (*v == '\0' || strspn(v, "0123456789") != strlen(v) || strlen(v) > 15 || strtod(v, NULL) < t->lo ||
		    strtod(v, NULL) > t->hi)
			return 0;
		snprintf(out, len, "%llu", strtoull(v, NULL, 10));
		return 1;
	case HS_SETTING_BYTES:
		if (!bytes_ok(v, &bytes))
			return 0;
		snprintf(out, len, "%llu", (unsigned long long)bytes);
		return 1;
	case HS_SETTING_CHOICE:
		if ((c = choice_of(t, v)) == NULL)
			return 0;
		snprintf(out, len, "%s", c);
		return 1;
	}
	return 0;
}

/* What a setting takes, for an error: "a number in [0, 100]", "on or off". */
static const char *takes(const setting *t, char *buf, size_t len)
{
	if (t->kind == HS_SETTING_CHOICE)
		snprintf(buf, len, "one of %s", t->choices);
	else if (t->kind == HS_SETTING_BYTES)
		snprintf(buf, len, "a byte count (digits, then nothing, KiB, MiB or GiB)");
	else
		snprintf(buf, len, "%s in [%g, %g]", t->kind == HS_SETTING_INTEGER ? "a whole number" : "a number", t->lo,
			 t->hi);
	return buf;
}

void hs_settings_begin(hs_settings *s)
{
	memset(s, 0, sizeof *s);
}

int hs_settings_flag(hs_settings *s, const char *cmd, const char *arg, const char *value)
{
	for (int i = 0; i < HS_NSETTINGS; i++) {
		const setting *t = &table[i];
		if (strncmp(arg, "--", 2) != 0 || strcmp(arg + 2, t->flag) != 0)
			continue;
		char what[80];
		if (value == NULL)
			hs_cli_usage_error("%s: --%s needs a value: %s", cmd, t->flag, takes(t, what, sizeof what));
		if (!canonical(t, value, s->value[i], sizeof s->value[i]))
			hs_cli_usage_error("%s: --%s '%s' is not %s", cmd, t->flag, value, takes(t, what, sizeof what));
		s->from[i] = "flag";
		return 1;
	}
	return 0;
}

void hs_settings_finish(hs_settings *s, const char *cmd)
{
	for (int i = 0; i < HS_NSETTINGS; i++) {
		const setting *t = &table[i];
		if (s->from[i] != NULL)
			continue;
		const char *v = getenv(t->env);
		if (v == NULL || *v == '\0') {
			snprintf(s->value[i], sizeof s->value[i], "%s", t->def);
			s->from[i] = "default";
			continue;
		}
		char what[80];
		if (!canonical(t, v, s->value[i], sizeof s->value[i]))
			hs_cli_usage_error("%s: %s='%s' is not %s", cmd, t->env, v, takes(t, what, sizeof what));
		s->from[i] = "environment";
	}
}

void hs_settings_usage(FILE *f)
{
	for (int i = 0; i < HS_NSETTINGS; i++) {
		const setting *t = &table[i];
		char left[64];
		snprintf(left, sizeof left, "--%s %s", t->flag, t->metavar);
		fprintf(f, "  %-25s %s\n  %-25s (%s; default %s)\n", left, t->help, "", t->env, t->def);
	}
}

int hs_settings_export(const hs_settings *s)
{
	for (int i = 0; i < HS_NSETTINGS; i++)
		if (setenv(table[i].env, s->value[i], 1) != 0)
			return -1;
	return 0;
}

size_t hs_settings_json(const hs_settings *s, char *buf, size_t len)
{
	size_t n = 0;
	for (int i = 0; i < HS_NSETTINGS; i++) {
		const char *q = table[i].kind == HS_SETTING_CHOICE ? "\"" : "";
		int k = snprintf(buf + (n < len ? n : len), n < len ? len - n : 0,
				 "%s\"%s\": {\"value\": %s%s%s, \"from\": \"%s\"}", i == 0 ? "{" : ", ", table[i].key, q,
				 s->value[i], q, s->from[i]);
		n += k > 0 ? (size_t)k : 0;
	}
	int k = snprintf(buf + (n < len ? n : len), n < len ? len - n : 0, "}");
	return n + (k > 0 ? (size_t)k : 0);
}
