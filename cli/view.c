/*
 * cli/view.c — `heapscope view FILE [--session N]`: a stored session in the
 * TUI, with time scrubbing; a session still being recorded is followed.
 *
 * The replay controller owns a model and a source of the session's events.
 * The model always holds the state after event pos_seq (or no event: at the
 * start); the source is positioned right after it. Moving:
 *
 *   forward   apply events from the source up to the target;
 *   elsewhere load the keyframe at or before the target (hs_store_keyframe_at,
 *             hs_model_load), reopen the source after it, and apply forward;
 *             with no keyframe, start from an empty model. Going back always
 *             takes this path; going forward takes it when a keyframe lies
 *             beyond the current position and the target is far.
 *
 * Playing advances a clock in recorded time (event ts) by the wall time since
 * the last tick times the speed, and applies every event up to it, within a
 * budget of BUDGET_NS per tick so that keys stay responsive; when the budget
 * runs out the clock waits for the events (playing slower than asked rather
 * than falling behind without end). At the end of a running session the
 * controller follows it: every POLL_NS it reopens the source (a source sees
 * what was committed when it opened) and applies what is new.
 *
 * Times for `g 2.5s`: the last event at or before first_ts + 2.5 s, from the
 * store's time lookup (hs_store_seq_at_time: the samples bracket it).
 *
 * Bad input (no such file, not a session file, no such session, a bad option)
 * is one line on stderr and exit status 2, before the screen is touched.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "model.h"
#include "store.h"
#include "tui.h"

#define TICK_NS 33000000u	     /* a frame every 33 ms while something moves */
#define IDLE_MS 100		     /* ... and at least every 100 ms when idle */
#define BUDGET_NS 25000000u	     /* applying events, per tick */
#define POLL_NS 200000000u	     /* a running session: new events */
#define INFO_NS 1000000000u	     /* a running session: its status */
#define FORWARD_LIMIT 200000u	     /* apply forward rather than load a keyframe */
#define RECENT 64		     /* events the timeline lists */

typedef struct view_opts {
	const char *file, *at;
	int64_t session;
	int paused;
	double speed;
} view_opts;

typedef struct player {
	hs_store *st;
	int64_t session;
	hs_session_info info;
	char title[512], status[32];
	hs_model *m;
	hs_source *src;
	int have_next; /* next holds the event after pos, read ahead */
	hs_event next;
	int src_end;	/* the source returned 0 */
	uint64_t first_seq, last_seq, first_ts, last_ts;
	int empty; /* no event stored yet */
	uint64_t pos_seq, pos_ts;
	int at_start;
	double speed;
	int playing, following, running;
	uint64_t clock_ts, last_tick, last_poll, last_info;
	hs_event ring[RECENT], recent[RECENT];
	unsigned ring_head, ring_n;
	char msg[320];
	hs_tui *tui;
} player;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: heapscope view FILE [--session N] [--at SEQ|TIME] [--paused] [--speed X]\n\n"
		   "Opens a recorded session in the TUI: the heap as it was at any point, with\n"
		   "time scrubbing. A session still being recorded is followed as it grows.\n"
		   "The session defaults to the file's last one. The file is opened read-only.\n\n"
		   "options:\n"
		   "  --session N     the session to show (see 'heapscope sessions')\n"
		   "  --at POS        start at sequence number POS, or at a time like 2.5s\n"
		   "                  (default: the start of a finished session, the end of a\n"
		   "                  running one)\n"
		   "  --paused        start paused (default: playing at --speed)\n"
		   "  --speed X       playback speed, a multiple of recorded time (default 1)\n"
		   "\n"
		   "Keys: ? in the TUI lists them; docs/tui.md describes every pane.\n");
}

static void parse(int argc, char **argv, view_opts *o)
{
	*o = (view_opts){ .session = -1, .speed = 1 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(HS_EXIT_OK);
		} else if (strcmp(a, "--session") == 0) {
			o->session = (int64_t)hs_cli_parse_u64("--session", v, 1, INT64_MAX);
			i++;
		} else if (strcmp(a, "--at") == 0) {
			uint64_t x;
			int is_time;
			if (v == NULL || hs_tui_parse_seek(v, &x, &is_time) != 0)
				hs_cli_usage_error("view: --at takes a sequence number or a time like 2.5s, not '%s'",
						   v ? v : "");
			o->at = v;
			i++;
		} else if (strcmp(a, "--speed") == 0) {
			char *end;
			double d = v != NULL ? strtod(v, &end) : -1;
			if (v == NULL || *end != '\0' || !(d >= 1.0 / 64) || d > 4096)
				hs_cli_usage_error("view: --speed takes a number from 1/64 to 4096, not '%s'", v ? v : "");
			o->speed = d;
			i++;
		} else if (strcmp(a, "--paused") == 0) {
			o->paused = 1;
		} else {
			hs_cli_file_arg("view", a, &o->file);
		}
	}
	hs_cli_need_file("view", o->file);
}

/* --- reading the session ------------------------------------------------------------- */

static void fail(player *p, const char *what)
{
	snprintf(p->msg, sizeof p->msg, "%s: %s", what, hs_store_error(p->st));
	p->playing = p->following = 0;
}

/* The first event with seq >= seq: 1 with it in *e, 0 if none, -1 on error. */
static int event_at(player *p, uint64_t seq, hs_event *e)
{
	hs_source *s;
	if (hs_source_open(p->st, p->session, seq, &s) != 0)
		return -1;
	int r = hs_source_next(s, e);
	hs_source_close(s);
	return r;
}

static void copy_info(player *p, const hs_session_info *info)
{
	p->info = *info;
	p->info.command = p->info.transport = p->info.level = p->info.config = NULL;
	snprintf(p->status, sizeof p->status, "%s", hs_session_status_name(info->status));
	p->running = info->status == HS_SESSION_RUNNING;
}

/* The session's first and last events. The last: read on from where the
 * count says it is (seqs only skip where events were lost). */
static int bounds(player *p)
{
	hs_event e;
	int r = event_at(p, 0, &e);
	if (r < 0)
		return -1;
	if (r == 0) {
		p->empty = 1;
		return 0;
	}
	p->empty = 0;
	p->first_seq = e.seq;
	p->first_ts = e.ts;
	uint64_t first, last;
	if (hs_store_session_bounds(p->st, p->session, &first, &last) != 0 || event_at(p, last, &e) != 1)
		return -1;
	p->last_seq = e.seq;
	p->last_ts = e.ts;
	return 0;
}

static int open_source(player *p, uint64_t from)
{
	hs_source_close(p->src);
	p->src = NULL;
	p->have_next = 0;
	p->src_end = 0;
	if (hs_source_open(p->st, p->session, from, &p->src) != 0) {
		fail(p, "cannot read the session");
		return -1;
	}
	return 0;
}

/* Peeks at the event after the position: 1, 0 at the end, -1 on error. */
static int peek(player *p)
{
	if (p->have_next)
		return 1;
	if (p->src == NULL || p->src_end)
		return 0;
	int r = hs_source_next(p->src, &p->next);
	if (r < 0) {
		fail(p, "reading events");
		return -1;
	}
	if (r == 0) {
		p->src_end = 1;
		return 0;
	}
	p->have_next = 1;
	if (p->next.seq > p->last_seq || p->empty) {
		p->last_seq = p->next.seq;
		p->last_ts = p->next.ts;
		if (p->empty) {
			p->empty = 0;
			p->first_seq = p->next.seq;
			p->first_ts = p->next.ts;
		}
	}
	return 1;
}

static void apply_next(player *p)
{
	hs_event *e = &p->next;
	p->have_next = 0;
	if (hs_model_apply(p->m, e) != 0 && p->msg[0] == '\0') {
		snprintf(p->msg, sizeof p->msg, "the model diverged at %s", hs_model_error(p->m));
		p->playing = p->following = 0;
	}
	p->pos_seq = e->seq;
	p->pos_ts = e->ts;
	p->at_start = 0;
	p->ring[p->ring_head] = *e;
	p->ring_head = (p->ring_head + 1) % RECENT;
	if (p->ring_n < RECENT)
		p->ring_n++;
	if (e->kind == HS_EV_STATS)
		hs_tui_sample(p->tui, p->m);
}

/* Applies events with seq <= target (all of them: no budget; a seek). */
static void forward_to(player *p, uint64_t target)
{
	while (peek(p) == 1 && p->next.seq <= target && hs_model_error(p->m) == NULL)
		apply_next(p);
}

/* A fresh start: the empty model, the source at the first event. */
static int rewind_to_start(player *p)
{
	hs_model *m = hs_model_new();
	if (m == NULL) {
		snprintf(p->msg, sizeof p->msg, "out of memory");
		return -1;
	}
	hs_model_free(p->m);
	p->m = m;
	p->at_start = 1;
	p->pos_seq = 0;
	p->pos_ts = p->first_ts;
	p->ring_n = p->ring_head = 0;
	p->msg[0] = '\0';
	if (p->tui != NULL)
		hs_tui_reset_history(p->tui);
	return open_source(p, 0);
}

/* The model after event target (the last event with seq <= target). */
static void seek_seq(player *p, uint64_t target)
{
	if (!p->empty && target > p->last_seq)
		target = p->last_seq;
	int backward = !p->at_start && target < p->pos_seq;
	uint64_t kf_seq = 0;
	void *blob = NULL;
	size_t len = 0;
	int r = hs_store_keyframe_at(p->st, p->session, target, &kf_seq, &blob, &len);
	if (r < 0) {
		fail(p, "reading keyframes");
		return;
	}
	int use_kf = r == 0 && (backward || p->at_start ? 1 : kf_seq > p->pos_seq && target - p->pos_seq > FORWARD_LIMIT);
	if (use_kf) {
		char err[160];
		hs_model *m = hs_model_load(blob, len, err, sizeof err);
		if (m == NULL) {
			snprintf(p->msg, sizeof p->msg, "keyframe at seq %" PRIu64 ": %s", kf_seq, err);
			use_kf = 0;
		} else {
			hs_model_free(p->m);
			p->m = m;
			p->at_start = 0;
			p->pos_seq = kf_seq;
			hs_event e;
			p->pos_ts = event_at(p, kf_seq, &e) == 1 ? e.ts : p->pos_ts;
			p->ring_n = p->ring_head = 0;
			p->msg[0] = '\0';
			hs_tui_reset_history(p->tui);
			open_source(p, kf_seq + 1);
		}
	}
	free(blob);
	if (!use_kf && backward && rewind_to_start(p) != 0)
		return;
	forward_to(p, target);
}

/* The largest seq whose event happened at most ns after the first event. */
static void seek_time(player *p, uint64_t ns)
{
	if (p->empty)
		return;
	uint64_t seq;
	hs_event e;
	if (hs_store_seq_at_time(p->st, p->session, ns, &seq) != 0 || event_at(p, seq, &e) != 1) {
		fail(p, "seeking");
		return;
	}
	/* The last event at or before the time, not the first after it. */
	if (e.ts > p->first_ts + ns && seq > p->first_seq)
		seq--;
	seek_seq(p, seq);
}

static void step(player *p, int64_t delta)
{
	p->playing = p->following = 0;
	if (delta > 0) {
		for (int64_t i = 0; i < delta && peek(p) == 1 && hs_model_error(p->m) == NULL; i++)
			apply_next(p);
		return;
	}
	if (p->at_start)
		return;
	uint64_t back = (uint64_t)-delta;
	if (p->pos_seq < p->first_seq + back)
		rewind_to_start(p);
	else
		seek_seq(p, p->pos_seq - back);
}

/* --- playing ----------------------------------------------------------------------------- */

static void start_playing(player *p)
{
	p->playing = 1;
	p->clock_ts = p->at_start ? p->first_ts : p->pos_ts;
	p->last_tick = mono_ns();
}

/* Applies what the clock has reached, within the budget. */
static void play_tick(player *p, uint64_t now)
{
	uint64_t dt = now - p->last_tick;
	p->last_tick = now;
	p->clock_ts += (uint64_t)((double)dt * p->speed);
	uint64_t deadline = now + BUDGET_NS;
	unsigned n = 0;
	while (peek(p) == 1 && p->next.ts <= p->clock_ts && hs_model_error(p->m) == NULL) {
		apply_next(p);
		if ((++n & 1023) == 0 && mono_ns() > deadline) {
			p->clock_ts = p->pos_ts; /* behind: wait for the events */
			return;
		}
	}
	if (p->src_end) {
		if (p->running) {
			p->playing = 0;
			p->following = 1;
		} else {
			p->playing = 0;
		}
	} else if (p->have_next && p->next.ts > p->clock_ts + 2000000000ull && p->speed <= 1) {
		/* Nothing for a long while: keep the clock near the next event's time,
		 * a gap in the recording is not worth waiting for in full. */
		p->clock_ts = p->next.ts - 1000000000ull;
	}
}

/* At the end of a running session: pick up what was committed since. */
static void follow_tick(player *p, uint64_t now)
{
	if (now - p->last_info >= INFO_NS) {
		p->last_info = now;
		hs_session_info info;
		if (hs_store_session_get(p->st, p->session, &info) == 0) {
			copy_info(p, &info);
			if (!p->running)
				p->following = 0;
		}
	}
	if (now - p->last_poll < POLL_NS)
		return;
	p->last_poll = now;
	if (open_source(p, p->at_start ? 0 : p->pos_seq + 1) != 0)
		return;
	uint64_t deadline = now + BUDGET_NS;
	unsigned n = 0;
	while (peek(p) == 1 && hs_model_error(p->m) == NULL) {
		apply_next(p);
		if ((++n & 1023) == 0 && mono_ns() > deadline)
			break;
	}
}

static void command(player *p, const hs_tui_cmd *c, int *quit)
{
	switch (c->kind) {
	case HS_TUI_CMD_QUIT:
		*quit = 1;
		break;
	case HS_TUI_CMD_PAUSE:
		if (p->playing || p->following) {
			p->playing = p->following = 0;
		} else if (!p->have_next && p->src_end && !p->running) {
			/* At the end of a finished session: play again from the start. */
			rewind_to_start(p);
			start_playing(p);
		} else {
			start_playing(p);
		}
		break;
	case HS_TUI_CMD_STEP:
		step(p, c->delta);
		break;
	case HS_TUI_CMD_SEEK_SEQ:
		p->following = 0;
		seek_seq(p, c->value);
		if (p->playing)
			start_playing(p);
		break;
	case HS_TUI_CMD_SEEK_TIME:
		p->following = 0;
		seek_time(p, c->value);
		if (p->playing)
			start_playing(p);
		break;
	case HS_TUI_CMD_SEEK_FRAC:
		p->following = 0;
		if (c->value == 0)
			rewind_to_start(p);
		else
			seek_seq(p, p->first_seq + (uint64_t)((long double)(p->last_seq - p->first_seq) * c->value / 1e6L));
		if (c->value >= 1000000 && p->running)
			p->following = 1;
		else if (p->playing)
			start_playing(p);
		break;
	case HS_TUI_CMD_SPEED:
		p->speed = c->delta > 0 ? p->speed * 2 : p->speed / 2;
		if (p->speed > 4096)
			p->speed = 4096;
		if (p->speed < 1.0 / 64)
			p->speed = 1.0 / 64;
		break;
	case HS_TUI_CMD_NONE:
		break;
	}
}

static void fill_replay(player *p, hs_tui_replay *r)
{
	for (unsigned i = 0; i < p->ring_n; i++)
		p->recent[i] = p->ring[(p->ring_head + RECENT - p->ring_n + i) % RECENT];
	*r = (hs_tui_replay){ .first_seq = p->first_seq, .last_seq = p->last_seq, .pos_seq = p->pos_seq,
			      .at_start = p->at_start, .first_ts = p->first_ts, .last_ts = p->last_ts,
			      .pos_ts = p->pos_ts, .speed = p->speed, .playing = p->playing,
			      .following = p->following, .status = p->status, .title = p->title,
			      .lost = p->info.nlost, .recent = p->recent, .nrecent = p->ring_n,
			      .message = p->msg[0] ? p->msg : NULL };
}

/* --- the command ------------------------------------------------------------------------- */

static void open_session(const view_opts *o, player *p)
{
	hs_session_info info;
	p->session = o->session;
	p->st = hs_cli_open_session(o->file, &p->session, &info);
	copy_info(p, &info);
	snprintf(p->title, sizeof p->title, "%s session %" PRId64 " (%s)", o->file, p->session,
		 info.command != NULL ? info.command : "?");
	if (bounds(p) != 0)
		hs_cli_usage_error("%s: %s", o->file, hs_store_error(p->st));
	if ((p->m = hs_model_new()) == NULL)
		hs_cli_usage_error("view: out of memory");
	p->at_start = 1;
	p->speed = o->speed;
}

int hs_cmd_view(int argc, char **argv)
{
	view_opts o;
	parse(argc, argv, &o);
	player p = { 0 };
	open_session(&o, &p);

	char err[256];
	p.tui = hs_tui_open(NULL, NULL, err, sizeof err);
	if (p.tui == NULL)
		hs_cli_usage_error("view: %s", err);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* Where to start: --at, else the end of a running session, else the start. */
	open_source(&p, 0);
	if (o.at != NULL) {
		uint64_t v;
		int is_time;
		hs_tui_parse_seek(o.at, &v, &is_time);
		if (is_time)
			seek_time(&p, v);
		else
			seek_seq(&p, v);
	} else if (p.running && !p.empty) {
		seek_seq(&p, p.last_seq);
	}
	if (p.running && o.at == NULL && !o.paused)
		p.following = 1;
	else if (!o.paused)
		start_playing(&p);

	int quit = 0;
	while (!quit && !stop_requested) {
		hs_tui_replay r;
		hs_tui_cmd cmds[32];
		fill_replay(&p, &r);
		int n = hs_tui_replay_frame(p.tui, p.m, &r, cmds, 32);
		for (int i = 0; i < n && !quit; i++)
			command(&p, &cmds[i], &quit);
		if (quit)
			break;
		uint64_t now = mono_ns();
		if (p.playing)
			play_tick(&p, now);
		else if (p.following)
			follow_tick(&p, now);
		uint64_t spent = mono_ns() - now;
		int busy = p.playing || p.following;
		int wait_ms = busy ? (spent < TICK_NS ? (int)((TICK_NS - spent) / 1000000u) : 0) : IDLE_MS;
		if (wait_ms > 0 && n == 0)
			hs_tui_wait(p.tui, wait_ms);
	}
	hs_tui_close(p.tui);
	hs_source_close(p.src);
	hs_model_free(p.m);
	hs_store_close(p.st);
	return HS_EXIT_OK;
}
