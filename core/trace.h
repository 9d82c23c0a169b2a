/*
 * core/trace.h — the tracer: one tracepoint per state change of the heap.
 *
 * A site is written HS_TRACE(span_alloc, base, npages, sc, state): the event's
 * name from include/heapscope/events.h and exactly its arguments (the count is
 * checked at compile time). The guard is two loads and a branch: the in-process
 * trace level, and the USDT semaphore the kernel raises while a uprobe is
 * attached. Only when one of them is set does the call happen; the emitter then
 * fires the USDT probe (so eBPF sees the arguments) and, when the level asks for
 * the event, writes a record into the shared-memory ring (core/ring.h).
 *
 * Ordering: a record's sequence number is its ring ticket, taken inside the
 * emitter. Sites that change the page allocator emit while holding heap.lock,
 * so the stream orders them as the lock did. Span events (made without
 * heap.lock from a page cache) go through hs_trace_span, which updates the
 * running span-table hash and takes the ticket under the tracer's order lock;
 * the digest reads the hash under the same lock, so a digest covers exactly the
 * span events before it.
 *
 * The tracer is the one piece of global state besides the heap: the level, the
 * mapped ring, the cached pid, the span-table hash and the sampler thread (and
 * whether it runs, read inline by hs_trace_start_sampler). It is
 * set up once, from the environment, when the heap initializes
 * (hs_trace_init_from_env), before any event can be emitted.
 */
#ifndef HS_TRACE_H
#define HS_TRACE_H

#include <stdatomic.h>
#include <stdint.h>

#include "heapscope/events.h"

/* Hidden: every site reads these two, and in the shared library a hidden symbol
 * is one PC-relative load instead of a load through the GOT. */
extern _Atomic int hs_trace_level __attribute__((visibility("hidden"))); /* hs_event_level; see trace.c */

#define HS_TRACE_SEM_(NAME, name, ...)                                                             \
	extern volatile unsigned short heapscope_##name##_semaphore __attribute__((visibility("hidden")));
HS_EVENT_TABLE(HS_TRACE_SEM_)
#undef HS_TRACE_SEM_

#define HS_TRACE_DECL_(NAME, name, ...)                                                           \
	void hs_trace_emit_##name(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
HS_EVENT_TABLE(HS_TRACE_DECL_)
#undef HS_TRACE_DECL_

#define HS_TRACE_META_(NAME, name, kind, level, nargs, ...)                                       \
	HS_TRACE_LEVEL_##name = HS_EVL_##level, HS_TRACE_NARGS_##name = nargs,
enum { HS_EVENT_TABLE(HS_TRACE_META_) };
#undef HS_TRACE_META_

#define HS_TRACE_NARGS_OF_(...) HS_TRACE_NTH_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define HS_TRACE_NTH_(a, b, c, d, e, f, n, ...) n
#define HS_TRACE_PAD_(...) HS_TRACE_TAKE6_(__VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define HS_TRACE_TAKE6_(a, b, c, d, e, f, ...)                                                     \
	(uint64_t)(a), (uint64_t)(b), (uint64_t)(c), (uint64_t)(d), (uint64_t)(e), (uint64_t)(f)

/* HS_NO_TRACE compiles every site out: the baseline `make bench` measures the
 * cost of the sites against. */
#ifdef HS_NO_TRACE
#define HS_TRACE_ON(name) 0
#else
#define HS_TRACE_ON(name)                                                                          \
	__builtin_expect((int)(atomic_load_explicit(&hs_trace_level, memory_order_relaxed) >=               \
			       HS_TRACE_LEVEL_##name) |                                                    \
				 (int)(heapscope_##name##_semaphore != 0),                                 \
			 0)
#endif

/* HS_TRACE_ON with sequentially consistent loads, for a second look after a
 * sequentially consistent store (span states: core/mheap.c). */
#ifdef HS_NO_TRACE
#define HS_TRACE_ON_SC(name) 0
#else
#define HS_TRACE_ON_SC(name)                                                                       \
	(atomic_load(&hs_trace_level) >= HS_TRACE_LEVEL_##name ||                                  \
	 __atomic_load_n(&heapscope_##name##_semaphore, __ATOMIC_SEQ_CST) != 0)
#endif

#define HS_TRACE(name, ...)                                                                        \
	do {                                                                                       \
		_Static_assert(HS_TRACE_NARGS_OF_(__VA_ARGS__) == HS_TRACE_NARGS_##name,           \
			       "HS_TRACE(" #name "): wrong number of arguments");                  \
		if (HS_TRACE_ON(name))                                                             \
			hs_trace_emit_##name(HS_TRACE_PAD_(__VA_ARGS__));                          \
	} while (0)

struct hs_mspan;
/* Sets a span's state (HS_MSPAN_*) and emits span_alloc or span_free under
 * the order lock (see the essay and trace.c). Called where the heap makes or
 * frees a span while someone traces; hs_mheap's span_set_state decides. */
void hs_trace_span_state(struct hs_mspan *s, unsigned state);

/* The span-table hash term of one span; the model sums the same terms. */
uint64_t hs_trace_span_term(uintptr_t base, uintptr_t npages, unsigned spanclass);

/* Maps the ring named by HEAPSCOPE_TRACE_FD, if any, and sets the level. Called
 * once by mallocinit; a bad descriptor is reported and tracing stays off. */
void hs_trace_init_from_env(void);
extern _Atomic int hs_trace_sampler_running __attribute__((visibility("hidden")));
void hs_trace_start_sampler_slow(void);

/* Starts the sampler thread (statistics and digests every 100 ms) if tracing is
 * on, it is not running, and the heap is not on the virtual clock. Called where
 * the heap makes a span, at every mcache refill, and with every traced malloc
 * and owner's free: never under a heap lock, never before the heap can
 * allocate. Inline: two or three loads. */
static inline void hs_trace_start_sampler(void)
{
	if (__builtin_expect((atomic_load_explicit(&hs_trace_level, memory_order_relaxed) != HS_EVL_OFF ||
			      heapscope_snap_begin_semaphore != 0) &&
				     !atomic_load_explicit(&hs_trace_sampler_running, memory_order_acquire),
			     0))
		hs_trace_start_sampler_slow();
}
/* Emits a statistics sample and a digest now (takes heap.lock). */
void hs_trace_sample(void);
/* Final sample, digest and proc_end; the process's tracing stops. */
void hs_trace_finish(int status);
/* The calling thread is exiting: its buffered records go to the ring. */
void hs_trace_thread_exit(void);

#endif /* HS_TRACE_H */
