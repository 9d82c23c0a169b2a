/*
 * store/checkpoint.c — the checkpointer: a thread with a connection of its own
 * that copies a store's write-ahead log back into the database file while the
 * writer thread (store/writer.c) goes on appending. See store/schema.c for the
 * file and its WAL settings.
 *
 * Why. A commit in WAL mode appends pages to the -wal file; a checkpoint copies
 * them into the database file and, with synchronous = NORMAL, syncs the log
 * before and the database after. Left to the writer's own connection (SQLite's
 * autocheckpoint, every HS_STORE_WAL_PAGES pages), the writer thread sat in
 * those syncs: on churn at object level it used 1.5 s of CPU in a 2.4 s
 * session, and while it waited the queue and then the ring filled and the
 * workload waited too. With this thread the writer was busy nearly all the
 * session (1.4 s of CPU in 1.6 s). Here the writer only appends; this thread
 * runs a PASSIVE checkpoint after each commit, which never blocks the writer
 * or a reader.
 *
 * Rewinding the log. SQLite starts the log over from its beginning only when a
 * writer begins a transaction while every frame has been copied back (wal.c,
 * walRestartLog). The writer commits every 100 ms and begins again at once, so
 * that moment would never come and the log would grow with the session. So
 * once the log holds WAL_LIMIT frames, the commit hook (on_commit, run by the
 * writer thread after its commit, the write lock released) makes the writer
 * wait until a checkpoint begun after that commit has ended; its next
 * transaction then rewinds the log, unless a reader still holds old frames (as
 * with the autocheckpoint). That wait, about one checkpoint of one commit
 * interval, comes once per WAL_LIMIT frames.
 *
 * Locking: mu guards asked, done and stopping. The writer's connection is the
 * writer thread's; only the hook, run by it, touches this struct from there.
 * Invariant: done <= asked; a checkpoint that began after commit k has ended
 * once done >= k.
 */
#include <pthread.h>
#include <stdlib.h>

#include "store_impl.h"

/* 32 MiB of 64 KiB pages: a wait per ~1 million churn events (~0.5 s at
 * 2 M events/s), and a -wal file of that size while a session records. */
#define WAL_LIMIT 512

struct hs_ckpt {
	sqlite3 *writer;   /* the store's connection, whose hook this is */
	sqlite3 *db;	   /* the checkpointer's own */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a commit, a checkpoint ended, or stopping */
	uint64_t asked;	   /* commits the hook has seen */
	uint64_t done;	   /* of them, how many a checkpoint begun after them covers */
	int stopping;
};

static int on_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)db, (void)name;
	hs_ckpt *c = arg;
	pthread_mutex_lock(&c->mu);
	uint64_t mine = ++c->asked;
	pthread_cond_broadcast(&c->cv);
	while (frames >= WAL_LIMIT && c->done < mine)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	return SQLITE_OK;
}

/* A checkpoint that finds another under way (another recorder of the file)
 * returns BUSY; either way the commits asked for are answered. */
static void *ckpt_main(void *arg)
{
	hs_ckpt *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->done == c->asked && !c->stopping)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stopping)
			break;
		uint64_t upto = c->asked;
		pthread_mutex_unlock(&c->mu);
		sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&c->mu);
		c->done = upto;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

hs_ckpt *hs_ckpt_start(hs_store *s)
{
	hs_ckpt *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->writer = s->db;
	const char *path = sqlite3_db_filename(s->db, "main");
	if (path == NULL || sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_wal_hook(s->db, on_commit, c);
	return c;
}

void hs_ckpt_stop(hs_ckpt *c)
{
	if (c == NULL)
		return;
	sqlite3_wal_autocheckpoint(c->writer, HS_STORE_WAL_PAGES);
	pthread_mutex_lock(&c->mu);
	c->stopping = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	sqlite3_close(c->db);
	free(c);
}
