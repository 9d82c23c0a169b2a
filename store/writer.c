/*
 * store/writer.c — a thread that writes a session's events to the store, so
 * that the recorder's own thread only drains the ring and feeds the model.
 *
 * Why: SQLite's insert is the recorder's largest cost (about 60% of its time at
 * object level, measured). On a machine of two cores, with the workload
 * waiting on a full ring, the drain-and-model thread and the writer overlap;
 * in one thread they add up.
 *
 * The queue holds up to QUEUE batches of copied events or keyframes, in order;
 * a full queue makes append wait, so nothing is dropped and the ring's
 * producers feel it as usual. The writer commits by the store's 100 ms rule
 * after each item, and also when the queue has been idle for 100 ms.
 *
 * Locking: mu guards the queue; the store is touched only by the writer thread
 * between start and stop.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define QUEUE 16

typedef struct item {
	hs_event *ev;	/* events, or NULL for a keyframe */
	size_t n;	/* events, or the keyframe's length */
	void *blob;	/* the keyframe's bytes */
	uint64_t seq;	/* the keyframe's seq */
} item;

struct hs_store_writer {
	hs_store *store;
	int64_t session;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* something queued, room freed, or stopping */
	item q[QUEUE];
	unsigned head, len;
	int stopping, failed;
	char error[256];
};

static void put_item(hs_store_writer *w, item it)
{
	pthread_mutex_lock(&w->mu);
	while (w->len == QUEUE && !w->failed)
		pthread_cond_wait(&w->cv, &w->mu);
	if (w->failed) {
		pthread_mutex_unlock(&w->mu);
		free(it.ev);
		free(it.blob);
		return;
	}
	w->q[(w->head + w->len) % QUEUE] = it;
	w->len++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int write_item(hs_store_writer *w, const item *it)
{
	if (it->ev != NULL)
		return hs_store_append(w->store, w->session, it->ev, it->n);
	return hs_store_keyframe(w->store, w->session, it->seq, it->blob, it->n);
}

static void *writer_main(void *arg)
{
	hs_store_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (w->len == 0) {
			if (w->stopping)
				break;
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100 * 1000 * 1000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0 && w->len == 0 && !w->failed) {
				pthread_mutex_unlock(&w->mu);
				hs_store_append(w->store, w->session, NULL, 0); /* idle: commit by the 100 ms rule */
				pthread_mutex_lock(&w->mu);
			}
			continue;
		}
		item it = w->q[w->head];
		pthread_mutex_unlock(&w->mu);
		int r = w->failed ? 0 : write_item(w, &it);
		free(it.ev);
		free(it.blob);
		pthread_mutex_lock(&w->mu);
		if (r != 0 && !w->failed) {
			w->failed = 1;
			strncpy(w->error, hs_store_error(w->store), sizeof w->error - 1);
		}
		w->head = (w->head + 1) % QUEUE;
		w->len--;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

hs_store_writer *hs_store_writer_start(hs_store *s, int64_t session)
{
	hs_store_writer *w = calloc(1, sizeof *w);
	if (w == NULL)
		return NULL;
	w->store = s;
	w->session = session;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		free(w);
		return NULL;
	}
	return w;
}

int hs_store_writer_append(hs_store_writer *w, const hs_event *ev, size_t n)
{
	if (hs_store_writer_failed(w))
		return -1;
	if (n == 0)
		return 0;
	item it = { .ev = malloc(n * sizeof *ev), .n = n };
	if (it.ev == NULL)
		return -1;
	memcpy(it.ev, ev, n * sizeof *ev);
	put_item(w, it);
	return 0;
}

void hs_store_writer_keyframe(hs_store_writer *w, uint64_t seq, void *blob, size_t len)
{
	put_item(w, (item){ .blob = blob, .n = len, .seq = seq });
}

int hs_store_writer_failed(hs_store_writer *w)
{
	pthread_mutex_lock(&w->mu);
	int f = w->failed;
	pthread_mutex_unlock(&w->mu);
	return f;
}

const char *hs_store_writer_error(hs_store_writer *w)
{
	return w->error;
}

int hs_store_writer_stop(hs_store_writer *w, char *err, size_t errlen)
{
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	int failed = w->failed;
	if (failed && err != NULL)
		snprintf(err, errlen, "%s", w->error);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
	return failed ? -1 : 0;
}
