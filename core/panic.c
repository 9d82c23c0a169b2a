/*
 * core/panic.c — see core/panic.h. The throw hook is the only mutable state here;
 * it is set once at start-up by a front end, before any thread could throw.
 */
#include "panic.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void (*throw_hook)(void);

static void write_all(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void hs_print(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	write_all(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void hs_set_throw_hook(void (*hook)(void))
{
	throw_hook = hook;
}

void hs_throw(const char *msg)
{
	void (*hook)(void) = throw_hook;
	throw_hook = NULL;
	if (hook != NULL)
		hook();
	hs_print("heapscope: fatal error: %s\n", msg);
	abort();
}
