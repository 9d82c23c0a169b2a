/*
 * cli/demo.c — `heapscope demo`: Go's page allocator at work, as text.
 *
 * A deterministic workload (seeded) drives a metadata-only page allocator
 * (include/heapscope/pagealloc.h) through phases that fill, fragment and drain it,
 * growing it in chunk groups in two regions far apart. After each batch of
 * operations it samples the allocator and draws one frame: the in-use ranges and
 * searchAddr, page totals, every summary level over each in-use range shaded by
 * its largest free run, and the 512-page bitmap of the chunk holding searchAddr.
 * The invariant checker runs on every frame; a violation stops the demo with
 * status 1. This is the text precursor of the TUI's summary and chunk panes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "pagetext.h"
#include "splitmix.h"
#include "heapscope/pagealloc.h"

#define MAX_LIVE 65536
#define MAX_RANGES 16
#define ROW_WIDTH 64 /* entries drawn per level and range */

typedef struct demo_opts {
	uint64_t seed, frames, interval_ms, ops_per_frame, max_chunks;
} demo_opts;

typedef struct alloc_rec {
	uintptr_t base, npages;
} alloc_rec;

typedef struct demo {
	demo_opts o;
	hs_pam *p;
	uint64_t rng, step;
	alloc_rec *live;
	size_t nlive;
	uint64_t grown_chunks, next_chunk[2], region_base[2];
	uint64_t allocs, frees, failures;
} demo;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t next_rand(demo *d)
{
	return hs_splitmix64(&d->rng);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: heapscope demo [--seed N] [--frames N] [--interval MS] [--ops N] [--chunks N]\n\n"
		   "Runs a phased workload on Go's page allocator (metadata-only) and draws it.\n\n"
		   "  --seed N       workload seed (default 1); the same seed gives the same frames\n"
		   "  --frames N     stop after N frames; 0 runs until interrupted (default: 0 on a\n"
		   "                 terminal, 1 otherwise)\n"
		   "  --interval MS  pause between frames (default 250)\n"
		   "  --ops N        allocator operations per frame (default 400)\n"
		   "  --chunks N     largest heap, in 4 MiB chunks (default 32)\n"
		   "  --help         this text\n\n"
		   "Legend: summary entries '#' no free page, '=' largest free run < 1/4 of the entry,\n"
		   "'-' < 1/2, '.' < all, 'o' wholly free, ' ' not in the heap. Chunk pages '#'\n"
		   "allocated, '.' free, ':' free and scavenged, '@' searchAddr.\n");
}

static demo_opts parse_opts(int argc, char **argv)
{
	demo_opts o = { 1, isatty(STDOUT_FILENO) ? 0 : 1, 250, 400, 32 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(HS_EXIT_OK);
		} else if (strcmp(a, "--seed") == 0) {
			o.seed = hs_cli_parse_u64(a, v, 0, UINT64_MAX), i++;
		} else if (strcmp(a, "--frames") == 0) {
			o.frames = hs_cli_parse_u64(a, v, 0, UINT64_MAX), i++;
		} else if (strcmp(a, "--interval") == 0) {
			o.interval_ms = hs_cli_parse_u64(a, v, 0, 60000), i++;
		} else if (strcmp(a, "--ops") == 0) {
			o.ops_per_frame = hs_cli_parse_u64(a, v, 1, 10000000), i++;
		} else if (strcmp(a, "--chunks") == 0) {
			o.max_chunks = hs_cli_parse_u64(a, v, 1, 1024), i++;
		} else {
			hs_cli_usage_error("demo: unknown option '%s' (see 'heapscope demo --help')", a);
		}
	}
	return o;
}

/* Grows by 1-4 chunks, alternating between the two regions. */
static int grow(demo *d)
{
	if (d->grown_chunks >= d->o.max_chunks)
		return 0;
	uint64_t n = 1 + next_rand(d) % 4;
	if (n > d->o.max_chunks - d->grown_chunks)
		n = d->o.max_chunks - d->grown_chunks;
	int r = (int)(d->grown_chunks / 4 % 2);
	uintptr_t base = hs_pam_chunk_base(d->region_base[r] + d->next_chunk[r]);
	if (hs_pam_grow(d->p, base, n * hs_pam_chunk_bytes()) != 0)
		return 0;
	d->next_chunk[r] += n;
	d->grown_chunks += n;
	return 1;
}

static uintptr_t random_npages(demo *d)
{
	uint64_t x = next_rand(d);
	switch (x % 10) {
	case 0: case 1: case 2: case 3: case 4: return 1;
	case 5: case 6: return 2 + (x >> 8) % 15;
	case 7: case 8: return 17 + (x >> 8) % 100;
	default: return 128 + (x >> 8) % 700;
	}
}

/* The probability of a free swings between 30% and 70% over a 40,000-step cycle,
 * so the heap fills, fragments and drains in turn. */
static void one_op(demo *d)
{
	uint64_t phase = d->step % 40000;
	uint64_t free_pct = 30 + (phase < 20000 ? phase : 40000 - phase) * 40 / 20000;
	if (d->nlive > 0 && next_rand(d) % 100 < free_pct) {
		size_t k = next_rand(d) % d->nlive;
		hs_pam_free(d->p, d->live[k].base, d->live[k].npages);
		d->live[k] = d->live[--d->nlive];
		d->frees++;
		return;
	}
	uintptr_t npages = random_npages(d);
	uintptr_t a = hs_pam_alloc(d->p, npages, NULL);
	if (a == 0 && grow(d))
		a = hs_pam_alloc(d->p, npages, NULL);
	if (a == 0 || d->nlive == MAX_LIVE) {
		if (a != 0)
			hs_pam_free(d->p, a, npages);
		d->failures++;
		return;
	}
	d->live[d->nlive++] = (alloc_rec){ a, npages };
	d->allocs++;
}

/* --- drawing ---------------------------------------------------------------- */

static void draw_level(demo *d, FILE *f, unsigned level, const hs_pam_addr_range *r, size_t nr)
{
	char size[16];
	hs_pagetext_entry_size(size, sizeof size, hs_pam_level_log_pages(level), hs_pam_page_size());
	fprintf(f, "  L%u (%s) ", level, size);
	for (size_t k = 0; k < nr; k++) {
		uint64_t lo = hs_pam_level_index(level, r[k].base);
		uint64_t hi = hs_pam_level_index(level, r[k].limit - 1) + 1;
		if (k > 0)
			fputs(" | ", f);
		for (uint64_t i = lo; i < hi && i < lo + ROW_WIDTH; i++) {
			hs_pam_sum s;
			int grown = hs_pam_summary(d->p, level, i, &s) == 0;
			fputc(grown ? hs_pagetext_shade(s.max, hs_pam_level_log_pages(level)) : ' ', f);
		}
		if (hi - lo > ROW_WIDTH)
			fprintf(f, "+%llu", (unsigned long long)(hi - lo - ROW_WIDTH));
	}
	fputc('\n', f);
}

/* Counts pages over the in-use ranges: allocated, free, free and scavenged. */
static void count_pages(demo *d, const hs_pam_addr_range *r, size_t nr, uint64_t c[3])
{
	c[0] = c[1] = c[2] = 0;
	for (size_t k = 0; k < nr; k++) {
		for (uintptr_t a = r[k].base; a < r[k].limit; a += hs_pam_chunk_bytes()) {
			uint64_t al[8], sc[8];
			if (hs_pam_chunk_bitmaps(d->p, hs_pam_chunk_index(a), al, sc) != 0)
				continue;
			for (int w = 0; w < 8; w++) {
				c[0] += (uint64_t)__builtin_popcountll(al[w]);
				c[2] += (uint64_t)__builtin_popcountll(sc[w]);
			}
		}
	}
	c[1] = 0;
	for (size_t k = 0; k < nr; k++)
		c[1] += (r[k].limit - r[k].base) / hs_pam_page_size();
	c[1] -= c[0];
}

static void draw_chunk(demo *d, FILE *f, uintptr_t search)
{
	uint64_t ci = hs_pam_chunk_index(search), al[8], sc[8];
	if (hs_pam_chunk_bitmaps(d->p, ci, al, sc) != 0)
		return;
	unsigned mark = (unsigned)((search - hs_pam_chunk_base(ci)) / hs_pam_page_size());
	fprintf(f, "chunk %#lx (the one holding searchAddr), 32 pages a row:\n",
		(unsigned long)hs_pam_chunk_base(ci));
	for (unsigned row = 0; row < HS_PAGETEXT_GRID_ROWS; row++) {
		char line[HS_PAGETEXT_GRID_COLS];
		hs_pagetext_chunk_row(line, al, sc, row, (int)mark);
		fprintf(f, "  %.*s\n", HS_PAGETEXT_GRID_COLS, line);
	}
}

static void draw_frame(demo *d, FILE *f, uint64_t frame)
{
	hs_pam_addr_range r[MAX_RANGES];
	size_t nr = hs_pam_in_use(d->p, r, MAX_RANGES);
	if (nr > MAX_RANGES)
		nr = MAX_RANGES;
	uint64_t c[3];
	count_pages(d, r, nr, c);

	fprintf(f, "heapscope demo: Go's page allocator, %s, metadata-only; seed %llu, frame %llu, step %llu\n",
		hs_pam_arch(), (unsigned long long)d->o.seed, (unsigned long long)frame,
		(unsigned long long)d->step);
	fprintf(f, "ops: %llu allocs, %llu frees, %llu failed; %zu live runs\n", (unsigned long long)d->allocs,
		(unsigned long long)d->frees, (unsigned long long)d->failures, d->nlive);
	fprintf(f, "pages: %llu grown, %llu allocated, %llu free (%llu scavenged); metadata %llu KiB\n",
		(unsigned long long)(c[0] + c[1]), (unsigned long long)c[0], (unsigned long long)c[1],
		(unsigned long long)c[2], (unsigned long long)(hs_pam_metadata_bytes(d->p) / 1024));
	fputs("in use:", f);
	for (size_t k = 0; k < nr; k++)
		fprintf(f, " [%#lx, %#lx)", (unsigned long)r[k].base, (unsigned long)r[k].limit);
	uintptr_t search = hs_pam_search_addr(d->p);
	if (hs_pam_exhausted(d->p))
		fputs("\nsearchAddr: none (heap exhausted)\n", f);
	else
		fprintf(f, "\nsearchAddr: %#lx\n", (unsigned long)search);
	fputs("summary levels (one character per entry; ranges separated by |):\n", f);
	for (unsigned l = 0; l < hs_pam_levels(); l++)
		draw_level(d, f, l, r, nr);
	draw_chunk(d, f, hs_pam_exhausted(d->p) ? r[0].base : search);
}

int hs_cmd_demo(int argc, char **argv)
{
	demo d;
	memset(&d, 0, sizeof d);
	d.o = parse_opts(argc, argv);
	d.rng = d.o.seed;
	d.live = calloc(MAX_LIVE, sizeof *d.live);
	if (d.live == NULL || hs_pam_new(NULL, 0, &d.p) != 0) {
		fprintf(stderr, "heapscope: demo: out of memory\n");
		return HS_EXIT_FAIL;
	}
	int is32 = hs_pam_heap_addr_bits() == 32;
	d.region_base[0] = hs_pam_chunk_index((uintptr_t)(is32 ? 0x100 : 0xc000) * hs_pam_chunk_bytes());
	d.region_base[1] = d.region_base[0] + (is32 ? 0x200 : 0x2000);
	grow(&d);

	int tty = isatty(STDOUT_FILENO);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (tty)
		fputs("\033[?25l", stdout);

	int status = HS_EXIT_OK;
	char *buf = NULL;
	size_t len = 0;
	for (uint64_t frame = 1; !stop_requested && (d.o.frames == 0 || frame <= d.o.frames); frame++) {
		for (uint64_t k = 0; k < d.o.ops_per_frame; k++, d.step++)
			one_op(&d);
		char msg[256];
		if (hs_pam_check(d.p, msg, sizeof msg) != 0) {
			fprintf(stderr, "heapscope: demo: invariant violated at step %llu: %s\n",
				(unsigned long long)d.step, msg);
			status = HS_EXIT_FAIL;
			break;
		}
		FILE *f = open_memstream(&buf, &len);
		if (f == NULL)
			break;
		draw_frame(&d, f, frame);
		fclose(f);
		fputs(tty ? "\033[H\033[2J" : (frame > 1 ? "\n" : ""), stdout);
		fputs(buf, stdout);
		fflush(stdout);
		free(buf);
		buf = NULL;
		if (d.o.interval_ms > 0 && (d.o.frames == 0 || frame < d.o.frames))
			nanosleep(&(struct timespec){ (time_t)(d.o.interval_ms / 1000),
						     (long)(d.o.interval_ms % 1000) * 1000000L },
				  NULL);
	}
	if (tty)
		fputs("\033[?25h", stdout);
	hs_pam_destroy(d.p);
	free(d.live);
	return status;
}
