/*
 * core/ring.h — the in-process transport: one multi-producer, single-consumer
 * ring of event records in shared memory.
 *
 * The recorder creates the ring in a memfd (mode 0600) and hands the descriptor
 * to the workload through the environment (HEAPSCOPE_TRACE_FD); the workload's
 * heap maps it and writes, the recorder maps it and drains. A forked child keeps
 * the mapping, so one ring carries every process of a session.
 *
 * Why one ring and not one per thread: the ticket a producer takes with one
 * fetch-and-add is at once its slot and the record's sequence number, so the
 * stream comes out of the ring already in the global order, and a heap-level
 * event that takes its ticket under heap.lock is ordered exactly as the lock
 * ordered the change. Per-thread rings would need a merge by sequence numbers
 * taken from a shared counter anyway; the counter is the contention either way.
 *
 * Protocol. Tickets t = 0, 1, 2, ... map to slot t % capacity. A producer with
 * ticket t waits until the consumer has freed the slot (tail > t - capacity),
 * writes the record, then stores seq = t with release: that store publishes it.
 * The consumer at position c reads slot c % capacity once its seq equals c
 * (acquire), and advances tail after each batch. Slots start with seq = ~0, and a
 * slot's old seq is from an earlier lap, so it never equals the ticket awaited.
 *
 * Full ring: by default the producer waits (lossless) and adds the time to
 * wait_ns; in lossy mode it takes a ticket only if a slot is free (a
 * compare-and-swap on head) and otherwise counts a drop. Tickets of dropped
 * records are never taken, so the sequence has no holes from drops.
 *
 * A producer killed between taking a ticket and publishing leaves a hole that
 * would stall the consumer forever; once every producer is gone the consumer
 * skips such holes (hs_ring_skip_hole) and counts them as lost.
 */
#ifndef HS_RING_H
#define HS_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "heapscope/events.h"

#define HS_RING_MAGIC 0x31474e4952534855ull /* "HSRING1" */
#define HS_RING_DEFAULT_SLOTS ((uint64_t)1 << 18) /* 20 MiB of records */

typedef struct hs_ring_hdr {
	uint64_t magic;
	uint32_t slot_size; /* sizeof(hs_event) */
	uint32_t level;	    /* hs_event_level the producers record */
	uint64_t capacity;  /* slots, a power of two */
	uint32_t lossy;
	uint32_t pad0;
	_Alignas(64) _Atomic uint64_t head; /* next ticket */
	_Alignas(64) _Atomic uint64_t tail; /* slots below tail are free again */
	_Alignas(64) _Atomic uint64_t drops;   /* lossy mode: records not written */
	_Atomic uint64_t wait_ns;	       /* lossless mode: producers' time waiting */
	_Atomic uint64_t waits;		       /* ... and how many times they waited */
	_Alignas(64) hs_event slots[];
} hs_ring_hdr;

/* Bytes to map for a ring of capacity slots. */
size_t hs_ring_bytes(uint64_t capacity);

/* Creates a ring in a new memfd; returns the descriptor (close-on-exec off, so
 * the workload inherits it) and the mapping, or -1 with errno. */
int hs_ring_create(uint64_t capacity, hs_event_level level, int lossy, hs_ring_hdr **out);
/* Maps an existing ring from its descriptor; NULL with errno if it is not one. */
hs_ring_hdr *hs_ring_map(int fd);
void hs_ring_unmap(hs_ring_hdr *r);

/* Producer: reserves a ticket (waiting or dropping when full) and returns the
 * slot to fill, with *seq set; NULL when lossy and full. Publish with
 * hs_ring_publish after filling every field but seq. */
hs_event *hs_ring_reserve(hs_ring_hdr *r, uint64_t *seq);
/* Producer: n consecutive tickets from *seq (n <= capacity); -1 when lossy and
 * there is no room for all n (all n are counted as dropped). */
int hs_ring_reserve_n(hs_ring_hdr *r, uint64_t n, uint64_t *seq);
static inline hs_event *hs_ring_slot(hs_ring_hdr *r, uint64_t seq)
{
	return &r->slots[seq & (r->capacity - 1)];
}
static inline void hs_ring_publish(hs_event *slot, uint64_t seq)
{
	__atomic_store_n(&slot->seq, seq, __ATOMIC_RELEASE);
}

/* Consumer: copies up to max published records in order into out and frees
 * their slots; returns how many (0 when the next one is not published yet). */
size_t hs_ring_read(hs_ring_hdr *r, hs_event *out, size_t max);
/* Consumer, once no producer can still be writing: if the next ticket was
 * taken but never published, skips it and returns 1 (a lost record). */
int hs_ring_skip_hole(hs_ring_hdr *r);

#endif /* HS_RING_H */
