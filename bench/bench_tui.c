/*
 * bench/bench_tui.c — how fast the TUI draws and how fast the model takes
 * events, on a heap of about 1000 chunks.
 *
 *   bench_tui [--frames N] [--cols C] [--rows R] [--ascii] [--no-sleep]
 *
 * The heap: synthetic events for one process that grows its page allocator by
 * 4 GiB (1024 chunks), fills about 65% of it with spans of every size class
 * and some large objects (about 140k spans), frees about a third of them again, and releases free runs
 * in 40% of the chunks, with a stats event every 2000 events (100 ms of
 * recorded time) and scavenger cycles. The events are made by a shadow
 * metadata-only page allocator, so every page_alloc carries the base that
 * first fit will find and the model replays them without a divergence.
 *
 * 1. Apply: the whole event list into a fresh model, timed; events/s.
 * 2. Frames: the TUI opened on a pseudo-terminal (openpty, C x R, default
 *    200x60, TERM xterm-256color, a UTF-8 locale unless --ascii) whose output
 *    a thread drains. Each pane is focused in turn and drawn N frames (default
 *    30), 50 ms apart as the recorder does (--no-sleep: back to back); between
 *    frames, untimed, the heap churns (2000 events of frees and allocations).
 *    Timed: hs_tui_live_frame, from the keys to the bytes written to the pty.
 *    Then the same with a full repaint forced every frame (the worst case: a
 *    resize, Ctrl-L). Per pane: median, min and max ms per frame.
 * 3. Live lag at 1 M events/s: the recorder drains for 50 ms, applies what
 *    came (50k events at the measured rate), and draws one frame.
 */
#include <locale.h>
#include <pthread.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "pagealloc.h"
#include "sizeclasses.h"
#include "splitmix.h"
#include "tui.h"

#define PID 4242
#define HEAP_BASE ((uintptr_t)0xc000000000ull)
#define HEAP_BYTES ((uintptr_t)4 << 30)
#define STATS_EVERY 2000
#define TS_STEP 50000 /* ns of recorded time per event: 20k events/s, stats every 100 ms */

typedef struct span_rec {
	uintptr_t base;
	uint32_t npages;
	uint16_t spanclass;
} span_rec;

typedef struct gen {
	hs_pagealloc p;
	hs_mutex lock;
	hs_sys_stat stat;
	uint64_t rng, seq, ts, cpu_ns, released;
	span_rec *spans;
	size_t nspans, cap;
	uint64_t used_pages;
	hs_event *ev;
	size_t nev, evcap;
	size_t since_stats;
} gen;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_tui: %s\n", what);
	exit(1);
}

static void emit(gen *g, hs_event_kind kind, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		 uint64_t a5);

static void stats(gen *g)
{
	uint64_t total = HEAP_BYTES, in_use = g->used_pages << HS_PAGE_SHIFT;
	emit(g, HS_EV_STATS, in_use, total - in_use - g->released, g->released, total + (8u << 20),
	     in_use + (total - in_use - g->released) / 2, 6u << 20);
	if (g->seq / STATS_EVERY % 20 == 0) {
		g->cpu_ns += 3000000;
		emit(g, HS_EV_SCAV_START, total / 2, total - g->released, g->released, 0, 0, 0);
		emit(g, HS_EV_SCAV_END, total / 2, total - g->released, g->released, 1u << 20, g->cpu_ns, 0);
	}
}

static void emit(gen *g, hs_event_kind kind, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		 uint64_t a5)
{
	if (g->nev == g->evcap) {
		g->evcap = g->evcap ? g->evcap * 2 : 1 << 16;
		if ((g->ev = realloc(g->ev, g->evcap * sizeof *g->ev)) == NULL)
			die("out of memory");
	}
	g->ts += TS_STEP;
	g->ev[g->nev++] = (hs_event){ .seq = g->seq++, .ts = g->ts, .pid = PID, .tid = PID, .kind = (uint16_t)kind,
				      .arg = { a0, a1, a2, a3, a4, a5 } };
	if (kind != HS_EV_STATS && kind != HS_EV_SCAV_START && kind != HS_EV_SCAV_END &&
	    ++g->since_stats >= STATS_EVERY) {
		g->since_stats = 0;
		stats(g);
	}
}

/* One span: a size class (98%) or a large object of 5-104 pages, placed by first fit. */
static int new_span(gen *g)
{
	uint64_t r = hs_splitmix64(&g->rng);
	unsigned sc = r % 50 != 0 ? 1 + (unsigned)(r >> 8) % 67 : 0;
	uint32_t npages = sc != 0 ? hs_class_to_allocnpages[sc] : 5 + (uint32_t)(r >> 20) % 100;
	uintptr_t scav = 0;
	hs_lock(&g->lock);
	uintptr_t base = hs_pagealloc_alloc(&g->p, npages, &scav);
	hs_unlock(&g->lock);
	if (base == 0)
		return -1;
	uint16_t spc = (uint16_t)(sc << 1 | 1);
	emit(g, HS_EV_PAGE_ALLOC, base, npages, scav, 0, 0, 0);
	emit(g, HS_EV_SPAN_ALLOC, base, npages, spc, HS_EV_SPAN_IN_USE, 0, 0);
	if (sc != 0) {
		unsigned nelems = hs_class_nelems(sc), count = (unsigned)(r >> 32) % (nelems + 1);
		emit(g, HS_EV_MCENTRAL_MOVE, base, spc, count == nelems ? 2 : 0, count, 0, 0);
		if ((r >> 40) % 4 == 0)
			emit(g, HS_EV_MCACHE_REFILL, base, spc, count, 0, 0, 0);
	}
	if (g->nspans == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 4096;
		if ((g->spans = realloc(g->spans, g->cap * sizeof *g->spans)) == NULL)
			die("out of memory");
	}
	g->spans[g->nspans++] = (span_rec){ base, npages, spc };
	g->used_pages += npages;
	return 0;
}

static void free_span(gen *g, size_t i)
{
	span_rec s = g->spans[i];
	g->spans[i] = g->spans[--g->nspans];
	emit(g, HS_EV_SPAN_FREE, s.base, s.npages, s.spanclass, HS_EV_SPAN_DEAD, 0, 0);
	emit(g, HS_EV_PAGE_FREE, s.base, s.npages, 0, 0, 0, 0);
	hs_lock(&g->lock);
	hs_pagealloc_free(&g->p, s.base, s.npages, 0);
	hs_unlock(&g->lock);
	g->used_pages -= s.npages;
}

/* Releases the free runs of chunk ci (at most 64 pages a run), as the
 * scavenger does: take the run, then give it back released. */
static void scavenge_chunk(gen *g, uintptr_t ci)
{
	uintptr_t base = hs_chunk_base(ci);
	const hs_palloc_data *d = hs_pagealloc_chunk_of(&g->p, ci);
	unsigned p = 0;
	while (p < HS_PALLOC_CHUNK_PAGES) {
		if (hs_page_bits_get(&d->alloc, p) || hs_page_bits_get(&d->scavenged, p)) {
			p++;
			continue;
		}
		unsigned n = 0;
		while (p + n < HS_PALLOC_CHUNK_PAGES && n < 64 && !hs_page_bits_get(&d->alloc, p + n) &&
		       !hs_page_bits_get(&d->scavenged, p + n))
			n++;
		uintptr_t a = base + ((uintptr_t)p << HS_PAGE_SHIFT);
		emit(g, HS_EV_SCAV_TAKE, a, n, 0, 0, 0, 0);
		emit(g, HS_EV_SCAV_RANGE, a, n, 0, 0, 0, 0);
		hs_lock(&g->lock);
		hs_pagealloc_alloc_range(&g->p, a, n);
		hs_pagealloc_free_released(&g->p, a, n);
		hs_unlock(&g->lock);
		g->released += (uint64_t)n << HS_PAGE_SHIFT;
		p += n;
	}
}

static void churn(gen *g, size_t nevents)
{
	size_t end = g->nev + nevents;
	while (g->nev < end) {
		if (g->nspans > 0)
			free_span(g, hs_splitmix64(&g->rng) % g->nspans);
		if (new_span(g) != 0)
			break;
	}
}

static void build(gen *g)
{
	memset(g, 0, sizeof *g);
	g->rng = 42;
	g->ts = 1000000000;
	hs_mutex_init(&g->lock);
	if (hs_pagealloc_init(&g->p, &g->lock, &g->stat, 1) != 0)
		die("cannot set up the shadow page allocator");
	emit(g, HS_EV_PROC_START, PID, 1, HS_EVL_HEAP, 0, 0, 0);
	emit(g, HS_EV_ARENA_RESERVE, HEAP_BASE, HEAP_BYTES, 0, 0, 0, 0);
	emit(g, HS_EV_PAGE_GROW, HEAP_BASE, HEAP_BYTES, 0, 0, 0, 0);
	hs_lock(&g->lock);
	hs_pagealloc_grow(&g->p, HEAP_BASE, HEAP_BYTES);
	hs_unlock(&g->lock);
	/* A new heap is all released: take it back in page_alloc's scav bytes. */
	uint64_t total = HEAP_BYTES >> HS_PAGE_SHIFT;
	while (g->used_pages < total * 65 / 100)
		if (new_span(g) != 0)
			break;
	size_t nfree = g->nspans / 3;
	for (size_t i = 0; i < nfree; i++)
		free_span(g, hs_splitmix64(&g->rng) % g->nspans);
	uintptr_t c0 = hs_chunk_index(HEAP_BASE), nchunks = HEAP_BYTES >> HS_LOG_PALLOC_CHUNK_BYTES;
	for (uintptr_t c = 0; c < nchunks; c++)
		if (hs_splitmix64(&g->rng) % 10 < 4)
			scavenge_chunk(g, c0 + c);
	stats(g);
}

/* --- the pty --------------------------------------------------------------------------- */

static int master_fd;
static volatile int draining = 1;
static uint64_t drained;

static void *drain(void *arg)
{
	(void)arg;
	char buf[65536];
	while (draining) {
		ssize_t n = read(master_fd, buf, sizeof buf);
		if (n <= 0)
			break;
		drained += (uint64_t)n;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct result {
	double med, min, max;
} result;

static result summarize(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return (result){ v[n / 2], v[0], v[n - 1] };
}

static const char *const pane_names[] = { "summary", "chunks", "spans", "statistics", "scavenger", "timeline" };

int main(int argc, char **argv)
{
	int frames = 30, cols = 200, rows = 60, ascii = 0, sleep_between = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc)
			frames = atoi(argv[++i]);
		else if (strcmp(argv[i], "--cols") == 0 && i + 1 < argc)
			cols = atoi(argv[++i]);
		else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
			rows = atoi(argv[++i]);
		else if (strcmp(argv[i], "--ascii") == 0)
			ascii = 1;
		else if (strcmp(argv[i], "--no-sleep") == 0)
			sleep_between = 0;
		else {
			fprintf(stderr, "usage: bench_tui [--frames N] [--cols C] [--rows R] [--ascii] [--no-sleep]\n");
			return 2;
		}
	}
	if (frames < 1)
		frames = 1;

	/* 1. The heap's events, and applying them. */
	static gen g;
	double t0 = now_ms();
	build(&g);
	double t_gen = now_ms() - t0;
	hs_model *m = hs_model_new();
	if (m == NULL)
		die("out of memory");
	t0 = now_ms();
	for (size_t i = 0; i < g.nev; i++)
		if (hs_model_apply(m, &g.ev[i]) != 0) {
			fprintf(stderr, "bench_tui: the model diverged: %s\n", hs_model_error(m));
			return 1;
		}
	double t_apply = now_ms() - t0;
	hs_model_heap *h = hs_model_heap_at(m, 0);
	double rate = (double)g.nev / (t_apply / 1e3);
	printf("== heapscope TUI benchmark (%ld CPUs)\n", sysconf(_SC_NPROCESSORS_ONLN));
	printf("heap: %lu chunks grown, %zu spans, %.0f%% of pages allocated, %zu events (generated in %.0f ms)\n",
	       (unsigned long)(HEAP_BYTES >> HS_LOG_PALLOC_CHUNK_BYTES), h->nspans,
	       100.0 * (double)g.used_pages / (double)(HEAP_BYTES >> HS_PAGE_SHIFT), g.nev, t_gen);
	printf("model apply: %zu events in %.1f ms = %.2f M events/s (%.0f ns/event)\n", g.nev, t_apply, rate / 1e6,
	       t_apply * 1e6 / (double)g.nev);
	g.nev = 0; /* churn is generated into the same buffer */

	/* 2. Frames on a pseudo-terminal. */
	int slave;
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	if (openpty(&master_fd, &slave, NULL, NULL, &ws) != 0)
		die("openpty failed");
	setenv("TERM", "xterm-256color", 1);
	unsetenv("NO_COLOR");
	if (ascii) {
		setenv("LC_ALL", "C", 1);
	} else {
		setenv("LC_ALL", "C.UTF-8", 1);
	}
	FILE *out = fdopen(slave, "w"), *in = fdopen(dup(slave), "r");
	if (out == NULL || in == NULL)
		die("fdopen failed");
	pthread_t th;
	pthread_create(&th, NULL, drain, NULL);
	char err[256];
	hs_tui *t = hs_tui_open(out, in, err, sizeof err);
	if (t == NULL) {
		fprintf(stderr, "bench_tui: %s\n", err);
		return 1;
	}
	hs_tui_live live = { .events = g.seq, .events_per_s = 1e6, .title = "bench_tui synthetic heap" };
	hs_tui_replay rp = { .first_seq = 0, .last_seq = g.seq, .pos_seq = g.seq / 2, .first_ts = 1000000000,
			     .last_ts = g.ts, .pos_ts = g.ts / 2, .speed = 1, .playing = 1, .status = "complete",
			     .title = "bench_tui synthetic heap" };
	hs_tui_cmd cmds[32];
	result res[6][2];
	double *v = malloc((size_t)frames * sizeof *v);
	double churn_ms = 0;
	for (int full = 0; full < 2; full++) {
		for (int p = 0; p < 6; p++) {
			if (p == 5) /* the timeline exists in replay: enter replay first */
				hs_tui_replay_frame(t, m, &rp, cmds, 32);
			hs_tui_focus(t, p);
			for (int f = -2; f < frames; f++) { /* two frames to settle, untimed */
				double c0 = now_ms();
				g.nev = 0;
				churn(&g, 2000);
				for (size_t i = 0; i < g.nev; i++)
					if (hs_model_apply(m, &g.ev[i]) != 0)
						die(hs_model_error(m));
				live.events = g.seq;
				rp.last_seq = rp.pos_seq = g.seq;
				churn_ms += now_ms() - c0;
				if (full)
					hs_tui_redraw(t);
				double f0 = now_ms();
				if (p == 5)
					hs_tui_replay_frame(t, m, &rp, cmds, 32);
				else
					hs_tui_live_frame(t, m, &live);
				double dt = now_ms() - f0;
				if (f >= 0)
					v[f] = dt;
				if (sleep_between && dt < 50) {
					struct timespec d = { 0, (long)((50 - dt) * 1e6) };
					nanosleep(&d, NULL);
				}
			}
			res[p][full] = summarize(v, frames);
		}
	}
	hs_tui_close(t);
	draining = 0;
	fclose(out);
	fclose(in);
	close(master_fd);
	pthread_join(th, NULL);

	printf("frames: %dx%d pty, %s, %d frames per pane, %s; churn of 2000 events between frames\n", cols, rows,
	       ascii ? "ASCII" : "UTF-8", frames, sleep_between ? "50 ms apart" : "back to back");
	printf("%-12s %22s %28s\n", "pane", "frame ms (med/min/max)", "full repaint ms (med/min/max)");
	double worst = 0;
	for (int p = 0; p < 6; p++) {
		printf("%-12s %8.2f %6.2f %6.2f %14.2f %6.2f %6.2f\n", pane_names[p], res[p][0].med, res[p][0].min,
		       res[p][0].max, res[p][1].med, res[p][1].min, res[p][1].max);
		if (res[p][0].med > worst)
			worst = res[p][0].med;
		if (res[p][1].med > worst)
			worst = res[p][1].med;
	}
	printf("bytes to the terminal: %.1f MB in all; churn between frames took %.2f ms a frame (untimed)\n",
	       (double)drained / 1e6, churn_ms / (12.0 * (frames + 2)));
	double apply_50ms = 50000.0 / rate * 1e3;
	printf("live lag at 1M events/s: 50 ms drain + %.1f ms applying 50k events + %.1f ms frame (worst median) = "
	       "%.1f ms\n",
	       apply_50ms, worst, 50 + apply_50ms + worst);
	printf("target: <= 30 ms per frame: %s\n", worst <= 30 ? "met" : "NOT met");
	free(v);
	hs_model_free(m);
	return 0;
}
