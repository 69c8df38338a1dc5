// SPDX-License-Identifier: GPL-2.0
/*
 * verify.c - read back, classify every bad sector, merge into gap ranges,
 * and ask FIEMAP whether a zero range is a hole or zeros inside an extent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "diogap.h"

const char *dg_class_name(enum dg_class c)
{
	static const char *const names[] = { "ok", "zero", "stale", "misplaced",
					     "garbage" };

	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "?";
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	return n == 0 || (c[0] == 0 && memcmp(c, c + 1, n - 1) == 0);
}

enum dg_class dg_classify(const void *got, const void *want,
			  uint64_t file_offset, uint64_t run_id,
			  uint32_t iteration)
{
	struct dg_sector_hdr h;

	if (!memcmp(got, want, DG_SECTOR))
		return DG_OK;
	if (all_zero(got, DG_SECTOR))
		return DG_ZERO;
	if (!dg_sector_valid(got))
		return DG_GARBAGE;
	memcpy(&h, got, sizeof(h));
	if (h.offset != file_offset)
		return DG_MISPLACED;
	if (h.run_id != run_id || h.iteration != iteration)
		return DG_STALE;
	/* a well-formed sector of this very write, yet not what was expected
	 * (e.g. data where an untouched anonymous page should give zeros) */
	return DG_GARBAGE;
}

static void push(struct dg_ranges *rs, uint64_t start, uint64_t end,
		 enum dg_class cls, int extent)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 16;
		struct dg_range *r = realloc(rs->r, cap * sizeof(*r));

		CHECK(r);
		rs->r = r;
		rs->cap = cap;
	}
	rs->r[rs->n++] = (struct dg_range){ start, end, cls, extent };
}

void dg_ranges_add(struct dg_ranges *rs, uint64_t start, uint64_t end,
		   enum dg_class cls)
{
	struct dg_range *last = rs->n ? &rs->r[rs->n - 1] : NULL;

	if (last && last->end == start && last->cls == cls) {
		last->end = end;
		return;
	}
	push(rs, start, end, cls, -1);
}

void dg_ranges_free(struct dg_ranges *rs)
{
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
}

size_t dg_verify(const void *got, const void *want, size_t len,
		 uint64_t file_offset, uint64_t run_id, uint32_t iteration,
		 struct dg_ranges *gaps)
{
	const char *g = got, *w = want;
	size_t s, bad = 0;

	if (!memcmp(got, want, len))
		return 0;
	for (s = 0; s + DG_SECTOR <= len; s += DG_SECTOR) {
		enum dg_class c;

		if (!memcmp(g + s, w + s, DG_SECTOR))
			continue;
		c = dg_classify(g + s, w + s, file_offset + s, run_id, iteration);
		dg_ranges_add(gaps, file_offset + s, file_offset + s + DG_SECTOR, c);
		bad++;
	}
	if (s < len && memcmp(g + s, w + s, len - s)) {
		/* a ragged tail shorter than a sector carries no header */
		dg_ranges_add(gaps, file_offset + s, file_offset + len,
			      all_zero(g + s, len - s) ? DG_ZERO : DG_GARBAGE);
		bad++;
	}
	return bad;
}

ssize_t dg_read_back(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(p + done, 0, len - done);
	return (ssize_t)done;
}

#define FIEMAP_MAX 128

/* Split [start, end) into pieces that are holes (0) or inside an extent
 * (1) and append them to out. Returns -1 when FIEMAP is not supported. */
static int fiemap_split(int fd, uint64_t start, uint64_t end,
			struct dg_ranges *out)
{
	size_t sz = sizeof(struct fiemap) + FIEMAP_MAX * sizeof(struct fiemap_extent);
	struct fiemap *fm = dg_xmalloc(sz);
	uint64_t pos = start;
	bool last = false;

	while (pos < end && !last) {
		unsigned i;

		memset(fm, 0, sz);
		fm->fm_start = pos;
		fm->fm_length = end - pos;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = FIEMAP_MAX;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			free(fm);
			return -1;
		}
		if (fm->fm_mapped_extents == 0)
			break;
		for (i = 0; i < fm->fm_mapped_extents && pos < end; i++) {
			const struct fiemap_extent *e = &fm->fm_extents[i];
			uint64_t es = e->fe_logical, ee = e->fe_logical + e->fe_length;

			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				last = true;
			if (ee <= pos)
				continue;
			if (es > pos)
				push(out, pos, es < end ? es : end, DG_ZERO, 0);
			if (es < end) {
				uint64_t a = es > pos ? es : pos;
				uint64_t b = ee < end ? ee : end;

				push(out, a, b, DG_ZERO, 1);
			}
			pos = ee;
		}
		if (i == 0)
			break;
	}
	if (pos < end)
		push(out, pos, end, DG_ZERO, 0);
	free(fm);
	return 0;
}

void dg_gaps_fiemap(int fd, struct dg_ranges *gaps)
{
	struct dg_ranges out = { 0 };
	size_t i;

	for (i = 0; i < gaps->n; i++) {
		struct dg_range *g = &gaps->r[i];

		if (g->cls != DG_ZERO || fiemap_split(fd, g->start, g->end, &out))
			push(&out, g->start, g->end, g->cls, g->cls == DG_ZERO ? -1 : g->extent);
	}
	dg_ranges_free(gaps);
	*gaps = out;
}

void dg_first_bad_note(struct dg_result *r, const void *got, const void *want,
		       size_t len, uint64_t file_offset)
{
	const struct dg_range *first = NULL;
	size_t i, k;

	if (r->first_bad.set)
		return;
	for (i = 0; i < r->gaps.n; i++) {
		const struct dg_range *g = &r->gaps.r[i];

		if (g->start >= file_offset && g->start - file_offset + DG_SECTOR <= len &&
		    (!first || g->start < first->start))
			first = g;
	}
	if (!first)
		return;
	k = (size_t)(first->start - file_offset);
	r->first_bad.set = true;
	r->first_bad.offset = first->start;
	r->first_bad.cls = first->cls;
	memcpy(r->first_bad.got, (const char *)got + k, DG_SECTOR);
	memcpy(r->first_bad.want, (const char *)want + k, DG_SECTOR);
}
