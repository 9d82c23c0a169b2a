/*
 * core/lock.h — the heap's mutex, with Go's assertLockHeld.
 *
 * A thin wrapper over pthread_mutex_t (which never allocates, so it is usable
 * inside malloc). Debug builds (HS_DEBUG >= 1) record the owning thread so that
 * functions documented "heap.lock must be held" can assert it on their first line
 * with hs_assert_lock_held; release builds compile the assertion away.
 *
 * Lock order (checked by reading, and by TSan in `make tsan`): heap.lock is the
 * only lock the page allocator knows. Later layers add theirs above it in
 * core/lockrank.h.
 */
#ifndef HS_LOCK_H
#define HS_LOCK_H

#include <pthread.h>

#include "panic.h"

#ifndef HS_DEBUG
#define HS_DEBUG 0
#endif

typedef struct hs_mutex {
	pthread_mutex_t m;
#if HS_DEBUG >= 1
	pthread_t owner; /* written with m held; meaningful only while held != 0 */
	int held;
#endif
} hs_mutex;

#if HS_DEBUG >= 1
#define HS_MUTEX_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0 }
#else
#define HS_MUTEX_INIT { PTHREAD_MUTEX_INITIALIZER }
#endif

static inline void hs_mutex_init(hs_mutex *l)
{
	pthread_mutex_init(&l->m, NULL);
#if HS_DEBUG >= 1
	l->held = 0;
#endif
}

static inline void hs_lock(hs_mutex *l)
{
	pthread_mutex_lock(&l->m);
#if HS_DEBUG >= 1
	l->owner = pthread_self();
	l->held = 1;
#endif
}

static inline void hs_unlock(hs_mutex *l)
{
#if HS_DEBUG >= 1
	l->held = 0;
#endif
	pthread_mutex_unlock(&l->m);
}

static inline void hs_assert_lock_held(hs_mutex *l)
{
#if HS_DEBUG >= 1
	if (!l->held || !pthread_equal(l->owner, pthread_self()))
		hs_throw("lock not held");
#else
	(void)l;
#endif
}

#endif /* HS_LOCK_H */
