/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dio-uring-read-fault - io_uring O_DIRECT read over several extents into a
 * partly resident buffer
 *
 * Fixes, fstests, parameters, may-hang: the dg_repro table at the end of
 * this file (--describe, --describe --json).
 *
 * The file gets one extent per page (--size / page size extents, default
 * 2): each page is written with O_DIRECT and fsynced on its own, last page
 * first, so no two extents are contiguous on disk (FIEMAP must see them
 * apart, else the iteration is SKIP: precondition not met). The page cache
 * is dropped (POSIX_FADV_DONTNEED), then the whole range is read with one
 * io_uring readv (a plain read of a regular file: io_uring tries it
 * NOWAIT first) into a fresh anonymous mapping where only the pages the
 * fault pattern asks for are resident (`first`: page 0, as generic/678).
 * On a kernel without the fix, btrfs submits the first extent's bio, then
 * cannot fault in the next page without blocking and completes the read
 * short: "short read: res 4096 of 8192", the rest of the buffer untouched.
 * The completion must be the whole length and the data right.
 * FAIL symptom size: a short read (size_seen = bytes the completion
 * reported, size_expected = bytes asked); data: wrong bytes; eio-read:
 * -EIO; eagain-read: -EAGAIN in the completion (io_uring's own NOWAIT
 * attempt must be retried blocking, never reach the user: the planted
 * kernel does this over a compressed extent, even with every page
 * resident). --fault all is the control (nothing to fault: never short).
 * --layout (sweep key `layout`, recorded as "layout") the file's extents:
 *   plain       (default) as above, one regular extent per page
 *   compressed  page 0 a regular extent (O_DIRECT write, fsync), then the
 *               file is flagged FS_COMPR_FL (chattr +c) and pages 1.. are
 *               written buffered with compressible data (each sector's
 *               header, zeros after it) and fsynced: one compressed extent
 *               (a4527e1853f8: NOWAIT DIO reads over compressed extents).
 *               --size of 3+ pages: btrfs does not compress one page after
 *               the start of a file. It compresses only files with data
 *               checksums (not nodatasum, not --nocow)
 *   inline      a fresh file: INLINE_BYTES written buffered at 0 and
 *               fsynced (an inline extent, max_inline permitting), then
 *               pages 1.. as in plain; page 0 reads back as those bytes,
 *               zeros after them (a4527e1853f8: inline extents)
 * FIEMAP must show the extent the layout asks for (FIEMAP_EXTENT_ENCODED,
 * FIEMAP_EXTENT_DATA_INLINE), else the iteration is SKIP with the reason
 * (precondition not met).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "diogap.h"

#define BUF_MARK 0xa5 /* what the resident pages of the read buffer hold before the read */
#define FIEMAP_MAX 64
#define INLINE_BYTES 1024 /* the inline layout's first write: under max_inline's default 2048 */

enum layout { PLAIN, COMPRESSED, INLINE };
static const char *layout_name = "plain"; /* this run's --layout (JSON "layout") */
static int inline_made = -1; /* inline layout: the small write made an inline extent (FIEMAP) */

static enum layout layout_of(const struct dg_opts *o)
{
	return !o->layout || !strcmp(o->layout, "plain") ? PLAIN :
	       !strcmp(o->layout, "compressed") ? COMPRESSED : INLINE;
}

/* What FIEMAP says of the file's extents over [0, len). */
struct extents {
	int n;                 /* mapped extents, -1: FIEMAP not supported */
	int encoded;           /* of them FIEMAP_EXTENT_ENCODED (compressed) */
	int inline_;           /* of them FIEMAP_EXTENT_DATA_INLINE */
	bool first_plain;      /* the first is neither */
	bool first_inline;     /* the first is inline */
};

/* File extents over [0, len): FIEMAP, adjacent ones counted apart, and
 * their kinds (e->n = -1 when FIEMAP is not supported). */
static void find_extents(int fd, uint64_t len, struct extents *e)
{
	size_t sz = sizeof(struct fiemap) + FIEMAP_MAX * sizeof(struct fiemap_extent);
	struct fiemap *fm = dg_xmalloc(sz);
	unsigned i;

	memset(e, 0, sizeof(*e));
	fm->fm_start = 0;
	fm->fm_length = len;
	fm->fm_flags = FIEMAP_FLAG_SYNC;
	fm->fm_extent_count = FIEMAP_MAX;
	if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
		free(fm);
		e->n = -1;
		return;
	}
	e->n = (int)fm->fm_mapped_extents;
	for (i = 0; i < fm->fm_mapped_extents && i < FIEMAP_MAX; i++) {
		uint32_t f = fm->fm_extents[i].fe_flags;

		e->encoded += !!(f & FIEMAP_EXTENT_ENCODED);
		e->inline_ += !!(f & FIEMAP_EXTENT_DATA_INLINE);
		if (!i) {
			e->first_plain = !(f & (FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_INLINE));
			e->first_inline = !!(f & FIEMAP_EXTENT_DATA_INLINE);
		}
	}
	free(fm);
}

/* Set or clear FS_COMPR_FL on fd; 0 or errno. */
static int compress_flag(int fd, bool on)
{
	int flags = 0;

	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
		return errno;
	flags = on ? flags | FS_COMPR_FL : flags & ~FS_COMPR_FL;
	return ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0 ? errno : 0;
}

/* Compressible data that still names its sectors: each sector's header,
 * zeros after it, the header's checksum over that. */
static void compressible(char *p, size_t len)
{
	struct dg_sector_hdr h;
	size_t s;

	for (s = 0; s + DG_SECTOR <= len; s += DG_SECTOR) {
		memset(p + s + sizeof(h), 0, DG_SECTOR - sizeof(h));
		memcpy(&h, p + s, sizeof(h));
		h.csum = 0;
		memcpy(p + s, &h, sizeof(h));
		h.csum = dg_sector_csum(p + s);
		memcpy(p + s, &h, sizeof(h));
	}
}

/* Buffered write of data[off, off+n) at off through a new fd (no O_DIRECT),
 * then fsync: 0, or dg_write_failed()'s verdict. */
static int write_buffered(const struct dg_opts *o, const char *data, size_t off, size_t n,
			  struct dg_result *r)
{
	int fd = CHECK_SYS(open(o->file, O_WRONLY | O_CLOEXEC));
	size_t done = 0;

	while (done < n) {
		ssize_t w = pwrite(fd, data + off + done, n - done, (off_t)(off + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return dg_write_failed(w < 0 ? errno : EIO, off + done, r);
		}
		done += (size_t)w;
	}
	if (fsync(fd)) {
		int err = errno;

		close(fd);
		return dg_write_failed(err, off, r);
	}
	close(fd);
	return 0;
}

/* Pages [first, np) of data, one O_DIRECT write and fsync each, last page
 * first, so no two extents are contiguous on disk. 0, or a verdict. */
static int direct_pages(int fd, const char *data, size_t page, size_t first, size_t np,
			struct dg_result *r)
{
	char *src = dg_xbuffer(page, page);
	size_t i;

	for (i = np; i-- > first;) {
		ssize_t w;

		memcpy(src, data + i * page, page);
		w = pwrite(fd, src, page, (off_t)(i * page));
		if (w != (ssize_t)page) {
			free(src);
			return dg_write_failed(w < 0 ? errno : EIO, i * page, r);
		}
		if (fsync(fd)) {
			free(src);
			return dg_write_failed(errno, i * page, r);
		}
	}
	free(src);
	return 0;
}

/* The layout's extents (see the top of the file) in an emptied file; its
 * expected content goes to data (len bytes). When the layout cannot be
 * made (FS_COMPR_FL refused) *why says so and the result is DG_SKIP.
 * 0, or a verdict. */
static int make_extents(const struct dg_opts *o, int fd, size_t page, char *data,
			uint64_t run_id, unsigned iteration, struct dg_result *r,
			char *why, size_t whylen)
{
	size_t len = (size_t)o->size, np = len / page;
	int err, v;

	dg_pattern_fill(data, len, 0, run_id, iteration);
	CHECK_SYS(ftruncate(fd, 0));
	switch (layout_of(o)) {
	case INLINE:
		/* an empty file, a small buffered write and fsync: inline */
		memset(data + INLINE_BYTES, 0, page - INLINE_BYTES);
		v = write_buffered(o, data, 0, INLINE_BYTES, r);
		if (!v) {
			struct extents e;

			find_extents(fd, page, &e);
			inline_made = e.n < 0 ? -1 : e.first_inline;
		}
		return v ? v : direct_pages(fd, data, page, 1, np, r);
	case COMPRESSED:
		/* page 0 uncompressed: the flag goes on after it (a DIO write is
		 * never compressed, but one btrfs turns buffered would be) */
		err = compress_flag(fd, false);
		if (err && err != EOPNOTSUPP && err != ENOTTY)
			dg_die_at(__FILE__, __LINE__, "FS_IOC_SETFLAGS (clear FS_COMPR_FL)", err);
		v = direct_pages(fd, data, page, 0, 1, r);
		if (v)
			return v;
		compressible(data + page, len - page);
		err = compress_flag(fd, true);
		if (err) {
			snprintf(why, whylen, "FS_IOC_SETFLAGS FS_COMPR_FL (chattr +c): %s",
				 strerror(err));
			return DG_SKIP;
		}
		return write_buffered(o, data, page, len - page, r);
	case PLAIN:
		break;
	}
	return direct_pages(fd, data, page, 0, np, r);
}

/* Drop the file's page cache; ENOSYS (no ADVISE_SYSCALLS) is fine: O_DIRECT
 * writes left nothing cached. */
static void drop_cache(int fd)
{
	int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

	if (e && e != ENOSYS)
		dg_die_at(__FILE__, __LINE__, "posix_fadvise(POSIX_FADV_DONTNEED)", e);
}

static int ring_skip(int err)
{
	return err == ENOSYS || err == EPERM || err == EINVAL || err == EOPNOTSUPP;
}

/* One io_uring readv of [0, len) into map; the CQE's res (or -errno of the
 * ring itself in *ring_err). */
static int uring_read(int fd, char *map, size_t len, int *res, int *ring_err)
{
	struct iovec iov = { .iov_base = map, .iov_len = len };
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	int ret = io_uring_queue_init(1, &ring, 0);

	if (ret < 0) {
		*ring_err = -ret;
		return -1;
	}
	sqe = io_uring_get_sqe(&ring);
	CHECK(sqe != NULL);
	io_uring_prep_readv(sqe, fd, &iov, 1, 0);
	do
		ret = io_uring_submit(&ring);
	while (ret == -EINTR);
	if (ret < 0)
		dg_die_at(__FILE__, __LINE__, "io_uring_submit", -ret);
	do
		ret = io_uring_wait_cqe(&ring, &cqe);
	while (ret == -EINTR);
	if (ret < 0)
		dg_die_at(__FILE__, __LINE__, "io_uring_wait_cqe", -ret);
	*res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	return 0;
}

/* Bytes of the buffer from off on that still hold what they held before
 * the read (BUF_MARK on resident pages, zeros elsewhere). */
static size_t untouched_from(const struct dg_buf *b, size_t off)
{
	const char *before = dg_buf_expected(b);
	size_t i;

	for (i = off; i < b->len; i++)
		if (b->map[i] != before[i])
			break;
	return i - off;
}

/* The verdict, its symptom (JSON "symptom"; on FAIL only) and our members. */
static int verdict(struct dg_result *r, int v, const char *symptom, char *extra,
		   size_t n, const struct extents *e, int res, size_t untouched)
{
	snprintf(extra, n, "\"layout\":\"%s\",\"extents\":%d,\"compressed_extents\":%d,"
		 "\"inline_extents\":%d,\"res\":%d,\"untouched_after_res\":%zu",
		 layout_name, e->n, e->encoded, e->inline_, res, untouched);
	r->extra_json = extra;
	r->symptom = symptom;
	return r->verdict = v;
}

/* Did the file get the extents its layout needs (FIEMAP)? Sets
 * r->precondition and its why; false: not met (SKIP). FIEMAP missing: the
 * plain layout goes on (precondition null), the others cannot tell. */
static bool layout_met(const struct dg_opts *o, int fd, const struct extents *e,
		       struct dg_result *r)
{
	enum layout lay = layout_of(o);
	const char *ds;
	bool met;
	int csum;

	if (e->n < 0) {
		if (lay == PLAIN)
			return true;
		snprintf(r->precondition_why, sizeof(r->precondition_why),
			 "FIEMAP not supported here: cannot tell whether the file has a%s extent",
			 lay == COMPRESSED ? " compressed" : "n inline");
		r->precondition = DG_NO;
		return false;
	}
	switch (lay) {
	case COMPRESSED:
		met = e->n >= 2 && e->first_plain && e->encoded;
		ds = dg_file_datasum(o, fd, &csum);
		snprintf(r->precondition_why, sizeof(r->precondition_why),
			 "%d extents (FIEMAP), %d compressed after a regular one: the read must span both%s",
			 e->n, e->first_plain ? e->encoded : 0,
			 met || !strcmp(ds, "yes") ? "" : " (no data checksums: btrfs may not compress)");
		break;
	case INLINE:
		met = e->n >= 2 && e->first_inline;
		snprintf(r->precondition_why, sizeof(r->precondition_why),
			 "%d extents (FIEMAP), the first %s: the read must span an inline and a regular one%s",
			 e->n, e->first_inline ? "inline" : "regular",
			 met ? "" : inline_made == 0 ? " (no inline extent made: max_inline=0?)" :
			 inline_made == 1 ? " (made inline; the kernel made it regular as the file grew)" : "");
		break;
	default:
		met = e->n >= 2;
		snprintf(r->precondition_why, sizeof(r->precondition_why),
			 "the file has %d extents (FIEMAP), the read must span 2 or more", e->n);
		break;
	}
	r->precondition = met ? DG_YES : DG_NO;
	return met;
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *b)
{
	static char extra[256];
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (size_t)o->size;
	struct dg_opts oc = *o;
	unsigned char *want;
	char *data, *before, err[160];
	struct extents ex = { .n = -1 };
	char why[160] = "";
	int fd, v, res = 0, ring_err = 0;
	size_t bad, untouched = 0;
	uint64_t t;

	if (len % page || len < 2 * page)
		dg_usage_error("--size %zu must be 2 or more whole pages of %zu bytes (one extent each)",
			       len, page);
	if (o->offset)
		dg_usage_error("--offset %" PRIu64 ": the file starts at 0 here", o->offset);
	layout_name = o->layout ? o->layout : "plain";
	if (layout_of(o) == COMPRESSED && len < 3 * page)
		dg_usage_error("--layout compressed: --size %zu must be 3 or more pages of %zu bytes "
			       "(btrfs does not compress one page after the start of a file)", len, page);
	data = dg_xmalloc(len);
	fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
	v = make_extents(o, fd, page, data, run_id, iteration, r, why, sizeof(why));
	if (v == DG_SKIP)
		dg_precondition_skip(r, "%s", why);
	if (v) {
		free(data);
		close(fd);
		return verdict(r, v, r->symptom, extra, sizeof(extra), &ex, 0, 0);
	}
	find_extents(fd, len, &ex);
	if (!layout_met(o, fd, &ex, r)) {
		dg_precondition_skip(r, "%s", r->precondition_why);
		free(data);
		close(fd);
		return verdict(r, DG_SKIP, NULL, extra, sizeof(extra), &ex, 0, 0);
	}
	drop_cache(fd);

	/* the read buffer: anonymous, fresh, only the wanted pages touched */
	oc.buf = DG_BUF_ANON;
	oc.chunk = 0;
	want = dg_xmalloc(len / page);
	if (dg_fault_want(o->fault, len, page, 0, want, err, sizeof(err)))
		dg_usage_error("--fault: %s", err);
	before = dg_xmalloc(len);
	memset(before, BUF_MARK, len);
	dg_buf_prepare(b, &oc, before, len, want); /* before: the buffer's content now */
	free(want);

	r->resident_pages = dg_buf_measure(b);
	r->size_expected = len;
	t = dg_now_us();
	if (uring_read(fd, b->map, len, &res, &ring_err)) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "io_uring unavailable: io_uring_queue_init: %s", strerror(ring_err));
		r->diag = r->diag_buf;
		free(data);
		close(fd);
		return verdict(r, ring_skip(ring_err) ? DG_SKIP : DG_BROKEN, NULL, extra,
			       sizeof(extra), &ex, 0, 0);
	}
	r->write_us = dg_now_us() - t; /* the read: the operation under test */
	r->size_seen = res > 0 ? (uint64_t)res : 0;
	if (res < 0) {
		snprintf(r->diag_buf, sizeof(r->diag_buf), "io_uring readv [0, %zu): %s", len,
			 strerror(-res));
		r->diag = r->diag_buf;
		free(data);
		close(fd);
		if (res == -EIO)
			return verdict(r, DG_FAIL, "eio-read", extra, sizeof(extra), &ex, res, 0);
		/* nobody asked for NOWAIT: io_uring must retry its own NOWAIT
		 * attempt blocking, so EAGAIN reaching the completion is the
		 * read failing (6.1.192 with ca93e44bfb5f undone, over a
		 * compressed extent), nothing read: the short read's extreme */
		if (res == -EAGAIN)
			return verdict(r, DG_FAIL, "eagain-read", extra, sizeof(extra), &ex, res, 0);
		return verdict(r, DG_BROKEN, NULL, extra, sizeof(extra), &ex, res, 0);
	}

	t = dg_now_us();
	bad = dg_verify(b->map, data, (size_t)res, 0, run_id, iteration, &r->gaps);
	if (bad)
		dg_first_bad_note(r, b->map, data, (size_t)res, 0);
	untouched = untouched_from(b, (size_t)res);
	r->verify_us = dg_now_us() - t;
	free(data);
	close(fd);
	if ((size_t)res < len) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "short read: res %d of %zu (%d extents; %zu of the %zu bytes after res untouched)%s",
			 res, len, ex.n, untouched, len - (size_t)res,
			 bad ? "; data before res wrong too" : "");
		r->diag = r->diag_buf;
		return verdict(r, DG_FAIL, "size", extra, sizeof(extra), &ex, res, untouched);
	}
	if (bad) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "%zu bad sectors in %zu ranges, first [%" PRIu64 ", %" PRIu64 ") %s",
			 bad, r->gaps.n, r->gaps.r[0].start, r->gaps.r[0].end,
			 dg_class_name(r->gaps.r[0].cls));
		r->diag = r->diag_buf;
		return verdict(r, DG_FAIL, "data", extra, sizeof(extra), &ex, res, 0);
	}
	return verdict(r, DG_PASS, NULL, extra, sizeof(extra), &ex, res, 0);
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-uring-read-fault",
		.summary = "io_uring O_DIRECT read over several extents into a partly resident buffer",
		.fixes = {
			{ "ca93e44bfb5f",
			  "btrfs: fallback to blocking mode when doing async dio over multiple extents" },
		},
		.introduced_by = { "51bd9563b678",
				   "btrfs: fix deadlock due to page faults during direct IO reads and writes" },
		.fstests = "generic/678",
		.params = "size fault layout",
		.may_hang = false,
		.engines = NULL,
		.layouts = "plain|compressed|inline",
		.default_pages = 2, /* no --size: 2 pages (2 extents), whatever the page size */
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
