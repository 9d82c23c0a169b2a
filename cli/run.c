/*
 * cli/run.c — `heapscope run` and `heapscope attach`: the recorder.
 *
 * It creates the event ring in a memfd, starts the workload in a child process
 * (this binary again, `workloads --run NAME`, with HEAPSCOPE_TRACE_FD naming the
 * ring, so the child's heap traces from its first allocation), and drains the
 * ring until the child is gone: each batch, read straight into a buffer of the
 * store's writer thread (store/writer.c), goes to that thread, which appends it
 * to the file, and to the model here, which checks it (digests included). Every
 * KEYFRAME_EVERY events the model is saved as a keyframe so that readers can
 * seek.
 *
 * End of a session: complete when the workload exits by itself, crashed when a
 * signal kills it, interrupted when the recorder is told to stop (SIGINT or
 * SIGTERM are passed on to the workload, whose events up to then are kept).
 * After the child is gone, records it reserved but never published (it died
 * mid-write) are skipped and counted as lost.
 *
 * Live view: unless --headless, the TUI (tui/) draws the model every 50 ms of
 * wall time, between batches, whatever the event rate; q in the TUI stops the
 * workload like SIGINT. After the workload exits the last picture stays until
 * q. The workload's own output goes to /dev/null then, so as not to scribble
 * over the screen; messages go to the TUI's status line.
 *
 * The workload's exit status passes through as the recorder's; a model
 * divergence makes the recorder exit 1 after reporting it.
 *
 * Heap settings (cli/settings.h): the seven experiment settings are resolved
 * before the workload starts (flag, else inherited variable, else default),
 * exported into the child's environment in canonical form, and recorded in
 * the session's config as {"heap": {"NAME": {"value": ..., "from": ...}}}.
 * The replay workload (heapscope replay-workload, cli/replay.c) is recorded
 * here like any other; its session's command names the recording it replays
 * and its config adds {"replay": {...}}, the input's description.
 *
 * Programs (`heapscope run [options] -- PROGRAM ARGS...`, issue 8): the child
 * execs PROGRAM (found on PATH) with LD_PRELOAD naming libheapscope-preload.so
 * (shim/, docs/hosting.md: found in ../lib beside this binary, or named by
 * HEAPSCOPE_PRELOAD), put first so that its malloc wins; HEAPSCOPE_TRACE_FD
 * names the ring and HEAPSCOPE_TRACE_PATH the recorder's own descriptor of it
 * under /proc, from which the shim reopens the ring in a descendant that closed
 * its descriptors before exec. Every process of the program's tree that loads
 * the shim is a heap of the session. The program's stdin, stdout and stderr are
 * the recorder's, untouched, with the TUI open or not (a program that writes to
 * the terminal draws over the TUI: use --headless, or redirect its output), so
 * the recorder's own summary goes to stderr. Its exit status, or 128 + the
 * signal that killed it, is the recorder's. The session ends when PROGRAM
 * exits; descendants still running then are no longer recorded, and so that
 * they never wait for room in a ring nobody drains, the ring is switched to
 * lossy mode and every waiting producer is let through (abandon_ring).
 *
 * The eBPF transport (probes/, docs/probes.md): `heapscope attach --pid PID`
 * and `heapscope run --transport bpf` read records from probes/bpf.c instead of
 * the ring, in sequence, and feed the same model, store and TUI. attach starts
 * nothing: it checks privileges and the target (one line, exit 2 otherwise),
 * watches the process through a pidfd, and detaches on Ctrl-C, q or
 * --duration, leaving the process running. run --transport bpf starts its
 * child untraced and holds it on a pipe (wait_gate) until the probes are
 * attached to its pid, so that it is traced from its first allocation. Lost
 * records are the BPF map's count; the model marks where they make it
 * untrusted, and a divergence after that point is not the recorder's failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "bpf.h"
#include "cli.h"
#include "model.h"
#include "replay.h"
#include "ring.h"
#include "settings.h"
#include "store.h"
#include "tui.h"
#include "workloads.h"

#define BATCH HS_STORE_WRITER_BATCH
#define KEYFRAME_EVERY 100000
#define MIN_POLL_NS (200 * 1000)
#define MAX_POLL_NS (5 * 1000 * 1000)
#define FRAME_NS (50 * 1000 * 1000)

typedef struct run_opts {
	const char *workload, *out;
	char **prog;	 /* PROGRAM ARGS... after --, NULL-terminated; NULL: a workload */
	const char *preload; /* the shim's absolute path (programs) */
	char command[1024];  /* the session's command: the workload, or the command line */
	uint64_t seed, slots;
	const char *duration;
	hs_event_level level;
	int lossy, headless, no_store, no_model;
	hs_settings settings; /* the heap's, handed to the workload and recorded */
	char replay[512];     /* the replay workload's input, as JSON; "" for others */
	int bpf;	  /* --transport bpf, or attach: the eBPF transport (probes/) */
	pid_t attach_pid; /* attach: the running process; 0 for run */
	char target[PATH_MAX]; /* bpf: the file carrying the probes */
} run_opts;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: heapscope run [--workload NAME] [-o FILE] [--headless] [--events heap|objects]\n"
		"                     [--seed N] [--duration SECONDS] [--lossy] [--ring-slots N]\n"
		"                     [--transport ring|bpf]\n"
		"       heapscope run [-o FILE] [--headless] [--events heap|objects] [--lossy]\n"
		"                     [--ring-slots N] -- PROGRAM [ARGS...]\n\n"
		"Runs a built-in workload (see 'heapscope workloads') on a traced heap in a child\n"
		"process, records its events into FILE and checks them with the model. Prints one\n"
		"summary at the end. The workload's exit status is the command's.\n\n"
		"With -- PROGRAM, runs any dynamically linked program on heapscope's heap instead\n"
		"(LD_PRELOAD=libheapscope-preload.so; see docs/hosting.md): it and every process\n"
		"it starts become heaps of the session. Its stdin, stdout, stderr and exit status\n"
		"pass through untouched; the summary goes to stderr. A program that writes to the\n"
		"terminal draws over the TUI: use --headless, or redirect its output.\n\n"
		"options:\n"
		"  --workload NAME     the workload to run (default demo)\n"
		"  -o FILE             the session file (SQLite; default heapscope.db); sessions\n"
		"                      are appended to an existing file\n"
		"  --no-store          record nothing (measures the ring and the model alone)\n"
		"  --no-model          do not replay events into the model while recording\n"
		"  --headless          no TUI: record and print the summary only (without a\n"
		"                      terminal, run needs this)\n"
		"  --events LEVEL      heap (default): every change of heap metadata;\n"
		"                      objects: also every malloc and free\n"
		"  --seed N            the workload's seed (default 1)\n"
		"  --duration SECONDS  run the workload this long (demo: until stopped otherwise)\n"
		"  --lossy             drop events when the ring is full instead of waiting\n"
		"  --ring-slots N      ring capacity in events, a power of two (default %" PRIu64 ");\n"
		"                      with bpf, the BPF ring buffer holds N x 64 bytes\n"
		"  --transport T       ring (default): a shared-memory ring the heap writes into;\n"
		"                      bpf: eBPF programs on the heap's USDT probes, attached to the\n"
		"                      child before it starts, as 'heapscope attach' does (root;\n"
		"                      never makes the workload wait: a full buffer loses events,\n"
		"                      counted; a program's children are not followed)\n\n"
		"heap settings (a flag wins over the environment variable; every setting is\n"
		"recorded in the session's config; docs/regressions.md):\n",
		HS_RING_DEFAULT_SLOTS);
	hs_settings_usage(f);
}

/*
 * The shim: HEAPSCOPE_PRELOAD if set, else ../lib/libheapscope-preload.so from
 * this binary's directory (build/bin -> build/lib, PREFIX/bin -> PREFIX/lib).
 * An absolute path without the separators of LD_PRELOAD (space, colon).
 */
/* This binary's absolute path. */
static void self_exe(char *out, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	if (n <= 0)
		hs_cli_usage_error("run: cannot find this binary (/proc/self/exe): %s", strerror(errno));
	out[n] = '\0';
}

static const char *find_preload(void)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX], want[PATH_MAX + 64];
	const char *env = getenv("HEAPSCOPE_PRELOAD");
	if (env != NULL && *env != '\0') {
		snprintf(want, sizeof want, "%s", env);
	} else {
		self_exe(exe, sizeof exe);
		char *slash = strrchr(exe, '/');
		if (slash != NULL)
			*slash = '\0';
		snprintf(want, sizeof want, "%s/../lib/libheapscope-preload.so", exe);
	}
	if (realpath(want, path) == NULL)
		hs_cli_usage_error("run: no LD_PRELOAD shim at %s (%s); build it with make, or set HEAPSCOPE_PRELOAD",
				   want, strerror(errno));
	if (strpbrk(path, " :") != NULL)
		hs_cli_usage_error("run: the shim's path %s holds a space or a colon, which LD_PRELOAD cannot name",
				   path);
	return path;
}

/* argv as a shell would need it typed: words with other characters than these
 * are single-quoted. Truncated to len. */
static void command_line(char **argv, char *out, size_t len)
{
	size_t n = 0;
	out[0] = '\0';
	for (int i = 0; argv[i] != NULL && n + 1 < len; i++) {
		const char *a = argv[i];
		int plain = *a != '\0' && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
						  "0123456789_./=:,+@%^-") == strlen(a);
		if (i > 0)
			out[n++] = ' ';
		if (!plain && n + 1 < len)
			out[n++] = '\'';
		for (; *a != '\0' && n + 5 < len; a++) {
			if (!plain && *a == '\'') {
				memcpy(out + n, "'\\''", 4);
				n += 4;
			} else {
				out[n++] = *a;
			}
		}
		if (!plain && n + 1 < len)
			out[n++] = '\'';
		out[n] = '\0';
	}
}

/*
 * The options run and attach share: -o, --events, --duration, --ring-slots,
 * --headless, --no-store, --no-model. Returns how many arguments it took
 * (0: not one of them); a bad value exits 2 naming cmd.
 */
static int parse_common(run_opts *o, const char *cmd, const char *a, const char *v)
{
	if (strcmp(a, "-o") == 0) {
		if (v == NULL)
			hs_cli_usage_error("%s: -o needs a file name", cmd);
		o->out = v;
		return 2;
	} else if (strcmp(a, "--events") == 0) {
		if (v != NULL && strcmp(v, "heap") == 0)
			o->level = HS_EVL_HEAP;
		else if (v != NULL && strcmp(v, "objects") == 0)
			o->level = HS_EVL_OBJECT;
		else
			hs_cli_usage_error("%s: --events takes heap or objects", cmd);
		return 2;
	} else if (strcmp(a, "--duration") == 0) {
		/* attach detaches after it: a zero would record nothing. */
		double min = strcmp(cmd, "attach") == 0 ? 1e-3 : 0;
		char *end;
		double d = v != NULL ? strtod(v, &end) : -1;
		if (v == NULL || *end != '\0' || !(d >= min) || d > 1e7)
			hs_cli_usage_error("%s: --duration takes a number of seconds, not '%s'", cmd, v ? v : "");
		o->duration = v;
		return 2;
	} else if (strcmp(a, "--ring-slots") == 0) {
		o->slots = hs_cli_parse_u64("--ring-slots", v, 1024, (uint64_t)1 << 26);
		if ((o->slots & (o->slots - 1)) != 0)
			hs_cli_usage_error("%s: --ring-slots must be a power of two", cmd);
		return 2;
	} else if (strcmp(a, "--headless") == 0) {
		o->headless = 1;
	} else if (strcmp(a, "--no-store") == 0) {
		o->no_store = 1;
	} else if (strcmp(a, "--no-model") == 0) {
		o->no_model = 1;
	} else {
		return 0;
	}
	return 1;
}

static void parse(int argc, char **argv, run_opts *o)
{
	const char *workload_option = NULL;
	*o = (run_opts){ .workload = "demo", .out = "heapscope.db", .seed = 1, .slots = HS_RING_DEFAULT_SLOTS,
			 .level = HS_EVL_HEAP };
	hs_settings_begin(&o->settings);
	for (int i = 1, took; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(HS_EXIT_OK);
		} else if ((took = parse_common(o, "run", a, v)) != 0) {
			i += took - 1;
		} else if (strcmp(a, "--workload") == 0) {
			if (v == NULL)
				hs_cli_usage_error("run: --workload needs a name");
			o->workload = v;
			i++;
		} else if (strcmp(a, "--seed") == 0) {
			o->seed = hs_cli_parse_u64("--seed", v, 0, UINT64_MAX);
			i++;
		} else if (strcmp(a, "--transport") == 0) {
			if (v != NULL && strcmp(v, "ring") == 0)
				o->bpf = 0;
			else if (v != NULL && strcmp(v, "bpf") == 0)
				o->bpf = 1;
			else
				hs_cli_usage_error("run: --transport takes ring or bpf");
			i++;
		} else if (strcmp(a, "--lossy") == 0) {
			o->lossy = 1;
		} else if (hs_settings_flag(&o->settings, "run", a, v)) {
			i++;
		} else if (strcmp(a, "--") == 0) {
			if (i + 1 == argc)
				hs_cli_usage_error("run: -- needs a program to run");
			o->prog = &argv[i + 1];
			break;
		} else {
			hs_cli_usage_error("run: unknown option '%s' (see 'heapscope run --help')", a);
		}
		if (strcmp(a, "--workload") == 0 || strcmp(a, "--seed") == 0 || strcmp(a, "--duration") == 0)
			workload_option = a;
	}
	hs_settings_finish(&o->settings, "run");
	if (o->prog != NULL) {
		if (workload_option != NULL)
			hs_cli_usage_error("run: %s is for built-in workloads, not with -- PROGRAM", workload_option);
		o->seed = 0;
		o->preload = find_preload();
		command_line(o->prog, o->command, sizeof o->command);
		return;
	}
	if (hs_workload_find(o->workload) == NULL)
		hs_cli_usage_error("run: unknown workload '%s' (see 'heapscope workloads')", o->workload);
	snprintf(o->command, sizeof o->command, "%s", o->workload);
	if (strcmp(o->workload, hs_replay_workload.name) == 0 &&
	    hs_replay_describe(o->command, sizeof o->command, o->replay, sizeof o->replay) != 0)
		hs_cli_usage_error("run: the replay workload is started by 'heapscope replay-workload FILE --session N'");
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The eBPF transport attaches to a child before it execs (so its probes fire
 * from its first allocation): the child waits here for the recorder's byte.
 * EOF means the recorder gave up (it could not attach). */
static void wait_gate(int gate)
{
	char c;
	if (gate < 0)
		return;
	if (read(gate, &c, 1) != 1)
		_exit(127);
	close(gate);
}

/*
 * Starts PROGRAM under the shim, tracing into ring fd (see the essay), or with
 * fd -1 untraced for the eBPF transport, after the gate. Its stdio is the
 * recorder's. Exit status 127 when it cannot be found, 126 when it cannot be
 * run, as a shell would.
 */
static pid_t spawn_program(const run_opts *o, int fd, int gate)
{
	char fdbuf[16], pathbuf[64], *preload;
	snprintf(fdbuf, sizeof fdbuf, "%d", fd);
	snprintf(pathbuf, sizeof pathbuf, "/proc/%ld/fd/%d", (long)getpid(), fd);
	const char *old = getenv("LD_PRELOAD");
	size_t len = strlen(o->preload) + (old != NULL ? strlen(old) : 0) + 2;
	if ((preload = malloc(len)) == NULL)
		return -1;
	snprintf(preload, len, "%s%s%s", o->preload, old != NULL && *old != '\0' ? ":" : "",
		 old != NULL ? old : "");
	pid_t pid = fork();
	if (pid != 0) {
		free(preload);
		return pid;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
		_exit(127);
	if ((fd >= 0 && (setenv("HEAPSCOPE_TRACE_FD", fdbuf, 1) != 0 ||
			 setenv("HEAPSCOPE_TRACE_PATH", pathbuf, 1) != 0)) ||
	    setenv("LD_PRELOAD", preload, 1) != 0 || hs_settings_export(&o->settings) != 0)
		_exit(127);
	wait_gate(gate);
	execvp(o->prog[0], o->prog);
	int e = errno;
	fprintf(stderr, "heapscope: run: %s: %s\n", o->prog[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

/* See the essay: descendants of the program that outlive it must not wait for
 * room in the ring once nobody drains it. Lossy from now on, and the consumer's
 * position moves a whole ring ahead, which lets every waiting producer through
 * (a waiting ticket is at most a few buffers past a full ring). */
static void abandon_ring(hs_ring_hdr *ring)
{
	__atomic_store_n(&ring->lossy, 1, __ATOMIC_RELEASE);
	atomic_fetch_add(&ring->tail, ring->capacity);
}

/* Starts the workload: this binary, `workloads --run`, tracing into ring fd
 * (or -1: untraced, for the eBPF transport, after the gate). */
static pid_t spawn(const run_opts *o, int fd, int gate, int quiet)
{
	char fdbuf[16], seedbuf[24];
	snprintf(fdbuf, sizeof fdbuf, "%d", fd);
	snprintf(seedbuf, sizeof seedbuf, "%" PRIu64, o->seed);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* The workload dies with the recorder, even one killed with SIGKILL. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
		_exit(127);
	if ((fd >= 0 && setenv("HEAPSCOPE_TRACE_FD", fdbuf, 1) != 0) || hs_settings_export(&o->settings) != 0)
		_exit(127);
	if (quiet) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			close(null);
		}
	}
	char *args[10];
	int n = 0;
	args[n++] = "heapscope";
	args[n++] = "workloads";
	args[n++] = "--run";
	args[n++] = (char *)o->workload;
	args[n++] = "--seed";
	args[n++] = seedbuf;
	if (o->duration != NULL) {
		args[n++] = "--duration";
		args[n++] = (char *)o->duration;
	}
	args[n] = NULL;
	wait_gate(gate);
	execv("/proc/self/exe", args);
	fprintf(stderr, "heapscope: run: cannot start the workload: %s\n", strerror(errno));
	_exit(127);
}


/* The command recording, for messages: attach or run. */
static const char *command_name(const run_opts *o)
{
	return o->attach_pid != 0 ? "attach" : "run";
}

typedef struct recorder {
	const run_opts *o;
	hs_ring_hdr *ring; /* the in-process transport, or NULL */
	hs_bpf *bpf;	   /* the eBPF transport, or NULL */
	hs_model *model;
	hs_store *store;
	hs_store_writer *writer; /* while the session is open and writable */
	hs_tui *tui;
	uint64_t next_frame_ns, rate_ns, rate_events;
	double rate;
	char title[256];
	hs_session_info info;
	uint64_t nevents, holes, since_keyframe, drops_seen;
	int model_reported;
	int store_failed;
	int proc_end_seen; /* attach: the process ended its tracing itself */
} recorder;

/* Records lost on the way: ring drops and holes, or the eBPF ring buffer's. */
static uint64_t lost(const recorder *r)
{
	if (r->bpf != NULL)
		return hs_bpf_lost(r->bpf);
	return atomic_load(&r->ring->drops) + r->holes;
}

static uint64_t wait_ns(const recorder *r)
{
	return r->ring != NULL ? atomic_load(&r->ring->wait_ns) : 0;
}

static uint64_t waits(const recorder *r)
{
	return r->ring != NULL ? atomic_load(&r->ring->waits) : 0;
}

/* Up to max records in sequence from the transport. */
static size_t source_read(recorder *r, hs_event *buf, size_t max, int final)
{
	if (r->bpf != NULL)
		return hs_bpf_read(r->bpf, buf, max, final);
	return hs_ring_read(r->ring, buf, max);
}

/* A message for the user: the TUI's status line while it is open, else stderr. */
static void say(recorder *r, const char *msg)
{
	if (r->tui != NULL)
		hs_tui_notice(r->tui, 1, msg);
	else
		fprintf(stderr, "heapscope: %s: %s\n", command_name(r->o), msg);
}

static void keyframe(recorder *r)
{
	size_t len;
	void *blob = hs_model_save(r->model, &len);
	if (blob != NULL)
		hs_store_writer_keyframe(r->writer, hs_model_last_seq(r->model), blob, len);
	r->since_keyframe = 0;
}

/* Where the next batch is read to: the writer's next buffer while the store
 * records (no copy on the way to the file), else a buffer of our own. */
static hs_event *batch_buffer(recorder *r)
{
	static hs_event own[BATCH];
	hs_event *b = r->writer != NULL && !r->store_failed ? hs_store_writer_buffer(r->writer) : NULL;
	return b != NULL ? b : own;
}

/* The batch goes to the writer first, so that it appends while the model
 * applies the same events here. */
static void consume(recorder *r, const hs_event *ev, size_t n)
{
	r->nevents += n;
	char msg[512];
	if (r->writer != NULL && !r->store_failed && hs_store_writer_queue(r->writer, n) != 0) {
		snprintf(msg, sizeof msg, "%s: %s; recording stops, the workload goes on", r->o->out,
			 hs_store_writer_error(r->writer));
		say(r, msg);
		r->store_failed = 1;
	}
	if (r->o->attach_pid != 0 && ev[n - 1].kind == HS_EV_PROC_END)
		r->proc_end_seen = 1;
	if (r->model == NULL)
		return;
	/* Ring drops take no sequence number: the model is told. */
	uint64_t drops = r->ring != NULL ? atomic_load(&r->ring->drops) : 0;
	if (drops != r->drops_seen) {
		hs_model_note_loss(r->model);
		r->drops_seen = drops;
	}
	for (size_t i = 0; i < n; i++) {
		if (hs_model_apply(r->model, &ev[i]) != 0) {
			if (!r->model_reported) {
				snprintf(msg, sizeof msg, "model diverged at %s", hs_model_error(r->model));
				say(r, msg);
			}
			r->model_reported = 1;
			return;
		}
	}
	r->since_keyframe += n;
	if (r->writer != NULL && !r->store_failed && r->since_keyframe >= KEYFRAME_EVERY)
		keyframe(r);
}

/* Draws a live frame when one is due; a quit in the TUI stops the workload. */
static void frame(recorder *r, int finished)
{
	uint64_t now = mono_ns();
	if (r->tui == NULL || now < r->next_frame_ns)
		return;
	r->next_frame_ns = now + FRAME_NS;
	if (now - r->rate_ns >= 500 * 1000 * 1000) {
		r->rate = (double)(r->nevents - r->rate_events) * 1e9 / (double)(now - r->rate_ns);
		r->rate_ns = now;
		r->rate_events = r->nevents;
	}
	hs_tui_live live = { .events = r->nevents, .lost = lost(r), .events_per_s = r->rate,
			     .wait_ns = wait_ns(r), .finished = finished, .title = r->title };
	if (hs_tui_live_frame(r->tui, r->model, &live))
		stop_requested = 1;
}

/* Whether the watched process is gone: our child (its wait status in
 * *status), or for attach the process behind pidfd. */
static int gone(pid_t child, int pidfd, int *status)
{
	if (child > 0)
		return waitpid(child, status, WNOHANG) == child;
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

/* Sleeps until about want events should be waiting, at the rate the last read
 * saw (n events since *last_ns), within [MIN_POLL_NS, MAX_POLL_NS]. Reading
 * slots right behind a producer pulls each cache line away from it while it
 * still writes the next record into the same line (records are 80 bytes;
 * measured, that doubled the cost of tracing), and on a 2-CPU machine every
 * wake-up of the recorder may take the CPU from the workload
 * (measured: polling every 200 us preempted heap-level churn 3,700 times a
 * second and cost it a quarter of its time), so the recorder wakes as seldom
 * as the ring allows: at the longest poll, even object-level churn fills less
 * than a quarter of the default ring. */
static void wait_for_batch(size_t n, size_t want, uint64_t *last_ns)
{
	uint64_t now = mono_ns(), since = now - *last_ns;
	*last_ns = now;
	uint64_t ns = n != 0 && since / n * want < MAX_POLL_NS ? since / n * want : MAX_POLL_NS;
	if (ns < MIN_POLL_NS)
		ns = MIN_POLL_NS;
	struct timespec d = { 0, (long)ns };
	nanosleep(&d, NULL);
}

/* Drains until the process is gone (or, attached, until told to stop) and the
 * transport is empty; returns the child's wait status. */
static int drain(recorder *r, pid_t child, int pidfd, uint64_t deadline_ns)
{
	int status = 0, ended = 0, forwarded = 0;
	uint64_t last_read = 0;
	/* An eighth of the ring, so that the producers need not wait (eight batches
	 * from the eBPF transport, whose buffer holds more). */
	size_t want = r->ring != NULL ? r->ring->capacity / 8 : 8 * BATCH;
	for (;;) {
		frame(r, 0);
		hs_event *buf = batch_buffer(r);
		size_t n = source_read(r, buf, BATCH, ended);
		if (n != 0)
			consume(r, buf, n);
		if (n == BATCH) {
			last_read = mono_ns();
			continue;
		}
		if (n != 0) {
			if (!ended)
				wait_for_batch(n, want, &last_read);
			continue;
		}
		if (ended) {
			if (r->ring != NULL && hs_ring_skip_hole(r->ring)) {
				r->holes++;
				continue;
			}
			return status;
		}
		if (!forwarded && (stop_requested || (deadline_ns != 0 && mono_ns() >= deadline_ns))) {
			forwarded = 1;
			if (child <= 0) {
				ended = 1; /* attached: detach, the process goes on */
				continue;
			}
			kill(child, SIGTERM);
		}
		if (gone(child, pidfd, &status)) {
			ended = 1;
			continue;
		}
		wait_for_batch(0, want, &last_read);
	}
}

static hs_session_status session_status(const recorder *r, int status, int detached)
{
	if (stop_requested)
		return HS_SESSION_INTERRUPTED;
	if (r->o->attach_pid != 0)
		return detached || r->proc_end_seen ? HS_SESSION_COMPLETE : HS_SESSION_CRASHED;
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
		return HS_SESSION_CRASHED;
	return HS_SESSION_COMPLETE;
}

static void summary(const recorder *r, uint64_t elapsed_ns, int status)
{
	double secs = (double)elapsed_ns / 1e9;
	/* A program's stdout is its own: the summary goes to stderr then. */
	FILE *f = r->o->prog != NULL || r->o->attach_pid != 0 ? stderr : stdout;
	const char *cmd = command_name(r->o);
	const char *what = r->o->prog != NULL ? "program" : "workload";
	fprintf(f, "heapscope %s: %s: %" PRIu64 " events in %.2f s (%.2f M events/s), %" PRIu64 " lost", cmd,
		r->o->prog != NULL ? r->o->prog[0] : r->o->attach_pid != 0 ? r->o->command : r->o->workload,
		r->nevents, secs, secs > 0 ? (double)r->nevents / secs / 1e6 : 0.0, lost(r));
	if (r->bpf != NULL)
		fprintf(f, " (eBPF; %" PRIu64 " before the snapshot)\n", hs_bpf_before_snapshot(r->bpf));
	else
		fprintf(f, ", producers waited %.3f s (%" PRIu64 " times)\n", (double)wait_ns(r) / 1e9, waits(r));
	if (r->bpf != NULL && !hs_bpf_snapped(r->bpf))
		fprintf(f, "heapscope %s: no snapshot: the process did not allocate while attached, so nothing "
			   "was recorded\n", cmd);
	if (r->model != NULL) {
		const char *err = hs_model_error(r->model);
		uint64_t untrusted = hs_model_untrusted_seq(r->model);
		if (untrusted != 0)
			fprintf(f, "heapscope %s: model: events were lost just before seq %" PRIu64
				   "; not trusted from there\n", cmd, untrusted);
		if (err != NULL)
			fprintf(f, "heapscope %s: model: DIVERGED at %s\n", cmd, err);
		else
			fprintf(f, "heapscope %s: model: %" PRIu64 " digests checked, all equal\n", cmd,
				hs_model_digests(r->model));
	}
	if (r->store != NULL)
		fprintf(f, "heapscope %s: session %" PRId64 " in %s (%s)\n", cmd, r->info.id, r->o->out,
			hs_session_status_name(r->info.status));
	if (r->o->attach_pid == 0 && WIFSIGNALED(status))
		fprintf(f, "heapscope run: the %s was killed by signal %d\n", what, WTERMSIG(status));
	if (r->o->prog != NULL && r->nevents == 0)
		fprintf(f, "heapscope run: no events: %s did not load the shim (statically linked, set-user-ID, "
			   "or it cleared LD_PRELOAD)\n", r->o->prog[0]);
}

/* The recorder, once the options are known: run's and attach's. */
static int record(run_opts *o)
{
	recorder r = { .o = o };
	int fd = -1, gate[2] = { -1, -1 }, pidfd = -1;
	if (o->bpf) {
		char err[512];
		if (hs_bpf_check_access(err, sizeof err) != 0)
			hs_cli_usage_error("%s: %s", command_name(o), err);
	}
	if (o->attach_pid != 0) {
		char err[512];
		if (hs_bpf_find_target(o->attach_pid, o->target, sizeof o->target, err, sizeof err) != 0)
			hs_cli_usage_error("attach: %s", err);
		if ((pidfd = (int)syscall(SYS_pidfd_open, o->attach_pid, 0)) < 0)
			hs_cli_usage_error("attach: cannot watch process %ld: %s", (long)o->attach_pid, strerror(errno));
	} else if (!o->bpf) {
		if ((fd = hs_ring_create(o->slots, o->level, o->lossy, &r.ring)) < 0)
			hs_cli_usage_error("run: cannot create the event ring (%" PRIu64 " slots): %s", o->slots,
					   strerror(errno));
	} else if (pipe2(gate, O_CLOEXEC) != 0) {
		hs_cli_usage_error("run: cannot make a pipe: %s", strerror(errno));
	}
	if (!o->no_store) {
		char err[256];
		if (hs_store_open(o->out, HS_STORE_CREATE, &r.store, err, sizeof err) != 0)
			hs_cli_usage_error("%s: %s", o->out, err);
	}
	if (!o->no_model && (r.model = hs_model_new()) == NULL)
		hs_cli_usage_error("%s: out of memory", command_name(o));

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pid_t child = -1;
	if (o->attach_pid != 0) {
		char err[512];
		if ((r.bpf = hs_bpf_attach(o->attach_pid, o->target, o->level, o->slots * 64, err, sizeof err)) == NULL)
			hs_cli_usage_error("attach: %s", err);
	}
	if (!o->headless) {
		char err[256];
		if ((r.tui = hs_tui_open(NULL, NULL, err, sizeof err)) == NULL)
			hs_cli_usage_error("%s: %s (use --headless)", command_name(o), err);
		if (o->prog != NULL || o->attach_pid != 0)
			snprintf(r.title, sizeof r.title, "%.160s -> %s", o->command, o->no_store ? "(not stored)" : o->out);
		else
			snprintf(r.title, sizeof r.title, "%s (seed %" PRIu64 ") -> %s", o->workload, o->seed,
				 o->no_store ? "(not stored)" : o->out);
	}

	uint64_t t0 = mono_ns();
	r.rate_ns = t0;
	if (o->attach_pid == 0) {
		int gate_rd = gate[0];
		child = o->prog != NULL ? spawn_program(o, fd, gate_rd) : spawn(o, fd, gate_rd, r.tui != NULL);
		if (child < 0) {
			int e = errno;
			if (r.tui != NULL)
				hs_tui_close(r.tui);
			hs_cli_usage_error("run: cannot fork: %s", strerror(e));
		}
		if (o->bpf) {
			/* Attached before the child execs: its probes fire from its
			 * first allocation. A failure closes the gate: it exits. */
			char err[512];
			close(gate[0]);
			if ((r.bpf = hs_bpf_attach(child, o->target, o->level, o->slots * 64, err, sizeof err)) == NULL) {
				if (r.tui != NULL)
					hs_tui_close(r.tui);
				hs_cli_usage_error("run: %s", err);
			}
			if (write(gate[1], "g", 1) != 1)
				hs_cli_usage_error("run: cannot start the child: %s", strerror(errno));
			close(gate[1]);
		}
	}
	/* A program's descendants may reopen the ring from this descriptor
	 * (HEAPSCOPE_TRACE_PATH): kept until the end. */
	if (o->prog == NULL && fd >= 0)
		close(fd);

	/* An attached process's settings are its own environment's: not known here. */
	char config[2048], heap[1024] = "null";
	if (o->attach_pid == 0)
		hs_settings_json(&o->settings, heap, sizeof heap);
	snprintf(config, sizeof config, "{\"ring_slots\": %" PRIu64 ", \"lossy\": %s, \"duration\": %s, \"heap\": %s%s%s}",
		 o->slots, o->lossy || o->bpf ? "true" : "false", o->duration != NULL ? o->duration : "null", heap,
		 o->replay[0] != '\0' ? ", \"replay\": " : "", o->replay);
	r.info = (hs_session_info){ .command = o->command, .seed = o->seed,
				    .pid = o->attach_pid != 0 ? o->attach_pid : child, .recorder_pid = getpid(),
				    .transport = o->bpf ? "bpf" : "ring",
				    .level = o->level == HS_EVL_OBJECT ? "objects" : "heap", .config = config,
				    .start_ns = wall_ns(), .status = HS_SESSION_RUNNING };
	if (r.store != NULL && hs_store_session_begin(r.store, &r.info) != 0) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s: %s; recording nothing", o->out, hs_store_error(r.store));
		say(&r, msg);
		r.store_failed = 1;
	}
	if (r.store != NULL && !r.store_failed && (r.writer = hs_store_writer_start(r.store, r.info.id)) == NULL) {
		say(&r, "cannot start the store's writer thread; recording nothing");
		r.store_failed = 1;
	}
	if (o->attach_pid != 0 && r.tui == NULL)
		fprintf(stderr, "heapscope attach: attached to %s in process %ld; the snapshot comes at its next "
				"allocation (Ctrl-C detaches)\n", o->target, (long)o->attach_pid);

	uint64_t deadline = 0;
	if (o->attach_pid != 0 && o->duration != NULL)
		deadline = t0 + (uint64_t)(strtod(o->duration, NULL) * 1e9);
	int status = drain(&r, child, pidfd, deadline);
	int detached = deadline != 0 && mono_ns() >= deadline;
	uint64_t elapsed = mono_ns() - t0;
	if (o->prog != NULL && r.ring != NULL) {
		abandon_ring(r.ring);
		close(fd);
	}
	if (r.tui != NULL) {
		/* The last picture stays until q. */
		while (!stop_requested) {
			frame(&r, 1);
			struct timespec d = { 0, 20 * 1000 * 1000 };
			nanosleep(&d, NULL);
		}
		hs_tui_close(r.tui);
		r.tui = NULL;
	}

	r.info.status = session_status(&r, status, detached);
	r.info.end_ns = wall_ns();
	r.info.nevents = r.nevents;
	r.info.nlost = lost(&r);
	r.info.wait_ns = wait_ns(&r);
	if (r.writer != NULL) {
		char err[256];
		/* The last keyframe, unless the periodic one was taken at the last event. */
		if (!r.store_failed && r.model != NULL && hs_model_error(r.model) == NULL && r.since_keyframe != 0)
			keyframe(&r);
		if (hs_store_writer_stop(r.writer, err, sizeof err) != 0 && !r.store_failed) {
			fprintf(stderr, "heapscope: %s: %s\n", o->out, err);
			r.store_failed = 1;
		}
	}
	if (r.store != NULL) {
		if (!r.store_failed && hs_store_session_end(r.store, &r.info) != 0)
			fprintf(stderr, "heapscope: %s: %s\n", o->out, hs_store_error(r.store));
		hs_store_close(r.store);
	}
	summary(&r, elapsed, status);
	/* A divergence after known losses is expected, not a failure. */
	int diverged = r.model != NULL && hs_model_error(r.model) != NULL &&
		       (hs_model_untrusted_seq(r.model) == 0 ||
			hs_model_error_seq(r.model) < hs_model_untrusted_seq(r.model));
	hs_model_free(r.model);
	hs_bpf_detach(r.bpf);
	if (r.ring != NULL)
		hs_ring_unmap(r.ring);
	if (pidfd >= 0)
		close(pidfd);
	if (o->attach_pid == 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0)
		return WEXITSTATUS(status);
	if (o->attach_pid == 0 && WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return diverged ? HS_EXIT_FAIL : HS_EXIT_OK;
}

int hs_cmd_run(int argc, char **argv)
{
	run_opts o;
	parse(argc, argv, &o);
	if (o.bpf && o.prog != NULL)
		snprintf(o.target, sizeof o.target, "%s", o.preload);
	else if (o.bpf)
		self_exe(o.target, sizeof o.target);
	return record(&o);
}

static void attach_usage(FILE *f)
{
	fprintf(f,
		"usage: heapscope attach --pid PID [-o FILE] [--headless] [--events heap|objects]\n"
		"                        [--duration SECONDS] [--ring-slots N] [--no-store] [--no-model]\n\n"
		"Attaches to a process already running on heapscope's heap (a built-in workload, a\n"
		"program run with libheapscope-preload.so, or one linked with libheapscope) through\n"
		"eBPF programs on its USDT probes, and records its events like 'heapscope run': into\n"
		"FILE, the model and the TUI. Nothing is restarted. At its next allocation the\n"
		"process sends a snapshot of its heap, from which the model starts; every 100 ms a\n"
		"statistics sample and a digest follow while attached. Ctrl-C (or q in the TUI, or\n"
		"--duration) detaches; the process goes on, its probes back to costing nothing.\n\n"
		"Needs CAP_SYS_ADMIN (root). Records lost to a full BPF ring buffer are counted; the\n"
		"model marks the first event after a loss as the point it can no longer be trusted.\n"
		"Only that process is traced, not the children it forks.\n\n"
		"options:\n"
		"  --pid PID           the process\n"
		"  -o FILE             the session file (default heapscope.db)\n"
		"  --headless          no TUI: record and print the summary only\n"
		"  --events LEVEL      heap (default), or objects: also every malloc and free (each\n"
		"                      costs the process about a microsecond while attached)\n"
		"  --duration SECONDS  detach after this long\n"
		"  --ring-slots N      the BPF ring buffer holds N x 64 bytes, N a power of two\n"
		"                      (default %" PRIu64 ")\n"
		"  --no-store          record nothing\n"
		"  --no-model          do not replay events into the model\n"
		"exit status: 0; 1 when the model diverged without events lost; 2 bad usage, no\n"
		"such process, no heapscope in it, or no privileges for eBPF\n",
		HS_RING_DEFAULT_SLOTS);
}

/* "attach PID: its command line" for the session's command. */
static void attach_command(pid_t pid, char *out, size_t len)
{
	char path[64], args[768];
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	size_t n = 0;
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		n = fread(args, 1, sizeof args - 1, f);
		fclose(f);
	}
	for (size_t i = 0; i + 1 < n; i++)
		if ((unsigned char)args[i] < ' ')
			args[i] = ' ';
	args[n] = '\0';
	snprintf(out, len, "attach %ld: %s", (long)pid, n > 0 ? args : "?");
}

int hs_cmd_attach(int argc, char **argv)
{
	run_opts o = { .out = "heapscope.db", .slots = HS_RING_DEFAULT_SLOTS, .level = HS_EVL_HEAP, .bpf = 1 };
	for (int i = 1, took; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			attach_usage(stdout);
			return HS_EXIT_OK;
		} else if (strcmp(a, "--pid") == 0) {
			o.attach_pid = (pid_t)hs_cli_parse_u64("--pid", v, 1, INT32_MAX);
			i++;
		} else if ((took = parse_common(&o, "attach", a, v)) != 0) {
			i += took - 1;
		} else {
			hs_cli_usage_error("attach: unknown option '%s' (see 'heapscope attach --help')", a);
		}
	}
	if (o.attach_pid == 0)
		hs_cli_usage_error("attach: --pid PID is needed (see 'heapscope attach --help')");
	attach_command(o.attach_pid, o.command, sizeof o.command);
	return record(&o);
}
