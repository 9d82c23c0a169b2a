/*
 * probes/bpf.c — the eBPF transport (see probes/bpf.h): checks, target
 * discovery, loading and attaching through the generated skeleton, and the
 * reader that puts records back in sequence.
 *
 * Target discovery. libbpf attaches to a file, not to a process: a pid that
 * does not map the file "attaches" without error and never fires, and a probe
 * name the file lacks fails with ENOENT and no message. So the file is found
 * from /proc/PID/maps: the first mapped file whose .note.stapsdt names
 * heapscope's probes. Its inode must still be the mapped one (a binary rebuilt
 * while the process runs is a different file, whose probes the process does
 * not execute), and it must carry snap_begin, the probe an attaching tracer's
 * snapshot needs (older builds lack it).
 *
 * Sequence. The BPF handler numbers records under the heap's locks but two
 * CPUs may publish them out of order (heapscope.bpf.c), so records wait in a
 * min-heap keyed by seq until the next expected one is there. A missing
 * number is a record lost to a full ring buffer or one still being written:
 * it is waited for GAP_WAIT_NS after it was first seen missing, then given up:
 * the gap it leaves in seq is what the model sees. In-order records bypass
 * the heap.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bpf.h"
#include "heapscope.skel.h"

#define GAP_WAIT_NS (10 * 1000 * 1000)
#define NPROBES 64

struct hs_bpf {
	struct heapscope_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *links[NPROBES];
	unsigned nlinks;
	uint64_t next;		 /* the seq to deliver next */
	int started;		 /* next is known (the first record was seen) */
	int snapped;		 /* snap_begin delivered */
	uint64_t before;	 /* records dropped before the snapshot */
	uint64_t gap_since;	 /* when the current gap was first seen; 0: none */
	hs_event *heap;		 /* pending records, a min-heap on seq */
	size_t nheap, capheap;
	hs_event *out;		 /* the caller's buffer during a read */
	size_t nout, max;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* libbpf speaks only when asked (HEAPSCOPE_BPF_DEBUG=1): its messages for the
 * failures users meet are misleading, and ours say what to do. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	const char *v = getenv("HEAPSCOPE_BPF_DEBUG");
	if (v == NULL || *v == '\0' || *v == '0' || level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* --- access ------------------------------------------------------------------------------ */

int hs_bpf_check_access(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capget, &hdr, data) != 0)
		return fail(err, errlen, "cannot read this process's capabilities: %s", strerror(errno));
	if (!(data[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32))))
		return fail(err, errlen, "attaching eBPF probes to a process needs CAP_SYS_ADMIN (run as root): "
					 "CAP_BPF and CAP_PERFMON load the program but cannot attach uprobes");
	libbpf_set_print(libbpf_print);
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, NULL) != 1)
		return fail(err, errlen, "this kernel cannot run eBPF programs on uprobes "
					 "(CONFIG_BPF_SYSCALL, CONFIG_UPROBE_EVENTS)");
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) != 1)
		return fail(err, errlen, "this kernel has no BPF ring buffer (Linux 5.8 or later is needed)");
	return 0;
}

/* --- the target ----------------------------------------------------------------------------- */

/* Whether the ELF file fd has heapscope's USDT probes; *snap whether
 * snap_begin is among them. -1: not an ELF file libelf can read. */
static int has_probes(int fd, int *snap)
{
	*snap = 0;
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf == NULL)
		return -1;
	int found = 0;
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		goto out;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (gelf_getshdr(scn, &sh) == NULL || sh.sh_type != SHT_NOTE)
			continue;
		const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
		Elf_Data *d = elf_getdata(scn, NULL);
		if (name == NULL || strcmp(name, ".note.stapsdt") != 0 || d == NULL)
			continue;
		GElf_Nhdr nh;
		size_t off = 0, noff, doff;
		/* A stapsdt note: pc, base and semaphore addresses, then
		 * provider\0name\0arguments\0. */
		size_t addrs = 3 * (gelf_getclass(elf) == ELFCLASS32 ? 4 : 8);
		while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) != 0) {
			if (nh.n_type != 3 || nh.n_descsz <= addrs)
				continue;
			const char *desc = (const char *)d->d_buf + doff + addrs;
			size_t left = nh.n_descsz - addrs;
			if (strnlen(desc, left) == sizeof "heapscope" - 1 && strcmp(desc, "heapscope") == 0) {
				found = 1;
				const char *probe = desc + sizeof "heapscope";
				size_t rest = left - sizeof "heapscope";
				if (strnlen(probe, rest) < rest && strcmp(probe, "snap_begin") == 0)
					*snap = 1;
			}
		}
	}
out:
	elf_end(elf);
	return found;
}

int hs_bpf_find_target(pid_t pid, char *path, size_t len, char *err, size_t errlen)
{
	char maps[64], line[4096 + 256], comm[64] = "?";
	snprintf(maps, sizeof maps, "/proc/%ld/comm", (long)pid);
	FILE *f = fopen(maps, "r");
	if (f != NULL) {
		if (fgets(comm, sizeof comm, f) != NULL)
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	snprintf(maps, sizeof maps, "/proc/%ld/maps", (long)pid);
	if ((f = fopen(maps, "r")) == NULL)
		return fail(err, errlen, errno == ENOENT ? "no process %ld" : "cannot read the maps of process %ld: %s",
			    (long)pid, strerror(errno));
	if (elf_version(EV_CURRENT) == EV_NONE) {
		fclose(f);
		return fail(err, errlen, "libelf is unusable: %s", elf_errmsg(-1));
	}
	char last[4096] = "", old[4096] = "";
	int rc = 1;
	while (rc == 1 && fgets(line, sizeof line, f) != NULL) {
		unsigned long long ino;
		int at = 0;
		if (sscanf(line, "%*s %*s %*s %*s %llu %n", &ino, &at) != 1 || at == 0 || line[at] != '/')
			continue;
		char *file = line + at;
		file[strcspn(file, "\n")] = '\0';
		if (strcmp(file, last) == 0)
			continue;
		snprintf(last, sizeof last, "%s", file);
		size_t n = strlen(file);
		int deleted = n > 10 && strcmp(file + n - 10, " (deleted)") == 0;
		int fd = deleted ? -1 : open(file, O_RDONLY | O_CLOEXEC);
		struct stat st;
		int snap = 0;
		if (fd >= 0 && fstat(fd, &st) == 0 && (unsigned long long)st.st_ino == ino && has_probes(fd, &snap) == 1) {
			if (!snap)
				snprintf(old, sizeof old, "%s", file);
			else if (snprintf(path, len, "%s", file) < (int)len)
				rc = 0;
		} else if (fd >= 0 || deleted) {
			/* A file replaced since it was mapped: its probes may
			 * have been heapscope's; look at the mapping itself. */
			char mf[128];
			unsigned long lo, hi;
			if (sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
				snprintf(mf, sizeof mf, "/proc/%ld/map_files/%lx-%lx", (long)pid, lo, hi);
				int mfd = open(mf, O_RDONLY | O_CLOEXEC);
				if (mfd >= 0 && has_probes(mfd, &snap) == 1)
					rc = -2;
				if (mfd >= 0)
					close(mfd);
			}
		}
		if (fd >= 0)
			close(fd);
	}
	fclose(f);
	if (rc == 0)
		return 0;
	if (rc == -2)
		return fail(err, errlen, "process %ld (%s) runs %s, which was replaced or deleted since it started; "
					 "attach needs the file the process mapped",
			    (long)pid, comm, last);
	if (old[0] != '\0')
		return fail(err, errlen, "process %ld (%s) runs %s, built by an older heapscope without the snap_begin "
					 "probe an attach needs",
			    (long)pid, comm, old);
	return fail(err, errlen, "process %ld (%s) does not use heapscope's heap: none of its mapped files has "
				 "heapscope's USDT probes (run it under 'heapscope run', or with libheapscope-preload.so)",
		    (long)pid, comm);
}

/* --- reading ---------------------------------------------------------------------------------- */

static void heap_push(hs_bpf *b, const hs_event *e)
{
	if (b->nheap == b->capheap) {
		size_t cap = b->capheap ? 2 * b->capheap : 4096;
		hs_event *p = realloc(b->heap, cap * sizeof *p);
		if (p == NULL)
			return; /* the record is lost: its gap is given up like any other */
		b->heap = p;
		b->capheap = cap;
	}
	size_t i = b->nheap++;
	while (i > 0 && b->heap[(i - 1) / 2].seq > e->seq) {
		b->heap[i] = b->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	b->heap[i] = *e;
}

static void heap_pop(hs_bpf *b)
{
	hs_event last = b->heap[--b->nheap];
	size_t i = 0, n = b->nheap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && b->heap[c + 1].seq < b->heap[c].seq)
			c++;
		if (b->heap[c].seq >= last.seq)
			break;
		b->heap[i] = b->heap[c];
		i = c;
	}
	if (n > 0)
		b->heap[i] = last;
}

/* The record numbered next: to the caller, or dropped before the snapshot. */
static void deliver(hs_bpf *b, const hs_event *e)
{
	b->next = e->seq + 1;
	if (!b->snapped && e->kind != HS_EV_SNAP_BEGIN) {
		b->before++;
		return;
	}
	b->snapped = 1;
	b->out[b->nout++] = *e;
}

static int on_record(void *ctx, void *data, size_t size)
{
	hs_bpf *b = ctx;
	const hs_event *e = data;
	if (size < sizeof *e)
		return 0;
	if (!b->started) {
		b->started = 1;
		b->next = e->seq;
	}
	if (e->seq < b->next)
		return 0; /* its gap was given up already */
	if (e->seq == b->next && b->nheap == 0 && b->nout < b->max)
		deliver(b, e);
	else
		heap_push(b, e);
	return 0;
}

/* Moves pending records that are next in sequence to the caller; gives up a
 * gap that has waited long enough (or at once when final). */
static void drain_heap(hs_bpf *b, int final)
{
	while (b->nheap > 0 && b->nout < b->max) {
		const hs_event *top = &b->heap[0];
		if (top->seq < b->next) {
			heap_pop(b);
			continue;
		}
		if (top->seq > b->next) {
			uint64_t now = mono_ns();
			if (b->gap_since == 0)
				b->gap_since = now;
			if (!final && now - b->gap_since < GAP_WAIT_NS)
				return;
			b->next = top->seq;
		}
		b->gap_since = 0;
		hs_event e = *top;
		heap_pop(b);
		deliver(b, &e);
	}
}

size_t hs_bpf_read(hs_bpf *b, hs_event *out, size_t max, int final)
{
	b->out = out;
	b->nout = 0;
	b->max = max;
	drain_heap(b, final);
	if (b->nout < max) {
		ring_buffer__consume(b->rb);
		drain_heap(b, final);
	}
	b->out = NULL;
	return b->nout;
}

uint64_t hs_bpf_lost(const hs_bpf *b)
{
	uint32_t zero = 0;
	uint64_t n = 0;
	if (bpf_map__lookup_elem(b->skel->maps.lost, &zero, sizeof zero, &n, sizeof n, 0) != 0)
		return 0;
	return n;
}

int hs_bpf_snapped(const hs_bpf *b)
{
	return b->snapped;
}

uint64_t hs_bpf_before_snapshot(const hs_bpf *b)
{
	return b->before;
}

/* --- attaching ---------------------------------------------------------------------------------- */

/* Attaches handle_<name> to the USDT probe heapscope:<name> of path, for pid. */
static int attach_one(hs_bpf *b, pid_t pid, const char *path, const hs_event_info *ev, char *err, size_t errlen)
{
	char prog_name[64];
	snprintf(prog_name, sizeof prog_name, "handle_%s", ev->name);
	struct bpf_program *prog = bpf_object__find_program_by_name(b->skel->obj, prog_name);
	if (prog == NULL || b->nlinks == NPROBES)
		return fail(err, errlen, "the eBPF program has no handler %s: rebuild heapscope", prog_name);
	struct bpf_link *l = bpf_program__attach_usdt(prog, pid, path, "heapscope", ev->name, NULL);
	if (l == NULL) {
		int e = errno;
		if (e == ENOENT)
			return fail(err, errlen, "%s has no USDT probe heapscope:%s (built by another heapscope version)",
				    path, ev->name);
		return fail(err, errlen, "cannot attach to heapscope:%s in %s: %s", ev->name, path, strerror(e));
	}
	b->links[b->nlinks++] = l;
	return 0;
}

hs_bpf *hs_bpf_attach(pid_t pid, const char *path, hs_event_level level, uint64_t ring_bytes, char *err,
		      size_t errlen)
{
	hs_bpf *b = calloc(1, sizeof *b);
	if (b == NULL) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	libbpf_set_print(libbpf_print);
	if ((b->skel = heapscope_bpf__open()) == NULL) {
		fail(err, errlen, "cannot open the eBPF program: %s", strerror(errno));
		goto bad;
	}
	b->skel->rodata->target_tgid = (uint32_t)pid;
	if (ring_bytes > ((uint64_t)1 << 30) ||
	    bpf_map__set_max_entries(b->skel->maps.events, (uint32_t)ring_bytes) != 0) {
		fail(err, errlen, "a BPF ring buffer of %" PRIu64 " bytes: a power of two up to 1 GiB is needed",
		     ring_bytes);
		goto bad;
	}
	if (heapscope_bpf__load(b->skel) != 0) {
		int e = errno;
		struct stat st;
		fail(err, errlen, "the kernel refused the eBPF program: %s%s", strerror(e),
		     stat("/sys/kernel/btf/vmlinux", &st) != 0 ? " (and it has no BTF: /sys/kernel/btf/vmlinux)"
							       : "; HEAPSCOPE_BPF_DEBUG=1 shows the verifier's log");
		goto bad;
	}
	/* The consumer exists before the first record can. */
	if ((b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.events), on_record, b, NULL)) == NULL) {
		fail(err, errlen, "cannot map the BPF ring buffer: %s", strerror(errno));
		goto bad;
	}
	/* snap_begin last: raising its semaphore is what makes the process
	 * send its snapshot, whose other records need their probes attached. */
	unsigned n;
	const hs_event_info *all = hs_event_all(&n);
	for (unsigned i = 0; i < n; i++)
		if (all[i].level <= level && all[i].kind != HS_EV_SNAP_BEGIN &&
		    attach_one(b, pid, path, &all[i], err, errlen) != 0)
			goto bad;
	if (attach_one(b, pid, path, hs_event_lookup(HS_EV_SNAP_BEGIN), err, errlen) != 0)
		goto bad;
	return b;
bad:
	hs_bpf_detach(b);
	return NULL;
}

void hs_bpf_detach(hs_bpf *b)
{
	if (b == NULL)
		return;
	/* snap_begin first: the process stops sampling before the others go. */
	for (unsigned i = b->nlinks; i-- > 0;)
		bpf_link__destroy(b->links[i]);
	ring_buffer__free(b->rb);
	heapscope_bpf__destroy(b->skel);
	free(b->heap);
	free(b);
}
