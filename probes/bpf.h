/*
 * probes/bpf.h — the eBPF transport: attaching probes/heapscope.bpf.c to a
 * running process's USDT probes and reading its records in sequence.
 *
 * What it gives the recorder is what the in-process ring gives: hs_event
 * records in seq order, and a count of the lost ones. Records of the process
 * before its snapshot (snap_begin, taken by the process when it sees the
 * tracer's semaphores raised: core/trace.c) are dropped here, since nothing
 * can be rebuilt from them; the first record delivered is the snapshot's.
 *
 * Errors are one line in err (no prefix, no newline) saying what is wrong and
 * what is needed; the functions that can fail for want of privileges or
 * kernel support check that first, since libbpf's own message for EPERM
 * blames RLIMIT_MEMLOCK, which is not the cause on kernels with memcg
 * accounting. Not thread-safe: one thread attaches, reads and detaches.
 */
#ifndef HS_PROBES_BPF_H
#define HS_PROBES_BPF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "heapscope/events.h"

typedef struct hs_bpf hs_bpf;

/* 0 when this process may load eBPF programs and attach uprobes to another
 * process (CAP_SYS_ADMIN), and the kernel can run them; else -1 and why. */
int hs_bpf_check_access(char *err, size_t errlen);

/* The file mapped by pid that carries heapscope's USDT probes (the heapscope
 * binary, libheapscope.so or the preload shim), as an absolute path in path;
 * 0, or -1 and why: no such process, no heapscope in it, a file replaced
 * since it was mapped, probes of an older heapscope. */
int hs_bpf_find_target(pid_t pid, char *path, size_t len, char *err, size_t errlen);

/* Loads the program with a ring buffer of ring_bytes (a power of two of at
 * least a page) and attaches a handler to every probe of the event table up
 * to level in path, for pid only. NULL and why on failure. */
hs_bpf *hs_bpf_attach(pid_t pid, const char *path, hs_event_level level, uint64_t ring_bytes, char *err,
		      size_t errlen);

/* Up to max records in seq order. A gap in the sequence (a record lost to a
 * full ring buffer) is waited for briefly, since two CPUs may publish out of
 * order, then given up: with final set (the process is gone and the ring
 * drained), at once. */
size_t hs_bpf_read(hs_bpf *b, hs_event *out, size_t max, int final);

/* Records lost to a full ring buffer (the BPF map); each also leaves a gap
 * in seq, which the model sees. */
uint64_t hs_bpf_lost(const hs_bpf *b);
/* Whether the snapshot has arrived, and records dropped before it. */
int hs_bpf_snapped(const hs_bpf *b);
uint64_t hs_bpf_before_snapshot(const hs_bpf *b);

/* Detaches every probe (the process's semaphores fall back to 0) and frees. */
void hs_bpf_detach(hs_bpf *b);

#endif /* HS_PROBES_BPF_H */
