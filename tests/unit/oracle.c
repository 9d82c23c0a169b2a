/*
 * tests/unit/oracle.c — see oracle.h. Deliberately naive.
 */
#include "oracle.h"

#include <signal.h>
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
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
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
