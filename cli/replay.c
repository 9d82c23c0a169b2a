/*
 * cli/replay.c — `heapscope replay-workload FILE --session N [--pid P]
 * [-o OUT] [heap settings] [--headless]`: re-executes the object-level trace
 * of a recorded process on this build's heap, under the settings given, and
 * records it as a new session, so that `heapscope diff` can compare a
 * baseline with a change (docs/regressions.md).
 *
 * Three steps.
 *
 * 1. Extract (here, in the heapscope process). The session's events are read
 *    in seq order; the malloc and free events of process P become operations
 *    in a memfd (the layout is in cli/replay.h): malloc puts an object of the
 *    recorded size in a slot, free frees the object in a slot, each run by the
 *    replay thread of the recorded thread and stamped with its virtual time,
 *    the record's timestamp less the process's first (never decreasing).
 *    A pid that exec'd has had a heap per program; the first is replayed (up
 *    to its proc_end, or to the next program's proc_start: exec leaves none).
 *
 *    Addresses are remapped: a recorded address names whatever object the
 *    trace last put there, and the replay's own pointer for it lives in a
 *    slot. Slots are reused as objects die, so the replay holds one pointer
 *    per live object, not one per malloc. Per-thread buffers deliver object
 *    records up to a buffer out of order across threads (docs/events.md), so
 *    an address may be seen:
 *      - freed before its malloc (the free's thread flushed first): the free
 *        waits at the address and runs right after the malloc, on the free's
 *        thread;
 *      - allocated again before the free of its last object: the address
 *        holds a queue of objects, and a free takes the oldest (in real time
 *        it came first).
 *    A free whose malloc never comes (an address the trace never allocated:
 *    objects from before a fork, records lost at exit) is skipped and
 *    counted; an object never freed stays allocated, as in the recording.
 *    A queue holds at most ADDR_QUEUE; beyond that (not seen in any real
 *    recording) the oldest object stays allocated and the oldest early free
 *    is skipped, both counted.
 *
 * 2. Record. `heapscope run --workload replay` (cli/run.c's recorder, the
 *    same as any workload's) is called in this process with the settings and
 *    HEAPSCOPE_REPLAY_FD naming the memfd; its child runs the replay workload
 *    (cli/replay_run.c) on the traced heap at level objects, so a replay can
 *    be replayed in turn. The session's command is "replay FILE:N", its seed
 *    the recording's, and its config holds the settings and the input's
 *    description.
 *
 * 3. Replay (cli/replay_run.c): one thread per recorded thread, the
 *    operations in order by a baton passed between them, background work on
 *    the heap's virtual clock (core/background.c): the same heap-level event
 *    stream every time.
 *
 * Alignment is not in the trace (the malloc event carries the size alone), so
 * an aligned allocation replays as a plain one; a realloc replays as the
 * malloc and free it recorded (one that stayed in place recorded nothing).
 *
 * Bad input (no file, no session, a session recorded without --events
 * objects, no process P, a bad setting) is one line and exit status 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"
#include "replay.h"
#include "settings.h"

#define ADDR_QUEUE 4
#define OP_BUF 4096
#define MAX_PIDS 16 /* named in the error for a --pid the session lacks */
#define TOMB UINT64_MAX /* a deleted address entry; no object lives there */

/* --- the address table ------------------------------------------------------------------ */

/* What the trace says is at a recorded address; gone once it says nothing. */
typedef struct addr_entry {
	uint64_t addr;		  /* 0: never used; TOMB: deleted */
	uint32_t live[ADDR_QUEUE]; /* slots of the objects there, oldest first */
	uint32_t early[ADDR_QUEUE]; /* tids of frees seen before their malloc, oldest first */
	uint8_t nlive, nearly;
} addr_entry;

/* Open addressing, linear probing; deleted entries become tombstones, dropped
 * when the table is rebuilt. used counts entries and tombstones, <= cap / 2. */
typedef struct addr_table {
	addr_entry *e;
	size_t cap, used, n;
} addr_table;

static size_t addr_home(uint64_t addr, size_t cap)
{
	return (size_t)((addr >> 3) * UINT64_C(0x9e3779b97f4a7c15) >> 24) & (cap - 1);
}

/* Rebuilds into a table of ncap slots, without tombstones; -1 out of memory. */
static int addr_rebuild(addr_table *t, size_t ncap)
{
	addr_entry *e = calloc(ncap, sizeof *e);
	if (e == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->e[i].addr == 0 || t->e[i].addr == TOMB)
			continue;
		size_t j = addr_home(t->e[i].addr, ncap);
		while (e[j].addr != 0)
			j = (j + 1) & (ncap - 1);
		e[j] = t->e[i];
	}
	free(t->e);
	t->e = e;
	t->cap = ncap;
	t->used = t->n;
	return 0;
}

/* The entry of addr, made if missing; NULL out of memory. */
static addr_entry *addr_get(addr_table *t, uint64_t addr)
{
	if (t->cap == 0 || (t->used + 1) * 2 > t->cap) {
		size_t ncap = t->cap < 1024 ? 1024 : t->n * 4 > t->cap ? t->cap * 2 : t->cap;
		if (addr_rebuild(t, ncap) != 0)
			return NULL;
	}
	size_t i = addr_home(addr, t->cap), tomb = SIZE_MAX;
	for (; t->e[i].addr != 0; i = (i + 1) & (t->cap - 1)) {
		if (t->e[i].addr == addr)
			return &t->e[i];
		if (t->e[i].addr == TOMB && tomb == SIZE_MAX)
			tomb = i;
	}
	if (tomb != SIZE_MAX)
		i = tomb;
	else
		t->used++;
	t->e[i] = (addr_entry){ .addr = addr };
	t->n++;
	return &t->e[i];
}

static void addr_tidy(addr_table *t, addr_entry *e)
{
	if (e->nlive == 0 && e->nearly == 0) {
		e->addr = TOMB;
		t->n--;
	}
}

static uint32_t shift_out(uint32_t *q, uint8_t *n)
{
	uint32_t first = q[0];
	memmove(q, q + 1, (size_t)(--*n) * sizeof *q);
	return first;
}

/* --- extraction ------------------------------------------------------------------------ */

typedef struct extract {
	int fd;
	hs_replay_header h;
	hs_replay_op buf[OP_BUF];
	size_t nbuf;
	addr_table addrs;
	uint32_t *tids; /* the recorded tid of each replay thread */
	uint32_t *free_slots;
	size_t nfree, cap_free, cap_tids;
	uint32_t last_tid, last_thread; /* a one-entry cache: records come in runs per thread */
	uint64_t t0, last_t, last_ts;
	int started;
	int ended;  /* the process's first heap is over: later events of its pid are another's */
	int failed; /* out of memory or a write failed */
} extract;

static void flush_ops(extract *x)
{
	size_t bytes = x->nbuf * sizeof *x->buf, done = 0;
	while (done < bytes) {
		ssize_t w = write(x->fd, (const char *)x->buf + done, bytes - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			x->failed = 1;
			break;
		}
		done += (size_t)w;
	}
	x->nbuf = 0;
}

/* The replay thread of a recorded tid, numbered in order of first operation. */
static uint32_t thread_of(extract *x, uint32_t tid)
{
	if (x->h.nthreads != 0 && tid == x->last_tid)
		return x->last_thread;
	uint32_t i = 0;
	while (i < x->h.nthreads && x->tids[i] != tid)
		i++;
	if (i == x->h.nthreads) {
		if (x->h.nthreads == x->cap_tids) {
			size_t ncap = x->cap_tids ? 2 * x->cap_tids : 64;
			uint32_t *n = realloc(x->tids, ncap * sizeof *n);
			if (n == NULL) {
				x->failed = 1;
				return 0;
			}
			x->tids = n;
			x->cap_tids = ncap;
		}
		x->tids[x->h.nthreads++] = tid;
		if (tid == x->h.pid)
			x->h.main_thread = i;
	}
	x->last_tid = tid;
	x->last_thread = i;
	return i;
}

static void emit(extract *x, uint32_t kind, uint32_t slot, uint64_t size, uint32_t tid)
{
	x->buf[x->nbuf++] = (hs_replay_op){ .t = x->last_t, .size = size, .slot = slot,
					    .thread = thread_of(x, tid), .kind = kind };
	x->h.nops++;
	if (kind == HS_REPLAY_MALLOC)
		x->h.mallocs++;
	else
		x->h.frees++;
	if (x->nbuf == OP_BUF)
		flush_ops(x);
}

static uint32_t take_slot(extract *x)
{
	if (x->nfree != 0)
		return x->free_slots[--x->nfree];
	if (x->h.nslots == UINT32_MAX)
		x->failed = 1;
	return (uint32_t)x->h.nslots++;
}

static void give_slot(extract *x, uint32_t slot)
{
	if (x->nfree == x->cap_free) {
		size_t ncap = x->cap_free ? 2 * x->cap_free : 1024;
		uint32_t *n = realloc(x->free_slots, ncap * sizeof *n);
		if (n == NULL) {
			x->failed = 1;
			return;
		}
		x->free_slots = n;
		x->cap_free = ncap;
	}
	x->free_slots[x->nfree++] = slot;
}

static void on_malloc(extract *x, const hs_event *e, addr_entry *a)
{
	uint32_t slot = take_slot(x);
	emit(x, HS_REPLAY_MALLOC, slot, e->arg[1], e->tid);
	if (a->nearly != 0) {
		/* Its free was seen first: it runs now, on the freeing thread. */
		emit(x, HS_REPLAY_FREE, slot, 0, shift_out(a->early, &a->nearly));
		give_slot(x, slot);
		addr_tidy(&x->addrs, a);
		return;
	}
	if (a->nlive == ADDR_QUEUE) {
		shift_out(a->live, &a->nlive);
		x->h.unfreed++;
	}
	a->live[a->nlive++] = slot;
}

static void on_free(extract *x, const hs_event *e, addr_entry *a)
{
	if (a->nlive != 0) {
		uint32_t slot = shift_out(a->live, &a->nlive);
		emit(x, HS_REPLAY_FREE, slot, 0, e->tid);
		give_slot(x, slot);
	} else if (a->nearly == ADDR_QUEUE) {
		x->h.skipped_frees++;
	} else {
		a->early[a->nearly++] = e->tid;
	}
	addr_tidy(&x->addrs, a);
}

static void on_event(extract *x, const hs_event *e)
{
	if (!x->started) {
		x->started = 1;
		x->t0 = e->ts;
	}
	if (e->ts > x->last_ts)
		x->last_ts = e->ts;
	if (e->kind != HS_EV_MALLOC && e->kind != HS_EV_FREE)
		return;
	uint64_t t = e->ts > x->t0 ? e->ts - x->t0 : 0;
	if (t > x->last_t)
		x->last_t = t;
	addr_entry *a = addr_get(&x->addrs, e->arg[0]);
	if (a == NULL)
		x->failed = 1;
	else if (e->kind == HS_EV_MALLOC)
		on_malloc(x, e, a);
	else
		on_free(x, e, a);
}

/* After the last event: what is left at each address. */
static void settle(extract *x)
{
	for (size_t i = 0; i < x->addrs.cap; i++) {
		const addr_entry *a = &x->addrs.e[i];
		if (a->addr != 0 && a->addr != TOMB) {
			x->h.unfreed += a->nlive;
			x->h.skipped_frees += a->nearly;
		}
	}
	uint64_t end = x->last_ts > x->t0 ? x->last_ts - x->t0 : 0;
	x->h.end_ns = end > x->last_t ? end : x->last_t;
}

static void extract_free(extract *x)
{
	free(x->addrs.e);
	free(x->tids);
	free(x->free_slots);
}

/* --- the command ------------------------------------------------------------------------- */

typedef struct replay_opts {
	const char *file, *out;
	int64_t session;
	uint64_t pid; /* 0: the session's first process */
	int headless;
	hs_settings settings;
	char *fwd[2 * HS_NSETTINGS]; /* the settings' flags and values, passed on to run */
	int nfwd;
} replay_opts;

static void usage(FILE *f)
{
	fprintf(f, "usage: heapscope replay-workload FILE --session N [--pid P] [-o OUT] [--headless]\n"
		   "                                 [heap settings]\n\n"
		   "Re-executes the malloc/free trace of a session recorded with --events objects on\n"
		   "this build's heap, and records it as a new session (level objects, command\n"
		   "'replay FILE:N'), so that 'heapscope diff' compares it with another replay under\n"
		   "other heap settings. Addresses are remapped; every recorded thread runs as a\n"
		   "thread of its own; the operations run in the recorded order, and the heap's\n"
		   "background work (sweeper, scavenger, statistics) runs on a virtual clock that\n"
		   "follows the recorded timestamps, so two replays give the same heap-level event\n"
		   "stream. docs/regressions.md walks through it.\n\n"
		   "options:\n"
		   "  --session N         the session to replay (required)\n"
		   "  --pid P             the process to replay when the session has several\n"
		   "                      (default: its first)\n"
		   "  -o OUT              the file to record into (default FILE, appended)\n"
		   "  --headless          no TUI: record and print the summary only\n\n"
		   "heap settings (as for 'heapscope run'; a flag wins over the environment):\n");
	hs_settings_usage(f);
}

static void parse(int argc, char **argv, replay_opts *o)
{
	*o = (replay_opts){ .session = -1 };
	hs_settings_begin(&o->settings);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (hs_cli_wants_help(a)) {
			usage(stdout);
			exit(HS_EXIT_OK);
		} else if (strcmp(a, "--session") == 0) {
			o->session = (int64_t)hs_cli_parse_u64(a, v, 1, INT64_MAX), i++;
		} else if (strcmp(a, "--pid") == 0) {
			o->pid = hs_cli_parse_u64(a, v, 1, UINT32_MAX), i++;
		} else if (strcmp(a, "-o") == 0) {
			o->out = hs_cli_string(a, v), i++;
		} else if (strcmp(a, "--headless") == 0) {
			o->headless = 1;
		} else if (hs_settings_flag(&o->settings, "replay-workload", a, v)) {
			o->fwd[o->nfwd++] = argv[i];
			o->fwd[o->nfwd++] = argv[++i];
		} else {
			hs_cli_file_arg("replay-workload", a, &o->file);
		}
	}
	hs_cli_need_file("replay-workload", o->file);
	if (o->session < 0)
		hs_cli_usage_error("replay-workload: which session? (--session N; 'heapscope sessions %s' lists them)",
				   o->file);
	hs_settings_finish(&o->settings, "replay-workload");
	if (o->out == NULL)
		o->out = o->file;
}

/* The session's processes, in order of their first proc_start: "123, 456" */
static void name_pids(const uint32_t *pids, unsigned n, char *buf, size_t len)
{
	size_t k = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%u", i ? ", " : "", pids[i]);
}

/* Reads the session and writes the operations of the chosen process into
 * x->fd: 0, or -1 with one line in err (everything it opened closed). */
static int extract_session(const replay_opts *o, extract *x, char *err, size_t errlen)
{
	hs_session_info info;
	int64_t session = o->session;
	hs_store *st = hs_cli_open_session(o->file, &session, &info);
	if (info.level == NULL || strcmp(info.level, "objects") != 0) {
		hs_store_close(st);
		snprintf(err, errlen,
			 "%s: session %" PRId64 " was recorded without --events objects: it has no malloc or free "
			 "events to replay",
			 o->file, session);
		return -1;
	}
	x->h.session = session;
	x->h.seed = info.seed;
	x->h.pid = o->pid != 0 ? o->pid : info.pid > 0 && info.pid <= UINT32_MAX ? (uint64_t)info.pid : 0;
	snprintf(x->h.file, sizeof x->h.file, "%s", o->file);
	hs_source *src;
	if (hs_source_open(st, session, 0, &src) != 0) {
		snprintf(err, errlen, "%s: %s", o->file, hs_store_error(st));
		hs_store_close(st);
		return -1;
	}
	uint32_t pids[MAX_PIDS];
	unsigned npids = 0;
	int seen = 0, more = 0, r;
	hs_event e;
	while ((r = hs_source_next(src, &e)) == 1 && !x->failed) {
		if (e.kind == HS_EV_PROC_START) {
			if (x->h.pid == 0)
				x->h.pid = e.pid;
			seen |= e.pid == x->h.pid;
			unsigned k = 0;
			while (k < npids && pids[k] != e.pid)
				k++;
			if (k == npids && npids < MAX_PIDS)
				pids[npids++] = e.pid;
			more |= k == npids && npids == MAX_PIDS;
		}
		if (e.pid == x->h.pid) {
			/* A heap ends at its proc_end, or where its pid's next program
			 * starts (exec: no proc_end). The first is replayed. */
			x->ended |= x->started && e.kind == HS_EV_PROC_START;
			if (!x->ended)
				on_event(x, &e);
			x->ended |= e.kind == HS_EV_PROC_END;
		}
	}
	hs_source_close(src);
	if (r < 0)
		snprintf(err, errlen, "%s: %s", o->file, hs_store_error(st));
	hs_store_close(st);
	if (r < 0)
		return -1;
	char list[256];
	name_pids(pids, npids, list, sizeof list);
	if (x->failed)
		snprintf(err, errlen, "replay-workload: out of memory or cannot write the replay's input: %s",
			 strerror(errno));
	else if (!seen)
		snprintf(err, errlen, "%s: session %" PRId64 " has no process %" PRIu64 " (its processes: %s%s)", o->file,
			 session, x->h.pid, npids ? list : "none", more ? ", ..." : "");
	else if (x->h.nops == 0)
		snprintf(err, errlen, "%s: session %" PRId64 " has no malloc or free events of process %" PRIu64
			 ": nothing to replay",
			 o->file, session, x->h.pid);
	return x->failed || !seen || x->h.nops == 0 ? -1 : 0;
}

/* The memfd, not closed on exec: the recorder's workload child reads it. */
static int make_input(void)
{
	int fd = memfd_create("heapscope-replay", 0);
	if (fd < 0)
		hs_cli_usage_error("replay-workload: cannot create the replay's input: %s", strerror(errno));
	hs_replay_header blank = { 0 };
	if (write(fd, &blank, sizeof blank) != (ssize_t)sizeof blank)
		hs_cli_usage_error("replay-workload: cannot write the replay's input: %s", strerror(errno));
	return fd;
}

/* The whole input into fd, its header into *h: 0, or -1 with one line in err. */
static int write_input(const replay_opts *o, int fd, hs_replay_header *h, char *err, size_t errlen)
{
	extract *x = calloc(1, sizeof *x); /* its buffer is large for a stack */
	if (x == NULL) {
		snprintf(err, errlen, "replay-workload: out of memory");
		return -1;
	}
	x->fd = fd;
	x->h.main_thread = HS_REPLAY_NO_THREAD;
	int r = extract_session(o, x, err, errlen);
	if (r == 0) {
		settle(x);
		if (x->nbuf != 0)
			flush_ops(x);
		*h = x->h;
		memcpy(h->magic, HS_REPLAY_MAGIC, sizeof h->magic);
		if (x->failed || pwrite(fd, h, sizeof *h, 0) != (ssize_t)sizeof *h) {
			snprintf(err, errlen, "replay-workload: cannot write the replay's input: %s", strerror(errno));
			r = -1;
		}
	}
	extract_free(x);
	free(x);
	return r;
}

int hs_cmd_replay_workload(int argc, char **argv)
{
	replay_opts o;
	parse(argc, argv, &o);

	int fd = make_input();
	hs_replay_header hdr;
	char err[768];
	if (write_input(&o, fd, &hdr, err, sizeof err) != 0) {
		close(fd);
		hs_cli_usage_error("%s", err);
	}
	const hs_replay_header *h = &hdr;
	printf("heapscope replay-workload: %s session %" PRId64 ", process %" PRIu64 ": %" PRIu64 " operations (%" PRIu64
	       " malloc, %" PRIu64 " free) on %u thread%s over %.2f s; %" PRIu64 " frees of addresses never allocated "
	       "skipped; %" PRIu64 " objects never freed\n",
	       o.file, h->session, h->pid, h->nops, h->mallocs, h->frees, h->nthreads, h->nthreads == 1 ? "" : "s",
	       (double)h->end_ns / 1e9, h->skipped_frees, h->unfreed);
	fflush(stdout);
	char fdbuf[16], seedbuf[24];
	snprintf(fdbuf, sizeof fdbuf, "%d", fd);
	snprintf(seedbuf, sizeof seedbuf, "%" PRIu64, h->seed);

	if (setenv(HS_REPLAY_FD_ENV, fdbuf, 1) != 0)
		hs_cli_usage_error("replay-workload: cannot set %s: %s", HS_REPLAY_FD_ENV, strerror(errno));
	char *args[16 + 2 * HS_NSETTINGS];
	int n = 0;
	args[n++] = "run";
	args[n++] = "--workload";
	args[n++] = (char *)hs_replay_workload.name;
	args[n++] = "-o";
	args[n++] = (char *)o.out;
	args[n++] = "--events";
	args[n++] = "objects";
	args[n++] = "--seed"; /* the recording's, for the session's row; a replay has no use for it */
	args[n++] = seedbuf;
	if (o.headless)
		args[n++] = "--headless";
	for (int i = 0; i < o.nfwd; i++)
		args[n++] = o.fwd[i];
	args[n] = NULL;
	return hs_cmd_run(n, args);
}

/* --- the input, for the recorder and the workload ------------------------------------------- */

const hs_replay_header *hs_replay_map(size_t *len, char *err, size_t errlen)
{
	const char *v = getenv(HS_REPLAY_FD_ENV);
	char *end;
	long fd = v != NULL ? strtol(v, &end, 10) : -1;
	struct stat sb;
	if (v == NULL || *v == '\0' || *end != '\0' || fd < 0 || fd > INT32_MAX || fstat((int)fd, &sb) != 0) {
		snprintf(err, errlen, "%s names no replay input (replays are started by heapscope replay-workload)",
			 HS_REPLAY_FD_ENV);
		return NULL;
	}
	if ((size_t)sb.st_size < sizeof(hs_replay_header)) {
		snprintf(err, errlen, "the replay input is cut short");
		return NULL;
	}
	void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, (int)fd, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the replay input: %s", strerror(errno));
		return NULL;
	}
	const hs_replay_header *h = p;
	uint64_t ops = ((uint64_t)sb.st_size - sizeof *h) / sizeof(hs_replay_op);
	if (memcmp(h->magic, HS_REPLAY_MAGIC, sizeof h->magic) != 0 || h->nops != ops ||
	    sizeof *h + ops * sizeof(hs_replay_op) != (uint64_t)sb.st_size || h->nslots > UINT32_MAX ||
	    h->nthreads == 0 || (h->main_thread >= h->nthreads && h->main_thread != HS_REPLAY_NO_THREAD) ||
	    memchr(h->file, '\0', sizeof h->file) == NULL) {
		munmap(p, (size_t)sb.st_size);
		snprintf(err, errlen, "the replay input is not one heapscope replay-workload wrote");
		return NULL;
	}
	*len = (size_t)sb.st_size;
	return h;
}

int hs_replay_describe(char *command, size_t clen, char *json, size_t jlen)
{
	char err[256];
	size_t len;
	const hs_replay_header *h = hs_replay_map(&len, err, sizeof err);
	if (h == NULL)
		return -1;
	snprintf(command, clen, "replay %s:%" PRId64, h->file, h->session);
	FILE *f = fmemopen(json, jlen, "w");
	if (f != NULL) {
		fputs("{\"file\": ", f);
		hs_metrics_json_string(f, h->file);
		fprintf(f,
			", \"session\": %" PRId64 ", \"pid\": %" PRIu64 ", \"operations\": %" PRIu64 ", \"threads\": %u, "
			"\"skipped_frees\": %" PRIu64 ", \"unfreed\": %" PRIu64 "}",
			h->session, h->pid, h->nops, h->nthreads, h->skipped_frees, h->unfreed);
		if (fclose(f) != 0)
			json[0] = '\0';
	}
	munmap((void *)h, len);
	return 0;
}
