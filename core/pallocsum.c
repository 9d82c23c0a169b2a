/*
 * core/pallocsum.c — merging summaries. See core/pallocsum.h for the packing and
 * core/pagealloc.c for the tree the merge builds.
 *
 * Walking the children left to right keeps a running (start, max, end) of the
 * prefix merged so far:
 *   start grows by a child's start only while the prefix is wholly free;
 *   max is the largest of the prefix's max, the child's max, and the run that
 *       crosses the boundary (prefix end + child start);
 *   end extends by a whole child when that child is wholly free, and otherwise
 *       becomes the child's end.
 */
#include "pallocsum.h"

hs_palloc_sum hs_palloc_sum_merge(const hs_palloc_sum *sums, unsigned n, unsigned log_pages_per_sum)
{
	const unsigned per = 1u << log_pages_per_sum;
	unsigned start = hs_palloc_sum_start(sums[0]);
	unsigned max = hs_palloc_sum_max(sums[0]);
	unsigned end = hs_palloc_sum_end(sums[0]);

	for (unsigned i = 1; i < n; i++) {
		unsigned si = hs_palloc_sum_start(sums[i]);
		unsigned mi = hs_palloc_sum_max(sums[i]);
		unsigned ei = hs_palloc_sum_end(sums[i]);

		if (start == i * per)
			start += si;
		if (end + si > max)
			max = end + si;
		if (mi > max)
			max = mi;
		end = ei == per ? end + per : ei;
	}
	return hs_palloc_sum_pack(start, max, end);
}
