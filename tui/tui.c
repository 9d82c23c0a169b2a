/*
 * tui/tui.c — the TUI's frame: terminal set-up, keys, the screen's chrome
 * (header, tabs, status line, prompt, help overlay, the too-small line), and
 * the dispatch to the panes. The overview is in tui/tui.h; docs/tui.md is the
 * user's guide.
 *
 * A frame, as htop's ScreenManager does it: (1) read every pending key without
 * waiting and apply it to the TUI's state (which may queue replay commands);
 * (2) sample: pick the heap shown, take a statistics sample; (3) draw the
 * whole screen into stdscr, which ncurses keeps off-screen; (4) doupdate, which
 * sends only what changed since the last frame. Nothing in a frame blocks.
 *
 * Keys are one table (HS_TUI_KEYS in tui/tui.h): a key maps to an action in a
 * scope (everywhere, one pane, replay only); global actions are handled here,
 * the others go to the focused pane. The help overlay prints the same table.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ncursesw/curses.h>

#define HS_TUI_INTERNAL
#include "panic.h"
#include "tui.h"

typedef struct key_def {
	int key, action, scope;
	const char *label, *help;
} key_def;

static const key_def keys[] = {
#define HS_TUI_KEY_ROW_(k, a, s, l, h) { k, a, s, l, h },
	HS_TUI_KEYS(HS_TUI_KEY_ROW_)
#undef HS_TUI_KEY_ROW_
};

static const struct {
	const char *label, *short_label;
	int live;
} panes[HS_PANE_COUNT] = {
#define HS_TUI_PANE_ROW_(ID, label, live) [HS_PANE_##ID] = { label, NULL, live },
	HS_TUI_PANES(HS_TUI_PANE_ROW_)
#undef HS_TUI_PANE_ROW_
};

static const char *const short_labels[HS_PANE_COUNT] = { "Sum", "Chunk", "Span", "Stat", "Scav", "Time" };

/* The one open TUI, for the throw hook. */
static hs_tui *current;

static void restore_terminal(void)
{
	if (current != NULL && !isendwin())
		endwin();
}

/* --- opening and closing ------------------------------------------------------- */

hs_tui *hs_tui_open(FILE *out, FILE *in, char *err, size_t errlen)
{
	if (out == NULL)
		out = stdout;
	if (in == NULL)
		in = stdin;
	if (current != NULL) {
		snprintf(err, errlen, "the TUI is already open");
		return NULL;
	}
	if (!isatty(fileno(out)) || !isatty(fileno(in))) {
		snprintf(err, errlen, "no terminal: %s is not a tty", !isatty(fileno(in)) ? "input" : "output");
		return NULL;
	}
	const char *term = getenv("TERM");
	if (term == NULL || *term == '\0' || strcmp(term, "dumb") == 0) {
		snprintf(err, errlen, "no usable terminal: TERM is %s", term == NULL || *term == '\0' ? "not set" : "dumb");
		return NULL;
	}
	hs_tui *t = calloc(1, sizeof *t);
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* The locale decides the glyphs; numbers stay in the C format. */
	setlocale(LC_ALL, "");
	setlocale(LC_NUMERIC, "C");
	const char *cs = nl_langinfo(CODESET);
	t->utf8 = cs != NULL && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
	SCREEN *s = newterm(NULL, out, in);
	if (s == NULL) {
		snprintf(err, errlen, "no usable terminal: cannot use terminal type '%s'", term);
		free(t);
		return NULL;
	}
	set_term(s);
	t->screen = s;
	t->out = out;
	t->in = in;
	current = t;
	hs_set_throw_hook(restore_terminal);

	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	curs_set(0);
	set_escdelay(25);
	const char *nc = getenv("NO_COLOR");
	if (has_colors() && (nc == NULL || *nc == '\0')) {
		start_color();
		t->default_colors = use_default_colors() == OK;
		t->color = COLORS >= 8 && COLOR_PAIRS >= HS_C_COUNT;
		t->colors256 = COLORS >= 256;
	}
	hs_tui_draw_init(t);
	mmask_t want = BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED;
	t->mouse = mousemask(want, NULL) != 0;
	mouseinterval(0);

	t->sum_root_level = -1;
	t->page = -1;
	t->span_filter_class = -1;
	t->redraw = 1;
	return t;
}

void hs_tui_close(hs_tui *t)
{
	if (t == NULL)
		return;
	if (t->mouse)
		mousemask(0, NULL);
	endwin();
	delscreen(t->screen);
	hs_set_throw_hook(NULL);
	current = NULL;
	hs_tui_spans_free(t);
	hs_tui_history_free(t);
	free(t);
}

void hs_tui_redraw(hs_tui *t)
{
	t->redraw = 1;
}

void hs_tui_focus(hs_tui *t, int p)
{
	if (p >= 0 && p < HS_PANE_COUNT && (t->replay || panes[p].live))
		t->pane = p;
}

void hs_tui_wait(hs_tui *t, int ms)
{
	/* ncurses' own wait also wakes on a resize (SIGWINCH interrupts it). */
	timeout(ms);
	int ch = getch();
	nodelay(stdscr, TRUE);
	if (ch != ERR)
		ungetch(ch);
	(void)t;
}

/* --- keys ------------------------------------------------------------------------ */

static int pane_allowed(const hs_tui *t, int p)
{
	return t->replay || panes[p].live;
}

static void cycle_pane(hs_tui *t, int dir)
{
	int p = t->pane;
	do
		p = (p + dir + HS_PANE_COUNT) % HS_PANE_COUNT;
	while (!pane_allowed(t, p));
	t->pane = p;
}

static int lookup(const hs_tui *t, int ch)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const key_def *k = &keys[i];
		if (k->key != ch)
			continue;
		if (k->scope == HS_TUI_SCOPE_ALL || k->scope == 1 + t->pane ||
		    (k->scope == HS_TUI_SCOPE_REPLAY && t->replay))
			return k->action;
	}
	return HS_A_NONE;
}

void hs_tui_cmd_push(hs_tui *t, hs_tui_cmd_kind kind, int64_t delta, uint64_t value)
{
	if (!t->replay || t->ncmds >= HS_TUI_MAX_CMDS)
		return;
	/* Steps in a row add up, so a held key does not flood the controller. */
	if (kind == HS_TUI_CMD_STEP && t->ncmds > 0 && t->cmds[t->ncmds - 1].kind == HS_TUI_CMD_STEP) {
		t->cmds[t->ncmds - 1].delta += delta;
		return;
	}
	t->cmds[t->ncmds++] = (hs_tui_cmd){ kind, delta, value };
}

static void start_prompt(hs_tui *t, int kind)
{
	t->prompt = kind;
	t->plen = 0;
	t->pbuf[0] = '\0';
}

static void find_address(hs_tui *t, uint64_t addr)
{
	if (t->h == NULL || hs_tui_chunk_goto(t, (uintptr_t)addr) != 0) {
		hs_tui_message(t, 1, "%#llx is not in the heap%s", (unsigned long long)addr,
			       t->h == NULL ? " (no heap yet)" : "");
		return;
	}
	hs_tui_summary_goto_chunk(t, hs_chunk_index((uintptr_t)addr));
	const hs_model_span *s = hs_tui_span_at(t, (uintptr_t)addr);
	if (s != NULL) {
		hs_tui_spans_goto(t, (uintptr_t)addr);
		hs_tui_message(t, 0, "%#llx: chunk %#lx page %u, span %#lx (%u pages, class %u)",
			       (unsigned long long)addr, (unsigned long)hs_chunk_index((uintptr_t)addr),
			       hs_chunk_page_index((uintptr_t)addr), (unsigned long)s->base, s->npages,
			       (unsigned)s->spanclass >> 1);
	} else {
		hs_tui_message(t, 0, "%#llx: chunk %#lx page %u, in no span", (unsigned long long)addr,
			       (unsigned long)hs_chunk_index((uintptr_t)addr), hs_chunk_page_index((uintptr_t)addr));
	}
	t->pane = HS_PANE_CHUNKS;
}

static void submit_prompt(hs_tui *t)
{
	int kind = t->prompt;
	t->prompt = HS_PROMPT_NONE;
	uint64_t v;
	int is_time;
	switch (kind) {
	case HS_PROMPT_FIND:
		if (hs_tui_parse_u64(t->pbuf, &v) != 0)
			hs_tui_message(t, 1, "'%s' is not an address", t->pbuf);
		else
			find_address(t, v);
		break;
	case HS_PROMPT_SEEK:
		if (hs_tui_parse_seek(t->pbuf, &v, &is_time) != 0)
			hs_tui_message(t, 1, "'%s' is neither a sequence number nor a time like 2.5s", t->pbuf);
		else
			hs_tui_cmd_push(t, is_time ? HS_TUI_CMD_SEEK_TIME : HS_TUI_CMD_SEEK_SEQ, 0, v);
		break;
	case HS_PROMPT_CLASS:
		if (t->plen == 0) {
			t->span_filter_class = -1;
		} else if (hs_tui_parse_u64(t->pbuf, &v) != 0 || v > 67) {
			hs_tui_message(t, 1, "'%s' is not a size class (0 large, 1..67)", t->pbuf);
		} else {
			t->span_filter_class = (int)v;
			t->span_sel = t->span_top = 0;
		}
		break;
	}
}

static void prompt_key(hs_tui *t, int ch)
{
	if (ch == 27 || ch == HS_TUI_CTRL('g') || ch == HS_TUI_CTRL('c')) {
		t->prompt = HS_PROMPT_NONE;
	} else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		submit_prompt(t);
	} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		if (t->plen > 0)
			t->pbuf[--t->plen] = '\0';
		else
			t->prompt = HS_PROMPT_NONE;
	} else if (ch >= 0x20 && ch < 0x7f && t->plen + 1 < sizeof t->pbuf) {
		t->pbuf[t->plen++] = (char)ch;
		t->pbuf[t->plen] = '\0';
	}
}

static int pane_key(hs_tui *t, int action)
{
	switch (t->pane) {
	case HS_PANE_SUMMARY:
		return hs_tui_summary_key(t, action);
	case HS_PANE_CHUNKS:
		return hs_tui_chunk_key(t, action);
	case HS_PANE_SPANS:
		return hs_tui_spans_key(t, action);
	case HS_PANE_TIMELINE:
		return hs_tui_timeline_key(t, action);
	default:
		return 0;
	}
}

static void select_heap(hs_tui *t, unsigned idx);

static void action(hs_tui *t, int a)
{
	switch (a) {
	case HS_A_QUIT:
		t->quit = 1;
		hs_tui_cmd_push(t, HS_TUI_CMD_QUIT, 0, 0);
		break;
	case HS_A_HELP:
		t->help = 1;
		break;
	case HS_A_NEXT_PANE:
		cycle_pane(t, 1);
		break;
	case HS_A_PREV_PANE:
		cycle_pane(t, -1);
		break;
	case HS_A_PANE1: case HS_A_PANE2: case HS_A_PANE3:
	case HS_A_PANE4: case HS_A_PANE5: case HS_A_PANE6:
		hs_tui_focus(t, a - HS_A_PANE1);
		break;
	case HS_A_FIND:
		start_prompt(t, HS_PROMPT_FIND);
		break;
	case HS_A_HEAP:
		if (t->m != NULL && hs_model_nheaps(t->m) > 1)
			select_heap(t, (t->heap_idx + 1) % hs_model_nheaps(t->m));
		break;
	case HS_A_REDRAW:
		t->redraw = 1;
		break;
	case HS_A_PAUSE:
		hs_tui_cmd_push(t, HS_TUI_CMD_PAUSE, 0, 0);
		break;
	case HS_A_STEP_BACK:
		hs_tui_cmd_push(t, HS_TUI_CMD_STEP, -1, 0);
		break;
	case HS_A_STEP_FWD:
		hs_tui_cmd_push(t, HS_TUI_CMD_STEP, 1, 0);
		break;
	case HS_A_BACK_1000:
		hs_tui_cmd_push(t, HS_TUI_CMD_STEP, -1000, 0);
		break;
	case HS_A_FWD_1000:
		hs_tui_cmd_push(t, HS_TUI_CMD_STEP, 1000, 0);
		break;
	case HS_A_SEEK:
		start_prompt(t, HS_PROMPT_SEEK);
		break;
	case HS_A_FASTER:
		hs_tui_cmd_push(t, HS_TUI_CMD_SPEED, 1, 0);
		break;
	case HS_A_SLOWER:
		hs_tui_cmd_push(t, HS_TUI_CMD_SPEED, -1, 0);
		break;
	case HS_A_FILTER_CLASS:
		start_prompt(t, HS_PROMPT_CLASS);
		break;
	default:
		pane_key(t, a);
		break;
	}
}

static void mouse(hs_tui *t)
{
	MEVENT ev;
	if (getmouse(&ev) != OK)
		return;
	if (ev.bstate & BUTTON4_PRESSED) {
		pane_key(t, HS_A_UP);
		return;
	}
	if (ev.bstate & BUTTON5_PRESSED) {
		pane_key(t, HS_A_DOWN);
		return;
	}
	if (!(ev.bstate & (BUTTON1_PRESSED | BUTTON1_CLICKED)))
		return;
	uint64_t now = hs_tui_now_ns();
	int dbl = now - t->click_ns < 400000000u && ev.y == t->click_y && ev.x == t->click_x;
	t->click_ns = now;
	t->click_y = ev.y;
	t->click_x = ev.x;
	/* The last region drawn is on top. */
	for (int i = t->nreg - 1; i >= 0; i--) {
		const hs_tui_region *r = &t->reg[i];
		if (r->y != ev.y || ev.x < r->x0 || ev.x >= r->x1)
			continue;
		switch (r->kind) {
		case HS_R_TAB:
			hs_tui_focus(t, (int)r->value);
			break;
		case HS_R_SUMMARY:
			t->pane = HS_PANE_SUMMARY;
			hs_tui_summary_click(t, r->value, dbl);
			break;
		case HS_R_PAGE:
			t->page = (int)r->value;
			if (dbl)
				pane_key(t, HS_A_ENTER);
			break;
		case HS_R_SPAN_ROW:
			hs_tui_spans_select(t, (size_t)r->value);
			if (dbl)
				pane_key(t, HS_A_ENTER);
			break;
		case HS_R_CHUNK_ROW:
			hs_tui_spans_goto(t, (uintptr_t)r->value);
			break;
		case HS_R_TIMELINE: {
			int w = r->x1 - r->x0;
			uint64_t frac = w > 1 ? (uint64_t)(ev.x - r->x0) * 1000000u / (uint64_t)(w - 1) : 0;
			hs_tui_cmd_push(t, HS_TUI_CMD_SEEK_FRAC, 0, frac);
			break;
		}
		}
		return;
	}
}

static void keys_pending(hs_tui *t)
{
	int ch;
	while ((ch = getch()) != ERR) {
		if (ch == KEY_RESIZE) {
			t->redraw = 1;
			continue;
		}
		if (t->help) {
			t->help = 0;
			continue;
		}
		if (t->prompt != HS_PROMPT_NONE) {
			prompt_key(t, ch);
			continue;
		}
		if (ch == KEY_MOUSE) {
			mouse(t);
			continue;
		}
		int a = lookup(t, ch);
		if (a != HS_A_NONE)
			action(t, a);
	}
}

/* --- sampling ---------------------------------------------------------------------- */

static void select_heap(hs_tui *t, unsigned idx)
{
	hs_model_heap *h = t->m != NULL ? hs_model_heap_at(t->m, idx) : NULL;
	t->heap_idx = idx;
	t->heap_pid = h != NULL ? h->pid : 0;
	t->chunk_valid = t->sum_valid = t->arena_valid = 0;
	t->page = -1;
	t->sum_root_level = -1;
	t->span_sel = t->span_top = 0;
	t->spans.heap = NULL;
}

/* The heap shown: the one with the chosen pid if it exists, else the first. */
static void pick_heap(hs_tui *t, hs_model *m)
{
	if (m != t->last_m) {
		/* A new model (a seek loaded a keyframe): nothing cached points into it. */
		t->spans.heap = NULL;
		t->last_m = m;
	}
	t->m = m;
	t->h = NULL;
	unsigned n = m != NULL ? hs_model_nheaps(m) : 0;
	for (unsigned i = 0; i < n; i++) {
		hs_model_heap *h = hs_model_heap_at(m, i);
		if (t->heap_pid != 0 && h->pid == t->heap_pid) {
			t->heap_idx = i;
			t->h = h;
			return;
		}
	}
	if (n > 0) {
		t->heap_idx = 0;
		t->h = hs_model_heap_at(m, 0);
		t->heap_pid = t->h->pid;
	}
}

/* --- chrome ---------------------------------------------------------------------------- */

static void draw_header(hs_tui *t, hs_tui_rect r)
{
	int title = hs_tui_attr(t, HS_C_TITLE);
	hs_tui_fill(t, r.y, r.x, r.w, title);
	const char *mode = t->replay ? "REPLAY" : t->live != NULL && t->live->finished ? "LIVE (finished)" : "LIVE";
	const char *what = t->replay ? (t->rp->title ? t->rp->title : "") : (t->live->title ? t->live->title : "");
	char heap[64] = "no heap yet";
	if (t->h != NULL)
		snprintf(heap, sizeof heap, "pid %u [%u/%u]%s", t->h->pid, t->heap_idx + 1, hs_model_nheaps(t->m),
			 t->h->ended ? " ended" : "");
	int x = hs_tui_printf(t, r.y, r.x, r.w, title | (int)A_BOLD, " heapscope %s ", mode);
	x += hs_tui_printf(t, r.y, r.x + x, r.w - x, title, "| %s | %s ", what, heap);
	const char *err = t->m != NULL ? hs_model_error(t->m) : NULL;
	if (err != NULL && x < r.w)
		hs_tui_printf(t, r.y, r.x + x, r.w - x, hs_tui_attr(t, HS_C_ERR) | (int)A_REVERSE, " model diverged: %s ",
			      err);
}

static void draw_tabs(hs_tui *t, hs_tui_rect r)
{
	int total = 0;
	for (int p = 0; p < HS_PANE_COUNT; p++)
		if (pane_allowed(t, p))
			total += (int)strlen(panes[p].label) + 4;
	int use_short = total > r.w;
	int x = r.x;
	hs_tui_fill(t, r.y, r.x, r.w, 0);
	for (int p = 0; p < HS_PANE_COUNT; p++) {
		if (!pane_allowed(t, p))
			continue;
		int attr = p == t->pane ? hs_tui_attr(t, HS_C_TAB_ON) | (int)A_BOLD : hs_tui_attr(t, HS_C_TAB);
		int n = hs_tui_printf(t, r.y, x, r.x + r.w - x, attr, " %d %s ", p + 1,
				      use_short ? short_labels[p] : panes[p].label);
		hs_tui_region_add(t, r.y, x, x + n, HS_R_TAB, (uint64_t)p);
		x += n + 1;
	}
	if (x + 8 < r.x + r.w)
		hs_tui_text(t, r.y, r.x + r.w - 8, 8, hs_tui_attr(t, HS_C_DIM), "? help  ");
}

static void draw_live_status(hs_tui *t, hs_tui_rect r)
{
	const hs_tui_live *l = t->live;
	char ev[24], rate[24];
	hs_tui_fill(t, r.y, r.x, r.w, 0);
	int x = hs_tui_printf(t, r.y, r.x, r.w, 0, " events %s  rate %s/s  ", hs_tui_count((double)l->events, ev, sizeof ev),
			      hs_tui_count(l->events_per_s, rate, sizeof rate));
	x += hs_tui_printf(t, r.y, r.x + x, r.w - x, l->lost ? hs_tui_attr(t, HS_C_ERR) : 0, "lost %llu  ",
			   (unsigned long long)l->lost);
	uint64_t untrusted = t->m != NULL ? hs_model_untrusted_seq(t->m) : 0;
	if (untrusted != 0)
		x += hs_tui_printf(t, r.y, r.x + x, r.w - x, hs_tui_attr(t, HS_C_ERR), "model untrusted from seq %llu  ",
				   (unsigned long long)untrusted);
	else
		x += hs_tui_printf(t, r.y, r.x + x, r.w - x, 0, "producers waited %.2f s  ", (double)l->wait_ns / 1e9);
	if (l->finished)
		hs_tui_text(t, r.y, r.x + x, r.w - x, hs_tui_attr(t, HS_C_WARN), "workload finished: q quits");
}

static void draw_prompt(hs_tui *t, hs_tui_rect r)
{
	static const char *const what[] = { "", "find address (hex 0x... or decimal): ",
					    "seek to (sequence number, or time like 2.5s / 300ms): ",
					    "size class (0 large, 1..67; empty: all): " };
	hs_tui_fill(t, r.y, r.x, r.w, 0);
	int n = hs_tui_text(t, r.y, r.x, r.w, hs_tui_attr(t, HS_C_LABEL), what[t->prompt]);
	n += hs_tui_text(t, r.y, r.x + n, r.w - n, 0, t->pbuf);
	hs_tui_fill(t, r.y, r.x + n, 1, (int)A_REVERSE);
}

static void draw_message(hs_tui *t, hs_tui_rect r)
{
	hs_tui_fill(t, r.y, r.x, r.w, 0);
	hs_tui_printf(t, r.y, r.x, r.w, t->msg_err ? hs_tui_attr(t, HS_C_ERR) : hs_tui_attr(t, HS_C_OK), " %s",
		      t->msg);
}

/* The keys table, in as many columns as the height needs, in a box over the
 * middle of the screen. */
static void draw_help(hs_tui *t)
{
	int n = 0;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (keys[i].label != NULL && (keys[i].scope != HS_TUI_SCOPE_REPLAY || t->replay))
			n++;
	int room = t->rows - 5 > 1 ? t->rows - 5 : 1;
	int ncols = (n + room - 1) / room;
	if (ncols < 1)
		ncols = 1;
	if (ncols < 3 && t->cols >= 3 * 44 + 2 && n > 12)
		ncols = 3; /* wide and short: use the width */
	int per = (n + ncols - 1) / ncols;
	int entry_w = (t->cols - 2) / ncols > 44 ? 44 : (t->cols - 2) / ncols;
	int w = ncols * entry_w + 2, h = per + 4;
	if (h > t->rows)
		h = t->rows;
	hs_tui_rect box = { (t->rows - h) / 2, (t->cols - w) / 2, h, w };
	hs_tui_box(t, box, hs_tui_attr(t, HS_C_LABEL), "heapscope keys");
	int k = 0;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const key_def *d = &keys[i];
		if (d->label == NULL || (d->scope == HS_TUI_SCOPE_REPLAY && !t->replay))
			continue;
		int col = k / per, row = k % per;
		k++;
		int y = box.y + 1 + row, x = box.x + 1 + col * entry_w;
		if (y >= box.y + box.h - 2)
			continue;
		const char *where = d->scope == HS_TUI_SCOPE_ALL || d->scope == HS_TUI_SCOPE_REPLAY
					    ? ""
					    : short_labels[d->scope - 1];
		hs_tui_printf(t, y, x, 8, hs_tui_attr(t, HS_C_LABEL), " %-6s", d->label);
		hs_tui_printf(t, y, x + 8, entry_w - 9, 0, "%s%s%s", where, *where ? ": " : "", d->help);
	}
	hs_tui_text(t, box.y + box.h - 2, box.x + 2, box.w - 4, hs_tui_attr(t, HS_C_DIM),
		    t->mouse ? "Mouse: click to select, wheel scrolls. Any key closes." : "Any key closes this help.");
}

static void draw_too_small(hs_tui *t)
{
	erase();
	char line[128];
	snprintf(line, sizeof line, "terminal too small (%dx%d): heapscope needs at least %dx%d", t->cols, t->rows,
		 HS_TUI_MIN_COLS, HS_TUI_MIN_ROWS);
	hs_tui_text(t, 0, 0, t->cols, (int)A_BOLD, line);
}

static void draw_pane(hs_tui *t, int p, hs_tui_rect r)
{
	switch (p) {
	case HS_PANE_SUMMARY:
		hs_tui_summary_draw(t, r);
		break;
	case HS_PANE_CHUNKS:
		hs_tui_chunk_draw(t, r);
		break;
	case HS_PANE_SPANS:
		hs_tui_spans_draw(t, r);
		break;
	case HS_PANE_STATS:
		hs_tui_stats_draw(t, r, 0);
		break;
	case HS_PANE_SCAV:
		hs_tui_scav_draw(t, r);
		break;
	case HS_PANE_TIMELINE:
		hs_tui_timeline_draw(t, r);
		break;
	}
}

static void draw(hs_tui *t)
{
	getmaxyx(stdscr, t->rows, t->cols);
	hs_tui_layout_compute(t->rows, t->cols, &t->lay);
	t->nreg = 0;
	if (t->redraw) {
		clearok(curscr, TRUE);
		t->redraw = 0;
	}
	if (t->lay.too_small) {
		draw_too_small(t);
	} else {
		erase();
		draw_header(t, t->lay.header);
		draw_tabs(t, t->lay.tabs);
		if (!pane_allowed(t, t->pane))
			t->pane = HS_PANE_SUMMARY;
		draw_pane(t, t->pane, t->lay.main);
		if (t->lay.has_side) {
			hs_tui_rect s = t->lay.side;
			for (int i = 0; i < s.h; i++)
				hs_tui_glyph(t, s.y + i, s.x - 1, HS_G_VBAR, hs_tui_attr(t, HS_C_DIM));
			if (t->pane == HS_PANE_STATS)
				hs_tui_scav_draw(t, s);
			else
				hs_tui_stats_draw(t, s, 1);
		}
		if (t->prompt != HS_PROMPT_NONE)
			draw_prompt(t, t->lay.status);
		else if (t->msg[0] != '\0' && hs_tui_now_ns() < t->msg_until)
			draw_message(t, t->lay.status);
		else if (t->replay)
			hs_tui_status_draw(t, t->lay.status);
		else
			draw_live_status(t, t->lay.status);
		if (t->help)
			draw_help(t);
	}
	wnoutrefresh(stdscr);
	doupdate();
	t->frame++;
}

static void frame(hs_tui *t, hs_model *m)
{
	t->ncmds = 0;
	pick_heap(t, m);
	keys_pending(t);
	pick_heap(t, m); /* a key may have chosen another heap */
	hs_tui_sample(t, m);
	draw(t);
}

void hs_tui_notice(hs_tui *t, int err, const char *msg)
{
	hs_tui_message(t, err, "%s", msg != NULL ? msg : "");
}

int hs_tui_live_frame(hs_tui *t, hs_model *m, const hs_tui_live *live)
{
	static const hs_tui_live none = { 0 };
	if (live == NULL)
		live = &none;
	t->replay = 0;
	t->live = live;
	t->rp = NULL;
	frame(t, m);
	return t->quit;
}

int hs_tui_replay_frame(hs_tui *t, hs_model *m, const hs_tui_replay *r, hs_tui_cmd *cmds, int max)
{
	t->replay = 1;
	t->rp = r;
	t->live = NULL;
	if (r->message != NULL && r->message[0] != '\0' && strcmp(r->message, t->msg) != 0)
		hs_tui_message(t, 1, "%s", r->message);
	frame(t, m);
	int n = t->ncmds < max ? t->ncmds : max;
	memcpy(cmds, t->cmds, (size_t)n * sizeof *cmds);
	if (t->quit && n == 0 && max > 0) {
		cmds[0] = (hs_tui_cmd){ HS_TUI_CMD_QUIT, 0, 0 };
		n = 1;
	}
	return n;
}
