/*
 * store/store_impl.h — what the store's files share, and nothing that leaves
 * store/: the handle's layout, the helpers that set its error text, and how an
 * event is packed into an event_rows row and back (the sink writes with it, the
 * source reads with it, schema.c writes the same layout as SQL in the views).
 * See store/schema.c for the file format.
 */
#ifndef HS_STORE_IMPL_H
#define HS_STORE_IMPL_H

#include <sqlite3.h>

#include "store.h"

/*
 * An event as event_rows holds it (schema version 2). seq is not stored: a
 * range of event_ranges covers consecutive seqs in consecutive ids, so seq =
 * first_seq + (id - first_row). ts is stored as its distance from the range's
 * ts_base, next to the kind:
 *
 *   ts_kind  63                    16 15      0
 *           | ts - ts_base (signed) |  kind   |     |ts - ts_base| < 2^47
 *
 *   pid_tid  63          32 31          0
 *           |     pid     |     tid     |
 *
 *   a2_5     63   56 55   48 47      32 31               0
 *           |  a5  |  a4  |    a3    |        a2         |
 *
 * a2_5 holds a2..a5 when each fits its field, as the arguments of every
 * object event and of most heap events do; otherwise it is NULL and
 * event_args(id, a2, a3, a4, a5) holds them. a0 and a1 are stored as they are.
 * All bit patterns are kept: SQL reads them back with >> (arithmetic) and &.
 */
#define HS_ROW_KIND_BITS 16
/* 2^47 ns (39 hours): the delta, shifted past the kind, still fits an int64. */
#define HS_ROW_TS_LIMIT ((int64_t)1 << (63 - HS_ROW_KIND_BITS))
#define HS_ROW_A3_SHIFT 32
#define HS_ROW_A4_SHIFT 48
#define HS_ROW_A5_SHIFT 56
_Static_assert(HS_ROW_KIND_BITS == 8 * sizeof(((hs_event *)0)->kind), "every kind must fit ts_kind");
_Static_assert(HS_ROW_A3_SHIFT < HS_ROW_A4_SHIFT && HS_ROW_A4_SHIFT < HS_ROW_A5_SHIFT && HS_ROW_A5_SHIFT < 64,
	       "a2_5's fields in order");

typedef struct hs_row {
	int64_t ts_kind, pid_tid, a0, a1, a2_5;
	int wide; /* a2_5 is NULL: the arguments are in event_args */
} hs_row;

/* Whether ts can be stored against base: (int64)base + delta must not
 * overflow, so that SQL computes ts without turning it into a float. */
static inline int hs_row_ts_fits(uint64_t ts, uint64_t base)
{
	int64_t d;
	return !__builtin_sub_overflow((int64_t)ts, (int64_t)base, &d) && d > -HS_ROW_TS_LIMIT &&
	       d < HS_ROW_TS_LIMIT;
}

static inline int hs_row_is_wide(const hs_event *e)
{
	return e->arg[2] >> HS_ROW_A3_SHIFT != 0 || e->arg[3] >> (HS_ROW_A4_SHIFT - HS_ROW_A3_SHIFT) != 0 ||
	       e->arg[4] >> (HS_ROW_A5_SHIFT - HS_ROW_A4_SHIFT) != 0 || e->arg[5] >> (64 - HS_ROW_A5_SHIFT) != 0;
}

/* e packed against ts_base, which hs_row_ts_fits accepted. */
static inline void hs_row_encode(const hs_event *e, uint64_t ts_base, hs_row *out)
{
	out->ts_kind = (int64_t)((e->ts - ts_base) << HS_ROW_KIND_BITS | e->kind);
	out->pid_tid = (int64_t)((uint64_t)e->pid << 32 | e->tid);
	out->a0 = (int64_t)e->arg[0];
	out->a1 = (int64_t)e->arg[1];
	out->wide = hs_row_is_wide(e);
	out->a2_5 = out->wide ? 0
			      : (int64_t)(e->arg[2] | e->arg[3] << HS_ROW_A3_SHIFT | e->arg[4] << HS_ROW_A4_SHIFT |
					  e->arg[5] << HS_ROW_A5_SHIFT);
}

/* The event r holds; wide: its a2..a5 from event_args when r->wide. */
static inline void hs_row_decode(const hs_row *r, uint64_t seq, uint64_t ts_base, const uint64_t wide[4],
				 hs_event *out)
{
	uint64_t x = (uint64_t)r->a2_5;
	*out = (hs_event){ .seq = seq,
			   .ts = ts_base + (uint64_t)(r->ts_kind >> HS_ROW_KIND_BITS),
			   .pid = (uint32_t)((uint64_t)r->pid_tid >> 32),
			   .tid = (uint32_t)r->pid_tid,
			   .kind = (uint16_t)r->ts_kind };
	out->arg[0] = (uint64_t)r->a0;
	out->arg[1] = (uint64_t)r->a1;
	if (r->wide) {
		for (int i = 0; i < 4; i++)
			out->arg[2 + i] = wide[i];
		return;
	}
	out->arg[2] = (uint32_t)x;
	out->arg[3] = (uint16_t)(x >> HS_ROW_A3_SHIFT);
	out->arg[4] = (uint8_t)(x >> HS_ROW_A4_SHIFT);
	out->arg[5] = x >> HS_ROW_A5_SHIFT;
}

struct hs_sink;

struct hs_store {
	sqlite3 *db;
	char *path;
	int readonly;
	struct hs_sink *sink; /* the writer's state; NULL when read-only */
	char *strings;	      /* hs_store_session_get's copies of the strings */
	char err[512];
};

/* schema.c */
/* Sets the error text; returns -1 so that a failure path is one statement. */
__attribute__((format(printf, 2, 3))) int hs_store_fail(hs_store *s, const char *fmt, ...);
/* ... as "what: <SQLite's message>". */
int hs_store_sql_fail(hs_store *s, const char *what);

/* A checkpoint every 128 pages (8 MiB) when the writer's connection does its
 * own (schema.c explains the figure; checkpoint.c when it does not). */
#define HS_STORE_WAL_PAGES 128

/* sink.c */
/* Prepares the writer's statements; called once by hs_store_open for writing. */
int hs_sink_init(hs_store *s);
/* Commits what is pending and releases the writer's state. */
void hs_sink_free(hs_store *s);

/* checkpoint.c */
typedef struct hs_ckpt hs_ckpt;
/* Takes the checkpoints of s (open for writing) over to a thread of its own,
 * until stop; NULL if it cannot (s then goes on checkpointing itself). From
 * start to stop, s's connection is used only by the thread that commits. */
hs_ckpt *hs_ckpt_start(hs_store *s);
/* Hands checkpoints back to s's connection and ends the thread; NULL is a no-op.
 * No commit may run on s meanwhile. */
void hs_ckpt_stop(hs_ckpt *c);

#endif /* HS_STORE_IMPL_H */
