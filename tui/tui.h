/*
 * tui/tui.h — the ncurses interface: the heap live and in replay.
 *
 * The TUI draws one frame at a time from a model (core/model.h) and nothing
 * else: a live recorder (cli/run.c) and the replay controller (cli/view.c)
 * each own a model, feed it events, and call a frame function about every
 * 50 ms. A frame first reads the pending keys (never waiting for one), then
 * samples what it shows from the model, then draws into ncurses' off-screen
 * buffer, and sends the difference to the terminal once (doupdate). Live and
 * replay are one code path; replay adds the timeline pane and returns the
 * user's timeline commands (pause, step, seek, speed) to its controller.
 *
 * Panes (docs/tui.md has a capture of each): summary levels, chunk bitmaps,
 * spans, statistics, scavenger, timeline (replay only). One pane fills the
 * main area; Tab cycles; on a wide terminal the statistics stay beside it.
 *
 * Threads: one thread calls every function of one hs_tui. Only one hs_tui may
 * be open at a time (ncurses has one current screen).
 *
 * The second half of this header (under HS_TUI_INTERNAL) is what the files of
 * tui/ share; outside tui/ only the first half is meant to be used.
 */
#ifndef HS_TUI_H
#define HS_TUI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"

typedef struct hs_tui hs_tui;

/* What the recorder knows that the model does not. */
typedef struct hs_tui_live {
	uint64_t events, lost; /* so far */
	double events_per_s;   /* recent rate */
	uint64_t wait_ns;      /* producers' wait time so far */
	int finished;	       /* the workload has exited; keep showing until q */
	const char *title;     /* e.g. workload name + session file */
} hs_tui_live;

/*
 * Opens the TUI on the terminal: newterm on stdin/stdout, or on the given FILE
 * pair (benchmarks pass a pseudo-terminal). NULL, with a one-line reason in
 * err, when there is no usable terminal (not a tty, TERM unset or unknown).
 * Sets the locale from the environment (LC_NUMERIC stays "C") to choose
 * between UTF-8 glyphs and ASCII; NO_COLOR (non-empty) or a terminal without
 * colours gives the monochrome rendering.
 */
hs_tui *hs_tui_open(FILE *out, FILE *in, char *err, size_t errlen);

/* Draws one frame from the model and handles pending keys without blocking;
 * returns 1 when the user asked to quit. m may be NULL (--no-model) or have
 * no heap yet: the panes say so. */
int hs_tui_live_frame(hs_tui *t, hs_model *m, const hs_tui_live *live);

/* Shows a one-line notice on the status line for a few seconds (err: in the
 * error colour). While the TUI is open, stderr would scribble over the screen;
 * a recorder reports through this instead (the text is copied). */
void hs_tui_notice(hs_tui *t, int err, const char *msg);

/* Restores the terminal and frees t. NULL is a no-op. */
void hs_tui_close(hs_tui *t);

/* --- replay ------------------------------------------------------------------ */

/* Where a replay stands, as its controller tells the timeline. */
typedef struct hs_tui_replay {
	uint64_t first_seq, last_seq; /* the session's events so far: [first, last], inclusive */
	uint64_t pos_seq;	      /* the last event applied to the model */
	int at_start;		      /* no event applied yet (pos_seq means nothing) */
	uint64_t first_ts, last_ts;   /* ts of the first event and the latest known one */
	uint64_t pos_ts;	      /* ts of the last event applied */
	double speed;		      /* multiple of recorded time */
	int playing, following;	      /* following: at the end of a running session */
	const char *status;	      /* the session's status name */
	const char *title;	      /* file and session */
	uint64_t lost;		      /* events the session lost */
	const hs_event *recent;	      /* the last events applied, oldest first */
	unsigned nrecent;
	const char *message; /* a notice or error from the controller, or NULL */
} hs_tui_replay;

typedef enum hs_tui_cmd_kind {
	HS_TUI_CMD_NONE,
	HS_TUI_CMD_QUIT,
	HS_TUI_CMD_PAUSE,     /* toggle play/pause */
	HS_TUI_CMD_STEP,      /* move by delta events (negative: back) */
	HS_TUI_CMD_SEEK_SEQ,  /* go to the state after event value */
	HS_TUI_CMD_SEEK_TIME, /* go to value ns after the first event */
	HS_TUI_CMD_SEEK_FRAC, /* go to value / 1e6 of the session (timeline clicks) */
	HS_TUI_CMD_SPEED,     /* delta > 0 faster, < 0 slower */
} hs_tui_cmd_kind;

typedef struct hs_tui_cmd {
	hs_tui_cmd_kind kind;
	int64_t delta;
	uint64_t value;
} hs_tui_cmd;

/*
 * Draws one replay frame (with the timeline) and handles pending keys without
 * blocking. The timeline keys become commands for the controller, written to
 * cmds (at most max); returns how many. A quit is HS_TUI_CMD_QUIT.
 */
int hs_tui_replay_frame(hs_tui *t, hs_model *m, const hs_tui_replay *r, hs_tui_cmd *cmds, int max);

/* Waits up to ms milliseconds for input (or a resize); returns at once when a
 * key is pending. For controllers that have nothing to do between frames. */
void hs_tui_wait(hs_tui *t, int ms);

/* Takes a statistics sample for the sparklines if the model has a new one.
 * Frames do this themselves; a controller that applies many events between
 * frames (a seek) calls it after each stats event so no sample is missed. */
void hs_tui_sample(hs_tui *t, hs_model *m);

/* Forgets the sampled history (after the model went back in time). */
void hs_tui_reset_history(hs_tui *t);

/* Makes the next frame repaint the whole screen (Ctrl-L does the same). */
void hs_tui_redraw(hs_tui *t);

/* Shows pane p (0 summary, 1 chunks, 2 spans, 3 statistics, 4 scavenger,
 * 5 timeline). For benchmarks and tests; users press Tab or 1-6. */
void hs_tui_focus(hs_tui *t, int p);

/* Parses a seek target: "123" is a sequence number (*is_time 0); "2.5s",
 * "300ms", "40us", "1m" are times in ns (*is_time 1). 0, or -1 if neither. */
int hs_tui_parse_seek(const char *s, uint64_t *value, int *is_time);


#ifdef HS_TUI_INTERNAL
/* ======================== internal to tui/ ================================== */

#include <time.h>

#include "pagealloc.h"

/* The smallest terminal every pane fits in; below it one line says so. */
#define HS_TUI_MIN_COLS 60
#define HS_TUI_MIN_ROWS 20
/* From this width on, the statistics stay beside the focused pane. */
#define HS_TUI_SIDE_MIN_COLS 150
#define HS_TUI_SIDE_COLS 52

/* --- panes (an X-macro: id, tab label, live?) ---------------------------- */
#define HS_TUI_PANES(X)                            \
	X(SUMMARY, "Summary", 1)                   \
	X(CHUNKS, "Chunks", 1)                     \
	X(SPANS, "Spans", 1)                       \
	X(STATS, "Statistics", 1)                  \
	X(SCAV, "Scavenger", 1)                    \
	X(TIMELINE, "Timeline", 0)

enum {
#define HS_TUI_PANE_ENUM_(ID, label, live) HS_PANE_##ID,
	HS_TUI_PANES(HS_TUI_PANE_ENUM_)
#undef HS_TUI_PANE_ENUM_
	HS_PANE_COUNT
};

/* --- glyphs (id, UTF-8, ASCII, legend) -------------------------------------
 * Summary shades go from no free page to wholly free; chunk pages are the
 * four combinations of the alloc and scavenged bits. */
#define HS_TUI_GLYPHS(X)                                                     \
	X(BLANK, " ", ' ', "not in the heap")                                \
	X(SH_FULL, "\u2588", '#', "no free page")                            \
	X(SH_Q1, "\u2593", '=', "largest free run < 1/4 of the entry")        \
	X(SH_Q2, "\u2592", '-', "< 1/2")                                     \
	X(SH_Q3, "\u2591", '.', "< all")                                     \
	X(SH_FREE, "\u00b7", 'o', "wholly free")                             \
	X(MARK_START, "\u25b8", '>', "entry starts with free pages")          \
	X(MARK_END, "\u25c2", '<', "entry ends with free pages")              \
	X(MARK_BOTH, "\u25c6", 'x', "both, in one column")                    \
	X(SEP, "\u250a", '|', "gap between in-use ranges")                    \
	X(PG_ALLOC, "\u2588", '#', "allocated")                              \
	X(PG_FREE, "\u00b7", '.', "free")                                    \
	X(PG_SCAV, "\u2591", ':', "free and scavenged (released)")            \
	X(PG_BAD, "!", '!', "allocated and scavenged (impossible)")          \
	X(PG_SEARCH, "@", '@', "searchAddr")                                 \
	X(SP_FULL, "\u2588", 'F', "span full")                               \
	X(SP_PARTIAL, "\u2593", 'P', "span partial")                          \
	X(SP_CACHED, "\u2592", 'C', "span in an mcache")                      \
	X(SP_NEW, "\u259e", 'N', "span new / unfiled")                        \
	X(SP_LARGE, "\u2587", 'L', "large object span")                      \
	X(SP_NOSPAN, "\u2596", '?', "allocated, no span (page cache, scavenger)") \
	X(BAR_LIVE, "\u2588", '#', "live objects")                           \
	X(BAR_SLOTS, "\u2593", '+', "free slots in in-use spans")            \
	X(BAR_PAGES, "\u2592", '-', "free unscavenged pages")                \
	X(BAR_META, "\u2591", 'm', "metadata")                               \
	X(BAR_OTHER, "\u2500", '_', "other")                                      \
	X(POS, "\u25cf", 'o', "position")                                    \
	X(TRACK, "\u2500", '-', "")                                          \
	X(DONE, "\u2501", '=', "")                                           \
	X(VBAR, "\u2502", '|', "")                                           \
	X(HBAR, "\u2500", '-', "")                                           \
	X(CORNER_TL, "\u250c", '+', "")                                      \
	X(CORNER_TR, "\u2510", '+', "")                                      \
	X(CORNER_BL, "\u2514", '+', "")                                      \
	X(CORNER_BR, "\u2518", '+', "")                                      \
	X(PLAY, "\u25b6", '>', "")                                           \
	X(PAUSE, "\u2016", '"', "")                                          \
	X(CURSOR, "\u25b8", '>', "")

enum {
#define HS_TUI_GLYPH_ENUM_(ID, u, a, legend) HS_G_##ID,
	HS_TUI_GLYPHS(HS_TUI_GLYPH_ENUM_)
#undef HS_TUI_GLYPH_ENUM_
	HS_G_COUNT
};

/* --- colours (id, foreground, background, monochrome attribute) ---------- */
#define HS_TUI_COLORS(X)                                    \
	X(NORMAL, -1, -1, 0)                                \
	X(TITLE, COLOR_BLACK, COLOR_CYAN, A_REVERSE)        \
	X(TAB, -1, -1, 0)                                   \
	X(TAB_ON, COLOR_BLACK, COLOR_YELLOW, A_REVERSE)     \
	X(DIM, COLOR_BLUE, -1, A_DIM)                       \
	X(LABEL, COLOR_CYAN, -1, A_BOLD)                    \
	X(FULL, COLOR_RED, -1, 0)                           \
	X(LOW, COLOR_MAGENTA, -1, 0)                        \
	X(MID, COLOR_YELLOW, -1, 0)                         \
	X(HIGH, COLOR_GREEN, -1, 0)                         \
	X(FREE, COLOR_GREEN, -1, A_BOLD)                    \
	X(SCAV, COLOR_BLUE, -1, 0)                          \
	X(ALLOC, COLOR_WHITE, -1, 0)                        \
	X(BAD, COLOR_WHITE, COLOR_RED, A_BLINK)             \
	X(SEARCH, COLOR_BLACK, COLOR_YELLOW, A_BOLD)        \
	X(CURSOR, COLOR_BLACK, COLOR_WHITE, A_REVERSE)      \
	X(OK, COLOR_GREEN, -1, A_BOLD)                      \
	X(WARN, COLOR_YELLOW, -1, A_BOLD)                   \
	X(ERR, COLOR_RED, -1, A_BOLD)                       \
	X(SPARK, COLOR_CYAN, -1, 0)                         \
	X(BAR_LIVE, COLOR_RED, -1, 0)                       \
	X(BAR_SLOTS, COLOR_YELLOW, -1, 0)                   \
	X(BAR_PAGES, COLOR_GREEN, -1, 0)                    \
	X(BAR_META, COLOR_MAGENTA, -1, 0)                   \
	X(BAR_OTHER, COLOR_WHITE, -1, 0)

enum {
#define HS_TUI_COLOR_ENUM_(ID, fg, bg, mono) HS_C_##ID,
	HS_TUI_COLORS(HS_TUI_COLOR_ENUM_)
#undef HS_TUI_COLOR_ENUM_
	HS_C_COUNT
};
/* Colour pairs after the table's: one per size class (span page map). */
#define HS_C_CLASS_BASE 32

/* --- actions and key bindings (key, action, scope, label, help) ------------
 * Scopes: 0 everywhere, else 1 + the pane. The help overlay lists this table. */
enum {
	HS_A_NONE,
	HS_A_QUIT, HS_A_HELP, HS_A_NEXT_PANE, HS_A_PREV_PANE, HS_A_PANE1, HS_A_PANE2, HS_A_PANE3,
	HS_A_PANE4, HS_A_PANE5, HS_A_PANE6, HS_A_LEFT, HS_A_RIGHT, HS_A_UP, HS_A_DOWN, HS_A_PGUP,
	HS_A_PGDN, HS_A_HOME, HS_A_END, HS_A_ENTER, HS_A_BACK, HS_A_FIND, HS_A_HEAP, HS_A_REDRAW,
	HS_A_PAUSE, HS_A_STEP_BACK, HS_A_STEP_FWD, HS_A_BACK_1000, HS_A_FWD_1000, HS_A_SEEK,
	HS_A_FASTER, HS_A_SLOWER, HS_A_SEARCHADDR, HS_A_FILTER_STATE, HS_A_FILTER_CLASS,
	HS_A_COUNT
};

#define HS_TUI_SCOPE_ALL 0
#define HS_TUI_SCOPE_REPLAY 7 /* everywhere, in replay only */

/* ctrl('l') and friends */
#define HS_TUI_CTRL(c) ((c) & 0x1f)

#define HS_TUI_KEYS(X)                                                                          \
	X('q', HS_A_QUIT, 0, "q", "quit")                                                        \
	X('?', HS_A_HELP, 0, "?", "this help")                               \
	X('\t', HS_A_NEXT_PANE, 0, "Tab", "next pane")                                           \
	X(KEY_BTAB, HS_A_PREV_PANE, 0, "S-Tab", "previous pane")                                 \
	X('1', HS_A_PANE1, 0, "1-6", "go to pane 1..6")                                          \
	X('2', HS_A_PANE2, 0, NULL, NULL)                                                        \
	X('3', HS_A_PANE3, 0, NULL, NULL)                                                        \
	X('4', HS_A_PANE4, 0, NULL, NULL)                                                        \
	X('5', HS_A_PANE5, 0, NULL, NULL)                                                        \
	X('6', HS_A_PANE6, 0, NULL, NULL)                                                        \
	X(KEY_LEFT, HS_A_LEFT, 0, "<- h", "left / previous")                                     \
	X('h', HS_A_LEFT, 0, NULL, NULL)                                                         \
	X(KEY_RIGHT, HS_A_RIGHT, 0, "-> l", "right / next")                                      \
	X('l', HS_A_RIGHT, 0, NULL, NULL)                                                        \
	X(KEY_UP, HS_A_UP, 0, "up k", "up")                                                      \
	X('k', HS_A_UP, 0, NULL, NULL)                                                           \
	X(KEY_DOWN, HS_A_DOWN, 0, "down j", "down")                                              \
	X('j', HS_A_DOWN, 0, NULL, NULL)                                                         \
	X(KEY_PPAGE, HS_A_PGUP, 0, "PgUp", "page up / previous chunk")                           \
	X(KEY_NPAGE, HS_A_PGDN, 0, "PgDn", "page down / next chunk")                             \
	X(KEY_HOME, HS_A_HOME, 0, "Home", "first")                                               \
	X(KEY_END, HS_A_END, 0, "End", "last")                                                   \
	X('\n', HS_A_ENTER, 0, "Enter", "zoom in / open")                                        \
	X('\r', HS_A_ENTER, 0, NULL, NULL)                                                       \
	X(KEY_ENTER, HS_A_ENTER, 0, NULL, NULL)                                                  \
	X(KEY_BACKSPACE, HS_A_BACK, 0, "Bksp", "zoom out / back")                                \
	X(127, HS_A_BACK, 0, NULL, NULL)                                                         \
	X(8, HS_A_BACK, 0, NULL, NULL)                                                           \
	X('/', HS_A_FIND, 0, "/", "find an address")                                            \
	X('p', HS_A_HEAP, 0, "p", "next heap (process)")                                         \
	X(HS_TUI_CTRL('l'), HS_A_REDRAW, 0, "C-l", "repaint")                                    \
	X('s', HS_A_SEARCHADDR, 1 + HS_PANE_CHUNKS, "s", "to searchAddr's chunk")             \
	X('f', HS_A_FILTER_STATE, 1 + HS_PANE_SPANS, "f", "filter by state (cycles)")            \
	X('c', HS_A_FILTER_CLASS, 1 + HS_PANE_SPANS, "c", "filter by size class")                \
	X(' ', HS_A_PAUSE, HS_TUI_SCOPE_REPLAY, "Space", "pause / play")                         \
	X(',', HS_A_STEP_BACK, HS_TUI_SCOPE_REPLAY, ", .", "one event back / forward") \
	X('.', HS_A_STEP_FWD, HS_TUI_SCOPE_REPLAY, NULL, NULL)                                   \
	X('[', HS_A_BACK_1000, HS_TUI_SCOPE_REPLAY, "[ ]", "1000 events back / forward")   \
	X(']', HS_A_FWD_1000, HS_TUI_SCOPE_REPLAY, NULL, NULL)                                   \
	X('g', HS_A_SEEK, HS_TUI_SCOPE_REPLAY, "g", "seek: a seq, or a time (2.5s)") \
	X('+', HS_A_FASTER, HS_TUI_SCOPE_REPLAY, "+ -", "faster / slower")                       \
	X('=', HS_A_FASTER, HS_TUI_SCOPE_REPLAY, NULL, NULL)                                     \
	X('-', HS_A_SLOWER, HS_TUI_SCOPE_REPLAY, NULL, NULL)

/* --- layout (tui/layout.c: pure functions, unit-tested) ------------------- */

typedef struct hs_tui_rect {
	int y, x, h, w;
} hs_tui_rect;

typedef struct hs_tui_layout {
	int too_small;
	hs_tui_rect header, tabs, main, side, status;
	int has_side;
} hs_tui_layout;

/* Splits a rows x cols screen: header, tab bar, main pane, optional side pane
 * (the statistics, at HS_TUI_SIDE_MIN_COLS and more), status line. */
void hs_tui_layout_compute(int rows, int cols, hs_tui_layout *out);

/* Summary shading: the shade (HS_G_SH_FULL .. HS_G_SH_FREE) of a summary whose
 * largest free run is max pages, covering `cover` pages (cover > 0). */
int hs_tui_shade(uint64_t max, uint64_t cover);

/* A run of chunk indices [lo, hi) to lay out across a row. */
typedef struct hs_tui_seg {
	uintptr_t lo, hi;
} hs_tui_seg;

/* One cell of a row: screen columns [x, x+w) showing chunks [c0, c1);
 * c0 == c1 marks a separator between two segments. */
typedef struct hs_tui_cell {
	int x, w;
	uintptr_t c0, c1;
} hs_tui_cell;

/*
 * Lays segments (sorted, disjoint, non-empty) across width columns: every
 * chunk gets the same number of columns when they fit, else every column the
 * same number of chunks (k, the smallest that fits), never mixing segments in
 * a cell; one separator column between segments when there is room (at most a
 * quarter of the width). Writes at most max cells; returns how many. Segments
 * that do not fit at one column each are left out (the count is still right
 * for those drawn).
 */
int hs_tui_colmap(const hs_tui_seg *segs, size_t nsegs, int width, hs_tui_cell *cells, int max);

/* The level of sparkline glyph (0..levels-1) for v in [0, max]. */
int hs_tui_spark_level(uint64_t v, uint64_t max, int levels);

/* Splits width columns among n parts in proportion to parts[] (sum over total;
 * total >= the sum), rounding so that the widths add up to the share of the
 * sum; writes widths[]. */
void hs_tui_bar_split(const uint64_t *parts, int n, uint64_t total, int width, int *widths);

/* Human bytes: "0 B", "512 B", "12.3 KiB", "4.00 GiB" into buf. */
const char *hs_tui_bytes(uint64_t v, char *buf, size_t len);
/* Human counts: "999", "12.3k", "4.56M". */
const char *hs_tui_count(double v, char *buf, size_t len);
/* Parses an address or sequence number: decimal, or hex with 0x; 0 on success. */
int hs_tui_parse_u64(const char *s, uint64_t *out);

/* --- state ------------------------------------------------------------------- */

typedef struct hs_tui_point {
	uint64_t ts, events;
	uint64_t stats[6];
	uint64_t scav_released, scav_cpu_ns, scav_goal, scav_retained;
} hs_tui_point;

#define HS_TUI_HISTORY 1024 /* samples per heap: 100 s at one per 100 ms */
#define HS_TUI_MAX_HEAPS 64

typedef struct hs_tui_history {
	uint32_t pid;
	int used;
	uint64_t last_ts;
	hs_tui_point s[HS_TUI_HISTORY];
	unsigned head, n; /* ring: n samples, the newest at head - 1 */
} hs_tui_history;

/* A sorted copy of one heap's spans, rebuilt when the model moved on. */
typedef struct hs_tui_span_cache {
	const hs_model_heap *heap;
	uint64_t events;
	uint64_t built_ns;
	hs_model_span *v;
	size_t n, cap;
	size_t *filtered; /* indices into v that pass the filter */
	size_t nfiltered, fcap;
	int filter_state, filter_class; /* as of the filtered list */
	/* RSS bar figures over all spans */
	uint64_t live_bytes, slot_bytes, large_bytes;
} hs_tui_span_cache;

typedef struct hs_tui_region {
	int y, x0, x1; /* row y, columns [x0, x1) */
	int kind;
	uint64_t value;
} hs_tui_region;

enum { HS_R_TAB = 1, HS_R_SUMMARY, HS_R_PAGE, HS_R_SPAN_ROW, HS_R_TIMELINE, HS_R_CHUNK_ROW };

#define HS_TUI_MAX_REGIONS 1024
#define HS_TUI_MAX_CMDS 32

enum { HS_PROMPT_NONE, HS_PROMPT_FIND, HS_PROMPT_SEEK, HS_PROMPT_CLASS };

/* Span filters by state. */
enum { HS_SF_ALL, HS_SF_NEW, HS_SF_CACHED, HS_SF_PARTIAL, HS_SF_FULL, HS_SF_LARGE, HS_SF_COUNT };

struct hs_tui {
	void *screen; /* SCREEN * */
	FILE *out, *in;
	int utf8, color, colors256, default_colors, mouse;
	int rows, cols;
	hs_tui_layout lay;
	int pane, help, replay;
	int redraw;
	uint64_t frame;

	/* this frame's inputs */
	hs_model *m, *last_m;
	hs_model_heap *h;
	unsigned heap_idx;
	uint32_t heap_pid;
	const hs_tui_live *live;
	const hs_tui_replay *rp;

	/* summary pane */
	int sum_root_level; /* -1: the whole heap */
	uintptr_t sum_root_idx;
	int sum_level;
	uintptr_t sum_idx;
	int sum_valid;
	/* chunk pane */
	uintptr_t chunk;
	int chunk_valid;
	int page; /* cursor page in the chunk, -1 none */
	/* spans pane */
	hs_tui_span_cache spans;
	size_t span_sel, span_top;
	int span_filter_state, span_filter_class;
	uintptr_t arena; /* arena index shown by the page map */
	int arena_valid;
	uintptr_t span_sel_base;

	/* history for the sparklines, per heap */
	hs_tui_history *hist[HS_TUI_MAX_HEAPS];

	/* prompt line */
	int prompt;
	char pbuf[64];
	size_t plen;
	char msg[200];
	int msg_err;
	uint64_t msg_until;

	/* mouse */
	hs_tui_region reg[HS_TUI_MAX_REGIONS];
	int nreg;
	uint64_t click_ns;
	int click_y, click_x;

	/* replay commands queued by this frame's keys */
	hs_tui_cmd cmds[HS_TUI_MAX_CMDS];
	int ncmds;
	int quit;
};

/* --- tui/draw.c: glyphs, colours, text ---------------------------------------- */
void hs_tui_draw_init(hs_tui *t);
/* The attribute (colour pair or monochrome attribute) of colour id c. */
int hs_tui_attr(const hs_tui *t, int c);
/* The colour pair of size class sc (1..67) for the span page map, or 0. */
int hs_tui_class_attr(const hs_tui *t, unsigned sizeclass);
void hs_tui_glyph(hs_tui *t, int y, int x, int g, int attr);
void hs_tui_glyphs(hs_tui *t, int y, int x, int g, int n, int attr);
/* A legend line: each item's glyph in its colour and its text, as many as fit in w. */
typedef struct hs_tui_legend_item {
	int g, c;
	const char *text;
} hs_tui_legend_item;
void hs_tui_legend(hs_tui *t, int y, int x, int w, const hs_tui_legend_item *items, size_t n);
/* Text clipped to w columns (ASCII only); returns the columns written. */
int hs_tui_text(hs_tui *t, int y, int x, int w, int attr, const char *s);
__attribute__((format(printf, 6, 7))) int hs_tui_printf(hs_tui *t, int y, int x, int w, int attr,
							 const char *fmt, ...);
void hs_tui_fill(hs_tui *t, int y, int x, int w, int attr);
/* A box outline with a title. */
void hs_tui_box(hs_tui *t, hs_tui_rect r, int attr, const char *title);
/* A one-row sparkline of the last w values (oldest first) scaled to max. */
void hs_tui_spark(hs_tui *t, int y, int x, int w, const uint64_t *v, int n, uint64_t max, int attr);
/* An h-row plot of values (braille in UTF-8: two samples per column). */
void hs_tui_plot(hs_tui *t, hs_tui_rect r, const uint64_t *v, int n, uint64_t max, int attr);
/* A pane title row: "name  detail" with the rest of the row cleared. */
void hs_tui_title(hs_tui *t, hs_tui_rect r, const char *name, const char *detail);
void hs_tui_region_add(hs_tui *t, int y, int x0, int x1, int kind, uint64_t value);
void hs_tui_message(hs_tui *t, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t hs_tui_now_ns(void);

/* --- the panes: draw into r; key actions return 1 when handled --------------- */
void hs_tui_summary_draw(hs_tui *t, hs_tui_rect r);
int hs_tui_summary_key(hs_tui *t, int action);
void hs_tui_summary_click(hs_tui *t, uint64_t value, int dbl);
/* Puts the summary cursor on the leaf entry of chunk ci (zoom reset). */
void hs_tui_summary_goto_chunk(hs_tui *t, uintptr_t ci);

void hs_tui_chunk_draw(hs_tui *t, hs_tui_rect r);
int hs_tui_chunk_key(hs_tui *t, int action);
/* Shows the chunk holding addr, cursor on its page; 0, or -1 if not in the heap. */
int hs_tui_chunk_goto(hs_tui *t, uintptr_t addr);

void hs_tui_spans_draw(hs_tui *t, hs_tui_rect r);
int hs_tui_spans_key(hs_tui *t, int action);
/* Refreshes the sorted span copy if the model moved on (or force). */
void hs_tui_spans_refresh(hs_tui *t, int force);
/* Selects the span holding addr (clearing filters that hide it); 0 or -1. */
int hs_tui_spans_goto(hs_tui *t, uintptr_t addr);
const hs_model_span *hs_tui_span_at(hs_tui *t, uintptr_t addr);
/* Selects entry i of the filtered list (clamped); the map follows its arena. */
void hs_tui_spans_select(hs_tui *t, size_t i);
void hs_tui_spans_free(hs_tui *t);

void hs_tui_stats_draw(hs_tui *t, hs_tui_rect r, int compact);
void hs_tui_scav_draw(hs_tui *t, hs_tui_rect r);
hs_tui_history *hs_tui_history_of(hs_tui *t, uint32_t pid);
void hs_tui_history_free(hs_tui *t);

void hs_tui_timeline_draw(hs_tui *t, hs_tui_rect r);
int hs_tui_timeline_key(hs_tui *t, int action);
void hs_tui_status_draw(hs_tui *t, hs_tui_rect r);
void hs_tui_cmd_push(hs_tui *t, hs_tui_cmd_kind kind, int64_t delta, uint64_t value);

/* The chunks of heap h's in-use ranges, within [lo, hi), as segments; returns
 * how many were written (at most max). */
size_t hs_tui_heap_segs(const hs_model_heap *h, uintptr_t lo, uintptr_t hi, hs_tui_seg *segs, size_t max);

#endif /* HS_TUI_INTERNAL */

#endif /* HS_TUI_H */
