/*
 * arch/bits.h — bit intrinsics for the page allocator's 64-bit words.
 *
 * Every operation has two forms: a portable one written with plain shifts and
 * masks (hs_*_portable), and the default one, which uses the compiler's builtins
 * (a single tzcnt/lzcnt/popcnt on x86_64 with -mbmi/-mpopcnt, a short sequence
 * otherwise). Building with -DHS_PORTABLE_BITS makes the default forms use the
 * portable ones, which is how a compiler without the builtins is served; the unit
 * tests compare the two forms on every input they try.
 *
 * Conventions, as in Go's math/bits:
 *   hs_ctz64(0) == 64, hs_clz64(0) == 64.
 *   Runs are of 1 bits; callers searching for free pages (0 bits) pass the
 *   complement. Bit i is the i-th least significant bit.
 */
#ifndef HS_BITS_H
#define HS_BITS_H

#include <stdint.h>

static inline unsigned hs_ctz64_portable(uint64_t x)
{
	if (x == 0)
		return 64;
	unsigned n = 0;
	for (unsigned s = 32; s != 0; s >>= 1) {
		uint64_t low = x & ((UINT64_C(1) << s) - 1);
		if (low == 0) {
			n += s;
			x >>= s;
		}
	}
	return n;
}

static inline unsigned hs_clz64_portable(uint64_t x)
{
	if (x == 0)
		return 64;
	unsigned n = 0;
	for (unsigned s = 32; s != 0; s >>= 1) {
		if ((x >> (64 - s)) == 0) {
			n += s;
			x <<= s;
		}
	}
	return n;
}

static inline unsigned hs_popcount64_portable(uint64_t x)
{
	/* Sum bits in pairs, nibbles, then bytes; the multiply adds the bytes. */
	x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
	x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
	x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
	return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

#if defined(HS_PORTABLE_BITS) || !defined(__GNUC__)
#define hs_ctz64 hs_ctz64_portable
#define hs_clz64 hs_clz64_portable
#define hs_popcount64 hs_popcount64_portable
#else
static inline unsigned hs_ctz64(uint64_t x)
{
	return x == 0 ? 64 : (unsigned)__builtin_ctzll(x);
}

static inline unsigned hs_clz64(uint64_t x)
{
	return x == 0 ? 64 : (unsigned)__builtin_clzll(x);
}

/*
 * Without -mpopcnt (the x86-64 baseline lacks the instruction) GCC's builtin is an
 * out-of-line libgcc call; the inline SWAR form is faster than that call.
 */
#if defined(__POPCNT__) || !defined(__x86_64__)
static inline unsigned hs_popcount64(uint64_t x)
{
	return (unsigned)__builtin_popcountll(x);
}
#else
#define hs_popcount64 hs_popcount64_portable
#endif
#endif

/*
 * hs_find_bit_range64 returns the index of the lowest bit that starts a run of n
 * consecutive 1 bits in c, or 64 if there is none. n must be in [1, 64].
 * Mirrors Go's findBitRange64.
 *
 * Bit i of c stays set exactly while bits [i, i+have) of the input are all set.
 * Each step doubles `have` by and-ing c with itself shifted by `have`; once the
 * remaining length fits within what is known, one last shift by the remainder
 * finishes (a shift by 0 when n == 1). O(log n) steps instead of n-1.
 */
static inline unsigned hs_find_bit_range64(uint64_t c, unsigned n)
{
	unsigned left = n - 1; /* run length still to check beyond `have` */
	unsigned have = 1;
	while (left > have) {
		c &= c >> have;
		if (c == 0)
			return 64;
		left -= have;
		have <<= 1;
	}
	c &= c >> left;
	return hs_ctz64(c);
}

/*
 * hs_max_run64 returns the length of the longest run of 1 bits in x (0 for 0,
 * 64 for all ones).
 *
 * Doubling phase: r[k] marks the starts of runs of length >= 2^k; stop at the
 * first empty one. The answer lies in [2^(k-1), 2^k); refine it with the saved
 * r[j] for j = k-2 down to 0, extending the known length whenever some run is
 * that much longer. Seven words of state, at most 13 shift-and-ands.
 */
static inline unsigned hs_max_run64(uint64_t x)
{
	if (x == 0)
		return 0;
	if (~x == 0)
		return 64;
	uint64_t r[7];
	unsigned k = 0;
	r[0] = x;
	while (k < 6) {
		uint64_t next = r[k] & (r[k] >> (1u << k));
		if (next == 0)
			break;
		r[++k] = next;
	}
	uint64_t cur = r[k];
	unsigned len = 1u << k;
	for (unsigned j = k; j-- > 0;) {
		uint64_t t = cur & (r[j] >> len);
		if (t != 0) {
			cur = t;
			len += 1u << j;
		}
	}
	return len;
}

#endif /* HS_BITS_H */
