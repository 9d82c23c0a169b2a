/*
 * probes/heapscope.bpf.c — the eBPF side of `heapscope attach`: one handler per
 * USDT probe of the event table, each writing the same 80-byte record
 * (hs_event) the in-process ring carries, into a BPF ring buffer.
 *
 * The handlers are generated from HS_EVENT_TABLE, so a probe added to the
 * table gets its handler here with no further edit; probes/bpf.c attaches
 * handle_<name> to the USDT site heapscope:<name> by the same table.
 *
 * Order. A probe fires inside the emitter, where the heap holds the lock that
 * orders the change (heap.lock for pages, the tracer's order lock for spans),
 * so the handler takes its sequence number there, with one atomic add on a
 * global counter: the numbers order the events as the locks did. Taking the
 * number and reserving ring space are two steps, so two CPUs may write their
 * records in the other order; the reader (probes/bpf.c) puts them back in
 * sequence. A record that finds the ring full still used its number: the gap
 * tells the reader where the loss is, and `lost` counts it.
 *
 * Wake-ups: none per record (BPF_RB_NO_WAKEUP); the reader polls, as it does
 * the in-process ring. A wake-up per record costs the traced thread a
 * cross-CPU interrupt and cuts the sustained rate by two thirds (measured,
 * ../shared/notes/libbpf-usdt.md).
 *
 * target_tgid (read-only data, set before load) drops records of any other
 * process: the uprobes are attached per process already, this is the second
 * fence for a pid reused while attaching.
 *
 * Licence: GPL, as bpf_usdt_arg's helpers require.
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

#include "heapscope/events.h"

/* Big enough for 200 ms of the fastest heap-level stream measured (about
 * 1 M events/s through probes) while the reader sleeps; resized before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* Records lost to a full ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

__u64 next_seq;
const volatile __u32 target_tgid;

static __always_inline int record(struct pt_regs *ctx, __u16 kind, int nargs)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (target_tgid != 0 && (__u32)(id >> 32) != target_tgid)
		return 0;
	__u64 seq = __sync_fetch_and_add(&next_seq, 1);
	hs_event *e = bpf_ringbuf_reserve(&events, sizeof *e, 0);
	if (e == NULL) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n != NULL)
			__sync_fetch_and_add(n, 1);
		return 0;
	}
	e->seq = seq;
	e->ts = bpf_ktime_get_ns();
	e->pid = (__u32)(id >> 32);
	e->tid = (__u32)id;
	e->kind = kind;
	e->flags = 0;
	e->reserved = 0;
#pragma unroll
	for (int i = 0; i < HS_EVENT_MAX_ARGS; i++) {
		long v = 0;
		if (i < nargs)
			bpf_usdt_arg(ctx, i, &v);
		e->arg[i] = (__u64)v;
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

#define HANDLER_(NAME, name, kind, level, nargs, ...)                                              \
	SEC("usdt") int handle_##name(struct pt_regs *ctx)                                         \
	{                                                                                          \
		return record(ctx, kind, nargs);                                                   \
	}
HS_EVENT_TABLE(HANDLER_)

char LICENSE[] SEC("license") = "GPL";
