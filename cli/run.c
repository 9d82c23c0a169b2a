/*
 * cli/run.c — `heapscope run`: the recorder.
 *
 * It creates the event ring in a memfd, starts the workload in a child process
 * (this binary again, `workloads --run NAME`, with HEAPSCOPE_TRACE_FD naming the
 * ring, so the child's heap traces from its first allocation), and drains the
 * ring until the child is gone: each batch goes to the model, which checks it
 * (digests included), and to the store's writer thread (store/writer.c), which
 * appends it to the file. Every KEYFRAME_EVERY events the model is saved as a
 * keyframe so that readers can seek.
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
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "cli.h"
#include "model.h"
#include "replay.h"
#include "ring.h"
#include "settings.h"
#include "store.h"
#include "tui.h"
#include "workloads.h"

#define BATCH 4096
#define KEYFRAME_EVERY 100000
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
		"  --ring-slots N      ring capacity in events, a power of two (default %" PRIu64 ")\n\n"
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
static const char *find_preload(void)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX], want[PATH_MAX + 64];
	const char *env = getenv("HEAPSCOPE_PRELOAD");
	if (env != NULL && *env != '\0') {
		snprintf(want, sizeof want, "%s", env);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n <= 0)
			hs_cli_usage_error("run: cannot find this binary (/proc/self/exe): %s", strerror(errno));
		exe[n] = '\0';
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

static void parse(int argc, char **argv, run_opts *o)
{
	const char *workload_option = NULL;
	*o = (run_opts){ .workload = "demo", .out = "heapscope.db", .seed = 1, .slots = HS_RING_DEFAULT_SLOTS,
			 .level = HS_EVL_HEAP };
	hs_settings_begin(&o->settings);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(HS_EXIT_OK);
		} else if (strcmp(a, "--workload") == 0) {
			if (v == NULL)
				hs_cli_usage_error("run: --workload needs a name");
			o->workload = v;
			i++;
		} else if (strcmp(a, "-o") == 0) {
			if (v == NULL)
				hs_cli_usage_error("run: -o needs a file name");
			o->out = v;
			i++;
		} else if (strcmp(a, "--events") == 0) {
			if (v != NULL && strcmp(v, "heap") == 0)
				o->level = HS_EVL_HEAP;
			else if (v != NULL && strcmp(v, "objects") == 0)
				o->level = HS_EVL_OBJECT;
			else
				hs_cli_usage_error("run: --events takes heap or objects");
			i++;
		} else if (strcmp(a, "--seed") == 0) {
			o->seed = hs_cli_parse_u64("--seed", v, 0, UINT64_MAX);
			i++;
		} else if (strcmp(a, "--duration") == 0) {
			char *end;
			double d = v != NULL ? strtod(v, &end) : -1;
			if (v == NULL || *end != '\0' || !(d >= 0) || d > 1e7)
				hs_cli_usage_error("run: --duration takes a number of seconds, not '%s'", v ? v : "");
			o->duration = v;
			i++;
		} else if (strcmp(a, "--ring-slots") == 0) {
			o->slots = hs_cli_parse_u64("--ring-slots", v, 1024, (uint64_t)1 << 26);
			if ((o->slots & (o->slots - 1)) != 0)
				hs_cli_usage_error("run: --ring-slots must be a power of two");
			i++;
		} else if (strcmp(a, "--lossy") == 0) {
			o->lossy = 1;
		} else if (strcmp(a, "--headless") == 0) {
			o->headless = 1;
		} else if (strcmp(a, "--no-store") == 0) {
			o->no_store = 1;
		} else if (strcmp(a, "--no-model") == 0) {
			o->no_model = 1;
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

/*
 * Starts PROGRAM under the shim, tracing into ring fd (see the essay). Its
 * stdio is the recorder's. Exit status 127 when it cannot be found, 126 when
 * it cannot be run, as a shell would.
 */
static pid_t spawn_program(const run_opts *o, int fd)
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
	if (setenv("HEAPSCOPE_TRACE_FD", fdbuf, 1) != 0 || setenv("HEAPSCOPE_TRACE_PATH", pathbuf, 1) != 0 ||
	    setenv("LD_PRELOAD", preload, 1) != 0 || hs_settings_export(&o->settings) != 0)
		_exit(127);
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

/* Starts the workload: this binary, `workloads --run`, tracing into ring fd. */
static pid_t spawn(const run_opts *o, int fd, int quiet)
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
	if (setenv("HEAPSCOPE_TRACE_FD", fdbuf, 1) != 0 || hs_settings_export(&o->settings) != 0)
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
	execv("/proc/self/exe", args);
	fprintf(stderr, "heapscope: run: cannot start the workload: %s\n", strerror(errno));
	_exit(127);
}

typedef struct recorder {
	const run_opts *o;
	hs_ring_hdr *ring;
	hs_model *model;
	hs_store *store;
	hs_store_writer *writer; /* while the session is open and writable */
	hs_tui *tui;
	uint64_t next_frame_ns, rate_ns, rate_events;
	double rate;
	char title[256];
	hs_session_info info;
	uint64_t nevents, holes, since_keyframe;
	int model_reported;
	int store_failed;
} recorder;

/* A message for the user: the TUI's status line while it is open, else stderr. */
static void say(recorder *r, const char *msg)
{
	if (r->tui != NULL)
		hs_tui_notice(r->tui, 1, msg);
	else
		fprintf(stderr, "heapscope: run: %s\n", msg);
}

static void keyframe(recorder *r)
{
	size_t len;
	void *blob = hs_model_save(r->model, &len);
	if (blob != NULL)
		hs_store_writer_keyframe(r->writer, hs_model_last_seq(r->model), blob, len);
	r->since_keyframe = 0;
}

static void consume(recorder *r, const hs_event *ev, size_t n)
{
	r->nevents += n;
	char msg[512];
	if (r->writer != NULL && !r->store_failed && hs_store_writer_append(r->writer, ev, n) != 0) {
		snprintf(msg, sizeof msg, "%s: %s; recording stops, the workload goes on", r->o->out,
			 hs_store_writer_error(r->writer));
		say(r, msg);
		r->store_failed = 1;
	}
	if (r->model == NULL)
		return;
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
	hs_tui_live live = { .events = r->nevents, .lost = atomic_load(&r->ring->drops) + r->holes,
			     .events_per_s = r->rate, .wait_ns = atomic_load(&r->ring->wait_ns),
			     .finished = finished, .title = r->title };
	if (hs_tui_live_frame(r->tui, r->model, &live))
		stop_requested = 1;
}

/* Drains until the child is gone and the ring is empty; returns its wait status. */
static int drain(recorder *r, pid_t child)
{
	static hs_event buf[BATCH];
	int status = 0, gone = 0, forwarded = 0;
	for (;;) {
		frame(r, 0);
		/* Caught up: let the producers get well ahead before reading again.
		 * Reading slots right behind a producer pulls each cache line away
		 * from it while it still writes the next record into the same line
		 * (records are 80 bytes); measured, that doubled the cost of tracing. */
		size_t n = hs_ring_read(r->ring, buf, BATCH);
		if (n != 0)
			consume(r, buf, n);
		if (n == BATCH)
			continue;
		if (n != 0) {
			struct timespec d = { 0, 200 * 1000 };
			nanosleep(&d, NULL);
			continue;
		}
		if (gone) {
			if (hs_ring_skip_hole(r->ring)) {
				r->holes++;
				continue;
			}
			return status;
		}
		if (stop_requested && !forwarded) {
			kill(child, SIGTERM);
			forwarded = 1;
		}
		pid_t w = waitpid(child, &status, WNOHANG);
		if (w == child) {
			gone = 1;
			continue;
		}
		struct timespec d = { 0, 200 * 1000 };
		nanosleep(&d, NULL);
	}
}

static hs_session_status session_status(int status)
{
	if (stop_requested)
		return HS_SESSION_INTERRUPTED;
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
		return HS_SESSION_CRASHED;
	return HS_SESSION_COMPLETE;
}

static void summary(const recorder *r, uint64_t elapsed_ns, int status)
{
	double secs = (double)elapsed_ns / 1e9;
	uint64_t lost = atomic_load(&r->ring->drops) + r->holes;
	/* A program's stdout is its own: the summary goes to stderr then. */
	FILE *f = r->o->prog != NULL ? stderr : stdout;
	const char *what = r->o->prog != NULL ? "program" : "workload";
	fprintf(f, "heapscope run: %s: %" PRIu64 " events in %.2f s (%.2f M events/s), %" PRIu64
		" lost, producers waited %.3f s (%" PRIu64 " times)\n",
		r->o->prog != NULL ? r->o->prog[0] : r->o->workload, r->nevents, secs,
		secs > 0 ? (double)r->nevents / secs / 1e6 : 0.0, lost, (double)atomic_load(&r->ring->wait_ns) / 1e9,
		(uint64_t)atomic_load(&r->ring->waits));
	if (r->model != NULL) {
		const char *err = hs_model_error(r->model);
		if (err != NULL)
			fprintf(f, "heapscope run: model: DIVERGED at %s\n", err);
		else
			fprintf(f, "heapscope run: model: %" PRIu64 " digests checked, all equal\n",
				hs_model_digests(r->model));
	}
	if (r->store != NULL)
		fprintf(f, "heapscope run: session %" PRId64 " in %s (%s)\n", r->info.id, r->o->out,
			hs_session_status_name(r->info.status));
	if (WIFSIGNALED(status))
		fprintf(f, "heapscope run: the %s was killed by signal %d\n", what, WTERMSIG(status));
	if (r->o->prog != NULL && r->nevents == 0)
		fprintf(f, "heapscope run: no events: %s did not load the shim (statically linked, set-user-ID, "
			   "or it cleared LD_PRELOAD)\n", r->o->prog[0]);
}

int hs_cmd_run(int argc, char **argv)
{
	run_opts o;
	parse(argc, argv, &o);

	recorder r = { .o = &o };
	int fd = hs_ring_create(o.slots, o.level, o.lossy, &r.ring);
	if (fd < 0)
		hs_cli_usage_error("run: cannot create the event ring (%" PRIu64 " slots): %s", o.slots,
				   strerror(errno));
	if (!o.no_store) {
		char err[256];
		if (hs_store_open(o.out, HS_STORE_CREATE, &r.store, err, sizeof err) != 0)
			hs_cli_usage_error("%s: %s", o.out, err);
	}
	if (!o.no_model && (r.model = hs_model_new()) == NULL)
		hs_cli_usage_error("run: out of memory");

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (!o.headless) {
		char err[256];
		if ((r.tui = hs_tui_open(NULL, NULL, err, sizeof err)) == NULL)
			hs_cli_usage_error("run: %s (use --headless)", err);
		if (o.prog != NULL)
			snprintf(r.title, sizeof r.title, "%.160s -> %s", o.command,
				 o.no_store ? "(not stored)" : o.out);
		else
			snprintf(r.title, sizeof r.title, "%s (seed %" PRIu64 ") -> %s", o.workload, o.seed,
				 o.no_store ? "(not stored)" : o.out);
	}

	uint64_t t0 = mono_ns();
	r.rate_ns = t0;
	pid_t child = o.prog != NULL ? spawn_program(&o, fd) : spawn(&o, fd, r.tui != NULL);
	if (child < 0) {
		int e = errno;
		if (r.tui != NULL)
			hs_tui_close(r.tui);
		hs_cli_usage_error("run: cannot fork: %s", strerror(e));
	}
	/* A program's descendants may reopen the ring from this descriptor
	 * (HEAPSCOPE_TRACE_PATH): kept until the end. */
	if (o.prog == NULL)
		close(fd);

	char config[2048], heap[1024];
	hs_settings_json(&o.settings, heap, sizeof heap);
	snprintf(config, sizeof config, "{\"ring_slots\": %" PRIu64 ", \"lossy\": %s, \"duration\": %s, \"heap\": %s%s%s}",
		 o.slots, o.lossy ? "true" : "false", o.duration != NULL ? o.duration : "null", heap,
		 o.replay[0] != '\0' ? ", \"replay\": " : "", o.replay);
	r.info = (hs_session_info){ .command = o.command, .seed = o.seed, .pid = child,
				    .recorder_pid = getpid(), .transport = "ring",
				    .level = o.level == HS_EVL_OBJECT ? "objects" : "heap", .config = config,
				    .start_ns = wall_ns(), .status = HS_SESSION_RUNNING };
	if (r.store != NULL && hs_store_session_begin(r.store, &r.info) != 0) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s: %s; recording nothing", o.out, hs_store_error(r.store));
		say(&r, msg);
		r.store_failed = 1;
	}
	if (r.store != NULL && !r.store_failed && (r.writer = hs_store_writer_start(r.store, r.info.id)) == NULL) {
		say(&r, "cannot start the store's writer thread; recording nothing");
		r.store_failed = 1;
	}

	int status = drain(&r, child);
	uint64_t elapsed = mono_ns() - t0;
	if (o.prog != NULL) {
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

	r.info.status = session_status(status);
	r.info.end_ns = wall_ns();
	r.info.nevents = r.nevents;
	r.info.nlost = atomic_load(&r.ring->drops) + r.holes;
	r.info.wait_ns = atomic_load(&r.ring->wait_ns);
	if (r.writer != NULL) {
		char err[256];
		if (!r.store_failed && r.model != NULL && hs_model_error(r.model) == NULL)
			keyframe(&r);
		if (hs_store_writer_stop(r.writer, err, sizeof err) != 0 && !r.store_failed) {
			fprintf(stderr, "heapscope: run: %s: %s\n", o.out, err);
			r.store_failed = 1;
		}
	}
	if (r.store != NULL) {
		if (!r.store_failed && hs_store_session_end(r.store, &r.info) != 0)
			fprintf(stderr, "heapscope: run: %s: %s\n", o.out, hs_store_error(r.store));
		hs_store_close(r.store);
	}
	summary(&r, elapsed, status);
	int diverged = r.model != NULL && hs_model_error(r.model) != NULL;
	hs_model_free(r.model);
	hs_ring_unmap(r.ring);
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return diverged ? HS_EXIT_FAIL : HS_EXIT_OK;
}
