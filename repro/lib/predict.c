// SPDX-License-Identifier: GPL-2.0
/*
 * predict.c - where a buggy kernel loses data, from the residency that was
 * really there. btrfs writes O_DIRECT with page faults disabled: iomap pins
 * the resident pages from the start of the call up to the first page that
 * is not mapped and submits that prefix as a partial bio; a kernel without
 * b73a6fd1b1ef ("btrfs: split partial dio bios before submit") errors the
 * whole ordered extent, faults the rest in and writes only the rest. So per
 * write call: if its first page is resident and a later one is not, the
 * prefix [call start, first non-resident page) is lost. A call whose first
 * page is not resident submits nothing before the fault and loses nothing.
 */
#include "diogap.h"

void dg_predict(const unsigned char *seen, size_t npages, size_t page,
		uint64_t file_off, uint64_t chunk, uint64_t len,
		struct dg_ranges *pred)
{
	uint64_t c, step = chunk ? chunk : len;

	for (c = 0; c < len; c += step) {
		uint64_t ce = c + step < len ? c + step : len;
		size_t p0 = (size_t)(c / page), pl = (size_t)((ce - 1) / page), q;

		if (p0 >= npages || !seen[p0])
			continue;
		for (q = p0 + 1; q <= pl && q < npages; q++)
			if (!seen[q])
				break;
		if (q > pl || q >= npages)
			continue; /* the whole call is resident: nothing faults */
		dg_ranges_add(pred, file_off + c, file_off + (uint64_t)q * page,
			      DG_ZERO);
	}
}

/* Coverage of rs from index *i: the next maximal run of adjacent ranges,
 * whatever their class (FIEMAP may have split one gap into pieces). */
static bool next_run(const struct dg_ranges *rs, size_t *i, uint64_t *s,
		     uint64_t *e)
{
	if (*i >= rs->n)
		return false;
	*s = rs->r[*i].start;
	*e = rs->r[*i].end;
	for ((*i)++; *i < rs->n && rs->r[*i].start == *e; (*i)++)
		*e = rs->r[*i].end;
	return true;
}

bool dg_ranges_match(const struct dg_ranges *gaps, const struct dg_ranges *pred)
{
	size_t i = 0, j = 0;
	uint64_t as, ae, bs, be;

	for (;;) {
		bool a = next_run(gaps, &i, &as, &ae);
		bool b = next_run(pred, &j, &bs, &be);

		if (a != b)
			return false;
		if (!a)
			return true;
		if (as != bs || ae != be)
			return false;
	}
}
