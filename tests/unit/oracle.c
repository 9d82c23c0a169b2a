/*
 * tests/unit/oracle.c — see oracle.h. Deliberately naive.
 */
#include "oracle.h"
#include "splitmix.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

unsigned oracle_bit(const uint64_t w[8], unsigned i)
{
	return (unsigned)(w[i / 64] >> (i % 64)) & 1;
}

unsigned oracle_max_run64(uint64_t x)
{
	unsigned best = 0, cur = 0;
	for (unsigned i = 0; i < 64; i++) {
		cur = (x >> i) & 1 ? cur + 1 : 0;
		if (cur > best)
			best = cur;
	}
	return best;
}

unsigned oracle_find_bit_range64(uint64_t x, unsigned n)
{
	for (unsigned i = 0; i + n <= 64; i++) {
		unsigned k = 0;
		while (k < n && ((x >> (i + k)) & 1))
			k++;
		if (k == n)
			return i;
	}
	return 64;
}

hs_pam_sum oracle_summarize_n(const uint64_t *w, unsigned long npages)
{
	unsigned long start = 0, end = 0, max = 0, cur = 0;
	while (start < npages && !((w[start / 64] >> (start % 64)) & 1))
		start++;
	while (end < npages && !((w[(npages - 1 - end) / 64] >> ((npages - 1 - end) % 64)) & 1))
		end++;
	for (unsigned long i = 0; i < npages; i++) {
		cur = (w[i / 64] >> (i % 64)) & 1 ? 0 : cur + 1;
		if (cur > max)
			max = cur;
	}
	return (hs_pam_sum){ (unsigned)start, (unsigned)max, (unsigned)end };
}

hs_pam_sum oracle_summarize(const uint64_t w[8])
{
	return oracle_summarize_n(w, 512);
}

unsigned oracle_find(const uint64_t w[8], unsigned npages, unsigned from)
{
	unsigned run = 0;
	for (unsigned i = from; i < 512; i++) {
		run = oracle_bit(w, i) ? 0 : run + 1;
		if (run == npages)
			return i + 1 - npages;
	}
	return ~0u;
}

uint64_t oracle_rand(uint64_t *state)
{
	return hs_splitmix64(state);
}

/* The styles of oracle_random_chunk, by how much of the chunk is allocated. */
static const struct chunk_mode {
	enum { CHUNK_FREE, CHUNK_AND, CHUNK_OR, CHUNK_FULL, CHUNK_RUNS } kind;
	unsigned n; /* AND, OR: random words per word; RUNS: the longest run */
} chunk_modes[] = {
	{ CHUNK_FREE, 0 },
	{ CHUNK_AND, 4 }, /* 1/16 allocated */
	{ CHUNK_AND, 3 }, /* 1/8 */
	{ CHUNK_AND, 2 }, /* 1/4 */
	{ CHUNK_AND, 1 }, /* 1/2 */
	{ CHUNK_OR, 2 },  /* 3/4 */
	{ CHUNK_OR, 3 },  /* 7/8 */
	{ CHUNK_OR, 4 },  /* 15/16 */
	{ CHUNK_FULL, 0 },
	{ CHUNK_RUNS, 6 },
	{ CHUNK_RUNS, 8 },
	{ CHUNK_RUNS, 64 },
	{ CHUNK_RUNS, 70 },
	{ CHUNK_RUNS, 250 },
	{ CHUNK_RUNS, 300 },
};
_Static_assert(sizeof chunk_modes / sizeof chunk_modes[0] == ORACLE_CHUNK_MODES, "one entry per mode");

void oracle_random_chunk(uint64_t w[8], unsigned mode, uint64_t *seed)
{
	const struct chunk_mode *m = &chunk_modes[mode % ORACLE_CHUNK_MODES];

	for (unsigned k = 0; k < 8; k++) {
		uint64_t x = m->kind == CHUNK_FULL ? ~UINT64_C(0) : 0;
		if (m->kind == CHUNK_AND || m->kind == CHUNK_OR) {
			x = oracle_rand(seed);
			for (unsigned d = 1; d < m->n; d++)
				x = m->kind == CHUNK_AND ? x & oracle_rand(seed) : x | oracle_rand(seed);
		}
		w[k] = x;
	}
	if (m->kind == CHUNK_RUNS) {
		unsigned p = 0, alloc = (unsigned)(oracle_rand(seed) & 1);
		while (p < 512) {
			unsigned len = 1 + (unsigned)(oracle_rand(seed) % m->n);
			if (len > 512 - p)
				len = 512 - p;
			if (alloc) {
				for (unsigned i = p; i < p + len; i++)
					w[i / 64] |= UINT64_C(1) << (i % 64);
			}
			p += len;
			alloc ^= 1;
		}
	}
}

int oracle_expect_abort(void (*fn)(void *), void *arg, const char *want, char *out, size_t outlen)
{
	int fds[2];
	if (pipe(fds) != 0)
		return 0;
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < outlen && (r = read(fds[0], out + n, outlen - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(out, want) != NULL;
}

uint64_t oracle_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2)
		abort();
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

long oracle_threads(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long n = -1;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "Threads: %ld", &n) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return n;
}
