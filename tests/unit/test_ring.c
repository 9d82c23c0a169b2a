/*
 * tests/unit/test_ring.c — the shared-memory event ring (core/ring.h) in one
 * process: producers are threads, the test thread (or a consumer thread) drains.
 *
 * Expected values come from the protocol in core/ring.h: ticket t is slot
 * t % capacity and the record's sequence number; the consumer reads in ticket
 * order; a full lossless ring makes producers wait (counted in waits/wait_ns);
 * a full lossy ring drops without taking a ticket (counted in drops); a ticket
 * taken and never published is a hole that only hs_ring_skip_hole gets past.
 * Every record carries a pattern derived from its ticket (or from its producer
 * and that producer's counter) in every field, so that a torn or misplaced
 * record shows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "oracle.h"
#include "ring.h"

/* --- helpers ----------------------------------------------------------------- */

typedef struct ring {
	hs_ring_hdr *r;
	int fd;
} ring;

static ring ring_new(uint64_t capacity, hs_event_level level, int lossy)
{
	ring g = { NULL, -1 };
	g.fd = hs_ring_create(capacity, level, lossy, &g.r);
	if (g.fd < 0)
		fail_msg("hs_ring_create(%llu): %s", (unsigned long long)capacity, strerror(errno));
	assert_non_null(g.r);
	assert_int_equal(g.r->magic, HS_RING_MAGIC);
	assert_int_equal(g.r->capacity, capacity);
	assert_int_equal(g.r->slot_size, sizeof(hs_event));
	assert_int_equal(g.r->level, level);
	assert_int_equal(g.r->lossy, lossy != 0);
	assert_int_equal(atomic_load(&g.r->head), 0);
	assert_int_equal(atomic_load(&g.r->tail), 0);
	return g;
}

static void ring_del(ring *g)
{
	hs_ring_unmap(g->r);
	close(g->fd);
	g->r = NULL;
	g->fd = -1;
}

static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Fills every field but seq from (a, b): a is what the record must carry. */
static void fill(hs_event *e, uint64_t a, uint64_t b)
{
	e->ts = ~a;
	e->pid = (uint32_t)(a * 3 + 1);
	e->tid = (uint32_t)(b + 7);
	e->kind = (uint16_t)(a % HS_EV_KIND_LIMIT);
	e->flags = 0;
	e->reserved = (uint32_t)(a >> 32) ^ 0x5a5a5a5au;
	e->arg[0] = a;
	e->arg[1] = b;
	for (unsigned k = 2; k < HS_EVENT_MAX_ARGS; k++)
		e->arg[k] = mix(a * HS_EVENT_MAX_ARGS + k) ^ b;
}

/* Checks a record filled by fill(e, a, b). */
static void check_fill(const hs_event *e, uint64_t a, uint64_t b)
{
	if (e->ts != ~a || e->pid != (uint32_t)(a * 3 + 1) || e->tid != (uint32_t)(b + 7) ||
	    e->kind != (uint16_t)(a % HS_EV_KIND_LIMIT) || e->flags != 0 ||
	    e->reserved != ((uint32_t)(a >> 32) ^ 0x5a5a5a5au) || e->arg[0] != a || e->arg[1] != b)
		fail_msg("record seq %llu: header fields are not those written for (%llu, %llu)",
			 (unsigned long long)e->seq, (unsigned long long)a, (unsigned long long)b);
	for (unsigned k = 2; k < HS_EVENT_MAX_ARGS; k++)
		if (e->arg[k] != (mix(a * HS_EVENT_MAX_ARGS + k) ^ b))
			fail_msg("record seq %llu: arg[%u] is %#llx", (unsigned long long)e->seq, k,
				 (unsigned long long)e->arg[k]);
}

/* Reserves (lossless: never NULL), fills with the ticket's pattern, publishes. */
static uint64_t produce_seq_pattern(hs_ring_hdr *r, uint64_t b)
{
	uint64_t seq = UINT64_MAX;
	hs_event *e = hs_ring_reserve(r, &seq);
	if (e == NULL)
		fail_msg("lossless hs_ring_reserve returned NULL");
	fill(e, seq, b);
	hs_ring_publish(e, seq);
	return seq;
}

static void sleep_us(long us)
{
	struct timespec d = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&d, NULL);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- one producer, many laps -------------------------------------------------- */

typedef struct producer_arg {
	hs_ring_hdr *r;
	unsigned id;
	uint64_t n;
	int bad; /* a lossless reserve returned NULL, or a ticket was out of order */
} producer_arg;

/* Writes n records, record k with pattern (seq, k): a lone producer's tickets
 * are 0, 1, 2, ... so k must equal seq. */
static void *seq_producer(void *p)
{
	producer_arg *a = p;
	for (uint64_t k = 0; k < a->n; k++) {
		uint64_t seq;
		hs_event *e = hs_ring_reserve(a->r, &seq);
		if (e == NULL || seq != k) {
			a->bad = 1;
			return NULL;
		}
		fill(e, seq, k);
		hs_ring_publish(e, seq);
	}
	return NULL;
}

static void test_single_producer_wraps(void **state)
{
	(void)state;
	enum { CAP = 1024, N = 100000, BATCH = 300 /* not a divisor of CAP: reads straddle the wrap */ };
	ring g = ring_new(CAP, HS_EVL_HEAP, 0);
	producer_arg a = { g.r, 0, N, 0 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, seq_producer, &a), 0);

	static hs_event out[BATCH];
	uint64_t next = 0;
	double deadline = now_s() + 20;
	while (next < N) {
		size_t n = hs_ring_read(g.r, out, BATCH);
		assert_true(n <= BATCH);
		for (size_t i = 0; i < n; i++) {
			if (out[i].seq != next)
				fail_msg("read seq %llu where %llu was due", (unsigned long long)out[i].seq,
					 (unsigned long long)next);
			check_fill(&out[i], next, next);
			next++;
		}
		if (n == 0) {
			if (now_s() > deadline)
				fail_msg("stalled at seq %llu", (unsigned long long)next);
			sched_yield();
		}
	}
	pthread_join(t, NULL);
	assert_int_equal(a.bad, 0);
	/* Nothing more, and the ring's counters agree with what was read. */
	assert_int_equal(hs_ring_read(g.r, out, BATCH), 0);
	assert_int_equal(atomic_load(&g.r->head), N);
	assert_int_equal(atomic_load(&g.r->tail), N);
	assert_int_equal(atomic_load(&g.r->drops), 0);
	assert_int_equal(hs_ring_skip_hole(g.r), 0);
	ring_del(&g);
}

/* --- a full lossless ring: the producer waits, nothing is lost ---------------- */

static void test_full_lossless_waits(void **state)
{
	(void)state;
	enum { CAP = 1024, N = 50000, BATCH = 200 };
	ring g = ring_new(CAP, HS_EVL_HEAP, 0);
	producer_arg a = { g.r, 0, N, 0 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, seq_producer, &a), 0);

	static hs_event out[BATCH];
	uint64_t next = 0;
	double deadline = now_s() + 20;
	/* A slow consumer: small batches with a sleep after each, so the
	 * producer runs into a full ring over and over. */
	while (next < N) {
		size_t n = hs_ring_read(g.r, out, BATCH);
		for (size_t i = 0; i < n; i++) {
			if (out[i].seq != next)
				fail_msg("read seq %llu where %llu was due", (unsigned long long)out[i].seq,
					 (unsigned long long)next);
			check_fill(&out[i], next, next);
			next++;
		}
		/* Never more than a ring's worth outstanding (tail > t - capacity). */
		uint64_t h = atomic_load(&g.r->head), tl = atomic_load(&g.r->tail);
		if (h > tl + CAP + 1 /* + the one ticket a waiting producer holds */)
			fail_msg("head %llu runs more than a ring ahead of tail %llu", (unsigned long long)h,
				 (unsigned long long)tl);
		if (now_s() > deadline)
			fail_msg("stalled at seq %llu", (unsigned long long)next);
		sleep_us(200);
	}
	pthread_join(t, NULL);
	assert_int_equal(a.bad, 0);
	assert_int_equal(next, N);
	assert_int_equal(atomic_load(&g.r->drops), 0);
	assert_true(atomic_load(&g.r->waits) > 0);
	assert_true(atomic_load(&g.r->wait_ns) > 0);
	/* Each wait lasted until the consumer's next batch: more than nothing, and
	 * the total is no more than the time the whole run took. */
	assert_true(atomic_load(&g.r->waits) <= N);
	assert_int_equal(hs_ring_read(g.r, out, BATCH), 0);
	ring_del(&g);
}

/* --- several producers ----------------------------------------------------------- */

/* Record k of producer id carries (id << 32 | k, id): the consumer checks that
 * each producer's counters come out 0, 1, 2, ... */
static void *counting_producer(void *p)
{
	producer_arg *a = p;
	for (uint64_t k = 0; k < a->n; k++) {
		uint64_t seq;
		hs_event *e = hs_ring_reserve(a->r, &seq);
		if (e == NULL) {
			a->bad = 1;
			return NULL;
		}
		fill(e, (uint64_t)a->id << 32 | k, a->id);
		e->ts = seq; /* the consumer checks it against seq: the slot is the ticket's */
		hs_ring_publish(e, seq);
	}
	return NULL;
}

static void test_many_producers(void **state)
{
	(void)state;
	enum { CAP = 4096, P = 4, PER = 50000, N = P * PER, BATCH = 1000 };
	ring g = ring_new(CAP, HS_EVL_OBJECT, 0);
	producer_arg a[P];
	pthread_t t[P];
	for (unsigned i = 0; i < P; i++) {
		a[i] = (producer_arg){ g.r, i + 1, PER, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, counting_producer, &a[i]), 0);
	}

	static hs_event out[BATCH];
	static uint8_t seen[N];
	memset(seen, 0, sizeof seen);
	uint64_t next_count[P + 1] = { 0 };
	uint64_t next = 0;
	double deadline = now_s() + 20;
	while (next < N) {
		size_t n = hs_ring_read(g.r, out, BATCH);
		for (size_t i = 0; i < n; i++) {
			const hs_event *e = &out[i];
			if (e->seq != next)
				fail_msg("read seq %llu where %llu was due", (unsigned long long)e->seq,
					 (unsigned long long)next);
			if (e->seq >= N || seen[e->seq]++)
				fail_msg("seq %llu out of range or seen twice", (unsigned long long)e->seq);
			if (e->ts != e->seq)
				fail_msg("record in slot of seq %llu was written for ticket %llu",
					 (unsigned long long)e->seq, (unsigned long long)e->ts);
			uint64_t id = e->arg[1];
			if (id < 1 || id > P)
				fail_msg("seq %llu: producer id %llu", (unsigned long long)e->seq, (unsigned long long)id);
			uint64_t k = e->arg[0] & 0xffffffffu;
			if (e->arg[0] >> 32 != id || k != next_count[id])
				fail_msg("seq %llu: producer %llu's record %llu where %llu was due",
					 (unsigned long long)e->seq, (unsigned long long)id, (unsigned long long)k,
					 (unsigned long long)next_count[id]);
			hs_event copy = *e;
			copy.ts = ~e->arg[0];
			check_fill(&copy, e->arg[0], id);
			next_count[id]++;
			next++;
		}
		if (n == 0) {
			if (now_s() > deadline)
				fail_msg("stalled at seq %llu", (unsigned long long)next);
			sched_yield();
		}
	}
	for (unsigned i = 0; i < P; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].bad, 0);
		assert_int_equal(next_count[i + 1], PER);
	}
	for (uint64_t s = 0; s < N; s++)
		if (seen[s] != 1)
			fail_msg("seq %llu seen %u times", (unsigned long long)s, seen[s]);
	assert_int_equal(hs_ring_read(g.r, out, BATCH), 0);
	assert_int_equal(atomic_load(&g.r->head), N);
	assert_int_equal(atomic_load(&g.r->drops), 0);
	ring_del(&g);
}

/* --- lossy mode ---------------------------------------------------------------------- */

static void test_lossy_drops(void **state)
{
	(void)state;
	enum { CAP = 1024, N = 5000 };
	ring g = ring_new(CAP, HS_EVL_HEAP, 1);
	uint64_t ok = 0;
	for (uint64_t k = 0; k < N; k++) {
		uint64_t seq = UINT64_MAX;
		hs_event *e = hs_ring_reserve(g.r, &seq);
		if (e == NULL)
			continue;
		/* Tickets are consecutive: dropped records take none. */
		assert_int_equal(seq, ok);
		fill(e, seq, k);
		hs_ring_publish(e, seq);
		ok++;
	}
	assert_int_equal(ok, CAP);
	assert_int_equal(atomic_load(&g.r->drops), N - CAP);
	assert_int_equal(atomic_load(&g.r->head), CAP);
	/* Lossy producers never wait. */
	assert_int_equal(atomic_load(&g.r->waits), 0);
	assert_int_equal(atomic_load(&g.r->wait_ns), 0);

	static hs_event out[2 * CAP];
	size_t n = hs_ring_read(g.r, out, 2 * CAP);
	assert_int_equal(n, CAP);
	for (uint64_t i = 0; i < CAP; i++) {
		assert_int_equal(out[i].seq, i);
		check_fill(&out[i], i, i); /* the first CAP reserves were the ones that succeeded */
	}
	assert_int_equal(hs_ring_read(g.r, out, 2 * CAP), 0);

	/* Drained: a whole ring's worth of room again, then drops again. */
	for (uint64_t k = 0; k < CAP; k++) {
		uint64_t seq = UINT64_MAX;
		hs_event *e = hs_ring_reserve(g.r, &seq);
		if (e == NULL)
			fail_msg("reserve %llu after draining failed", (unsigned long long)k);
		assert_int_equal(seq, CAP + k);
		fill(e, seq, k);
		hs_ring_publish(e, seq);
	}
	uint64_t seq;
	assert_null(hs_ring_reserve(g.r, &seq));
	assert_int_equal(atomic_load(&g.r->drops), N - CAP + 1);

	/* Read half, and exactly that much room comes back. */
	n = hs_ring_read(g.r, out, CAP / 2);
	assert_int_equal(n, CAP / 2);
	for (uint64_t i = 0; i < CAP / 2; i++) {
		assert_int_equal(out[i].seq, CAP + i);
		check_fill(&out[i], CAP + i, i);
	}
	for (uint64_t k = 0; k < CAP / 2; k++) {
		hs_event *e = hs_ring_reserve(g.r, &seq);
		assert_non_null(e);
		assert_int_equal(seq, 2 * CAP + k);
		fill(e, seq, k);
		hs_ring_publish(e, seq);
	}
	assert_null(hs_ring_reserve(g.r, &seq));
	assert_int_equal(atomic_load(&g.r->drops), N - CAP + 2);
	n = hs_ring_read(g.r, out, 2 * CAP);
	assert_int_equal(n, CAP);
	for (uint64_t i = 0; i < CAP; i++) {
		assert_int_equal(out[i].seq, CAP + CAP / 2 + i);
		uint64_t k = i < CAP / 2 ? CAP / 2 + i : i - CAP / 2;
		check_fill(&out[i], CAP + CAP / 2 + i, k);
	}
	ring_del(&g);
}

/* Lossy with several producers racing for the last slots while a consumer
 * drains: every ticket taken is published and read once, in order, each
 * producer's records in its own order, and taken + dropped = attempted. */
typedef struct lossy_arg {
	hs_ring_hdr *r;
	unsigned id;
	uint64_t attempts, taken;
	_Atomic int done;
} lossy_arg;

static void *lossy_producer(void *p)
{
	lossy_arg *a = p;
	for (uint64_t k = 0; k < a->attempts; k++) {
		uint64_t seq;
		hs_event *e = hs_ring_reserve(a->r, &seq);
		if (e == NULL)
			continue;
		fill(e, (uint64_t)a->id << 32 | a->taken, a->id);
		e->ts = seq;
		hs_ring_publish(e, seq);
		a->taken++;
	}
	atomic_store(&a->done, 1);
	return NULL;
}

static void test_lossy_many_producers(void **state)
{
	(void)state;
	enum { CAP = 256, P = 4, ATTEMPTS = 20000, BATCH = 64 };
	ring g = ring_new(CAP, HS_EVL_HEAP, 1);
	static lossy_arg a[P];
	pthread_t t[P];
	for (unsigned i = 0; i < P; i++) {
		a[i].r = g.r;
		a[i].id = i + 1;
		a[i].attempts = ATTEMPTS;
		a[i].taken = 0;
		atomic_store(&a[i].done, 0);
		assert_int_equal(pthread_create(&t[i], NULL, lossy_producer, &a[i]), 0);
	}
	static hs_event out[BATCH];
	uint64_t next = 0, per[P + 1] = { 0 };
	double deadline = now_s() + 20;
	for (int last = 0;;) {
		size_t n = hs_ring_read(g.r, out, BATCH);
		for (size_t i = 0; i < n; i++) {
			const hs_event *e = &out[i];
			if (e->seq != next || e->ts != e->seq)
				fail_msg("read seq %llu (ts %llu) where %llu was due", (unsigned long long)e->seq,
					 (unsigned long long)e->ts, (unsigned long long)next);
			uint64_t id = e->arg[1];
			if (id < 1 || id > P || e->arg[0] >> 32 != id || (e->arg[0] & 0xffffffffu) != per[id])
				fail_msg("seq %llu: record %#llx of producer %llu out of order", (unsigned long long)e->seq,
					 (unsigned long long)e->arg[0], (unsigned long long)id);
			per[id]++;
			next++;
		}
		if (n != 0)
			continue;
		if (last)
			break;
		int all = 1;
		for (unsigned i = 0; i < P; i++)
			all &= atomic_load(&a[i].done);
		last = all; /* one more read after every producer is done */
		if (now_s() > deadline)
			fail_msg("stalled at seq %llu", (unsigned long long)next);
		sleep_us(20);
	}
	uint64_t taken = 0;
	for (unsigned i = 0; i < P; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(per[i + 1], a[i].taken);
		taken += a[i].taken;
	}
	assert_int_equal(next, taken);
	assert_int_equal(atomic_load(&g.r->head), taken);
	assert_int_equal(atomic_load(&g.r->drops) + taken, (uint64_t)P * ATTEMPTS);
	ring_del(&g);
}

/* --- holes --------------------------------------------------------------------------- */

static void test_hole(void **state)
{
	(void)state;
	enum { CAP = 16 };
	ring g = ring_new(CAP, HS_EVL_HEAP, 0);
	hs_event out[CAP];
	uint64_t s0, s1, s2, s3;

	/* Empty ring: nothing to read, nothing to skip. */
	assert_int_equal(hs_ring_read(g.r, out, CAP), 0);
	assert_int_equal(hs_ring_skip_hole(g.r), 0);

	/* Ticket 0 is taken and never published; ticket 1 is published. */
	hs_event *e0 = hs_ring_reserve(g.r, &s0);
	assert_non_null(e0);
	assert_int_equal(s0, 0);
	fill(e0, 0, 0); /* written, but never published */
	s1 = produce_seq_pattern(g.r, 1);
	assert_int_equal(s1, 1);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 0);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 0); /* still stuck: no progress without a skip */
	assert_int_equal(atomic_load(&g.r->tail), 0);

	/* The skip gets past ticket 0 and nothing else. */
	assert_int_equal(hs_ring_skip_hole(g.r), 1);
	assert_int_equal(atomic_load(&g.r->tail), 1);
	/* The next one is published: not a hole. */
	assert_int_equal(hs_ring_skip_hole(g.r), 0);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 1);
	assert_int_equal(out[0].seq, 1);
	check_fill(&out[0], 1, 1);
	/* Empty again. */
	assert_int_equal(hs_ring_skip_hole(g.r), 0);
	assert_int_equal(atomic_load(&g.r->tail), 2);

	/* Published records before a hole are read; the read stops at the hole. */
	s2 = produce_seq_pattern(g.r, 2);
	assert_int_equal(s2, 2);
	hs_event *e3 = hs_ring_reserve(g.r, &s3);
	assert_int_equal(s3, 3);
	(void)produce_seq_pattern(g.r, 4);
	(void)produce_seq_pattern(g.r, 5);
	assert_int_equal(hs_ring_skip_hole(g.r), 0); /* 2 is published */
	assert_int_equal(hs_ring_read(g.r, out, CAP), 1);
	assert_int_equal(out[0].seq, 2);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 0);
	/* A producer that is merely slow publishes after all: no skip needed. */
	fill(e3, 3, 3);
	hs_ring_publish(e3, s3);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(out[i].seq, 3 + i);
		check_fill(&out[i], 3 + i, 3 + i);
	}

	/* Two holes in a row, then a record: two skips, then the record. */
	uint64_t h1, h2;
	assert_non_null(hs_ring_reserve(g.r, &h1));
	assert_non_null(hs_ring_reserve(g.r, &h2));
	assert_int_equal(h1, 6);
	assert_int_equal(h2, 7);
	(void)produce_seq_pattern(g.r, 8);
	assert_int_equal(hs_ring_skip_hole(g.r), 1);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 0);
	assert_int_equal(hs_ring_skip_hole(g.r), 1);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 1);
	assert_int_equal(out[0].seq, 8);
	check_fill(&out[0], 8, 8);
	/* A ticket taken last with nothing after it is a hole as well. */
	uint64_t h3;
	assert_non_null(hs_ring_reserve(g.r, &h3));
	assert_int_equal(h3, 9);
	assert_int_equal(hs_ring_skip_hole(g.r), 1);
	assert_int_equal(hs_ring_skip_hole(g.r), 0);
	assert_int_equal(atomic_load(&g.r->tail), 10);
	assert_int_equal(atomic_load(&g.r->head), 10);
	ring_del(&g);
}

/* A slot's old seq is from an earlier lap and never passes for the ticket now
 * awaited: after whole laps, a hole in a reused slot still stops the reader. */
static void test_hole_after_laps(void **state)
{
	(void)state;
	enum { CAP = 4 };
	ring g = ring_new(CAP, HS_EVL_HEAP, 0);
	hs_event out[CAP];
	for (uint64_t lap = 0; lap < 3; lap++) {
		for (uint64_t i = 0; i < CAP; i++)
			(void)produce_seq_pattern(g.r, lap);
		assert_int_equal(hs_ring_read(g.r, out, CAP), CAP);
		for (uint64_t i = 0; i < CAP; i++) {
			assert_int_equal(out[i].seq, lap * CAP + i);
			check_fill(&out[i], lap * CAP + i, lap);
		}
	}
	/* Ticket 12 in slot 0, which holds seq 8 from the last lap. */
	uint64_t s;
	hs_event *e = hs_ring_reserve(g.r, &s);
	assert_int_equal(s, 3 * CAP);
	assert_ptr_equal(e, &g.r->slots[0]);
	(void)produce_seq_pattern(g.r, 9);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 0);
	assert_int_equal(hs_ring_skip_hole(g.r), 1);
	assert_int_equal(hs_ring_read(g.r, out, CAP), 1);
	assert_int_equal(out[0].seq, 3 * CAP + 1);
	check_fill(&out[0], 3 * CAP + 1, 9);
	ring_del(&g);
}

/* --- mapping ------------------------------------------------------------------------ */

static void test_create_rejects_bad_capacity(void **state)
{
	(void)state;
	hs_ring_hdr *r = NULL;
	errno = 0;
	assert_int_equal(hs_ring_create(0, HS_EVL_HEAP, 0, &r), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(hs_ring_create(1000, HS_EVL_HEAP, 0, &r), -1);
	assert_int_equal(errno, EINVAL);
	assert_null(r);
	assert_int_equal(hs_ring_bytes(1024), sizeof(hs_ring_hdr) + 1024 * sizeof(hs_event));
	assert_int_equal(offsetof(hs_ring_hdr, slots) % 64, 0);
}

static void test_map_not_a_ring(void **state)
{
	(void)state;
	/* An empty memfd, a zero-filled one of a ring's size, and one holding a
	 * header with a wrong slot size or capacity: none is a ring. */
	int fd = memfd_create("not-a-ring", 0);
	assert_true(fd >= 0);
	errno = 0;
	assert_null(hs_ring_map(fd));
	assert_int_not_equal(errno, 0);

	assert_int_equal(ftruncate(fd, (off_t)hs_ring_bytes(1024)), 0);
	errno = 0;
	assert_null(hs_ring_map(fd));
	assert_int_not_equal(errno, 0);

	hs_ring_hdr h;
	memset(&h, 0, sizeof h);
	h.magic = HS_RING_MAGIC;
	h.slot_size = sizeof(hs_event) + 8;
	h.capacity = 1024;
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	assert_null(hs_ring_map(fd));
	h.slot_size = sizeof(hs_event);
	h.capacity = 1000;
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	assert_null(hs_ring_map(fd));
	h.capacity = 0;
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	assert_null(hs_ring_map(fd));
	close(fd);

	/* A descriptor that is no file at all. */
	errno = 0;
	assert_null(hs_ring_map(-1));
}

/* A header that names more slots than the file holds is not a ring either:
 * mapping it would hand out slots past the end of the file (SIGBUS on the
 * first write). The test checks only the return value and touches no slot. */
static void test_map_truncated_ring(void **state)
{
	(void)state;
	ring g = ring_new(1024, HS_EVL_HEAP, 0);
	int fd = memfd_create("short-ring", 0);
	assert_true(fd >= 0);
	/* The header of a real 1024-slot ring, but room for 16 slots only. */
	assert_int_equal(ftruncate(fd, (off_t)hs_ring_bytes(16)), 0);
	assert_int_equal(pwrite(fd, g.r, sizeof(hs_ring_hdr), 0), (ssize_t)sizeof(hs_ring_hdr));
	hs_ring_hdr *r = hs_ring_map(fd);
	if (r != NULL) {
		munmap(r, hs_ring_bytes(1024));
		close(fd);
		ring_del(&g);
		fail_msg("hs_ring_map accepted a file of %zu bytes for a ring of 1024 slots (%zu bytes)",
			 hs_ring_bytes(16), hs_ring_bytes(1024));
	}
	/* A capacity so large that the ring's size does not fit in size_t. */
	hs_ring_hdr h;
	memcpy(&h, g.r, sizeof h);
	h.capacity = (uint64_t)1 << 60;
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	r = hs_ring_map(fd);
	if (r != NULL) {
		munmap(r, hs_ring_bytes(h.capacity));
		close(fd);
		ring_del(&g);
		fail_msg("hs_ring_map accepted a ring of 2^60 slots in a file of %zu bytes", hs_ring_bytes(16));
	}
	close(fd);
	ring_del(&g);
}

static void test_map_shares_records(void **state)
{
	(void)state;
	enum { CAP = 64 };
	ring g = ring_new(CAP, HS_EVL_OBJECT, 1);
	hs_ring_hdr *m = hs_ring_map(g.fd);
	assert_non_null(m);
	assert_ptr_not_equal(m, g.r);
	assert_int_equal(m->magic, HS_RING_MAGIC);
	assert_int_equal(m->capacity, CAP);
	assert_int_equal(m->level, HS_EVL_OBJECT);
	assert_int_equal(m->lossy, 1);

	/* Written through one mapping, read through the other, both ways. */
	hs_event out[2 * CAP];
	for (uint64_t i = 0; i < 10; i++)
		(void)produce_seq_pattern(g.r, 100);
	assert_int_equal(atomic_load(&m->head), 10);
	assert_int_equal(hs_ring_read(m, out, 2 * CAP), 10);
	for (uint64_t i = 0; i < 10; i++) {
		assert_int_equal(out[i].seq, i);
		check_fill(&out[i], i, 100);
	}
	assert_int_equal(atomic_load(&g.r->tail), 10);
	for (uint64_t i = 0; i < CAP; i++)
		(void)produce_seq_pattern(m, 200);
	/* Lossy, and full as seen from either mapping. */
	uint64_t s;
	assert_null(hs_ring_reserve(g.r, &s));
	assert_int_equal(atomic_load(&m->drops), 1);
	assert_int_equal(hs_ring_read(g.r, out, 2 * CAP), CAP);
	for (uint64_t i = 0; i < CAP; i++) {
		assert_int_equal(out[i].seq, 10 + i);
		check_fill(&out[i], 10 + i, 200);
	}
	/* A third mapping after the fact sees the same state. */
	hs_ring_hdr *m2 = hs_ring_map(g.fd);
	assert_non_null(m2);
	assert_int_equal(atomic_load(&m2->head), 10 + CAP);
	assert_int_equal(atomic_load(&m2->tail), 10 + CAP);
	assert_int_equal(atomic_load(&m2->drops), 1);
	hs_ring_unmap(m2);
	hs_ring_unmap(m);
	ring_del(&g);
}

/* The descriptor from hs_ring_create survives exec (the workload inherits it). */
static void test_create_fd_inheritable(void **state)
{
	(void)state;
	ring g = ring_new(16, HS_EVL_HEAP, 0);
	int flags = fcntl(g.fd, F_GETFD);
	assert_true(flags >= 0);
	assert_int_equal(flags & FD_CLOEXEC, 0);
	ring_del(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_producer_wraps),
		cmocka_unit_test(test_full_lossless_waits),
		cmocka_unit_test(test_many_producers),
		cmocka_unit_test(test_lossy_drops),
		cmocka_unit_test(test_lossy_many_producers),
		cmocka_unit_test(test_hole),
		cmocka_unit_test(test_hole_after_laps),
		cmocka_unit_test(test_create_rejects_bad_capacity),
		cmocka_unit_test(test_map_not_a_ring),
		cmocka_unit_test(test_map_truncated_ring),
		cmocka_unit_test(test_map_shares_records),
		cmocka_unit_test(test_create_fd_inheritable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
