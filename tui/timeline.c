/*
 * tui/timeline.c — replay: the timeline pane and the status line.
 *
 * The TUI does not move through a session itself; it shows where the
 * controller (cli/view.c) stands (hs_tui_replay) and turns the timeline keys
 * into commands for it (hs_tui_cmd): space pauses, , and . (or <- and -> with
 * the timeline focused) step one event, [ and ] a thousand, g seeks to a
 * sequence number or a time, + and - change the speed, a click on a position
 * bar seeks there. The pane also lists the last events applied, named and
 * decoded with the event table (include/heapscope/events.h).
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <inttypes.h>
#include <string.h>

#include <ncursesw/curses.h>

#define HS_TUI_INTERNAL
#include "tui.h"

int hs_tui_timeline_key(hs_tui *t, int action)
{
	switch (action) {
	case HS_A_LEFT:
		hs_tui_cmd_push(t, HS_TUI_CMD_STEP, -1, 0);
		return 1;
	case HS_A_RIGHT:
		hs_tui_cmd_push(t, HS_TUI_CMD_STEP, 1, 0);
		return 1;
	case HS_A_UP:
	case HS_A_PGUP:
		hs_tui_cmd_push(t, HS_TUI_CMD_STEP, action == HS_A_UP ? -1000 : -100000, 0);
		return 1;
	case HS_A_DOWN:
	case HS_A_PGDN:
		hs_tui_cmd_push(t, HS_TUI_CMD_STEP, action == HS_A_DOWN ? 1000 : 100000, 0);
		return 1;
	case HS_A_HOME:
		hs_tui_cmd_push(t, HS_TUI_CMD_SEEK_FRAC, 0, 0);
		return 1;
	case HS_A_END:
		hs_tui_cmd_push(t, HS_TUI_CMD_SEEK_FRAC, 0, 1000000);
		return 1;
	case HS_A_ENTER:
		hs_tui_cmd_push(t, HS_TUI_CMD_PAUSE, 0, 0);
		return 1;
	}
	return 0;
}

/* Where the position is, 0..1, by sequence number. */
static double fraction(const hs_tui_replay *r)
{
	if (r->at_start || r->last_seq <= r->first_seq)
		return r->at_start ? 0 : 1;
	return (double)(r->pos_seq - r->first_seq) / (double)(r->last_seq - r->first_seq);
}

static void bar(hs_tui *t, int y, int x, int w)
{
	const hs_tui_replay *r = t->rp;
	if (w < 3)
		return;
	int pos = (int)(fraction(r) * (w - 1) + 0.5);
	hs_tui_glyphs(t, y, x, HS_G_DONE, pos, hs_tui_attr(t, HS_C_SPARK));
	hs_tui_glyphs(t, y, x + pos + 1, HS_G_TRACK, w - pos - 1, hs_tui_attr(t, HS_C_DIM));
	hs_tui_glyph(t, y, x + pos, HS_G_POS, hs_tui_attr(t, HS_C_WARN));
	hs_tui_region_add(t, y, x, x + w, HS_R_TIMELINE, 0);
}

static double secs(const hs_tui_replay *r, uint64_t ts)
{
	return ts > r->first_ts ? (double)(ts - r->first_ts) / 1e9 : 0.0;
}

static const char *play_state(const hs_tui_replay *r, char *buf, size_t len)
{
	if (r->following)
		snprintf(buf, len, "following");
	else if (r->playing)
		snprintf(buf, len, "playing %gx", r->speed);
	else
		snprintf(buf, len, "paused (%gx)", r->speed);
	return buf;
}

void hs_tui_status_draw(hs_tui *t, hs_tui_rect r)
{
	const hs_tui_replay *rp = t->rp;
	char ps[32], pos[48];
	hs_tui_fill(t, r.y, r.x, r.w, 0);
	hs_tui_glyph(t, r.y, r.x + 1, rp->playing || rp->following ? HS_G_PLAY : HS_G_PAUSE, hs_tui_attr(t, HS_C_WARN));
	if (rp->at_start)
		snprintf(pos, sizeof pos, "start");
	else
		snprintf(pos, sizeof pos, "%" PRIu64, rp->pos_seq);
	int x = 3 + hs_tui_printf(t, r.y, r.x + 3, r.w - 3, 0, "%s  seq %s/%" PRIu64 "  %.2f/%.2f s ",
				  play_state(rp, ps, sizeof ps), pos, rp->last_seq, secs(rp, rp->pos_ts),
				  secs(rp, rp->last_ts));
	int tail = (int)strlen(rp->status ? rp->status : "") + 3;
	int bw = r.w - x - tail;
	if (bw > 40)
		bw = 40;
	if (bw >= 5) {
		bar(t, r.y, r.x + x, bw);
		x += bw + 1;
	}
	hs_tui_printf(t, r.y, r.x + x, r.w - x, hs_tui_attr(t, HS_C_DIM), "[%s]", rp->status ? rp->status : "");
}

static void format_event(const hs_event *e, char *buf, size_t len)
{
	const hs_event_info *info = hs_event_lookup(e->kind);
	int n = snprintf(buf, len, "%-16s", info != NULL ? info->name : "?");
	for (unsigned i = 0; info != NULL && i < info->nargs && n > 0 && (size_t)n < len; i++) {
		if (e->arg[i] < 100000)
			n += snprintf(buf + n, len - (size_t)n, " %s=%" PRIu64, info->args[i], e->arg[i]);
		else
			n += snprintf(buf + n, len - (size_t)n, " %s=%#" PRIx64, info->args[i], e->arg[i]);
	}
}

void hs_tui_timeline_draw(hs_tui *t, hs_tui_rect r)
{
	const hs_tui_replay *rp = t->rp;
	if (rp == NULL)
		return;
	char detail[96], ps[32];
	snprintf(detail, sizeof detail, "session %s, %s", rp->status ? rp->status : "?", play_state(rp, ps, sizeof ps));
	hs_tui_title(t, r, "Timeline", detail);
	int lab = hs_tui_attr(t, HS_C_LABEL);
	int y = r.y + 2;
	bar(t, y++, r.x + 1, r.w - 2);
	if (rp->at_start)
		hs_tui_printf(t, y++, r.x, r.w, 0, " position: the start, no event applied   events [%" PRIu64 ", %" PRIu64 "]",
			      rp->first_seq, rp->last_seq);
	else
		hs_tui_printf(t, y++, r.x, r.w, 0, " position: seq %" PRIu64 " of [%" PRIu64 ", %" PRIu64 "]  %.1f%%",
			      rp->pos_seq, rp->first_seq, rp->last_seq, 100.0 * fraction(rp));
	hs_tui_printf(t, y++, r.x, r.w, 0, " time:     %.3f s of %.3f s   speed %gx   lost %" PRIu64, secs(rp, rp->pos_ts),
		      secs(rp, rp->last_ts), rp->speed, rp->lost);
	hs_tui_text(t, y++, r.x, r.w, hs_tui_attr(t, HS_C_DIM),
		    " Space pause  <- -> one event  up/down or [ ] 1000  PgUp/PgDn 100000  Home/End  g seek  + - speed");
	y++;
	hs_tui_text(t, y++, r.x, r.w, lab, " recent events (newest last)");
	int room = r.y + r.h - y;
	unsigned first = rp->nrecent > (unsigned)(room > 0 ? room : 0) ? rp->nrecent - (unsigned)room : 0;
	for (unsigned i = first; i < rp->nrecent && y < r.y + r.h; i++) {
		const hs_event *e = &rp->recent[i];
		char line[256];
		format_event(e, line, sizeof line);
		hs_tui_printf(t, y++, r.x, r.w, i + 1 == rp->nrecent ? (int)A_BOLD : 0, " %10" PRIu64 " %9.4f s pid %-6u %s",
			      e->seq, secs(rp, e->ts), e->pid, line);
	}
}
