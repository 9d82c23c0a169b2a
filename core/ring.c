/*
 * core/ring.c — the shared-memory event ring (see core/ring.h for the protocol).
 *
 * Waiting: a producer that finds the ring full spins briefly, then yields, then
 * sleeps in 50 µs steps; the consumer drains in batches, so a full ring empties
 * by whole batches and a producer rarely waits twice. The time is measured only
 * once a wait begins, so the common path reads no clock.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

size_t hs_ring_bytes(uint64_t capacity)
{
	return sizeof(hs_ring_hdr) + capacity * sizeof(hs_event);
}

int hs_ring_create(uint64_t capacity, hs_event_level level, int lossy, hs_ring_hdr **out)
{
	if (capacity == 0 || (capacity & (capacity - 1)) != 0) {
		errno = EINVAL;
		return -1;
	}
	int fd = memfd_create("heapscope-ring", 0);
	if (fd < 0)
		return -1;
	size_t bytes = hs_ring_bytes(capacity);
	if (fchmod(fd, 0600) != 0 || ftruncate(fd, (off_t)bytes) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	hs_ring_hdr *r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	r->slot_size = sizeof(hs_event);
	r->level = level;
	r->capacity = capacity;
	r->lossy = lossy != 0;
	for (uint64_t i = 0; i < capacity; i++)
		r->slots[i].seq = ~(uint64_t)0;
	/* Last: a mapper that sees the magic sees a complete header. */
	__atomic_store_n(&r->magic, HS_RING_MAGIC, __ATOMIC_RELEASE);
	*out = r;
	return fd;
}

hs_ring_hdr *hs_ring_map(int fd)
{
	hs_ring_hdr h;
	struct stat st;
	/* A ring shorter than its header says would fault on the first write to a
	 * slot beyond the end: check the size the header implies, without overflow. */
	if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.magic != HS_RING_MAGIC ||
	    h.slot_size != sizeof(hs_event) || h.capacity == 0 || (h.capacity & (h.capacity - 1)) != 0 ||
	    h.capacity > (SIZE_MAX - sizeof(hs_ring_hdr)) / sizeof(hs_event) || fstat(fd, &st) != 0 ||
	    (uint64_t)st.st_size < hs_ring_bytes(h.capacity)) {
		errno = EINVAL;
		return NULL;
	}
	hs_ring_hdr *r = mmap(NULL, hs_ring_bytes(h.capacity), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return r == MAP_FAILED ? NULL : r;
}

void hs_ring_unmap(hs_ring_hdr *r)
{
	munmap(r, hs_ring_bytes(r->capacity));
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Waits until slot t is free: tail > t - capacity. */
static void wait_for_room(hs_ring_hdr *r, uint64_t t)
{
	uint64_t start = now_ns();
	for (unsigned spins = 0;
	     t - atomic_load_explicit(&r->tail, memory_order_acquire) >= r->capacity; spins++) {
		if (spins < 64)
			continue;
		if (spins < 128) {
			sched_yield();
			continue;
		}
		struct timespec d = { 0, 50000 };
		nanosleep(&d, NULL);
	}
	atomic_fetch_add_explicit(&r->wait_ns, now_ns() - start, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->waits, 1, memory_order_relaxed);
}

int hs_ring_reserve_n(hs_ring_hdr *r, uint64_t n, uint64_t *seq)
{
	uint64_t t;
	if (r->lossy) {
		t = atomic_load_explicit(&r->head, memory_order_relaxed);
		do {
			if (t + n - atomic_load_explicit(&r->tail, memory_order_acquire) > r->capacity) {
				atomic_fetch_add_explicit(&r->drops, n, memory_order_relaxed);
				return -1;
			}
		} while (!atomic_compare_exchange_weak_explicit(&r->head, &t, t + n, memory_order_relaxed,
								memory_order_relaxed));
	} else {
		t = atomic_fetch_add_explicit(&r->head, n, memory_order_relaxed);
		uint64_t last = t + n - 1;
		if (__builtin_expect(last - atomic_load_explicit(&r->tail, memory_order_acquire) >= r->capacity, 0))
			wait_for_room(r, last);
	}
	*seq = t;
	return 0;
}

hs_event *hs_ring_reserve(hs_ring_hdr *r, uint64_t *seq)
{
	return hs_ring_reserve_n(r, 1, seq) == 0 ? hs_ring_slot(r, *seq) : NULL;
}

size_t hs_ring_read(hs_ring_hdr *r, hs_event *out, size_t max)
{
	uint64_t c = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t n = 0;
	while (n < max) {
		const hs_event *slot = &r->slots[(c + n) & (r->capacity - 1)];
		if (__atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE) != c + n)
			break;
		out[n] = *slot;
		n++;
	}
	if (n != 0)
		atomic_store_explicit(&r->tail, c + n, memory_order_release);
	return n;
}

int hs_ring_skip_hole(hs_ring_hdr *r)
{
	uint64_t c = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (c >= atomic_load_explicit(&r->head, memory_order_acquire))
		return 0;
	if (__atomic_load_n(&r->slots[c & (r->capacity - 1)].seq, __ATOMIC_ACQUIRE) == c)
		return 0;
	atomic_store_explicit(&r->tail, c + 1, memory_order_release);
	return 1;
}
