/*
 * tests/unit/test_scavenger.c — the background scavenger on real memory: RSS
 * from /proc/self/statm, CPU time from the heap's statistics.
 *
 * Each scenario needs a fresh heap and its own environment, so the test
 * re-executes this binary (/proc/self/exe) with the scenario's name and checks
 * its exit status; the child prints what it measured. The figures they assert
 * are the issue's:
 *   free-1GiB  1 GiB of mixed sizes allocated and freed: the heap's RSS falls to
 *              within 10% above what it still uses (in-use spans and heap
 *              metadata), with no hs_heap_scavenge_all; the time it took is
 *              printed (the target is 5 s; asserted: 15 s, see below).
 *   limit      HEAPSCOPE_MEMORY_LIMIT=256MiB and a churning live set near 200 MiB:
 *              the heap's RSS never exceeds the limit.
 *   budget     10 s of work that always leaves memory to release: the
 *              scavenger's CPU time stays near its budget (1% of all CPUs): at
 *              most 10% over it, and at least half of it.
 *   virtual    the virtual clock (core/background.c): no background thread
 *              starts; hs_heap_advance does the sweeper's work of a woken cycle
 *              and takes the scavenger's turns, charged 80 us of CPU per MiB
 *              released and paced so that the CPU charged by virtual time T is
 *              at most budget * CPUs * T plus one 4 MiB step; in the end it
 *              has released down to its goal.
 *   virtual-0  the same with HEAPSCOPE_SCAVENGER_BUDGET=0: nothing released,
 *              no cycle, however far the clock goes.
 * "The heap's RSS" is the process's RSS minus what it was before the scenario
 * allocated anything (the program, the C library, cmocka).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapscope/heapscope.h"
#include "oracle.h"

extern char **environ;

/*
 * The process's resident bytes. In sanitizer builds, RSS also holds the
 * sanitizer's shadow of everything the heap touched, which no release of the
 * heap's can give back; there the heap's own count of retained bytes and
 * metadata (what it has not released) stands in for it.
 */
static uint64_t rss_bytes(void)
{
#if defined(SANITIZED)
	hs_heap_stats_t s;
	hs_heap_stats(&s);
	return s.retained + s.metadata;
#endif
	return oracle_rss_bytes();
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Mostly small objects, 5% between 40 KiB and 240 KiB (own spans). */
static size_t mixed_size(uint64_t *seed)
{
	uint64_t x = oracle_rand(seed);
	return x % 100 < 95 ? 16 + (x >> 16) % 4000 : 40000 + (x >> 16) % 200000;
}

/* --- the scenarios, run in a child ------------------------------------------------ */

static int child_free_1gib(void)
{
	enum { N = 1 << 20 };
	static char *p[N];
	uint64_t seed = 1, total = 0, base = rss_bytes();
	unsigned n = 0;
	while (total < ((uint64_t)1 << 30) && n < N) {
		size_t sz = mixed_size(&seed);
		p[n] = hs_malloc(sz);
		memset(p[n++], 1, sz);
		total += sz;
	}
	for (unsigned i = 0; i < n; i++)
		hs_free(p[i]);
	/* The target is 5 s. How fast 1% of the CPUs releases a gigabyte
	 * depends on the kernel's cost per page and on the machine's load (1.7 to
	 * 3.0 s measured on this kind of machine; see docs/PERFORMANCE.md), and the
	 * project keeps timing thresholds out of tests on shared machines. So the test
	 * asserts the property (RSS comes back without hs_heap_scavenge_all) with room
	 * for a slow machine, and prints the time for the record. */
	const double deadline = 15.0;
	double t0 = now_s();
	for (;;) {
		hs_heap_stats_t s;
		hs_heap_stats(&s);
		uint64_t heap_rss = rss_bytes() - base, keep = s.in_use + s.metadata;
		double t = now_s() - t0;
		if (heap_rss <= keep + keep / 10 && t <= deadline) {
			printf("free-1GiB: %llu MiB freed; heap RSS %llu MiB <= 110%% of in use %llu MiB + metadata "
			       "%llu MiB after %.2f s (scavenger: %llu MiB in %.1f ms CPU)\n",
			       (unsigned long long)(total >> 20), (unsigned long long)(heap_rss >> 20),
			       (unsigned long long)(s.in_use >> 20), (unsigned long long)(s.metadata >> 20), t,
			       (unsigned long long)(s.scav_released >> 20), (double)s.scav_cpu_ns / 1e6);
			return 0;
		}
		if (t > deadline) {
			printf("free-1GiB: heap RSS still %llu MiB after %.0f s (in use %llu MiB, metadata %llu MiB, "
			       "released %llu MiB)\n",
			       (unsigned long long)(heap_rss >> 20), deadline, (unsigned long long)(s.in_use >> 20),
			       (unsigned long long)(s.metadata >> 20), (unsigned long long)(s.scav_released >> 20));
			return 1;
		}
		usleep(50000);
	}
}

/* A live set near 200 MiB (100,000 objects of 16..4000 bytes), churned for 4 s:
 * each op frees a random object and allocates another of a random size. */
static int child_limit(void)
{
	enum { N = 100000 };
	static char *p[N];
	static size_t sz[N];
	uint64_t seed = 2, base = rss_bytes(), live = 0, max_rss = 0, ops = 0;
	for (unsigned i = 0; i < N; i++) {
		sz[i] = 16 + oracle_rand(&seed) % 3985;
		p[i] = hs_malloc(sz[i]);
		memset(p[i], 1, sz[i]);
		live += sz[i];
	}
	double t0 = now_s();
	while (now_s() - t0 < 4.0) {
		for (int k = 0; k < 2000; k++, ops++) {
			unsigned i = (unsigned)(oracle_rand(&seed) % N);
			hs_free(p[i]);
			live -= sz[i];
			sz[i] = 16 + oracle_rand(&seed) % 3985;
			p[i] = hs_malloc(sz[i]);
			memset(p[i], 1, sz[i]);
			live += sz[i];
		}
		uint64_t r = rss_bytes() - base;
		if (r > max_rss)
			max_rss = r;
	}
	hs_heap_stats_t s;
	hs_heap_stats(&s);
	printf("limit: live %llu MiB, %llu ops; heap RSS at most %llu MiB under a %llu MiB limit (in use %llu MiB, "
	       "metadata %llu MiB); %llu assists released %llu MiB; background released %llu MiB\n",
	       (unsigned long long)(live >> 20), (unsigned long long)ops, (unsigned long long)(max_rss >> 20),
	       (unsigned long long)(s.memory_limit >> 20), (unsigned long long)(s.in_use >> 20),
	       (unsigned long long)(s.metadata >> 20), (unsigned long long)s.scav_assists,
	       (unsigned long long)(s.scav_assist_bytes >> 20),
	       (unsigned long long)((s.scav_released - s.scav_assist_bytes) >> 20));
	return s.memory_limit == 0 || max_rss > s.memory_limit;
}

/* Allocates and frees 512 MiB once a second: more than the budget lets the
 * scavenger release in that time, so it works all the time it is allowed to. */
static int child_budget(void)
{
	enum { N = 131072 };
	static char *p[N];
	double t0 = now_s();
	while (now_s() - t0 < 10.0) {
		for (unsigned i = 0; i < N; i++) {
			p[i] = hs_malloc(4096);
			memset(p[i], 1, 4096);
		}
		for (unsigned i = 0; i < N; i++)
			hs_free(p[i]);
		usleep(700000);
	}
	double wall = now_s() - t0;
	hs_heap_stats_t s;
	hs_heap_stats(&s);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double budget = 0.01 * (double)cpus * wall, used = (double)s.scav_cpu_ns / 1e9;
	printf("budget: %.1f s, scavenger CPU %.1f ms of a %.1f ms budget (%.0f%%), released %llu MiB in %llu cycles\n",
	       wall, used * 1e3, budget * 1e3, 100 * used / budget, (unsigned long long)(s.scav_released >> 20),
	       (unsigned long long)s.scav_cycles);
	/* Near the budget: at most 10% over it, plus one step's worth (a 4 MiB
	 * madvise, under 1 ms); and at least half of it, since it always had work. */
	return used > budget * 1.10 + 0.001 || used < budget / 2;
}

/* --- the virtual clock -------------------------------------------------------------- */

#define V_OBJECTS 65536 /* 64 MiB of 1 KiB objects: 8 to a one-page span */
#define V_STEP_NS 320000 /* one 4 MiB step at 80 us per MiB */

static char *v_objects[V_OBJECTS];

static void *v_allocate(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < V_OBJECTS; i++) {
		v_objects[i] = hs_malloc(1024);
		memset(v_objects[i], 1, 1024);
	}
	return NULL;
}

/*
 * A thread allocates the objects and exits, so that its spans go to the
 * mcentrals; this thread frees them all (64 MiB, past any sweep trigger), so
 * that sweep cycles start and wake the background sweeper, which does not
 * exist. Spans emptied between the last two cycle starts are left for it:
 * only hs_heap_advance releases them. Then the clock runs to 5 s.
 */
static int child_virtual(int budget_zero)
{
	const char *me = budget_zero ? "virtual-0" : "virtual";
	if (hs_heap_virtual_clock() != 0) {
		printf("%s: hs_heap_virtual_clock refused a fresh heap\n", me);
		return 1;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, v_allocate, NULL) != 0 || pthread_join(t, NULL) != 0)
		return 1;
	for (unsigned i = 0; i < V_OBJECTS; i++)
		hs_free(v_objects[i]);
	hs_heap_stats_t before, s;
	hs_heap_stats(&before);
	if (before.sweep_cycles == 0 || oracle_threads() != 1) {
		printf("%s: %llu sweep cycles, %ld threads before the clock moved\n", me,
		       (unsigned long long)before.sweep_cycles, oracle_threads());
		return 1;
	}
	double capacity = 0.01 * (double)sysconf(_SC_NPROCESSORS_ONLN);
	for (uint64_t now = 0; now <= 5000000000ull; now += 10000000) {
		hs_heap_advance(now);
		hs_heap_stats(&s);
		if (!budget_zero && (double)s.scav_cpu_ns > capacity * (double)now + V_STEP_NS) {
			printf("virtual: %llu ns of CPU charged by %llu ns, over the budget\n",
			       (unsigned long long)s.scav_cpu_ns, (unsigned long long)now);
			return 1;
		}
	}
	printf("%s: spans released %llu -> %llu; scavenger released %llu MiB in %llu cycles, %.2f ms charged; "
	       "retained %llu MiB, goal %llu MiB; %ld thread(s)\n",
	       me, (unsigned long long)before.spans_released, (unsigned long long)s.spans_released,
	       (unsigned long long)(s.scav_released >> 20), (unsigned long long)s.scav_cycles,
	       (double)s.scav_cpu_ns / 1e6, (unsigned long long)(s.retained >> 20),
	       (unsigned long long)(s.scav_goal >> 20), oracle_threads());
	if (s.spans_released <= before.spans_released || oracle_threads() != 1 || hs_heap_virtual_clock() != -1)
		return 1;
	if (budget_zero)
		return s.scav_released != 0 || s.scav_cycles != 0 || s.scav_cpu_ns != 0;
	/* Pages are 8 KiB: 8192 * 80000 / 2^20 = 625 ns each, no rounding. */
	return s.scav_cpu_ns * 1048576 != s.scav_released * 80000 || s.scav_released == 0 ||
	       s.retained > s.scav_goal + (4 << 20);
}

/* --- the parent: run a scenario in a child -------------------------------------------- */

static void run_child(const char *name, const char *env_add)
{
	char *argv[] = { (char *)"/proc/self/exe", (char *)"--child", (char *)name, NULL };
	char *envp[256];
	int n = 0;
	for (char **e = environ; *e != NULL && n < 250; e++) {
		if (strncmp(*e, "HEAPSCOPE_", 10) != 0)
			envp[n++] = *e;
	}
	if (env_add != NULL)
		envp[n++] = (char *)env_add;
	envp[n] = NULL;
	pid_t pid;
	if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp) != 0)
		fail_msg("cannot spawn the %s scenario", name);
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("scenario %s failed (status %#x)", name, status);
}

static void test_free_1gib(void **state)
{
	(void)state;
	run_child("free-1GiB", NULL);
}

static void test_memory_limit(void **state)
{
	(void)state;
	run_child("limit", "HEAPSCOPE_MEMORY_LIMIT=256MiB");
}

static void test_cpu_budget(void **state)
{
	(void)state;
	run_child("budget", NULL);
}

static void test_virtual_clock(void **state)
{
	(void)state;
	run_child("virtual", NULL);
	run_child("virtual-0", "HEAPSCOPE_SCAVENGER_BUDGET=0");
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--child") == 0) {
		setvbuf(stdout, NULL, _IOLBF, 0);
		if (strcmp(argv[2], "free-1GiB") == 0)
			return child_free_1gib();
		if (strcmp(argv[2], "limit") == 0)
			return child_limit();
		if (strcmp(argv[2], "budget") == 0)
			return child_budget();
		if (strcmp(argv[2], "virtual") == 0 || strcmp(argv[2], "virtual-0") == 0)
			return child_virtual(strcmp(argv[2], "virtual-0") == 0);
		return 2;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_1gib),
		cmocka_unit_test(test_memory_limit),
		cmocka_unit_test(test_cpu_budget),
		cmocka_unit_test(test_virtual_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
