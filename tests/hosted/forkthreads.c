/*
 * tests/hosted/forkthreads.c — threads and fork under the LD_PRELOAD shim.
 *
 * Worker threads allocate, free their own objects and each other's (through a
 * shared exchange of slots), and exit and are replaced (their mcaches are
 * flushed by the key destructor) while the main thread forks: each child
 * allocates and frees in the copied heap, forks once more itself, and exits
 * with a status that says whether its objects held their contents. A heap lock
 * left held in the child by a thread that does not exist there would hang it;
 * a half-changed structure would crash it or corrupt its objects.
 *
 * Usage: forkthreads [FORKS] — prints one deterministic line and exits 0.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 4
#define NSLOTS 1024

static _Atomic(unsigned char *) slots[NSLOTS];
static atomic_int quit[NTHREADS]; /* worker i stops when set */

/* An object of size n whose bytes say n, so a corrupt heap shows. */
static unsigned char *make(size_t n)
{
	unsigned char *p = malloc(n);
	if (p != NULL)
		memset(p, (int)(n & 0xff), n);
	return p;
}

static int intact(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(n & 0xff))
			return 0;
	return 1;
}

static size_t size_of(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	unsigned r = (unsigned)(*x % 100);
	return r < 90 ? 8 + *x % 512 : r < 99 ? 1024 + *x % 30000 : 40000 + *x % 300000;
}

static void *worker(void *arg)
{
	unsigned i = (unsigned)((uintptr_t)arg % NTHREADS);
	uint64_t x = (uintptr_t)arg * 2654435761u + 1;
	while (!atomic_load(&quit[i])) {
		size_t n = size_of(&x);
		unsigned char *p = make(n);
		if (p == NULL)
			abort();
		/* Park it in a slot; whatever was there (another thread's, often) is freed. */
		unsigned char *old = atomic_exchange(&slots[x % NSLOTS], p);
		if (old != NULL)
			free(old);
		free(make(size_of(&x)));
	}
	return NULL;
}

/* In a child: allocate, check, free, fork once more. */
static int child_work(int depth)
{
	unsigned char *keep[64];
	for (int i = 0; i < 64; i++)
		keep[i] = make((size_t)(16 + i * 97));
	for (int i = 0; i < 64; i++)
		if (keep[i] == NULL || !intact(keep[i], (size_t)(16 + i * 97)))
			return 3;
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	char *s = strdup("child");
	if (s == NULL || strcmp(s, "child") != 0)
		return 4;
	free(s);
	if (depth == 0) {
		pid_t g = fork();
		if (g == 0)
			_exit(child_work(1));
		int st;
		if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 5;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 50, bad = 0;
	pthread_t t[NTHREADS];
	unsigned long next = 0;
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)next++);
	for (int f = 0; f < forks; f++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_work(0));
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "forkthreads: child %d failed (status %#x)\n", f, st);
			bad++;
		}
		/* Replace a worker now and then: the old one's cache is flushed at exit. */
		if (f % 10 == 9) {
			unsigned i = (unsigned)(f / 10 % NTHREADS);
			atomic_store(&quit[i], 1);
			pthread_join(t[i], NULL);
			atomic_store(&quit[i], 0);
			pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(next++ / NTHREADS * NTHREADS + i));
		}
	}
	for (int i = 0; i < NTHREADS; i++) {
		atomic_store(&quit[i], 1);
		pthread_join(t[i], NULL);
	}
	for (int i = 0; i < NSLOTS; i++)
		free(atomic_load(&slots[i]));
	printf("forkthreads: %d forks, %d failed\n", forks, bad);
	return bad != 0;
}
