/*
 * core/splitmix.h — the seeded generator every deterministic part of heapscope
 * shares: the demo and built-in workloads, the randomized tests, the benchmarks.
 * splitmix64 (Steele, Lea and Flood, 2014): one 64-bit state, advanced by a fixed
 * odd constant and mixed, so that the same seed always gives the same stream.
 * Not for anything that must be unpredictable.
 */
#ifndef HS_SPLITMIX_H
#define HS_SPLITMIX_H

#include <stdint.h>

static inline uint64_t hs_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

#endif /* HS_SPLITMIX_H */
