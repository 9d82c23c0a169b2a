/*
 * store/writer.c — a thread that writes a session's events to the store, so
 * that the recorder's own thread only drains the ring and feeds the model.
 *
 * Why: SQLite's insert is the recorder's largest cost (about 60% of its time at
 * object level, measured). On a machine of two cores, with the workload
 * waiting on a full ring, the drain-and-model thread and the writer overlap;
 * in one thread they add up.
 *
 * Batches are handed over, not copied. The writer owns NBUF buffers of
 * HS_STORE_WRITER_BATCH events. The recorder takes one (hs_store_writer_buffer),
 * reads the ring straight into it, queues it (hs_store_writer_queue) and goes
 * on reading the same batch into the model while the writer appends it; the
 * writer only reads a queued buffer and gives it back to the free list once
 * hs_store_append has copied what it needs. The recorder asks for its next
 * buffer only after it is done with the last, so a buffer is never written
 * while anyone reads it. Before, each batch was copied into a malloc'd block
 * and again into the sink.
 *
 * The queue holds up to QUEUE batches or keyframes, in order; a full queue (or
 * no free buffer) makes the recorder wait, so nothing is dropped and the ring's
 * producers feel it as usual. The writer commits by the store's 100 ms rule
 * after each item, and also when the queue has been idle for 100 ms. Its
 * checkpoints, and the syncs they wait for, are a third thread's
 * (store/checkpoint.c) while it runs.
 *
 * Locking: mu guards the queue, the free list and failed; held is the
 * recorder's alone; the store is touched only by the writer thread between
 * start and stop. Invariant: nfree + len(event items) + (held != NULL) + (the
 * batch being written) = NBUF.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_impl.h"

#define QUEUE 16
/* Every queued batch, the one the recorder fills and the one being written. */
#define NBUF (QUEUE + 2)

typedef struct item {
	hs_event *ev;	/* a batch (one of bufs), or NULL for a keyframe */
	size_t n;	/* events, or the keyframe's length */
	void *blob;	/* the keyframe's bytes */
	uint64_t seq;	/* the keyframe's seq */
} item;

struct hs_store_writer {
	hs_store *store;
	int64_t session;
	hs_ckpt *ckpt; /* the store's checkpoints, taken off this thread; NULL: its own */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* something queued, a buffer or room freed, or stopping */
	item q[QUEUE];
	unsigned head, len;
	hs_event *bufs[NBUF];
	hs_event *free[NBUF];
	unsigned nfree;
	hs_event *held; /* the recorder's: taken by hs_store_writer_buffer, not yet queued */
	int stopping, failed;
	char error[256];
};

/* Queues it, waiting for room; -1 (and the keyframe freed) once writing failed. */
static int put_item(hs_store_writer *w, item it)
{
	pthread_mutex_lock(&w->mu);
	while (w->len == QUEUE && !w->failed)
		pthread_cond_wait(&w->cv, &w->mu);
	int failed = w->failed;
	if (!failed) {
		w->q[(w->head + w->len) % QUEUE] = it;
		w->len++;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	if (failed)
		free(it.blob);
	return failed ? -1 : 0;
}

static int write_item(hs_store_writer *w, const item *it)
{
	if (it->ev != NULL)
		return hs_store_append(w->store, w->session, it->ev, it->n);
	return hs_store_keyframe(w->store, w->session, it->seq, it->blob, it->n);
}

/* Idle: commits by the 100 ms rule even though nothing arrives. mu is held. */
static void wait_or_commit(hs_store_writer *w)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 100 * 1000 * 1000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0 && w->len == 0 && !w->failed) {
		pthread_mutex_unlock(&w->mu);
		hs_store_append(w->store, w->session, NULL, 0);
		pthread_mutex_lock(&w->mu);
	}
}

static void *writer_main(void *arg)
{
	hs_store_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (w->len == 0) {
			if (w->stopping)
				break;
			wait_or_commit(w);
			continue;
		}
		item it = w->q[w->head];
		pthread_mutex_unlock(&w->mu);
		int r = w->failed ? 0 : write_item(w, &it);
		free(it.blob);
		pthread_mutex_lock(&w->mu);
		if (r != 0 && !w->failed) {
			w->failed = 1;
			strncpy(w->error, hs_store_error(w->store), sizeof w->error - 1);
		}
		if (it.ev != NULL)
			w->free[w->nfree++] = it.ev;
		w->head = (w->head + 1) % QUEUE;
		w->len--;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void writer_free(hs_store_writer *w)
{
	for (unsigned i = 0; i < NBUF; i++)
		free(w->bufs[i]);
	free(w);
}

hs_store_writer *hs_store_writer_start(hs_store *s, int64_t session)
{
	hs_store_writer *w = calloc(1, sizeof *w);
	if (w == NULL)
		return NULL;
	w->store = s;
	w->session = session;
	for (unsigned i = 0; i < NBUF; i++) {
		if ((w->bufs[i] = malloc(HS_STORE_WRITER_BATCH * sizeof(hs_event))) == NULL) {
			writer_free(w);
			return NULL;
		}
		w->free[w->nfree++] = w->bufs[i];
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->ckpt = hs_ckpt_start(s);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		hs_ckpt_stop(w->ckpt);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		writer_free(w);
		return NULL;
	}
	return w;
}

hs_event *hs_store_writer_buffer(hs_store_writer *w)
{
	if (w->held != NULL)
		return w->held;
	pthread_mutex_lock(&w->mu);
	while (w->nfree == 0 && !w->failed)
		pthread_cond_wait(&w->cv, &w->mu);
	if (!w->failed)
		w->held = w->free[--w->nfree];
	pthread_mutex_unlock(&w->mu);
	return w->held;
}

int hs_store_writer_queue(hs_store_writer *w, size_t n)
{
	if (n == 0 || w->held == NULL)
		return hs_store_writer_failed(w) ? -1 : 0;
	item it = { .ev = w->held, .n = n };
	w->held = NULL;
	return put_item(w, it);
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
	hs_ckpt_stop(w->ckpt);
	int failed = w->failed;
	if (failed && err != NULL)
		snprintf(err, errlen, "%s", w->error);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	writer_free(w);
	return failed ? -1 : 0;
}
