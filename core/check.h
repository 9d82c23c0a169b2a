/*
 * core/check.h — what the invariant checkers (core/pagealloc_check.c,
 * core/heapcheck.c) share: FAIL writes a one-line description of the first
 * violation into the caller's (msg, msglen) and returns -1 from the checking
 * function.
 */
#ifndef HS_CHECK_H
#define HS_CHECK_H

#include <stdio.h>

#define FAIL(...)                                           \
	do {                                                \
		if (msglen > 0)                             \
			snprintf(msg, msglen, __VA_ARGS__); \
		return -1;                                  \
	} while (0)

#endif /* HS_CHECK_H */
